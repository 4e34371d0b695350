/* out.c - where a response goes: a libfcgi stream (FastCGI) or standard output (CGI). */
#include "out.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

void out_init_fcgi(struct out *o, FCGX_Stream *stream)
{
    o->fcgx = stream;
    o->fd = -1;
    o->stop = NULL;
    o->error = 0;
    o->bytes = 0;
}

void out_init_fd(struct out *o, int fd, const volatile sig_atomic_t *stop)
{
    o->fcgx = NULL;
    o->fd = fd;
    o->stop = stop;
    o->error = 0;
    o->bytes = 0;
}

static int fcgx_error(struct out *o)
{
    int e = FCGX_GetError(o->fcgx);
    /* libfcgi reports errno values as positive numbers and its own as negative. */
    o->error = e > 0 ? -e : -EIO;
    return o->error;
}

int out_writev(struct out *o, const struct iovec *iov, int count)
{
    if (o->error)
        return o->error;
    if (o->fcgx) {
        for (int i = 0; i < count; i++) {
            if (iov[i].iov_len == 0)
                continue;
            if (FCGX_PutStr(iov[i].iov_base, (int)iov[i].iov_len, o->fcgx) != (int)iov[i].iov_len)
                return fcgx_error(o);
            o->bytes += iov[i].iov_len;
        }
        return 0;
    }
    /* CGI: write the vector ourselves, resuming after short writes. */
    struct iovec local[16];
    int n = count < 16 ? count : 16;
    for (int i = 0; i < n; i++)
        local[i] = iov[i];
    struct iovec *v = local;
    while (n > 0) {
        ssize_t w = writev(o->fd, v, n);
        if (w < 0) {
            if (errno == EINTR && !(o->stop && *o->stop))
                continue;
            o->error = errno == EINTR ? -EINTR : -errno;
            return o->error;
        }
        o->bytes += (uint64_t)w;
        while (n > 0 && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++;
            n--;
        }
        if (n > 0) {
            v->iov_base = (char *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
    return count > 16 ? out_writev(o, iov + 16, count - 16) : 0;
}

int out_write(struct out *o, const void *buf, size_t len)
{
    struct iovec v = {.iov_base = (void *)buf, .iov_len = len};
    return out_writev(o, &v, 1);
}

int out_printf(struct out *o, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    return out_write(o, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

int out_flush(struct out *o)
{
    if (o->error)
        return o->error;
    if (o->fcgx && FCGX_FFlush(o->fcgx) != 0)
        return fcgx_error(o);
    return 0;
}
