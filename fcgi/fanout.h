/* fanout.h - one thread per camera writes each new frame to every FastCGI viewer of the process. */
#ifndef CAPD_FANOUT_H
#define CAPD_FANOUT_H

/*
 * Why: with a thread per viewer, every frame costs every viewer a futex
 * wake-up, a context switch and a copy of the frame out of the ring. Here a
 * camera's frames are copied out of the ring once, by one waiter thread, and
 * one I/O thread writes them to all its viewers' connections with non-blocking
 * writev, skipping a viewer whose connection is still busy to the newest frame
 * once it drains (nothing queues). The thread that accepted the request only
 * sleeps until its stream ends, then finishes the request with libfcgi.
 *
 * Thread safety: fanout_run() may be called from any number of threads.
 * Viewers of the same camera share a channel (two threads), created on first
 * use and kept for the life of the process.
 */

#include <stdint.h>

#include "serve.h"

struct fanout_stream {
    int fd;                   /* the request's FastCGI connection (blocking) */
    int request_id;           /* FastCGI request id */
    int early;                /* early part layout (see serve.c) */
    int timing;               /* headers=1: timing headers on each part */
    int dual_final;           /* dual_final=1: the last frame of a burst twice */
    uint64_t min_interval_ns; /* per-viewer fps cap; 0 = none */
    uint64_t frames;          /* end after this many parts; 0 = no limit */
    uint64_t deadline_ns;     /* CLOCK_MONOTONIC end; 0 = none */
};

/* Streams camera `cam` to one viewer and returns when the stream ended. The
 * response headers and the first boundary (plus, in the early layout, the
 * first part's headers) must already be written. The connection is made
 * non-blocking while streaming and blocking again on return. Returns 0 when a
 * frame or time limit ended the stream, the -errno of the failed write when the
 * viewer left, or -EINTR when the process is stopping (cfg->stop). */
int fanout_run(const struct serve_config *cfg, const char *cam, const struct fanout_stream *s);

#endif
