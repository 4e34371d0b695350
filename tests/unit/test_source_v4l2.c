/* test_source_v4l2.c - unit tests for the V4L2 source's encode pool and --drop-same (no device). */
#include <errno.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <turbojpeg.h>

#include "check.h"
/* The pool and the duplicate check are statics; the device paths run against vivid in
 * tests/integration/test_vivid.sh. Run this under TSan (make TSAN=1) to check the handoff. */
#include "../../capd/source_v4l2.c"

#define W      320u
#define H      240u
#define FRAMES 60u

/* A YUYV frame whose luma is flat at level: the frame's identity survives JPEG encoding. */
static void fill_yuyv(uint8_t *buf, uint8_t level)
{
    for (size_t i = 0; i < (size_t)W * H * 2; i += 2) {
        buf[i] = level;
        buf[i + 1] = 128;
    }
}

/* The mean luma of a JPEG, decoded to grey; -1 when it does not decode as W x H. */
static int jpeg_luma(tjhandle tj, const uint8_t *jpeg, size_t size, uint8_t *grey)
{
    int w, h, sub, cs;
    uint64_t sum = 0;
    if (tjDecompressHeader3(tj, jpeg, (unsigned long)size, &w, &h, &sub, &cs) != 0 || w != (int)W ||
        h != (int)H)
        return -1;
    if (tjDecompress2(tj, jpeg, (unsigned long)size, grey, (int)W, (int)W, (int)H, TJPF_GRAY, 0))
        return -1;
    for (size_t i = 0; i < (size_t)W * H; i++)
        sum += grey[i];
    return (int)(sum / ((uint64_t)W * H));
}

/* Frames go in faster than 3 workers encode them: some are refused (dropped, never queued),
 * and the ones taken come out complete and strictly in the order they went in. */
static void test_pool_order_and_drops(void)
{
    struct v4l2dev_mode mode = {.format = V4L2DEV_YUYV,
                                .fourcc = V4L2_PIX_FMT_YUYV,
                                .width = W,
                                .height = H,
                                .bytesperline = W * 2,
                                .buffers = 8};
    static uint8_t frames[FRAMES][W * H * 2];
    uint8_t *grey = xmalloc((size_t)W * H);
    struct encode_pool *pool = NULL;
    tjhandle tj = tjInitDecompress();
    uint32_t accepted[FRAMES], n_accepted = 0, n_published = 0, refused = 0;
    int last_luma = -1, out_of_order = 0, bad = 0;

    CHECK(tj != NULL);
    CHECK_EQ_INT(pool_create(&mode, 3, 80, &pool), 0);
    if (!pool || !tj)
        goto out;
    for (uint32_t i = 0; i < FRAMES; i++) {
        struct v4l2dev_frame f = {.data = frames[i], .bytes = sizeof(frames[i]), .index = i};
        fill_yuyv(frames[i], (uint8_t)(16 + i * 3));
        if (pool_dispatch(pool, &f) == 0)
            accepted[n_accepted++] = i;
        else
            refused++;
        /* Every fourth frame, collect what is done (like the main loop between frames). */
        if (i % 4 == 3) {
            struct encode_job *job;
            while ((job = pool_next_done(pool)) != NULL) {
                int luma = jpeg_luma(tj, job->out, job->out_size, grey);
                if (job->rc != 0 || luma < 0)
                    bad++;
                else if (n_published >= n_accepted || job->frame.index != accepted[n_published] ||
                         luma <= last_luma)
                    out_of_order++;
                last_luma = luma;
                n_published++;
                pool_release(pool, job);
            }
        }
    }
    /* Drain: wait for the rest through the eventfd, as the main loop does. */
    while (n_published < n_accepted) {
        struct pollfd pfd = {.fd = pool->wake_fd, .events = POLLIN};
        struct encode_job *job;
        uint64_t count;
        if (poll(&pfd, 1, 5000) <= 0)
            break;
        if (read(pool->wake_fd, &count, sizeof(count)) < 0)
            break;
        while ((job = pool_next_done(pool)) != NULL) {
            int luma = jpeg_luma(tj, job->out, job->out_size, grey);
            if (job->rc != 0 || luma < 0)
                bad++;
            else if (job->frame.index != accepted[n_published] || luma <= last_luma)
                out_of_order++;
            last_luma = luma;
            n_published++;
            pool_release(pool, job);
        }
    }
    CHECK_EQ_INT(n_published, n_accepted);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(out_of_order, 0);
    CHECKF(refused > 0, "a producer faster than the pool must see refusals (accepted %u)",
           n_accepted);
    CHECKF(n_accepted >= 3, "accepted %u", n_accepted);
out:
    pool_destroy(pool);
    if (tj)
        tjDestroy(tj);
    free(grey);
}

/* Destroying a pool with frames queued and being encoded neither hangs nor leaks. */
static void test_pool_destroy_busy(void)
{
    struct v4l2dev_mode mode = {.format = V4L2DEV_YUYV,
                                .fourcc = V4L2_PIX_FMT_YUYV,
                                .width = W,
                                .height = H,
                                .bytesperline = W * 2,
                                .buffers = 8};
    static uint8_t frame[W * H * 2];
    struct encode_pool *pool = NULL;
    int dispatched = 0;

    fill_yuyv(frame, 100);
    CHECK_EQ_INT(pool_create(&mode, 2, 80, &pool), 0);
    for (int i = 0; pool && i < 4; i++) {
        struct v4l2dev_frame f = {.data = frame, .bytes = sizeof(frame), .index = (uint32_t)i};
        dispatched += pool_dispatch(pool, &f) == 0;
    }
    CHECK(dispatched >= 2);
    pool_destroy(pool);
    pool_destroy(NULL);
}

static void test_frame_hash(void)
{
    static uint8_t a[1000], b[1000];
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = b[i] = (uint8_t)(i * 7);
    CHECK(frame_hash(a, sizeof(a)) == frame_hash(b, sizeof(b)));
    /* One changed byte anywhere (in a 32-byte block, or in the tail) changes the hash. */
    for (size_t pos = 0; pos < sizeof(a); pos += 37) {
        b[pos] ^= 1;
        CHECKF(frame_hash(a, sizeof(a)) != frame_hash(b, sizeof(b)), "byte %zu", pos);
        b[pos] ^= 1;
    }
    b[sizeof(b) - 1] ^= 0x80;
    CHECK(frame_hash(a, sizeof(a)) != frame_hash(b, sizeof(b)));
    /* Length matters: a prefix of zeros is not the same frame. */
    memset(a, 0, sizeof(a));
    CHECK(frame_hash(a, 64) != frame_hash(a, 96));
}

static void test_drop_same(void)
{
    static struct v4l2source s;
    static uint8_t still[4096], moving[4096];
    struct v4l2dev_frame f = {.data = still, .bytes = sizeof(still)};
    int skipped = 0;

    memset(&s, 0, sizeof(s));
    /* Off: nothing is skipped. */
    for (int i = 0; i < 5; i++)
        skipped += skip_same(&s, &f, sizeof(still));
    CHECK_EQ_INT(skipped, 0);
    /* --drop-same 3: of 12 identical frames, 1 published, 3 skipped, 1 published, ... */
    s.params.drop_same = 3;
    skipped = 0;
    for (int i = 0; i < 12; i++) {
        int skip = skip_same(&s, &f, sizeof(still));
        CHECKF(skip == (i % 4 != 0), "frame %d: skip %d", i, skip);
        skipped += skip;
    }
    CHECK_EQ_INT(skipped, 9);
    /* A different frame is always published and starts a new run. */
    f.data = moving;
    moving[100] = 1;
    CHECK_EQ_INT(skip_same(&s, &f, sizeof(moving)), 0);
    CHECK_EQ_INT(skip_same(&s, &f, sizeof(moving)), 1);
    moving[100] = 2;
    CHECK_EQ_INT(skip_same(&s, &f, sizeof(moving)), 0);
}

int main(void)
{
    log_init("test_source_v4l2", 0);
    RUN_TEST(test_pool_order_and_drops);
    RUN_TEST(test_pool_destroy_busy);
    RUN_TEST(test_frame_hash);
    RUN_TEST(test_drop_same);
    return check_summary();
}
