/* out.h - where a response goes: a libfcgi stream (FastCGI) or standard output (CGI). */
#ifndef CAPD_OUT_H
#define CAPD_OUT_H

#include <fcgiapp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* One per request, owned by the thread serving it. An error is sticky: after
 * the first failed write every later call fails at once, so a viewer that left
 * costs nothing more. */
struct out {
    FCGX_Stream *fcgx;                /* FastCGI stdout, or NULL for CGI */
    int fd;                           /* CGI: the descriptor to write (1) */
    const volatile sig_atomic_t *stop; /* CGI: a write interrupted while set gives up */
    int error;                        /* 0, or the -errno that ended the response */
    uint64_t bytes;                   /* body and header bytes accepted */
};

void out_init_fcgi(struct out *o, FCGX_Stream *stream);
void out_init_fd(struct out *o, int fd, const volatile sig_atomic_t *stop);

/* Queue (FastCGI) or write (CGI) bytes. Return 0 or the sticky -errno
 * (-EPIPE, -ECONNRESET, ... when the viewer has gone). */
int out_write(struct out *o, const void *buf, size_t len);
int out_writev(struct out *o, const struct iovec *iov, int count);
int out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Pushes everything queued to the web server now. Returns 0 or -errno. */
int out_flush(struct out *o);

#endif
