/* source_stdin.c - the stdin source: concatenated JPEGs or multipart MJPEG, republished untouched.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jpeg_scan.h"
#include "mjpeg_split.h"
#include "source.h"
#include "util.h"

/* Slots for stdin default to at least this: the frame size of a piped camera
 * is not known in advance, and untouched slot pages cost no memory. */
#define STDIN_MIN_DEFAULT_SLOT (4u << 20)

struct stdinsource {
    struct source base;
    struct mjpeg_split *split; /* created at the first step, sized to the ring's slots */
    uint64_t counted_bad;      /* splitter rejects already counted as ring drops */
    int eof;
    uint64_t last_warn_ns;
};

/* Moves new splitter rejects into the ring's drop counter. */
static void stdin_account_drops(struct stdinsource *s, struct ring_writer *ring)
{
    struct mjpeg_split_stats st;
    uint64_t bad;

    mjpeg_split_stats(s->split, &st);
    bad = st.bad + st.oversize;
    while (s->counted_bad < bad) {
        ring_writer_count_drop(ring);
        s->base.dropped++;
        s->counted_bad++;
    }
    if (bad && time_mono_ns() - s->last_warn_ns > 5000000000ull) {
        s->last_warn_ns = time_mono_ns();
        log_warn("stdin: %llu bad part(s) and %llu oversize frame(s) skipped so far",
                 (unsigned long long)st.bad, (unsigned long long)st.oversize);
    }
}

/* Publishes one complete frame if the splitter has one. 1 if published, 0 if not. */
static int stdin_publish_next(struct stdinsource *s, struct ring_writer *ring)
{
    const uint8_t *frame;
    size_t len;
    struct jpeg_scan_info info;

    while (mjpeg_split_next(s->split, &frame, &len) == 0) {
        if (jpeg_scan_check(frame, len, &info) != 0 || info.width == 0 || info.height == 0) {
            ring_writer_count_drop(ring);
            s->base.dropped++;
            continue;
        }
        struct ring_frame_meta meta = {info.width, info.height, time_real_us(), 0};
        if (ring_writer_publish(ring, frame, len, &meta) < 0) {
            s->base.dropped++;
            continue;
        }
        s->base.frames++;
        return 1;
    }
    return 0;
}

static int stdin_step(struct source *src, struct ring_writer *ring, int timeout_ms)
{
    struct stdinsource *s = (struct stdinsource *)src;
    struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
    uint8_t *space;
    size_t room;
    ssize_t n;
    int rc;

    if (!s->split)
        s->split = mjpeg_split_create(ring_writer_slot_size(ring));
    rc = stdin_publish_next(s, ring);
    stdin_account_drops(s, ring);
    if (rc)
        return rc;
    if (s->eof)
        return -ENODATA;
    rc = poll(&pfd, 1, timeout_ms);
    if (rc < 0)
        return errno == EINTR ? -EINTR : -errno;
    if (rc == 0)
        return 0;
    space = mjpeg_split_space(s->split, &room);
    n = read(STDIN_FILENO, space, room);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return errno == EINTR ? -EINTR : 0;
        log_error("stdin: read failed: %s", strerror(errno));
        return -errno;
    }
    if (n == 0) {
        s->eof = 1;
        log_info("stdin: end of input");
    } else {
        mjpeg_split_commit(s->split, (size_t)n);
    }
    rc = stdin_publish_next(s, ring);
    stdin_account_drops(s, ring);
    return rc;
}

static void stdin_destroy(struct source *src)
{
    struct stdinsource *s = (struct stdinsource *)src;
    if (!s)
        return;
    mjpeg_split_destroy(s->split);
    free(s);
}

static const struct source_ops stdin_ops = {
    .kind = "stdin",
    .step = stdin_step,
    .destroy = stdin_destroy,
};

int source_stdin_create(const struct source_params *p, struct source **out)
{
    struct stdinsource *s = xcalloc(1, sizeof(*s));
    size_t by_size = (size_t)p->width * p->height * 3u / 2u;

    s->base.ops = &stdin_ops;
    s->base.geometry.width = p->width;
    s->base.geometry.height = p->height;
    s->base.geometry.min_slot_size = 0;
    s->base.geometry.default_slot_size =
        by_size > STDIN_MIN_DEFAULT_SLOT ? by_size : STDIN_MIN_DEFAULT_SLOT;
    *out = &s->base;
    return 0;
}
