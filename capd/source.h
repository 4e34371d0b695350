/* source.h - the interface every capd frame source implements (pattern, stdin, files, V4L2). */
#ifndef CAPD_SOURCE_H
#define CAPD_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"
#include "v4l2dev.h"

/* What the command line asked for; sources read what they need. */
struct source_params {
    uint32_t width, height; /* requested frame size */
    uint32_t fps_milli;     /* requested rate x 1000 */
    int quality;            /* JPEG quality for sources that encode */
};

/* What a source reports once created, before the ring exists. */
struct source_geometry {
    uint32_t width, height;   /* nominal frame size */
    size_t min_slot_size;     /* slots must hold at least this (0: no requirement) */
    size_t default_slot_size; /* what to use when --slot-size is not given */
    uint32_t fps_milli;       /* nominal rate for the ring header; 0: the --fps asked for */
};

struct source;

struct source_ops {
    const char *kind;
    /* Publishes the frames that are ready (usually one) into the ring, and may
     * change the ring's state (sources that lose their input or stop on demand).
     * Returns 1 when it published a frame, 0 when nothing was due or ready
     * within timeout_ms, -EINTR when a signal interrupted a wait, -ENODATA at a
     * clean end of input, or another -errno on a fatal error (already logged).
     * Bad input frames are dropped, counted in the ring and logged, never fatal. */
    int (*step)(struct source *s, struct ring_writer *ring, int timeout_ms);
    /* Frees everything; accepts a half-built source. */
    void (*destroy)(struct source *s);
};

struct source {
    const struct source_ops *ops;
    struct source_geometry geometry;
    uint64_t frames;  /* published by this source */
    uint64_t dropped; /* bad or oversize input */
    /* Viewers in the presence object, stored by capd's main loop before step()
     * and refreshed at least every 100 ms. Sources that capture on demand read it;
     * the others ignore it. */
    uint32_t viewers;
};

/* Constructors: return 0 and a source in *out, or -errno after logging why.
 * The caller destroys the source with s->ops->destroy(s). */
int source_testpattern_create(const struct source_params *p, struct source **out);
int source_stdin_create(const struct source_params *p, struct source **out);
/* path: one JPEG file, or a folder whose .jpg and .jpeg files are looped in name order. */
int source_file_create(const struct source_params *p, const char *path, struct source **out);

/* A V4L2 camera (source_v4l2.c). The strings must outlive the source (argv does). */
struct source_v4l2_params {
    const char *path;            /* /dev/videoN or /dev/v4l/by-id/... */
    enum v4l2dev_format format;  /* V4L2DEV_AUTO: the preferred order (v4l2dev.h) */
    const char *const *controls; /* "name=value" strings, applied at every open */
    size_t control_count;
    uint32_t idle_stop_s; /* close the device after this long without viewers; 0: never */
    uint32_t drop_same;   /* skip up to this many identical consecutive frames */
    uint32_t encoders;    /* encode threads for raw formats; 0: automatic */
    int wait_device;      /* a device missing at start is waited for, not an error */
};
/* Opens the device at once (so that its frame size sizes the ring). Returns 0; -EINVAL when
 * the command line asks for something the device lacks (an unknown control, a bad control
 * value, a --format it does not offer), after a message naming the option (capd exits 2);
 * another -errno, after a message naming the device, when it cannot be opened (unless
 * wait_device) or used (capd exits 1). */
int source_v4l2_create(const struct source_params *p, const struct source_v4l2_params *v,
                       struct source **out);

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
