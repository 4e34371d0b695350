/* source_testpattern.c - the default source: a moving test pattern encoded straight into the ring.
 */
#include <errno.h>
#include <stdlib.h>

#include "encoder.h"
#include "pattern.h"
#include "source.h"
#include "util.h"

struct testpattern {
    struct source base; /* first: the source pointer is the testpattern pointer */
    struct pattern *pattern;
    struct encoder *encoder;
    struct source_pacer pacer;
    uint64_t frame_no;
};

static int testpattern_step(struct source *s, struct ring_writer *ring, int timeout_ms)
{
    struct testpattern *t = (struct testpattern *)s;
    const struct draw_image *img;
    uint64_t capture_us;
    size_t capacity, size;
    uint8_t *slot;
    int rc = source_pacer_wait(&t->pacer, timeout_ms);

    if (rc <= 0)
        return rc;
    capture_us = time_real_us();
    img = pattern_render(t->pattern, ++t->frame_no, capture_us);
    /* Encode straight into the ring slot: no intermediate copy. */
    slot = ring_writer_begin(ring, &capacity);
    rc = encoder_encode_i420(t->encoder, img, slot, capacity, &size);
    if (rc < 0) {
        ring_writer_abort(ring);
        ring_writer_count_drop(ring);
        s->dropped++;
        return 0;
    }
    struct ring_frame_meta meta = {img->width, img->height, capture_us, 0};
    ring_writer_commit(ring, size, &meta);
    s->frames++;
    return 1;
}

static void testpattern_destroy(struct source *s)
{
    struct testpattern *t = (struct testpattern *)s;
    if (!t)
        return;
    pattern_destroy(t->pattern);
    encoder_destroy(t->encoder);
    free(t);
}

static const struct source_ops testpattern_ops = {
    .kind = "testpattern",
    .step = testpattern_step,
    .destroy = testpattern_destroy,
};

int source_testpattern_create(const struct source_params *p, struct source **out)
{
    struct testpattern *t = xcalloc(1, sizeof(*t));
    int rc;

    *out = NULL;
    t->base.ops = &testpattern_ops;
    rc = encoder_create(p->quality, &t->encoder);
    if (rc < 0) {
        log_error("testpattern: cannot create the JPEG encoder");
        testpattern_destroy(&t->base);
        return rc;
    }
    t->pattern = pattern_create(p->width, p->height);
    source_pacer_init(&t->pacer, p->fps_milli);
    t->base.geometry.width = p->width;
    t->base.geometry.height = p->height;
    t->base.geometry.min_slot_size = encoder_max_size(p->width, p->height);
    t->base.geometry.default_slot_size = t->base.geometry.min_slot_size;
    *out = &t->base;
    return 0;
}
