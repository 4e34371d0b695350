/* out.c - where a response goes: FastCGI STDOUT records or a CGI's standard output, via writev. */
#include "out.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define FCGI_VERSION_1 1
#define FCGI_STDOUT    6
#define RECORD_HEADER  8
/* iovecs per writev: enough for a 1080p frame's records in one call. */
#define IOV_BATCH 64

void out_init_fcgi(struct out *o, int fd, int request_id, const volatile sig_atomic_t *stop)
{
    o->fd = fd;
    o->request_id = request_id;
    o->stop = stop;
    o->error = fd < 0 ? -EBADF : 0;
    o->bytes = 0;
}

void out_init_fd(struct out *o, int fd, const volatile sig_atomic_t *stop)
{
    out_init_fcgi(o, fd, 0, stop);
}

/* Writes every byte of v[0..n), resuming after short writes. v is consumed. */
static int write_all(struct out *o, struct iovec *v, int n)
{
    while (n > 0) {
        ssize_t w = writev(o->fd, v, n);
        if (w < 0) {
            if (errno == EINTR && !(o->stop && *o->stop))
                continue;
            o->error = errno == EINTR ? -EINTR : neg_errno();
            return o->error;
        }
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
    return 0;
}

static void record_header(uint8_t h[RECORD_HEADER], int request_id, size_t len)
{
    h[0] = FCGI_VERSION_1;
    h[1] = FCGI_STDOUT;
    h[2] = (uint8_t)((unsigned)request_id >> 8);
    h[3] = (uint8_t)request_id;
    h[4] = (uint8_t)(len >> 8);
    h[5] = (uint8_t)len;
    h[6] = 0; /* no padding */
    h[7] = 0;
}

int out_writev(struct out *o, const struct iovec *iov, int count)
{
    struct iovec v[IOV_BATCH];
    uint8_t headers[IOV_BATCH][RECORD_HEADER];
    size_t total = 0, record_left = 0;
    int nv = 0, nh = 0;

    if (o->error)
        return o->error;
    for (int i = 0; i < count; i++)
        total += iov[i].iov_len;
    if (total == 0)
        return 0; /* an empty STDOUT record would end the response */
    o->bytes += total;

    for (int i = 0; i < count; i++) {
        const char *base = iov[i].iov_base;
        size_t left = iov[i].iov_len;

        while (left > 0) {
            size_t take = left;
            /* Room for a record header and a piece in this batch. */
            if (nv + 2 > IOV_BATCH) {
                if (write_all(o, v, nv) < 0)
                    return o->error;
                nv = nh = 0;
            }
            if (o->request_id) {
                if (record_left == 0) {
                    record_left = total < OUT_RECORD_MAX ? total : OUT_RECORD_MAX;
                    record_header(headers[nh], o->request_id, record_left);
                    v[nv++] = (struct iovec){headers[nh++], RECORD_HEADER};
                }
                if (take > record_left)
                    take = record_left;
                record_left -= take;
                total -= take;
            }
            v[nv++] = (struct iovec){(void *)base, take};
            base += take;
            left -= take;
        }
    }
    return write_all(o, v, nv);
}

void out_plan_size(size_t total, int count, int *iovecs, int *headers)
{
    size_t records = (total + OUT_RECORD_MAX - 1) / OUT_RECORD_MAX;
    /* Each record boundary can split one piece in two. */
    *headers = (int)records;
    *iovecs = (int)(2 * records) + count;
}

int out_plan_records(int request_id, const struct iovec *src, int count, struct iovec *dst,
                     int dst_cap, uint8_t (*hdrs)[8], int hdr_cap)
{
    size_t total = 0, record_left = 0;
    int nv = 0, nh = 0;

    for (int i = 0; i < count; i++)
        total += src[i].iov_len;
    for (int i = 0; i < count; i++) {
        const char *base = src[i].iov_base;
        size_t left = src[i].iov_len;
        while (left > 0) {
            size_t take = left;
            if (record_left == 0) {
                if (nh >= hdr_cap || nv >= dst_cap)
                    return -ENOSPC;
                record_left = total < OUT_RECORD_MAX ? total : OUT_RECORD_MAX;
                record_header(hdrs[nh], request_id, record_left);
                dst[nv++] = (struct iovec){hdrs[nh++], RECORD_HEADER};
            }
            if (take > record_left)
                take = record_left;
            if (nv >= dst_cap)
                return -ENOSPC;
            dst[nv++] = (struct iovec){(void *)base, take};
            record_left -= take;
            total -= take;
            base += take;
            left -= take;
        }
    }
    return nv;
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
