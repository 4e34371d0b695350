/* out.h - where a response goes: FastCGI STDOUT records or a CGI's standard output, via writev. */
#ifndef CAPD_OUT_H
#define CAPD_OUT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/*
 * One per request, owned by the thread serving it. Every call writes through
 * at once (there is no buffer to flush), with one writev per call:
 *
 * - FastCGI: the bytes are wrapped in FCGI_STDOUT records of up to
 *   OUT_RECORD_MAX bytes, written straight from the caller's buffers onto the
 *   request's connection. libfcgi still accepts the request, reads its
 *   parameters and ends it (FCGX_Finish_r writes the empty STDOUT record and
 *   END_REQUEST); its own 8 KB stream buffer is bypassed because it costs one
 *   write() and one small record per 8 KB, for the responder and for the web
 *   server alike.
 * - CGI: the bytes go to the descriptor as they are.
 *
 * An error is sticky: after the first failed write every later call fails at
 * once, so a viewer that left costs nothing more.
 */

/* Largest FCGI_STDOUT content per record: the protocol allows 65535; a
 * multiple of 8 keeps records aligned without padding. */
#define OUT_RECORD_MAX 65528u

struct out {
    int fd;                            /* FastCGI connection, or 1 for CGI */
    int request_id;                    /* FastCGI request id; 0 for CGI (no records) */
    const volatile sig_atomic_t *stop; /* a write interrupted while *stop is set gives up */
    int error;                         /* 0, or the -errno that ended the response */
    uint64_t bytes;                    /* response bytes written (record headers excluded) */
};

/* fd is the request's connection (FCGX_Request.ipcFd) and request_id its
 * FCGX_Request.requestId. */
void out_init_fcgi(struct out *o, int fd, int request_id, const volatile sig_atomic_t *stop);
void out_init_fd(struct out *o, int fd, const volatile sig_atomic_t *stop);

/* Write all the bytes or fail. Return 0, or the sticky -errno (-EPIPE,
 * -ECONNRESET, ... when the viewer has gone; -EINTR when *stop was set). */
int out_writev(struct out *o, const struct iovec *iov, int count);
int out_write(struct out *o, const void *buf, size_t len);
/* Plans FastCGI framing without writing: wraps the `count` pieces of src
 * (more than 0 bytes in all) in FCGI_STDOUT records for request_id, storing
 * the record headers in hdrs[] and the resulting vector in dst[]. Returns the
 * number of iovecs in dst, or -ENOSPC when dst_cap or hdr_cap is too small
 * (out_plan_size() says how much is needed). For writers that send one frame
 * to a non-blocking socket over several calls. */
int out_plan_records(int request_id, const struct iovec *src, int count, struct iovec *dst,
                     int dst_cap, uint8_t (*hdrs)[8], int hdr_cap);
/* Iovecs and record headers out_plan_records() needs for total bytes in count pieces. */
void out_plan_size(size_t total, int count, int *iovecs, int *headers);

/* Formats up to 2 KB (longer output is cut) and writes it. */
int out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
