/* test_encoder.c - unit tests: encoder_encode_v4l2 (fused) against the planar encoder. */
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "check.h"
#include "testrand.h"
/* The module itself, to reach struct encoder for the libjpeg error test. */
#include "../../capd/encoder.c"

/* ---- helpers ------------------------------------------------------------------------------ */

static tjhandle decoder;

static const char *fourcc_name(uint32_t fourcc, char buf[5])
{
    memcpy(buf, &fourcc, 4);
    buf[4] = '\0';
    return buf;
}

/* Byte offset of pixel (x, y)'s luma in a frame of fourcc. */
static size_t luma_offset(uint32_t fourcc, size_t stride, uint32_t x, uint32_t y)
{
    switch (fourcc) {
    case V4L2_PIX_FMT_YUYV:
    case V4L2_PIX_FMT_YVYU:
        return y * stride + 2 * (size_t)x;
    case V4L2_PIX_FMT_UYVY:
        return y * stride + 2 * (size_t)x + 1;
    default:
        return y * stride + x;
    }
}

/* A camera-like frame: smooth gradients, hard-edged blocks and noise in luma, gradients in
   chroma; the slack at the end of every row is junk, which must not reach the JPEG. */
static void make_frame(uint32_t fourcc, uint32_t w, uint32_t h, size_t stride, uint8_t *buf,
                       size_t len)
{
    memset(buf, 0xEE, len);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            int v = (int)(30 + 170 * x / w + 40 * y / h);
            if ((x / 12 + y / 10) % 4 == 0)
                v = 230 - v / 2;
            v += (int)(rnd8() % 9) - 4;
            buf[luma_offset(fourcc, stride, x, y)] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    if (fourcc == V4L2_PIX_FMT_YUYV || fourcc == V4L2_PIX_FMT_UYVY || fourcc == V4L2_PIX_FMT_YVYU) {
        unsigned chroma_at = fourcc == V4L2_PIX_FMT_UYVY ? 0 : 1;
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w; x++)
                buf[y * stride + 2 * (size_t)x + chroma_at] =
                    (uint8_t)(x & 1 ? 60 + 120 * y / h : 200 - 130 * x / w);
    } else if (fourcc != V4L2_PIX_FMT_GREY) {
        uint32_t cw = (w + 1) / 2, ch = (h + 1) / 2;
        uint8_t *chroma = buf + (size_t)h * stride;
        for (uint32_t y = 0; y < ch; y++)
            for (uint32_t x = 0; x < cw; x++) {
                uint8_t cb = (uint8_t)(200 - 130 * x / cw), cr = (uint8_t)(60 + 120 * y / ch);
                if (fourcc == V4L2_PIX_FMT_YUV420) {
                    chroma[y * (stride / 2) + x] = cb;
                    chroma[(ch + y) * (stride / 2) + x] = cr;
                } else {
                    chroma[y * stride + 2 * x] = fourcc == V4L2_PIX_FMT_NV12 ? cb : cr;
                    chroma[y * stride + 2 * x + 1] = fourcc == V4L2_PIX_FMT_NV12 ? cr : cb;
                }
            }
    }
}

/* A frame in a guarded buffer of exactly yuv_v4l2_frame_bytes(). */
struct frame {
    uint32_t fourcc, w, h;
    size_t stride, len;
    struct guarded mem;
};

static void frame_make(struct frame *f, uint32_t fourcc, uint32_t w, uint32_t h, size_t extra)
{
    f->fourcc = fourcc;
    f->w = w;
    f->h = h;
    f->stride = yuv_v4l2_min_stride(fourcc, w) + extra;
    /* YU12's chroma rows are stride / 2: keep the stride even so they hold (w + 1) / 2. */
    if (fourcc == V4L2_PIX_FMT_YUV420)
        f->stride += f->stride & 1;
    f->len = yuv_v4l2_frame_bytes(fourcc, w, h, f->stride);
    guarded_alloc(&f->mem, f->len);
    make_frame(fourcc, w, h, f->stride, f->mem.data, f->len);
}

static void frame_free(struct frame *f)
{
    guarded_free(&f->mem);
}

static size_t frame_capacity(const struct frame *f)
{
    return encoder_max_size_planar(f->w, f->h, yuv_v4l2_subsamp(f->fourcc));
}

/* The reference: yuv_from_v4l2 + encoder_encode_planar (TurboJPEG). */
static int encode_planar(struct encoder *enc, const struct frame *f, uint8_t *dst, size_t cap,
                         size_t *size)
{
    struct yuv_planar scratch, img;
    int rc;

    yuv_planar_alloc(&scratch, f->w, f->h, yuv_v4l2_subsamp(f->fourcc));
    rc = yuv_from_v4l2(&scratch, &img, f->fourcc, f->mem.data, f->len, f->stride);
    if (rc == 0)
        rc = encoder_encode_planar(enc, &img, dst, cap, size);
    yuv_planar_free(&scratch);
    return rc;
}

static int encode_fused(struct encoder *enc, const struct frame *f, uint8_t *dst, size_t cap,
                        size_t *size)
{
    return encoder_encode_v4l2(enc, f->fourcc, f->mem.data, f->len, f->stride, f->w, f->h, dst, cap,
                               size);
}

/* Decodes into pixels of format pf (TJPF_RGB or TJPF_GRAY); NULL when TurboJPEG fails or warns
   (tjDecompress2 returns -1 for warnings too) or the size is not w x h. Caller frees. */
static uint8_t *decode(const uint8_t *jpeg, size_t size, uint32_t w, uint32_t h, int pf)
{
    int jw, jh, jsub, jcs;
    uint8_t *pixels;

    if (tjDecompressHeader3(decoder, jpeg, (unsigned long)size, &jw, &jh, &jsub, &jcs) != 0 ||
        (uint32_t)jw != w || (uint32_t)jh != h) {
        printf("  header: %s (%dx%d)\n", tjGetErrorStr2(decoder), jw, jh);
        return NULL;
    }
    pixels = xmalloc((size_t)w * h * (size_t)tjPixelSize[pf]);
    if (tjDecompress2(decoder, jpeg, (unsigned long)size, pixels, (int)w, 0, (int)h, pf, 0) != 0) {
        printf("  decode: %s\n", tjGetErrorStr2(decoder));
        free(pixels);
        return NULL;
    }
    return pixels;
}

/* The fused encode of f must decode cleanly, match the planar encode's decoded pixels (and, as
   both run the same libjpeg code on the same samples, its bytes) and show the source's luma. */
static void check_against_planar(struct encoder *enc, const struct frame *f, const char *what,
                                 double min_psnr)
{
    size_t cap = frame_capacity(f), ref_size = 0, size = 0;
    uint8_t *ref = xmalloc(cap), *got = xmalloc(cap);
    uint8_t *ref_rgb = NULL, *got_rgb = NULL, *got_y = NULL;
    char name[5];
    int worst = 0;
    double sq = 0;

    fourcc_name(f->fourcc, name);
    CHECKF(encode_planar(enc, f, ref, cap, &ref_size) == 0, "%s %s", what, name);
    CHECKF(encode_fused(enc, f, got, cap, &size) == 0, "%s %s %ux%u stride %zu", what, name, f->w,
           f->h, f->stride);
    CHECKF(size == ref_size && memcmp(ref, got, size) == 0,
           "%s %s %ux%u stride %zu: fused JPEG (%zu bytes) differs from planar (%zu bytes)", what,
           name, f->w, f->h, f->stride, size, ref_size);
    ref_rgb = decode(ref, ref_size, f->w, f->h, TJPF_RGB);
    got_rgb = decode(got, size, f->w, f->h, TJPF_RGB);
    got_y = decode(got, size, f->w, f->h, TJPF_GRAY);
    CHECKF(ref_rgb && got_rgb && got_y, "%s %s %ux%u: decode failed", what, name, f->w, f->h);
    if (ref_rgb && got_rgb && got_y) {
        for (size_t i = 0; i < (size_t)f->w * f->h * 3; i++) {
            int d = abs((int)ref_rgb[i] - (int)got_rgb[i]);
            worst = d > worst ? d : worst;
        }
        for (uint32_t y = 0; y < f->h; y++)
            for (uint32_t x = 0; x < f->w; x++) {
                double d = (double)got_y[(size_t)y * f->w + x] -
                           (double)f->mem.data[luma_offset(f->fourcc, f->stride, x, y)];
                sq += d * d;
            }
        double psnr = sq == 0 ? 99 : 10 * log10(255.0 * 255.0 * f->w * f->h / sq);
        CHECKF(worst <= 1, "%s %s %ux%u: decoded pixels differ by up to %d", what, name, f->w, f->h,
               worst);
        CHECKF(psnr > min_psnr, "%s %s %ux%u: luma PSNR %.1f dB", what, name, f->w, f->h, psnr);
    }
    free(ref_rgb);
    free(got_rgb);
    free(got_y);
    free(ref);
    free(got);
}

static const uint32_t all_fourccs[] = {V4L2_PIX_FMT_YUYV, V4L2_PIX_FMT_UYVY, V4L2_PIX_FMT_YVYU,
                                       V4L2_PIX_FMT_NV12, V4L2_PIX_FMT_NV21, V4L2_PIX_FMT_YUV420,
                                       V4L2_PIX_FMT_GREY};

/* ---- tests -------------------------------------------------------------------------------- */

/* Every format at sizes that do and do not fill whole MCUs (odd, below one block, not a
   multiple of 8 or 16), with tight and padded strides. */
static void test_same_jpeg_as_planar(void)
{
    const uint32_t sizes[][2] = {{1920, 1080}, {640, 360}, {17, 19}, {1, 1},   {2, 2},
                                 {33, 8},      {50, 3},    {8, 17},  {24, 16}, {1366, 769}};
    const size_t extras[] = {0, 1, 40};
    struct encoder *enc;

    CHECK_EQ_INT(encoder_create(80, &enc), 0);
    for (size_t k = 0; k < ARRAY_SIZE(all_fourccs); k++)
        for (size_t s = 0; s < ARRAY_SIZE(sizes); s++)
            for (size_t x = 0; x < ARRAY_SIZE(extras); x++) {
                struct frame f;
                frame_make(&f, all_fourccs[k], sizes[s][0], sizes[s][1], extras[x]);
                check_against_planar(enc, &f, "q80", 30);
                frame_free(&f);
            }
    encoder_destroy(enc);
}

/* Quality and the DCT choice follow TurboJPEG's (fast DCT below 96, accurate from 96 up). */
static void test_quality_and_dct_match(void)
{
    const int qualities[] = {1, 50, 95, 96, 100};
    const uint32_t fourccs[] = {V4L2_PIX_FMT_YUYV, V4L2_PIX_FMT_NV12, V4L2_PIX_FMT_GREY};

    for (size_t q = 0; q < ARRAY_SIZE(qualities); q++) {
        struct encoder *enc;
        char what[16];

        snprintf(what, sizeof(what), "q%d", qualities[q]);
        CHECK_EQ_INT(encoder_create(qualities[q], &enc), 0);
        for (size_t k = 0; k < ARRAY_SIZE(fourccs); k++) {
            struct frame f;
            frame_make(&f, fourccs[k], 97, 61, 3);
            /* Quality 1 is meant to look bad. */
            check_against_planar(enc, &f, what, qualities[q] < 20 ? 15 : 30);
            frame_free(&f);
        }
        encoder_destroy(enc);
    }
}

/* An undersized buffer gives -ENOSPC without a byte written past it: exact-size heap buffers
   (ASan) and a canary behind the capacity (plain builds). A JPEG that fills the buffer exactly
   still fits. After each failure the encoder works again. */
static void test_enospc_never_writes_past_capacity(void)
{
    const uint32_t fourccs[] = {V4L2_PIX_FMT_YUYV, V4L2_PIX_FMT_NV12};
    struct encoder *enc;

    CHECK_EQ_INT(encoder_create(85, &enc), 0);
    for (size_t k = 0; k < ARRAY_SIZE(fourccs); k++) {
        struct frame f;
        size_t cap, full = 0, size;
        uint8_t *ref;

        frame_make(&f, fourccs[k], 320, 240, 0);
        cap = frame_capacity(&f);
        ref = xmalloc(cap);
        CHECK_EQ_INT(encode_fused(enc, &f, ref, cap, &full), 0);
        CHECK(full > 1000);
        const size_t small[] = {1, 2, 100, 623, full / 2, full - 2, full - 1};
        for (size_t i = 0; i < ARRAY_SIZE(small); i++) {
            size_t c = small[i];
            uint8_t *exact = xmalloc(c), *canary = xmalloc(c + 256);

            struct guarded fenced;

            size = 12345;
            CHECKF(encode_fused(enc, &f, exact, c, &size) == -ENOSPC, "capacity %zu of %zu", c,
                   full);
            CHECK_EQ_INT(size, 12345);
            /* libjpeg is not instrumented by ASan: also end the buffer at a PROT_NONE page. */
            guarded_alloc(&fenced, c);
            CHECK_EQ_INT(encode_fused(enc, &f, fenced.data, c, &size), -ENOSPC);
            guarded_free(&fenced);
            memset(canary, 0xA5, c + 256);
            CHECK_EQ_INT(encode_fused(enc, &f, canary, c, &size), -ENOSPC);
            for (size_t j = c; j < c + 256; j++)
                if (canary[j] != 0xA5) {
                    CHECKF(0, "capacity %zu: byte %zu past it written", c, j - c);
                    break;
                }
            /* The encoder is back in its start state: the next encode is the full JPEG. */
            uint8_t *again = xmalloc(cap);
            size = 0;
            CHECK_EQ_INT(encode_fused(enc, &f, again, cap, &size), 0);
            CHECK(size == full && memcmp(again, ref, full) == 0);
            free(again);
            free(exact);
            free(canary);
        }
        /* Exactly the JPEG's size: fits, in an exact-size heap buffer and before a guard page. */
        uint8_t *exact = xmalloc(full);
        struct guarded fenced;
        size = 0;
        CHECK_EQ_INT(encode_fused(enc, &f, exact, full, &size), 0);
        CHECK(size == full && memcmp(exact, ref, full) == 0);
        guarded_alloc(&fenced, full);
        size = 0;
        CHECK_EQ_INT(encode_fused(enc, &f, fenced.data, full, &size), 0);
        CHECK(size == full && memcmp(fenced.data, ref, full) == 0);
        guarded_free(&fenced);
        free(exact);
        free(ref);
        frame_free(&f);
    }
    encoder_destroy(enc);
}

/* One encoder through a mix of formats and sizes gives what a fresh encoder gives each time,
   and the same frame twice gives the same bytes. */
static void test_repeated_encodes(void)
{
    const struct {
        uint32_t fourcc, w, h;
    } seq[] = {{V4L2_PIX_FMT_YUYV, 1280, 720},  {V4L2_PIX_FMT_YUYV, 1280, 720},
               {V4L2_PIX_FMT_NV12, 17, 19},     {V4L2_PIX_FMT_GREY, 33, 8},
               {V4L2_PIX_FMT_UYVY, 1920, 1080}, {V4L2_PIX_FMT_YUV420, 64, 48},
               {V4L2_PIX_FMT_YUYV, 31, 7},      {V4L2_PIX_FMT_YUYV, 1280, 720}};
    struct encoder *shared;

    CHECK_EQ_INT(encoder_create(75, &shared), 0);
    for (size_t i = 0; i < ARRAY_SIZE(seq); i++) {
        struct frame f;
        struct encoder *fresh;
        size_t cap, a = 0, b = 0, c = 0;
        uint8_t *ja, *jb, *jc;

        frame_make(&f, seq[i].fourcc, seq[i].w, seq[i].h, 8);
        cap = frame_capacity(&f);
        ja = xmalloc(cap), jb = xmalloc(cap), jc = xmalloc(cap);
        CHECK_EQ_INT(encoder_create(75, &fresh), 0);
        CHECK_EQ_INT(encode_fused(shared, &f, ja, cap, &a), 0);
        CHECK_EQ_INT(encode_fused(shared, &f, jb, cap, &b), 0);
        CHECK_EQ_INT(encode_fused(fresh, &f, jc, cap, &c), 0);
        CHECKF(a == b && memcmp(ja, jb, a) == 0, "step %zu: two encodes differ", i);
        CHECKF(a == c && memcmp(ja, jc, a) == 0, "step %zu: differs from a fresh encoder", i);
        encoder_destroy(fresh);
        free(ja);
        free(jb);
        free(jc);
        frame_free(&f);
    }
    encoder_destroy(shared);
}

static void test_bad_input(void)
{
    struct encoder *enc;
    struct frame f;
    size_t cap, size = 777;
    uint8_t *jpeg;
    const uint8_t *src;

    CHECK_EQ_INT(encoder_create(80, &enc), 0);
    frame_make(&f, V4L2_PIX_FMT_YUYV, 64, 48, 0);
    src = f.mem.data;
    cap = frame_capacity(&f);
    jpeg = xmalloc(cap);
    CHECK_EQ_INT(encoder_encode_v4l2(enc, V4L2_PIX_FMT_RGB24, src, f.len, f.stride, 64, 48, jpeg,
                                     cap, &size),
                 -EINVAL);
    CHECK_EQ_INT(encoder_encode_v4l2(enc, V4L2_PIX_FMT_MJPEG, src, f.len, f.stride, 64, 48, jpeg,
                                     cap, &size),
                 -EINVAL);
    CHECK_EQ_INT(encoder_encode_v4l2(enc, f.fourcc, src, f.len, f.stride, 0, 48, jpeg, cap, &size),
                 -EINVAL);
    CHECK_EQ_INT(encoder_encode_v4l2(enc, f.fourcc, src, f.len, f.stride, 64, 0, jpeg, cap, &size),
                 -EINVAL);
    CHECK_EQ_INT(
        encoder_encode_v4l2(enc, f.fourcc, src, f.len, 2 * 64 * 40000, 40000, 1, jpeg, cap, &size),
        -EINVAL);
    CHECK_EQ_INT(
        encoder_encode_v4l2(enc, f.fourcc, src, f.len, f.stride - 1, 64, 48, jpeg, cap, &size),
        -EINVAL);
    CHECK_EQ_INT(
        encoder_encode_v4l2(enc, f.fourcc, src, f.len - 1, f.stride, 64, 48, jpeg, cap, &size),
        -EBADMSG);
    CHECK_EQ_INT(encoder_encode_v4l2(enc, f.fourcc, src, f.len, f.stride, 64, 48, jpeg, 0, &size),
                 -ENOSPC);
    CHECK_EQ_INT(size, 777);
    CHECK_EQ_INT(encoder_encode_v4l2(enc, f.fourcc, src, f.len, f.stride, 64, 48, jpeg, cap, &size),
                 0);
    CHECK(size > 0 && size < cap);
    free(jpeg);
    frame_free(&f);
    encoder_destroy(enc);
}

/* A libjpeg error (forced: an unsupported sample precision) is logged through log_error, never
   printed by libjpeg or fatal, returns -EIO, and the encoder recovers. */
static void test_libjpeg_error_is_logged(void)
{
    struct encoder *enc;
    struct frame f;
    size_t cap, size = 0, ref_size = 0;
    uint8_t *jpeg, *ref;
    char log[512] = "";
    char path[] = "/tmp/test_encoder_log_XXXXXX";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);

    CHECK(fd >= 0 && saved >= 0);
    CHECK_EQ_INT(encoder_create(80, &enc), 0);
    frame_make(&f, V4L2_PIX_FMT_NV12, 48, 32, 0);
    cap = frame_capacity(&f);
    jpeg = xmalloc(cap), ref = xmalloc(cap);
    CHECK_EQ_INT(encode_fused(enc, &f, ref, cap, &ref_size), 0);

    enc->cinfo.data_precision = 12;
    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    int rc = encode_fused(enc, &f, jpeg, cap, &size);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    CHECK_EQ_INT(rc, -EIO);
    ssize_t n = pread(fd, log, sizeof(log) - 1, 0);
    close(fd);
    unlink(path);
    log[n > 0 ? n : 0] = '\0';
    CHECKF(strncmp(log, "test_encoder: ", 14) == 0 && strstr(log, "JPEG encode failed") &&
               strstr(log, "precision 12"),
           "log: '%s'", log);

    enc->cinfo.data_precision = 8;
    CHECK_EQ_INT(encode_fused(enc, &f, jpeg, cap, &size), 0);
    CHECK(size == ref_size && memcmp(jpeg, ref, size) == 0);
    free(jpeg);
    free(ref);
    frame_free(&f);
    encoder_destroy(enc);
}

int main(void)
{
    rng_seed(0x2545f4914f6cdd1dull);
    log_init("test_encoder", 0);
    decoder = tjInitDecompress();
    if (!decoder)
        return 1;
    RUN_TEST(test_same_jpeg_as_planar);
    RUN_TEST(test_quality_and_dct_match);
    RUN_TEST(test_enospc_never_writes_past_capacity);
    RUN_TEST(test_repeated_encodes);
    RUN_TEST(test_bad_input);
    RUN_TEST(test_libjpeg_error_is_logged);
    tjDestroy(decoder);
    return check_summary();
}
