/* source.h - the interface every capd frame source implements (test pattern, stdin, files). */
#ifndef CAPD_SOURCE_H
#define CAPD_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"

/* What the command line asked for; sources read what they need. */
struct source_params {
    uint32_t width, height; /* requested frame size */
    uint32_t fps_milli;     /* requested rate x 1000 */
    int quality;            /* JPEG quality for sources that encode */
};

/* What a source reports once created, before the ring exists. */
struct source_geometry {
    uint32_t width, height;  /* nominal frame size */
    size_t min_slot_size;    /* slots must hold at least this (0: no requirement) */
    size_t default_slot_size; /* what to use when --slot-size is not given */
};

struct source;

struct source_ops {
    const char *kind;
    /* Publishes at most one frame into the ring. Returns 1 when it published a
     * frame, 0 when nothing was due or ready within timeout_ms, -EINTR when a
     * signal interrupted a wait, -ENODATA at a clean end of input, or another
     * -errno on a fatal error (already logged). Bad input frames are dropped,
     * counted in the ring and logged, never fatal. */
    int (*step)(struct source *s, struct ring_writer *ring, int timeout_ms);
    /* Frees everything; accepts a half-built source. */
    void (*destroy)(struct source *s);
};

struct source {
    const struct source_ops *ops;
    struct source_geometry geometry;
    uint64_t frames;  /* published by this source */
    uint64_t dropped; /* bad or oversize input */
};

/* Constructors: return 0 and a source in *out, or -errno after logging why.
 * The caller destroys the source with s->ops->destroy(s). */
int source_testpattern_create(const struct source_params *p, struct source **out);
int source_stdin_create(const struct source_params *p, struct source **out);
/* path: one JPEG file, or a folder whose .jpg and .jpeg files are looped in name order. */
int source_file_create(const struct source_params *p, const char *path, struct source **out);

/* Shared pacing helper for sources that run on their own clock: sleeps until
 * the next frame is due or timeout_ms passes. Returns 1 when a frame is due
 * (and schedules the one after), 0 on timeout, -EINTR on a signal. A source
 * that falls behind skips ahead instead of bursting. */
struct source_pacer {
    uint64_t period_ns;
    uint64_t next_ns;
};
void source_pacer_init(struct source_pacer *pacer, uint32_t fps_milli);
int source_pacer_wait(struct source_pacer *pacer, int timeout_ms);

#endif
