/* source_v4l2.c - the V4L2 camera source: MJPEG passthrough, encoding, unplug, on-demand capture.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "encoder.h"
#include "jpeg_dht.h"
#include "pattern.h"
#include "source.h"
#include "util.h"
#include "v4l2dev.h"
#include "yuv.h"

/*
 * States (the ring's state in brackets):
 *   LIVE   the device is open and streaming [RUNNING once a frame is published]
 *   LOST   the device failed, vanished or never appeared: a "NO SIGNAL" card about once a
 *          second, a reopen attempt every second [NO_SIGNAL]
 *   IDLE   closed on purpose, nobody watched for --idle-stop seconds [IDLE]; reopened as soon
 *          as capd's main loop reports a viewer
 *
 * Threads: everything here runs on capd's main thread (the ring writer is single-threaded by
 * contract, and every ioctl goes through one thread), except the encode workers of the pool.
 *
 * Encode pool (--encoders N > 1, raw formats only): N jobs, one per worker. The main thread
 * dequeues a V4L2 buffer and hands it to a free job; when every job is busy the frame is
 * dropped at once (requeued), never queued, so latency stays one encode. A worker converts
 * and encodes the buffer into the job's private output and marks it done; the main thread,
 * woken through an eventfd it polls together with the device, publishes done jobs strictly in
 * dispatch order (a copy into the ring slot) and requeues their buffers. Job states change
 * only under the pool mutex; a DONE job is touched by the main thread alone, a BUSY one by its
 * worker alone. With one encoder (or MJPEG) there are no threads: frames go straight into the
 * ring slot.
 */

#define SECOND_NS         1000000000ull
#define RETRY_INTERVAL_NS SECOND_NS
#define CARD_INTERVAL_NS  SECOND_NS
/* A device that delivers nothing for max(this, STALL_PERIODS frame periods) is unplugged. */
#define STALL_MIN_NS  (2 * SECOND_NS)
#define STALL_PERIODS 5u
/* While idle, how often to look at the viewer count the main loop stores. */
#define IDLE_POLL_MS    50
#define BUFFERS_DEFAULT 4u
#define MAX_ENCODERS    16u
/* Automatic pool: only when one core would be busy (pixels per second above this). */
#define POOL_PIXEL_RATE   20000000ull
#define AUTO_MAX_ENCODERS 4u
#define WARN_INTERVAL_NS  (10 * SECOND_NS)
/* A device counts as recovered (a new failure is logged again) after this long live. */
#define STABLE_NS (10 * SECOND_NS)

enum capture_state { STATE_LIVE, STATE_LOST, STATE_IDLE };

enum job_state { JOB_FREE, JOB_QUEUED, JOB_BUSY, JOB_DONE };

struct encode_job {
    enum job_state state;
    uint64_t order;
    struct v4l2dev_frame frame;
    uint8_t *out;
    size_t out_size;
    int rc;
};

struct encode_pool;

struct encode_worker {
    struct encode_pool *pool;
    pthread_t thread;
    struct encoder *encoder;
};

struct encode_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;
    int wake_fd; /* eventfd: a job is done */
    int stopping;
    struct v4l2dev_mode mode;
    size_t out_capacity;
    struct encode_job *jobs;
    struct encode_worker *workers;
    unsigned count;   /* jobs == workers */
    unsigned started; /* worker threads running */
    uint64_t next_order;
    uint64_t next_publish;
};

struct v4l2source {
    struct source base; /* first: the source pointer is the v4l2source pointer */
    struct source_v4l2_params params;
    struct v4l2dev_request request;
    int quality;
    struct v4l2dev *dev;
    enum capture_state state;
    int ring_state; /* the state last set on the ring; -1 before the first */

    struct encoder *encoder;   /* main thread: inline encodes and cards */
    struct encode_pool *pool;  /* NULL: inline */

    struct pattern *cards; /* "NO SIGNAL" at the ring's nominal size */

    uint64_t last_frame_ns, stall_ns;
    uint64_t last_viewer_ns;
    uint64_t next_retry_ns, next_card_ns;
    char detail[96];        /* on the card */
    char logged[640];       /* the last failure logged, so that retries stay quiet */
    char mode_logged[320];  /* the last "capture:" line, so that a reopen stays quiet */
    int resumed_pending;    /* a loss was logged: say so when frames flow again */
    uint64_t live_since_ns; /* first frame since the last (re)open */

    uint64_t last_hash;
    int have_hash;
    uint32_t same_run;

    uint64_t skipped_busy, skipped_same, skipped_busy_warned;
    uint64_t last_warn_ns, last_bad_log_ns;
};

/* ---- helpers ------------------------------------------------------------------------------ */

static int is_raw(enum v4l2dev_format f)
{
    return f != V4L2DEV_MJPEG && f != V4L2DEV_AUTO;
}

static int is_rgb(enum v4l2dev_format f)
{
    return f == V4L2DEV_RGB24 || f == V4L2DEV_BGR24;
}

/* The largest JPEG a frame of mode m can become. */
static size_t frame_max_jpeg(const struct v4l2dev_mode *m)
{
    if (m->format == V4L2DEV_MJPEG) {
        size_t raw = m->sizeimage ? m->sizeimage : (size_t)m->width * m->height * 2u;
        return raw + jpeg_dht_extra_bytes();
    }
    if (is_rgb(m->format))
        return encoder_max_size_rgb(m->width, m->height);
    return encoder_max_size_planar(m->width, m->height, yuv_v4l2_subsamp(m->fourcc));
}

/* The bytes a raw frame must have (bytesused), 0 for MJPEG: a shorter buffer is truncated. */
static size_t frame_min_bytes(const struct v4l2dev_mode *m)
{
    if (m->format == V4L2DEV_MJPEG)
        return 0;
    if (is_rgb(m->format))
        return (size_t)m->bytesperline * (m->height - 1) + (size_t)m->width * 3u;
    return yuv_v4l2_frame_bytes(m->fourcc, m->width, m->height, m->bytesperline);
}

/* A fast 64-bit hash for --drop-same: four independent multiply-rotate lanes over 8-byte
 * words, so it runs at memory speed. Not cryptographic; a collision costs one dropped frame. */
static uint64_t frame_hash(const uint8_t *p, size_t n)
{
    const uint64_t k = 0x9e3779b97f4a7c15ull;
    uint64_t h[4] = {k, k ^ 0x1234567ull, k ^ 0x89abcdefull, k ^ (uint64_t)n};
    size_t i = 0;

    for (; i + 32 <= n; i += 32) {
        for (int lane = 0; lane < 4; lane++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * (size_t)lane, 8);
            h[lane] = (h[lane] ^ w) * k;
            h[lane] = (h[lane] << 31) | (h[lane] >> 33);
        }
    }
    for (; i < n; i++)
        h[0] = (h[0] ^ p[i]) * k;
    for (int lane = 1; lane < 4; lane++)
        h[0] = ((h[0] ^ h[lane]) * k) ^ (h[0] >> 29);
    return h[0] ^ (h[0] >> 32);
}

/* Converts (when needed: YU12 and GREY are usually encoded straight from the driver's buffer)
 * and encodes one raw frame of len bytes into dst. Same returns as the encoder, and -EBADMSG
 * for a truncated frame. */
static int encode_frame(const struct v4l2dev_mode *m, struct encoder *enc, const uint8_t *src,
                        size_t len, uint8_t *dst, size_t capacity, size_t *size)
{
    if (is_rgb(m->format))
        return encoder_encode_rgb(enc, src, m->width, m->height, m->bytesperline,
                                  m->format == V4L2DEV_BGR24, dst, capacity, size);
    /* YUV formats: converted in cache-sized stripes straight into libjpeg, no
     * whole-frame planes (bench/README-encode.md: 2x the RGB route at 1080p). */
    return encoder_encode_v4l2(enc, m->fourcc, src, len, m->bytesperline, m->width, m->height,
                               dst, capacity, size);
}

/* ---- encode pool ---------------------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    struct encode_worker *w = arg;
    struct encode_pool *pool = w->pool;
    const uint64_t one = 1;

    pthread_mutex_lock(&pool->lock);
    while (!pool->stopping) {
        struct encode_job *job = NULL;
        for (unsigned i = 0; i < pool->count; i++) {
            struct encode_job *j = &pool->jobs[i];
            if (j->state == JOB_QUEUED && (!job || j->order < job->order))
                job = j;
        }
        if (!job) {
            pthread_cond_wait(&pool->work, &pool->lock);
            continue;
        }
        job->state = JOB_BUSY;
        pthread_mutex_unlock(&pool->lock);

        job->rc = encode_frame(&pool->mode, w->encoder, job->frame.data,
                               job->frame.bytes, job->out, pool->out_capacity, &job->out_size);

        pthread_mutex_lock(&pool->lock);
        job->state = JOB_DONE;
        pthread_mutex_unlock(&pool->lock);
        /* An eventfd write cannot fail short of a full counter (2^64 - 1 wakes). */
        if (write(pool->wake_fd, &one, sizeof(one)) < 0)
            log_debug("v4l2: encode wake-up failed: %s", strerror(errno));
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* Stops the workers (each finishes its current job) and frees the pool. Jobs not published
 * yet are dropped; their buffers go back to the driver when the device closes. Accepts NULL
 * and half-built pools. */
static void pool_destroy(struct encode_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < pool->started; i++)
        pthread_join(pool->workers[i].thread, NULL);
    for (unsigned i = 0; i < pool->count; i++) {
        encoder_destroy(pool->workers[i].encoder);
        free(pool->jobs[i].out);
    }
    free(pool->workers);
    free(pool->jobs);
    if (pool->wake_fd >= 0)
        close(pool->wake_fd);
    pthread_cond_destroy(&pool->work);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

/* Starts count workers for frames of mode m. Returns 0 or -errno (logged). */
static int pool_create(const struct v4l2dev_mode *m, unsigned count, int quality,
                       struct encode_pool **out)
{
    struct encode_pool *pool = xcalloc(1, sizeof(*pool));
    int rc;

    *out = NULL;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work, NULL);
    pool->mode = *m;
    pool->count = count;
    pool->out_capacity = frame_max_jpeg(m);
    pool->jobs = xcalloc(count, sizeof(*pool->jobs));
    pool->workers = xcalloc(count, sizeof(*pool->workers));
    pool->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (pool->wake_fd < 0) {
        rc = neg_errno();
        log_error("v4l2: eventfd: %s", strerror(-rc));
        goto fail;
    }
    for (unsigned i = 0; i < count; i++) {
        struct encode_worker *w = &pool->workers[i];
        pool->jobs[i].out = xmalloc(pool->out_capacity);
        w->pool = pool;
        rc = encoder_create(quality, &w->encoder);
        if (rc < 0) {
            log_error("v4l2: cannot create a JPEG encoder: %s", strerror(-rc));
            goto fail;
        }
    }
    for (unsigned i = 0; i < count; i++) {
        rc = -pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]);
        if (rc < 0) {
            log_error("v4l2: cannot start an encode thread: %s", strerror(-rc));
            goto fail;
        }
        pool->started++;
    }
    *out = pool;
    return 0;
fail:
    pool_destroy(pool);
    return rc;
}

/* Hands a dequeued frame to a free job. Returns 0, or -EBUSY when every worker is busy (the
 * caller drops the frame). */
static int pool_dispatch(struct encode_pool *pool, const struct v4l2dev_frame *f)
{
    int rc = -EBUSY;
    pthread_mutex_lock(&pool->lock);
    for (unsigned i = 0; i < pool->count; i++) {
        struct encode_job *job = &pool->jobs[i];
        if (job->state != JOB_FREE)
            continue;
        job->frame = *f;
        job->order = pool->next_order++;
        job->state = JOB_QUEUED;
        pthread_cond_signal(&pool->work);
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

/* The job that is next in publishing order if it is done, else NULL. */
static struct encode_job *pool_next_done(struct encode_pool *pool)
{
    struct encode_job *found = NULL;
    pthread_mutex_lock(&pool->lock);
    for (unsigned i = 0; i < pool->count; i++) {
        struct encode_job *job = &pool->jobs[i];
        if (job->state != JOB_FREE && job->order == pool->next_publish) {
            if (job->state == JOB_DONE)
                found = job;
            break;
        }
    }
    pthread_mutex_unlock(&pool->lock);
    return found;
}

static void pool_release(struct encode_pool *pool, struct encode_job *job)
{
    pthread_mutex_lock(&pool->lock);
    job->state = JOB_FREE;
    pool->next_publish++;
    pthread_mutex_unlock(&pool->lock);
}

/* ---- states --------------------------------------------------------------------------------- */

static void set_ring_state(struct v4l2source *s, struct ring_writer *ring, enum ring_state st)
{
    if (s->ring_state == (int)st)
        return;
    ring_writer_set_state(ring, st);
    s->ring_state = (int)st;
}

/* The first live frame since a (re)open. */
static void went_live(struct v4l2source *s, struct ring_writer *ring)
{
    set_ring_state(s, ring, RING_STATE_RUNNING);
    if (s->resumed_pending)
        log_info("%s: capturing again from %s", s->params.path, v4l2dev_node(s->dev));
    s->resumed_pending = 0;
    s->live_since_ns = time_mono_ns();
}

static void close_device(struct v4l2source *s)
{
    pool_destroy(s->pool); /* first: workers may still read the mapped buffers */
    s->pool = NULL;
    v4l2dev_close(s->dev);
    s->dev = NULL;
}

/* Remembers the failure last logged. Returns 1 when it differs from the one before. */
static int remember_failure(struct v4l2source *s, const char *what)
{
    size_t len = strnlen(what, sizeof(s->logged) - 1);
    if (strncmp(s->logged, what, len) == 0 && s->logged[len] == '\0')
        return 0;
    memcpy(s->logged, what, len);
    s->logged[len] = '\0';
    return 1;
}

/* Logs a failure once; the same one again (a retry every second) stays quiet. */
static void log_once(struct v4l2source *s, const char *what)
{
    if (remember_failure(s, what)) {
        log_warn("%s", what);
        s->resumed_pending = 1;
    }
}

static void go_lost(struct v4l2source *s, struct ring_writer *ring, const char *detail,
                    const char *reason)
{
    uint64_t now = time_mono_ns();
    char line[320];

    close_device(s);
    s->state = STATE_LOST;
    snprintf(s->detail, sizeof(s->detail), "%s", detail);
    snprintf(line, sizeof(line), "%s; showing NO SIGNAL, retrying every second", reason);
    log_once(s, line);
    set_ring_state(s, ring, RING_STATE_NO_SIGNAL);
    s->next_card_ns = now;
    s->next_retry_ns = now + RETRY_INTERVAL_NS;
}

static unsigned encoders_for(const struct v4l2source *s, const struct v4l2dev_mode *m)
{
    long cpus;
    uint64_t rate;
    unsigned n;

    if (!is_raw(m->format))
        return 1;
    /* Each worker holds a buffer while it encodes; the driver needs two to keep filling. */
    if (m->buffers < 4)
        return 1;
    if (s->params.encoders)
        return s->params.encoders < m->buffers - 2 ? s->params.encoders : m->buffers - 2;
    cpus = sysconf(_SC_NPROCESSORS_ONLN);
    rate = (uint64_t)m->width * m->height * (m->fps_milli ? m->fps_milli : 30000u) / 1000u;
    if (cpus < 2 || rate < POOL_PIXEL_RATE)
        return 1;
    n = (unsigned)cpus < AUTO_MAX_ENCODERS ? (unsigned)cpus : AUTO_MAX_ENCODERS;
    return n < m->buffers - 2 ? n : m->buffers - 2;
}

/* Applies the --ctrl list. strict: the first failure ends it (-EINVAL, why filled, for a
 * control or value the device rejects); otherwise failures are logged and skipped. */
static int apply_controls(struct v4l2source *s, int strict, char *why, size_t why_len)
{
    for (size_t i = 0; i < s->params.control_count; i++) {
        const char *spec = s->params.controls[i];
        const char *eq = strchr(spec, '=');
        char name[64], reason[512];
        size_t len = eq ? (size_t)(eq - spec) : 0;
        int rc;

        if (!eq || len == 0 || len >= sizeof(name)) {
            snprintf(why, why_len, "--ctrl '%s': expected NAME=VALUE", spec);
            return -EINVAL;
        }
        memcpy(name, spec, len);
        name[len] = '\0';
        rc = v4l2dev_set_control(s->dev, name, eq + 1, reason, sizeof(reason));
        if (rc == 0) {
            if (strict)
                log_info("control %s = %s", name, eq + 1);
            else
                log_debug("control %s = %s", name, eq + 1);
            continue;
        }
        if (strict) {
            snprintf(why, why_len, "--ctrl '%s': %s", spec, reason);
            return rc == -ENOENT || rc == -EINVAL || rc == -EACCES ? -EINVAL : rc;
        }
        log_warn("--ctrl '%s': %s", spec, reason);
    }
    return 0;
}

/* Opens and starts the device. strict (the first open): a control or format the device
 * rejects is -EINVAL. Returns 0 (state LIVE) or -errno with why filled. */
static int open_device(struct v4l2source *s, int strict, char *why, size_t why_len)
{
    const struct v4l2dev_mode *m;
    unsigned encoders;
    uint64_t period_ns;
    int new_mode, rc;

    close_device(s);
    rc = v4l2dev_open(&s->request, &s->dev, why, why_len);
    if (rc < 0) {
        if (rc == -ENOTSUP && strict && s->params.format != V4L2DEV_AUTO) {
            char msg[512];
            snprintf(msg, sizeof(msg), "--format %s: %s", v4l2dev_format_option(s->params.format),
                     why);
            snprintf(why, why_len, "%s", msg);
            rc = -EINVAL;
        }
        return rc;
    }
    m = v4l2dev_mode(s->dev);
    {
        char line[sizeof(s->mode_logged)];
        v4l2dev_describe(s->dev, line, sizeof(line));
        new_mode = strcmp(line, s->mode_logged) != 0;
        if (new_mode) {
            log_info("capture: %s", line);
            memcpy(s->mode_logged, line, sizeof(line));
            if (m->buffers < V4L2DEV_MIN_BUFFERS)
                log_warn("%s: the driver granted only %u buffers; frames may be dropped while "
                         "capd holds one",
                         s->params.path, m->buffers);
        } else {
            log_debug("capture: %s", line);
        }
    }
    rc = apply_controls(s, strict, why, why_len);
    if (rc < 0)
        goto fail;
    encoders = encoders_for(s, m);
    if (encoders > 1) {
        rc = pool_create(m, encoders, s->quality, &s->pool);
        if (rc < 0) {
            snprintf(why, why_len, "cannot start %u encode threads", encoders);
            goto fail;
        }
        if (new_mode)
            log_info("encoding with %u threads", encoders);
    }
    rc = v4l2dev_start(s->dev, why, why_len);
    if (rc < 0)
        goto fail;
    period_ns = m->fps_milli ? 1000000000000ull / m->fps_milli : SECOND_NS / 30;
    s->stall_ns =
        STALL_PERIODS * period_ns > STALL_MIN_NS ? STALL_PERIODS * period_ns : STALL_MIN_NS;
    s->last_frame_ns = time_mono_ns();
    s->have_hash = 0;
    s->same_run = 0;
    s->state = STATE_LIVE;
    /* s->logged stays until frames flowed for STABLE_NS: a device that opens but fails again
     * at once (every few seconds) does not fill the log. */
    return 0;
fail:
    close_device(s);
    return rc;
}

/* ---- publishing ------------------------------------------------------------------------------ */

static void publish_card(struct v4l2source *s, struct ring_writer *ring)
{
    uint64_t now_us = time_real_us();
    const struct draw_image *img = pattern_card(s->cards, "NO SIGNAL", s->detail, now_us);
    size_t capacity, size;
    uint8_t *slot = ring_writer_begin(ring, &capacity);

    if (encoder_encode_i420(s->encoder, img, slot, capacity, &size) < 0) {
        ring_writer_abort(ring);
        return;
    }
    struct ring_frame_meta meta = {img->width, img->height, now_us, RING_FRAME_CARD};
    ring_writer_commit(ring, size, &meta);
}

static void count_drop(struct v4l2source *s, struct ring_writer *ring, const char *why)
{
    uint64_t now = time_mono_ns();
    ring_writer_count_drop(ring);
    s->base.dropped++;
    if (now - s->last_bad_log_ns >= WARN_INTERVAL_NS) {
        s->last_bad_log_ns = now;
        log_warn("%s: frame dropped: %s (%llu dropped so far)", s->params.path, why,
                 (unsigned long long)s->base.dropped);
    }
}

static void commit_live(struct v4l2source *s, struct ring_writer *ring, size_t size,
                        uint64_t capture_us)
{
    const struct v4l2dev_mode *m = v4l2dev_mode(s->dev);
    struct ring_frame_meta meta = {m->width, m->height, capture_us, 0};
    ring_writer_commit(ring, size, &meta);
    if (s->ring_state != RING_STATE_RUNNING)
        went_live(s, ring);
    s->base.frames++;
}

/* 1 when this frame repeats the previous one and may be skipped (--drop-same). */
static int skip_same(struct v4l2source *s, const struct v4l2dev_frame *f, size_t bytes)
{
    uint64_t h;
    if (!s->params.drop_same)
        return 0;
    h = frame_hash(f->data, bytes);
    if (s->have_hash && h == s->last_hash && s->same_run < s->params.drop_same) {
        s->same_run++;
        s->skipped_same++;
        return 1;
    }
    s->last_hash = h;
    s->have_hash = 1;
    s->same_run = 0;
    return 0;
}

/* Publishes the pool's finished frames in order. Returns how many, or -errno when requeueing
 * failed (the device is gone). */
static int publish_done_jobs(struct v4l2source *s, struct ring_writer *ring)
{
    struct encode_job *job;
    int published = 0;

    while ((job = pool_next_done(s->pool)) != NULL) {
        uint32_t index = job->frame.index;
        int rc;
        if (job->rc < 0) {
            count_drop(s, ring,
                       job->rc == -ENOSPC ? "too big for the encoder's buffer"
                                          : "the JPEG encoder failed");
        } else {
            const struct v4l2dev_mode *m = v4l2dev_mode(s->dev);
            struct ring_frame_meta meta = {m->width, m->height, job->frame.capture_us, 0};
            if (ring_writer_publish(ring, job->out, job->out_size, &meta) < 0) {
                s->base.dropped++; /* the ring counted it */
            } else {
                if (s->ring_state != RING_STATE_RUNNING)
                    went_live(s, ring);
                s->base.frames++;
                published++;
            }
        }
        pool_release(s->pool, job);
        rc = v4l2dev_requeue(s->dev, index);
        if (rc < 0)
            return rc;
    }
    return published;
}

/* Handles one dequeued frame. Returns 1 when published, 0 when not (dropped, skipped or
 * handed to the pool), -errno when the device failed. */
static int handle_frame(struct v4l2source *s, struct ring_writer *ring,
                        const struct v4l2dev_frame *f)
{
    const struct v4l2dev_mode *m = v4l2dev_mode(s->dev);
    size_t need = frame_min_bytes(m), bytes = m->format == V4L2DEV_MJPEG ? f->bytes : need;
    size_t capacity, size;
    uint8_t *slot;
    int published = 0, rc;

    if (f->corrupt || f->bytes == 0 || f->bytes < need) {
        count_drop(s, ring, f->corrupt ? "the driver flagged it damaged" : "incomplete");
        goto requeue;
    }
    if (skip_same(s, f, bytes))
        goto requeue;
    if (m->format == V4L2DEV_MJPEG) {
        int inserted;
        slot = ring_writer_begin(ring, &capacity);
        rc = jpeg_dht_copy(f->data, f->bytes, slot, capacity, &size, &inserted);
        if (rc < 0) {
            ring_writer_abort(ring);
            count_drop(s, ring,
                       rc == -ENOSPC ? "larger than a ring slot (raise --slot-size)"
                                     : "not a valid JPEG");
            goto requeue;
        }
        commit_live(s, ring, size, f->capture_us);
        published = 1;
        goto requeue;
    }
    if (s->pool) {
        if (pool_dispatch(s->pool, f) == 0)
            return 0; /* requeued when published */
        s->skipped_busy++;
        goto requeue;
    }
    slot = ring_writer_begin(ring, &capacity);
    rc = encode_frame(m, s->encoder, f->data, f->bytes, slot, capacity, &size);
    if (rc < 0) {
        ring_writer_abort(ring);
        count_drop(s, ring,
                   rc == -ENOSPC ? "ring slots too small for this frame size (raise --slot-size)"
                                 : "the JPEG encoder failed");
        goto requeue;
    }
    commit_live(s, ring, size, f->capture_us);
    published = 1;
requeue:
    rc = v4l2dev_requeue(s->dev, f->index);
    return rc < 0 ? rc : published;
}

/* Every WARN_INTERVAL_NS: a warning when the pool dropped frames, and (with -v) how many
 * duplicates --drop-same skipped. */
static void report_skips(struct v4l2source *s, uint64_t now)
{
    if (now - s->last_warn_ns < WARN_INTERVAL_NS)
        return;
    s->last_warn_ns = now;
    if (s->params.drop_same)
        log_debug("%s: %llu identical frames skipped so far (--drop-same)", s->params.path,
                  (unsigned long long)s->skipped_same);
    if (s->skipped_busy > s->skipped_busy_warned) {
        log_warn("%s: the encoders could not keep up: %llu frames skipped in the last %llu s "
                 "(see --encoders)",
                 s->params.path, (unsigned long long)(s->skipped_busy - s->skipped_busy_warned),
                 WARN_INTERVAL_NS / SECOND_NS);
        s->skipped_busy_warned = s->skipped_busy;
    }
}

/* ---- step ----------------------------------------------------------------------------------- */

static int live_step(struct v4l2source *s, struct ring_writer *ring, int timeout_ms)
{
    uint64_t now = time_mono_ns(), stall_at = s->last_frame_ns + s->stall_ns;
    struct v4l2dev_frame f;
    char reason[320];
    int wait_ms, mask, rc, published = 0;

    if (now >= stall_at) {
        snprintf(reason, sizeof(reason), "%s: no frame for %.1f s, treating it as unplugged",
                 s->params.path, (double)s->stall_ns / 1e9);
        go_lost(s, ring, "no frames from the camera", reason);
        return 0;
    }
    wait_ms = (int)((stall_at - now) / 1000000u) + 1;
    if (wait_ms > timeout_ms)
        wait_ms = timeout_ms;
    mask = v4l2dev_wait(s->dev, s->pool ? s->pool->wake_fd : -1, wait_ms);
    if (mask == -EINTR)
        return -EINTR;
    if (mask < 0) {
        snprintf(reason, sizeof(reason), "%s: poll failed: %s", s->params.path, strerror(-mask));
        go_lost(s, ring, strerror(-mask), reason);
        return 0;
    }
    if ((mask & V4L2DEV_WAIT_OTHER) && s->pool) {
        uint64_t count;
        if (read(s->pool->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
            log_debug("v4l2: eventfd read: %s", strerror(errno));
    }
    if (mask & V4L2DEV_WAIT_DEVICE) {
        rc = v4l2dev_dequeue(s->dev, &f);
        if (rc == -EINTR)
            return -EINTR;
        if (rc == 0) {
            s->last_frame_ns = time_mono_ns();
            /* Live for a while: the next failure is news again. A device that keeps failing
             * right after each reopen logs its failure once. */
            if (s->logged[0] && s->last_frame_ns - s->live_since_ns >= STABLE_NS)
                s->logged[0] = '\0';
            rc = handle_frame(s, ring, &f);
            if (rc > 0)
                published += rc;
        }
        if (rc < 0 && rc != -EAGAIN) {
            snprintf(reason, sizeof(reason), "%s: capture failed: %s (unplugged?)", s->params.path,
                     strerror(-rc));
            go_lost(s, ring, rc == -ENODEV ? "camera unplugged" : strerror(-rc), reason);
            return 0;
        }
    }
    if (s->pool) {
        rc = publish_done_jobs(s, ring);
        if (rc < 0) {
            snprintf(reason, sizeof(reason), "%s: capture failed: %s (unplugged?)", s->params.path,
                     strerror(-rc));
            go_lost(s, ring, rc == -ENODEV ? "camera unplugged" : strerror(-rc), reason);
            return published > 0;
        }
        published += rc;
    }
    report_skips(s, time_mono_ns());
    return published > 0;
}

/* Sleeps until until_ns or for timeout_ms, whichever comes first. 0 or -EINTR. */
static int sleep_until(uint64_t until_ns, int timeout_ms)
{
    uint64_t limit = time_mono_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
    return time_sleep_until_ns(until_ns < limit ? until_ns : limit);
}

static int lost_step(struct v4l2source *s, struct ring_writer *ring, int timeout_ms)
{
    uint64_t now = time_mono_ns();
    char why[512];

    if (now >= s->next_retry_ns) {
        int rc = open_device(s, 0, why, sizeof(why));
        if (rc == 0)
            return 0; /* RUNNING, and "capturing again" in the log, with the first frame */
        log_once(s, why);
        snprintf(s->detail, sizeof(s->detail), "%s: %s", s->params.path,
                 rc == -ENOENT ? "unplugged" : strerror(-rc));
        now = time_mono_ns();
        s->next_retry_ns = now + RETRY_INTERVAL_NS;
    }
    if (now >= s->next_card_ns) {
        /* Also the first state a --wait-device start shows. */
        set_ring_state(s, ring, RING_STATE_NO_SIGNAL);
        publish_card(s, ring);
        s->next_card_ns += CARD_INTERVAL_NS;
        if (s->next_card_ns <= now)
            s->next_card_ns = now + CARD_INTERVAL_NS;
    }
    return sleep_until(s->next_retry_ns < s->next_card_ns ? s->next_retry_ns : s->next_card_ns,
                       timeout_ms);
}

static int idle_step(struct v4l2source *s, struct ring_writer *ring, int timeout_ms)
{
    char why[512];
    int rc;

    if (s->base.viewers == 0)
        return sleep_until(time_mono_ns() + (uint64_t)IDLE_POLL_MS * 1000000u, timeout_ms);
    log_info("%s: a viewer arrived, opening the camera", s->params.path);
    rc = open_device(s, 0, why, sizeof(why));
    if (rc < 0)
        go_lost(s, ring, rc == -ENOENT ? "unplugged" : strerror(-rc), why);
    return 0;
}

static int v4l2_step(struct source *src, struct ring_writer *ring, int timeout_ms)
{
    struct v4l2source *s = (struct v4l2source *)src;
    uint64_t now = time_mono_ns();
    int idle_due;

    if (s->base.viewers > 0)
        s->last_viewer_ns = now;
    idle_due = s->params.idle_stop_s &&
               now - s->last_viewer_ns >= (uint64_t)s->params.idle_stop_s * SECOND_NS;
    if (idle_due && s->state != STATE_IDLE) {
        if (s->state == STATE_LIVE)
            log_info("%s: no viewer for %u s, closing the camera (--idle-stop)", s->params.path,
                     s->params.idle_stop_s);
        close_device(s);
        s->state = STATE_IDLE;
        s->logged[0] = '\0';
        set_ring_state(s, ring, RING_STATE_IDLE);
        return 0;
    }
    switch (s->state) {
    case STATE_LIVE:
        return live_step(s, ring, timeout_ms);
    case STATE_LOST:
        return lost_step(s, ring, timeout_ms);
    case STATE_IDLE:
        return idle_step(s, ring, timeout_ms);
    }
    return 0;
}

static void v4l2_destroy(struct source *src)
{
    struct v4l2source *s = (struct v4l2source *)src;
    if (!s)
        return;
    close_device(s);
    encoder_destroy(s->encoder);
    pattern_destroy(s->cards);
    free(s);
}

static const struct source_ops v4l2_ops = {
    .kind = "v4l2",
    .step = v4l2_step,
    .destroy = v4l2_destroy,
};

int source_v4l2_create(const struct source_params *p, const struct source_v4l2_params *v,
                       struct source **out)
{
    struct v4l2source *s = xcalloc(1, sizeof(*s));
    struct source_geometry *g = &s->base.geometry;
    char why[640];
    size_t card_size, frame_size;
    int rc;

    *out = NULL;
    s->base.ops = &v4l2_ops;
    s->params = *v;
    s->ring_state = -1;
    s->quality = p->quality;
    s->request = (struct v4l2dev_request){
        .path = v->path,
        .format = v->format,
        .width = p->width,
        .height = p->height,
        .fps_milli = p->fps_milli,
    };
    s->request.buffers = v->encoders + 3 > BUFFERS_DEFAULT ? v->encoders + 3 : BUFFERS_DEFAULT;
    if (v->encoders == 0)
        s->request.buffers = BUFFERS_DEFAULT + AUTO_MAX_ENCODERS - 1;
    s->request.buffers_mjpeg = BUFFERS_DEFAULT;
    if (v->encoders > MAX_ENCODERS) {
        log_error("--encoders %u: at most %u", v->encoders, MAX_ENCODERS);
        rc = -EINVAL;
        goto fail;
    }
    rc = encoder_create(p->quality, &s->encoder);
    if (rc < 0) {
        log_error("v4l2: cannot create the JPEG encoder");
        goto fail;
    }
    s->last_viewer_ns = time_mono_ns();
    rc = open_device(s, 1, why, sizeof(why));
    if (rc == -EINVAL) {
        log_error("%s", why);
        goto fail;
    }
    if (rc < 0 && !v->wait_device) {
        log_error("%s", why);
        goto fail;
    }
    if (rc < 0) {
        log_warn("%s; waiting for it (--wait-device)", why);
        remember_failure(s, why); /* so that the retries stay quiet */
        s->resumed_pending = 1;
        s->state = STATE_LOST;
        snprintf(s->detail, sizeof(s->detail), "%s: %s", v->path,
                 rc == -ENOENT ? "not plugged in" : strerror(-rc));
        s->next_card_ns = time_mono_ns();
        s->next_retry_ns = s->next_card_ns + RETRY_INTERVAL_NS;
        g->width = p->width;
        g->height = p->height;
        g->fps_milli = p->fps_milli;
        frame_size = encoder_max_size_planar(p->width, p->height, TJSAMP_422);
    } else {
        const struct v4l2dev_mode *m = v4l2dev_mode(s->dev);
        g->width = m->width;
        g->height = m->height;
        g->fps_milli = m->fps_milli ? m->fps_milli : p->fps_milli;
        frame_size = frame_max_jpeg(m);
    }
    s->cards = pattern_create(g->width, g->height);
    card_size = encoder_max_size(g->width, g->height);
    g->min_slot_size = card_size;
    if (s->dev && is_raw(v4l2dev_mode(s->dev)->format))
        g->min_slot_size = frame_size > card_size ? frame_size : card_size;
    g->default_slot_size = frame_size > card_size ? frame_size : card_size;
    *out = &s->base;
    return 0;
fail:
    v4l2_destroy(&s->base);
    return rc;
}
