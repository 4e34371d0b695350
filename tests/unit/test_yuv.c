/* test_yuv.c - unit tests for the V4L2 format converters and the planar/RGB JPEG encoders. */
#include <errno.h>
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
#include "draw.h"
#include "encoder.h"
#include "util.h"
#include "yuv.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* A reference planar image: tight planes of TurboJPEG's plane sizes. */
struct ref_img {
    uint8_t *plane[3];
    int w[3], h[3];
};

static void ref_alloc(struct ref_img *r, uint32_t w, uint32_t h, int subsamp)
{
    memset(r, 0, sizeof(*r));
    for (int c = 0; c < (subsamp == TJSAMP_GRAY ? 1 : 3); c++) {
        r->w[c] = tjPlaneWidth(c, (int)w, subsamp);
        r->h[c] = tjPlaneHeight(c, (int)h, subsamp);
        r->plane[c] = xcalloc((size_t)r->w[c] * (size_t)r->h[c], 1);
    }
}

static void ref_free(struct ref_img *r)
{
    for (int c = 0; c < 3; c++)
        free(r->plane[c]);
}

static uint8_t *ref_at(struct ref_img *r, int c, uint32_t x, uint32_t y)
{
    return &r->plane[c][(size_t)y * (size_t)r->w[c] + x];
}

/* Byte offsets of Y0, Cb, Y1, Cr inside a pixel pair. */
struct layout {
    uint32_t fourcc;
    const char *name;
    unsigned y0, cb, y1, cr;
};

static const struct layout packed_layouts[] = {
    {V4L2_PIX_FMT_YUYV, "YUYV", 0, 1, 2, 3},
    {V4L2_PIX_FMT_UYVY, "UYVY", 1, 0, 3, 2},
    {V4L2_PIX_FMT_YVYU, "YVYU", 0, 3, 2, 1},
};

/* The obvious per-pixel version of a packed 4:2:2 conversion. Row bytes beyond width * 2 do
   not exist: a missing chroma sample of an odd last pair repeats the previous pair's (or is
   neutral grey for a 1-pixel-wide image); the Y padding column repeats the last pixel. */
static void ref_packed(struct ref_img *r, const uint8_t *src, size_t stride, uint32_t w, uint32_t h,
                       const struct layout *l)
{
    for (uint32_t y = 0; y < h; y++) {
        const uint8_t *row = src + y * stride;
        size_t row_bytes = 2 * (size_t)w;

        for (uint32_t x = 0; x < w; x++)
            *ref_at(r, 0, x, y) = row[4 * (x / 2) + (x % 2 ? l->y1 : l->y0)];
        if (w % 2)
            *ref_at(r, 0, w, y) = *ref_at(r, 0, w - 1, y);
        for (uint32_t p = 0; p < (w + 1) / 2; p++) {
            unsigned offs[2] = {l->cb, l->cr};
            for (int c = 0; c < 2; c++) {
                size_t at = 4 * (size_t)p + offs[c];
                uint8_t v = 128;
                if (at < row_bytes)
                    v = row[at];
                else if (p > 0)
                    v = row[at - 4];
                *ref_at(r, 1 + c, p, y) = v;
            }
        }
    }
}

/* Reference 4:2:0 from separate plane descriptions (NV12/NV21 interleaved or YU12 planar). */
static void ref_420(struct ref_img *r, const uint8_t *src, size_t stride, uint32_t w, uint32_t h,
                    uint32_t fourcc)
{
    uint32_t cw = (w + 1) / 2, ch = (h + 1) / 2;
    const uint8_t *chroma = src + (size_t)h * stride;

    for (uint32_t y = 0; y < (uint32_t)r->h[0]; y++)
        for (uint32_t x = 0; x < (uint32_t)r->w[0]; x++) {
            uint32_t sx = x < w ? x : w - 1, sy = y < h ? y : h - 1;
            *ref_at(r, 0, x, y) = src[sy * stride + sx];
        }
    for (uint32_t y = 0; y < ch; y++)
        for (uint32_t x = 0; x < cw; x++) {
            if (fourcc == V4L2_PIX_FMT_YUV420) {
                size_t cs = stride / 2;
                *ref_at(r, 1, x, y) = chroma[y * cs + x];
                *ref_at(r, 2, x, y) = chroma[ch * cs + y * cs + x];
            } else {
                int swap = fourcc == V4L2_PIX_FMT_NV21;
                *ref_at(r, 1 + swap, x, y) = chroma[y * stride + 2 * x];
                *ref_at(r, 2 - swap, x, y) = chroma[y * stride + 2 * x + 1];
            }
        }
}

/* Compares every sample TurboJPEG reads, and checks that the unused rest of each allocated row
   is still zero (no stray writes). Returns the number of mismatches. */
static int compare_planar(const struct yuv_planar *p, struct ref_img *r, const char *what)
{
    int bad = 0;

    for (int c = 0; c < (p->subsamp == TJSAMP_GRAY ? 1 : 3); c++)
        for (int y = 0; y < r->h[c]; y++) {
            const uint8_t *row = p->plane[c] + (size_t)y * (size_t)p->stride[c];
            for (int x = 0; x < r->w[c]; x++)
                if (row[x] != *ref_at(r, c, (uint32_t)x, (uint32_t)y) && bad++ < 3)
                    printf("  %s: plane %d (%d,%d): %u != %u\n", what, c, x, y, row[x],
                           *ref_at(r, c, (uint32_t)x, (uint32_t)y));
            if (p->storage)
                for (int x = r->w[c]; x < p->stride[c]; x++)
                    if (row[x] != 0 && bad++ < 3)
                        printf("  %s: plane %d (%d,%d) padding written\n", what, c, x, y);
        }
    return bad;
}

static const uint32_t sizes[][2] = {
    {1, 1}, {2, 1}, {3, 5}, {17, 19}, {30, 2}, {33, 7}, {64, 8}, {66, 16}, {640, 360}, {1920, 1080},
};
static const size_t stride_extra[] = {0, 1, 13, 64};

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = rnd8();
}

/* ---- conversions -------------------------------------------------------------------------- */

static void test_alloc_layout(void)
{
    const int subsamps[] = {TJSAMP_422, TJSAMP_420, TJSAMP_GRAY};

    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
        for (int k = 0; k < 3; k++) {
            struct yuv_planar p;
            uint32_t w = sizes[s][0], h = sizes[s][1];
            int n = subsamps[k] == TJSAMP_GRAY ? 1 : 3;

            yuv_planar_alloc(&p, w, h, subsamps[k]);
            CHECK(p.width == w && p.height == h && p.subsamp == subsamps[k] && p.storage);
            for (int c = 0; c < n; c++) {
                int pw = tjPlaneWidth(c, (int)w, subsamps[k]);
                CHECKF(p.plane[c] && p.stride[c] >= pw && p.stride[c] % 32 == 0 &&
                           (uintptr_t)p.plane[c] % 32 == 0,
                       "%ux%u subsamp %d plane %d", w, h, subsamps[k], c);
                if (c > 0) /* planes follow each other without overlap */
                    CHECK(p.plane[c] >=
                          p.plane[c - 1] + (size_t)p.stride[c - 1] *
                                               (size_t)tjPlaneHeight(c - 1, (int)h, subsamps[k]));
            }
            for (int c = n; c < 3; c++)
                CHECK(p.plane[c] == NULL && p.stride[c] == 0);
            yuv_planar_free(&p);
            CHECK(p.storage == NULL && p.plane[0] == NULL);
            yuv_planar_free(&p); /* a zeroed image is fine too */
        }
    yuv_planar_free(NULL);
}

static void test_packed_matches_reference(void)
{
    for (size_t l = 0; l < sizeof(packed_layouts) / sizeof(packed_layouts[0]); l++)
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
            for (size_t e = 0; e < sizeof(stride_extra) / sizeof(stride_extra[0]); e++) {
                const struct layout *lay = &packed_layouts[l];
                uint32_t w = sizes[s][0], h = sizes[s][1];
                size_t stride = 2 * (size_t)w + stride_extra[e];
                size_t len = yuv_v4l2_frame_bytes(lay->fourcc, w, h, stride);
                struct guarded src;
                struct yuv_planar p;
                struct ref_img r;
                char what[64];

                guarded_alloc(&src, len);
                fill_random(src.data, len);
                yuv_planar_alloc(&p, w, h, TJSAMP_422);
                ref_alloc(&r, w, h, TJSAMP_422);
                if (lay->fourcc == V4L2_PIX_FMT_YUYV)
                    yuv_from_yuyv(&p, src.data, stride);
                else if (lay->fourcc == V4L2_PIX_FMT_UYVY)
                    yuv_from_uyvy(&p, src.data, stride);
                else
                    yuv_from_yvyu(&p, src.data, stride);
                ref_packed(&r, src.data, stride, w, h, lay);
                snprintf(what, sizeof(what), "%s %ux%u stride %zu", lay->name, w, h, stride);
                CHECKF(compare_planar(&p, &r, what) == 0, "%s", what);
                ref_free(&r);
                yuv_planar_free(&p);
                guarded_free(&src);
            }
}

static void test_420_matches_reference(void)
{
    const uint32_t fourccs[] = {V4L2_PIX_FMT_NV12, V4L2_PIX_FMT_NV21, V4L2_PIX_FMT_YUV420};

    for (size_t f = 0; f < 3; f++)
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
            for (size_t e = 0; e < sizeof(stride_extra) / sizeof(stride_extra[0]); e++) {
                uint32_t w = sizes[s][0], h = sizes[s][1];
                size_t stride = yuv_v4l2_min_stride(fourccs[f], w) + stride_extra[e];
                size_t len = yuv_v4l2_frame_bytes(fourccs[f], w, h, stride);
                struct guarded src;
                struct yuv_planar p;
                struct ref_img r;
                char what[64];

                guarded_alloc(&src, len);
                fill_random(src.data, len);
                yuv_planar_alloc(&p, w, h, TJSAMP_420);
                ref_alloc(&r, w, h, TJSAMP_420);
                if (fourccs[f] == V4L2_PIX_FMT_NV12)
                    yuv_from_nv12(&p, src.data, stride);
                else if (fourccs[f] == V4L2_PIX_FMT_NV21)
                    yuv_from_nv21(&p, src.data, stride);
                else
                    yuv_from_yu12(&p, src.data, stride);
                ref_420(&r, src.data, stride, w, h, fourccs[f]);
                snprintf(what, sizeof(what), "%.4s %ux%u stride %zu", (const char *)&fourccs[f], w,
                         h, stride);
                CHECKF(compare_planar(&p, &r, what) == 0, "%s", what);
                ref_free(&r);
                yuv_planar_free(&p);
                guarded_free(&src);
            }
}

static void test_views(void)
{
    static uint8_t buf[80 * 48 * 3 / 2];
    struct yuv_planar v;

    yuv_view_yu12(&v, buf, 64, 48, 80);
    CHECK(v.subsamp == TJSAMP_420 && v.width == 64 && v.height == 48 && v.storage == NULL);
    CHECK(v.plane[0] == buf && v.stride[0] == 80);
    CHECK(v.plane[1] == buf + 80 * 48 && v.stride[1] == 40);
    CHECK(v.plane[2] == buf + 80 * 48 + 40 * 24 && v.stride[2] == 40);
    yuv_planar_free(&v); /* owns nothing: only clears the struct */
    CHECK(v.plane[0] == NULL);

    yuv_view_grey(&v, buf, 17, 3, 20);
    CHECK(v.subsamp == TJSAMP_GRAY && v.plane[0] == buf && v.stride[0] == 20);
    CHECK(v.plane[1] == NULL && v.plane[2] == NULL && v.storage == NULL);
}

static void test_v4l2_dispatch(void)
{
    struct yuv_planar scratch, out;
    static uint8_t buf[64 * 48 * 2];

    CHECK_EQ_INT(yuv_v4l2_subsamp(V4L2_PIX_FMT_YUYV), TJSAMP_422);
    CHECK_EQ_INT(yuv_v4l2_subsamp(V4L2_PIX_FMT_UYVY), TJSAMP_422);
    CHECK_EQ_INT(yuv_v4l2_subsamp(V4L2_PIX_FMT_NV12), TJSAMP_420);
    CHECK_EQ_INT(yuv_v4l2_subsamp(V4L2_PIX_FMT_YUV420), TJSAMP_420);
    CHECK_EQ_INT(yuv_v4l2_subsamp(V4L2_PIX_FMT_GREY), TJSAMP_GRAY);
    CHECK_EQ_INT(yuv_v4l2_subsamp(V4L2_PIX_FMT_MJPEG), -1);
    CHECK_EQ_INT(yuv_v4l2_subsamp(V4L2_PIX_FMT_RGB24), -1);
    CHECK_EQ_INT(yuv_v4l2_min_stride(V4L2_PIX_FMT_YUYV, 17), 34);
    CHECK_EQ_INT(yuv_v4l2_min_stride(V4L2_PIX_FMT_NV12, 17), 18);
    CHECK_EQ_INT(yuv_v4l2_min_stride(V4L2_PIX_FMT_GREY, 17), 17);
    CHECK_EQ_INT(yuv_v4l2_min_stride(V4L2_PIX_FMT_MJPEG, 17), 0);
    /* Even sizes with tight strides need exactly what V4L2's sizeimage says. */
    CHECK_EQ_INT(yuv_v4l2_frame_bytes(V4L2_PIX_FMT_YUYV, 640, 480, 1280), 640 * 480 * 2);
    CHECK_EQ_INT(yuv_v4l2_frame_bytes(V4L2_PIX_FMT_NV12, 640, 480, 640), 640 * 480 * 3 / 2);
    CHECK_EQ_INT(yuv_v4l2_frame_bytes(V4L2_PIX_FMT_YUV420, 640, 480, 640), 640 * 480 * 3 / 2);
    CHECK_EQ_INT(yuv_v4l2_frame_bytes(V4L2_PIX_FMT_GREY, 640, 480, 640), 640 * 480);
    CHECK_EQ_INT(yuv_v4l2_frame_bytes(V4L2_PIX_FMT_YUYV, 640, 480, 1300), 1300 * 479 + 1280);

    yuv_planar_alloc(&scratch, 64, 48, TJSAMP_422);
    CHECK_EQ_INT(yuv_from_v4l2(&scratch, &out, V4L2_PIX_FMT_YUYV, buf, sizeof(buf), 128), 0);
    CHECK(out.plane[0] == scratch.plane[0] && out.storage == NULL && out.subsamp == TJSAMP_422);
    CHECK_EQ_INT(yuv_from_v4l2(&scratch, &out, V4L2_PIX_FMT_YUYV, buf, sizeof(buf) - 1, 128),
                 -EBADMSG);
    CHECK_EQ_INT(yuv_from_v4l2(&scratch, &out, V4L2_PIX_FMT_YUYV, buf, sizeof(buf), 127), -EINVAL);
    CHECK_EQ_INT(yuv_from_v4l2(&scratch, &out, V4L2_PIX_FMT_NV12, buf, sizeof(buf), 64), -EINVAL);
    CHECK_EQ_INT(yuv_from_v4l2(&scratch, &out, V4L2_PIX_FMT_MJPEG, buf, sizeof(buf), 128), -EINVAL);
    yuv_planar_free(&scratch);

    /* YU12: a view for even sizes, a padded copy for odd ones. */
    yuv_planar_alloc(&scratch, 64, 48, TJSAMP_420);
    CHECK_EQ_INT(yuv_from_v4l2(&scratch, &out, V4L2_PIX_FMT_YUV420, buf, sizeof(buf), 64), 0);
    CHECK(out.plane[0] == buf && out.stride[0] == 64 && out.storage == NULL);
    yuv_planar_free(&scratch);
    yuv_planar_alloc(&scratch, 63, 47, TJSAMP_420);
    CHECK_EQ_INT(yuv_from_v4l2(&scratch, &out, V4L2_PIX_FMT_YUV420, buf, sizeof(buf), 64), 0);
    CHECK(out.plane[0] == scratch.plane[0] && out.storage == NULL);
    yuv_planar_free(&scratch);
    yuv_planar_alloc(&scratch, 63, 47, TJSAMP_GRAY);
    CHECK_EQ_INT(yuv_from_v4l2(&scratch, &out, V4L2_PIX_FMT_GREY, buf, sizeof(buf), 64), 0);
    CHECK(out.plane[0] == buf && out.subsamp == TJSAMP_GRAY && out.width == 63);
    yuv_planar_free(&scratch);
}

/* ---- encoding ----------------------------------------------------------------------------- */

static tjhandle decoder;

/* Number of components in the JPEG's SOF header, or -1. */
static int sof_components(const uint8_t *jpeg, size_t size)
{
    size_t at = 2;

    while (at + 4 <= size && jpeg[at] == 0xFF) {
        uint8_t marker = jpeg[at + 1];
        size_t len = (size_t)jpeg[at + 2] << 8 | jpeg[at + 3];
        if (marker >= 0xC0 && marker <= 0xC2)
            return at + 9 < size ? jpeg[at + 9] : -1;
        at += 2 + len;
    }
    return -1;
}

/* Decodes to planes of the JPEG's own subsampling and returns the PSNR of every real sample
   (padding excluded) against ref, or -1 when decoding fails or the header is not as expected. */
static double decode_psnr(const uint8_t *jpeg, size_t size, uint32_t w, uint32_t h, int subsamp,
                          struct ref_img *ref)
{
    int jw, jh, jsub, jcs;
    struct ref_img got;
    double sq = 0;
    size_t n = 0;
    unsigned char *planes[3];

    if (tjDecompressHeader3(decoder, jpeg, (unsigned long)size, &jw, &jh, &jsub, &jcs) != 0) {
        printf("  header: %s\n", tjGetErrorStr2(decoder));
        return -1;
    }
    if ((uint32_t)jw != w || (uint32_t)jh != h || jsub != subsamp) {
        printf("  decoded %dx%d subsamp %d, expected %ux%u subsamp %d\n", jw, jh, jsub, w, h,
               subsamp);
        return -1;
    }
    ref_alloc(&got, w, h, subsamp);
    memcpy(planes, got.plane, sizeof(planes));
    if (tjDecompressToYUVPlanes(decoder, jpeg, (unsigned long)size, planes, jw, got.w, jh, 0) !=
        0) {
        printf("  decode: %s\n", tjGetErrorStr2(decoder));
        ref_free(&got);
        return -1;
    }
    for (int c = 0; c < (subsamp == TJSAMP_GRAY ? 1 : 3); c++) {
        uint32_t real_w = c ? (w + 1) / 2 : w;
        uint32_t real_h = c && subsamp == TJSAMP_420 ? (h + 1) / 2 : h;
        for (uint32_t y = 0; y < real_h; y++)
            for (uint32_t x = 0; x < real_w; x++) {
                double d = (double)*ref_at(&got, c, x, y) - (double)*ref_at(ref, c, x, y);
                sq += d * d;
                n++;
            }
    }
    ref_free(&got);
    return sq == 0 ? 99.0 : 10.0 * log10(255.0 * 255.0 / (sq / (double)n));
}

/* A camera-like scene: smooth gradients, a few hard-edged blocks and mild noise. */
static uint8_t scene_luma(uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
    int v = (int)(40 + 150 * x / w + 40 * y / h);
    if ((x / 24 + y / 24) % 5 == 0)
        v = 220 - v / 3;
    v += (int)(rnd8() % 5) - 2;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static uint8_t scene_chroma(uint32_t x, uint32_t y, uint32_t w, uint32_t h, int which)
{
    return (uint8_t)(which ? 90 + 80 * x / w : 170 - 70 * y / h);
}

/* Builds a frame of fourcc w x h (stride with some slack), converts it through yuv_from_v4l2,
   encodes it at quality 90 and checks the decoded picture against the source. The source buffer
   ends at a guard page, so views that TurboJPEG would over-read fault here. */
static void round_trip(uint32_t fourcc, uint32_t w, uint32_t h, size_t extra)
{
    int subsamp = yuv_v4l2_subsamp(fourcc);
    size_t stride = yuv_v4l2_min_stride(fourcc, w) + extra;
    size_t len = yuv_v4l2_frame_bytes(fourcc, w, h, stride);
    struct guarded src;
    struct yuv_planar scratch, img;
    struct ref_img ref;
    struct encoder *enc;
    size_t cap = encoder_max_size_planar(w, h, subsamp), size = 0;
    uint8_t *jpeg = xmalloc(cap);
    uint32_t cw = (w + 1) / 2, ch = (h + 1) / 2;

    guarded_alloc(&src, len);
    memset(src.data, 0, len);
    /* Write the scene in the source format. */
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint8_t *row = src.data + y * stride;
            uint8_t luma = scene_luma(x, y, w, h);
            switch (fourcc) {
            case V4L2_PIX_FMT_YUYV:
                row[2 * x] = luma;
                row[2 * x + 1] = scene_chroma(x & ~1u, y, w, h, (int)(x & 1));
                break;
            case V4L2_PIX_FMT_UYVY:
                row[2 * x + 1] = luma;
                row[2 * x] = scene_chroma(x & ~1u, y, w, h, (int)(x & 1));
                break;
            default: /* planar luma first */
                row[x] = luma;
            }
        }
    for (uint32_t y = 0; y < ch && fourcc != V4L2_PIX_FMT_GREY; y++)
        for (uint32_t x = 0; x < cw; x++) {
            uint8_t cb = scene_chroma(2 * x, 2 * y, w, h, 0);
            uint8_t cr = scene_chroma(2 * x, 2 * y, w, h, 1);
            uint8_t *chroma = src.data + (size_t)h * stride;
            if (fourcc == V4L2_PIX_FMT_NV12) {
                chroma[y * stride + 2 * x] = cb;
                chroma[y * stride + 2 * x + 1] = cr;
            } else if (fourcc == V4L2_PIX_FMT_YUV420) {
                chroma[y * (stride / 2) + x] = cb;
                chroma[ch * (stride / 2) + y * (stride / 2) + x] = cr;
            }
        }
    ref_alloc(&ref, w, h, subsamp);
    if (subsamp == TJSAMP_422)
        ref_packed(&ref, src.data, stride, w, h, &packed_layouts[fourcc == V4L2_PIX_FMT_UYVY]);
    else if (subsamp == TJSAMP_420)
        ref_420(&ref, src.data, stride, w, h, fourcc);
    else
        for (uint32_t y = 0; y < h; y++)
            memcpy(ref_at(&ref, 0, 0, y), src.data + y * stride, w);

    CHECK_EQ_INT(encoder_create(90, &enc), 0);
    yuv_planar_alloc(&scratch, w, h, subsamp);
    CHECK_EQ_INT(yuv_from_v4l2(&scratch, &img, fourcc, src.data, len, stride), 0);
    CHECK_EQ_INT(encoder_encode_planar(enc, &img, jpeg, cap, &size), 0);
    CHECK(size > 0 && size <= cap);
    double psnr = decode_psnr(jpeg, size, w, h, subsamp, &ref);
    CHECKF(psnr > 35.0, "%.4s %ux%u stride %zu: PSNR %.1f dB", (const char *)&fourcc, w, h, stride,
           psnr);
    CHECK_EQ_INT(sof_components(jpeg, size), subsamp == TJSAMP_GRAY ? 1 : 3);

    encoder_destroy(enc);
    yuv_planar_free(&scratch);
    ref_free(&ref);
    free(jpeg);
    guarded_free(&src);
}

static void test_round_trip(void)
{
    const uint32_t fourccs[] = {V4L2_PIX_FMT_YUYV, V4L2_PIX_FMT_UYVY, V4L2_PIX_FMT_NV12,
                                V4L2_PIX_FMT_YUV420, V4L2_PIX_FMT_GREY};
    const uint32_t rt_sizes[][2] = {{640, 360}, {17, 19}, {1920, 1080}, {2, 2}, {1, 1}, {33, 8}};

    for (size_t f = 0; f < sizeof(fourccs) / sizeof(fourccs[0]); f++)
        for (size_t s = 0; s < sizeof(rt_sizes) / sizeof(rt_sizes[0]); s++) {
            round_trip(fourccs[f], rt_sizes[s][0], rt_sizes[s][1], 0);
            round_trip(fourccs[f], rt_sizes[s][0], rt_sizes[s][1], 24);
        }
}

/* The padding rule yuv.h states: TurboJPEG reads each plane only up to tjPlaneWidth x
   tjPlaneHeight (even-rounded), never whole MCUs. Every plane here is exactly that size and ends
   at a guard page, so a read beyond it faults instead of passing. */
static void test_turbojpeg_reads_only_plane_sizes(void)
{
    const int subsamps[] = {TJSAMP_422, TJSAMP_420, TJSAMP_GRAY};
    const uint32_t tj_sizes[][2] = {{17, 19}, {1920, 1080}, {640, 360}, {33, 8}, {1, 1}, {50, 3}};
    struct encoder *enc;

    CHECK_EQ_INT(encoder_create(75, &enc), 0);
    for (int k = 0; k < 3; k++)
        for (size_t s = 0; s < sizeof(tj_sizes) / sizeof(tj_sizes[0]); s++) {
            uint32_t w = tj_sizes[s][0], h = tj_sizes[s][1];
            struct guarded planes[3];
            struct yuv_planar img = {.width = w, .height = h, .subsamp = subsamps[k]};
            int n = subsamps[k] == TJSAMP_GRAY ? 1 : 3;
            size_t cap = encoder_max_size_planar(w, h, subsamps[k]), size;
            uint8_t *jpeg = xmalloc(cap);

            for (int c = 0; c < n; c++) {
                int pw = tjPlaneWidth(c, (int)w, subsamps[k]);
                int ph = tjPlaneHeight(c, (int)h, subsamps[k]);
                guarded_alloc(&planes[c], (size_t)pw * (size_t)ph);
                memset(planes[c].data, c ? 128 : 90, (size_t)pw * (size_t)ph);
                img.plane[c] = planes[c].data;
                img.stride[c] = pw;
            }
            CHECKF(encoder_encode_planar(enc, &img, jpeg, cap, &size) == 0, "%ux%u subsamp %d", w,
                   h, subsamps[k]);
            for (int c = 0; c < n; c++)
                guarded_free(&planes[c]);
            free(jpeg);
        }
    encoder_destroy(enc);
}

static void test_grey_is_one_component(void)
{
    static uint8_t grey[40 * 30];
    struct yuv_planar v;
    struct encoder *enc;
    size_t cap = encoder_max_size_planar(40, 30, TJSAMP_GRAY), size;
    uint8_t *jpeg = xmalloc(cap);
    int jw, jh, jsub, jcs;

    for (size_t i = 0; i < sizeof(grey); i++)
        grey[i] = (uint8_t)(i * 7);
    CHECK_EQ_INT(encoder_create(80, &enc), 0);
    yuv_view_grey(&v, grey, 40, 30, 40);
    CHECK_EQ_INT(encoder_encode_planar(enc, &v, jpeg, cap, &size), 0);
    CHECK_EQ_INT(tjDecompressHeader3(decoder, jpeg, (unsigned long)size, &jw, &jh, &jsub, &jcs), 0);
    CHECK(jw == 40 && jh == 30 && jsub == TJSAMP_GRAY && jcs == TJCS_GRAY);
    CHECK_EQ_INT(sof_components(jpeg, size), 1);
    encoder_destroy(enc);
    free(jpeg);
}

static void test_encode_errors(void)
{
    struct yuv_planar p;
    struct encoder *enc;
    size_t cap = encoder_max_size_planar(64, 48, TJSAMP_422), size = 12345;
    uint8_t *jpeg = xmalloc(cap);
    static uint8_t rgb[64 * 48 * 3];

    CHECK(cap > 0 && encoder_max_size_planar(64, 48, TJSAMP_420) < cap);
    CHECK(encoder_max_size_planar(64, 48, TJSAMP_GRAY) <
          encoder_max_size_planar(64, 48, TJSAMP_420));
    CHECK_EQ_INT(encoder_max_size_planar(64, 48, TJSAMP_444), 0);
    CHECK_EQ_INT(encoder_max_size_planar(0, 48, TJSAMP_422), 0);
    CHECK_EQ_INT(encoder_max_size_rgb(64, 48), cap);
    CHECK_EQ_INT(encoder_create(0, &enc), -EINVAL);
    CHECK_EQ_INT(encoder_create(80, &enc), 0);
    yuv_planar_alloc(&p, 64, 48, TJSAMP_422);
    CHECK_EQ_INT(encoder_encode_planar(enc, &p, jpeg, cap - 1, &size), -ENOSPC);
    CHECK_EQ_INT(size, 12345);
    p.subsamp = TJSAMP_444;
    CHECK_EQ_INT(encoder_encode_planar(enc, &p, jpeg, cap, &size), -EINVAL);
    p.subsamp = TJSAMP_422;
    uint8_t *cr = p.plane[2];
    p.plane[2] = NULL;
    CHECK_EQ_INT(encoder_encode_planar(enc, &p, jpeg, cap, &size), -EINVAL);
    p.plane[2] = cr;
    CHECK_EQ_INT(encoder_encode_planar(enc, &p, jpeg, cap, &size), 0);
    CHECK_EQ_INT(encoder_encode_rgb(enc, rgb, 64, 48, 191, 0, jpeg, cap, &size), -EINVAL);
    CHECK_EQ_INT(encoder_encode_rgb(enc, rgb, 64, 48, 192, 0, jpeg, cap - 1, &size), -ENOSPC);
    yuv_planar_free(&p);
    encoder_destroy(enc);
    free(jpeg);
}

/* RGB24 and BGR24 encode to the same picture when their bytes are swapped accordingly. */
static void test_rgb_and_bgr(void)
{
    const uint32_t w = 48, h = 32;
    size_t stride = w * 3 + 5;
    uint8_t *rgb = xcalloc(stride * h, 1), *bgr = xcalloc(stride * h, 1);
    uint8_t decoded[48 * 32 * 3];
    size_t cap = encoder_max_size_rgb(w, h), size;
    uint8_t *jpeg = xmalloc(cap);
    struct encoder *enc;
    int worst = 0;

    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint8_t *px = rgb + y * stride + 3 * x, *bx = bgr + y * stride + 3 * x;
            px[0] = (uint8_t)(x < w / 2 ? 220 : 30); /* red left half */
            px[1] = (uint8_t)(40 + 4 * y);
            px[2] = (uint8_t)(y < h / 2 ? 200 : 20); /* blue top half */
            bx[0] = px[2];
            bx[1] = px[1];
            bx[2] = px[0];
        }
    CHECK_EQ_INT(encoder_create(90, &enc), 0);
    for (int pass = 0; pass < 2; pass++) {
        CHECK_EQ_INT(
            encoder_encode_rgb(enc, pass ? bgr : rgb, w, h, stride, pass, jpeg, cap, &size), 0);
        CHECK_EQ_INT(tjDecompress2(decoder, jpeg, (unsigned long)size, decoded, (int)w, 0, (int)h,
                                   TJPF_RGB, 0),
                     0);
        /* Compare away from the colour edges, where 4:2:2 chroma legitimately blurs. */
        for (uint32_t y = 4; y < h - 4; y++)
            for (uint32_t x = 4; x < w - 4; x++) {
                if (y > h / 2 - 4 && y < h / 2 + 4)
                    continue;
                if (x > w / 2 - 4 && x < w / 2 + 4)
                    continue;
                for (int c = 0; c < 3; c++) {
                    int d =
                        abs((int)decoded[3 * (y * w + x) + c] - (int)rgb[y * stride + 3 * x + c]);
                    worst = d > worst ? d : worst;
                }
            }
    }
    CHECKF(worst <= 12, "worst channel error %d", worst);
    encoder_destroy(enc);
    free(jpeg);
    free(rgb);
    free(bgr);
}

/* The original I420 entry point still produces a 4:2:0 JPEG. */
static void test_i420_still_works(void)
{
    struct draw_image img;
    struct encoder *enc;
    size_t cap = encoder_max_size(33, 17), size;
    uint8_t *jpeg = xmalloc(cap);
    int jw, jh, jsub, jcs;

    draw_image_alloc(&img, 33, 17);
    draw_fill(&img, draw_rgb(10, 200, 30));
    CHECK_EQ_INT(encoder_create(80, &enc), 0);
    CHECK_EQ_INT(encoder_encode_i420(enc, &img, jpeg, cap - 1, &size), -ENOSPC);
    CHECK_EQ_INT(encoder_encode_i420(enc, &img, jpeg, cap, &size), 0);
    CHECK_EQ_INT(tjDecompressHeader3(decoder, jpeg, (unsigned long)size, &jw, &jh, &jsub, &jcs), 0);
    CHECK(jw == 33 && jh == 17 && jsub == TJSAMP_420);
    encoder_destroy(enc);
    draw_image_free(&img);
    free(jpeg);
}

int main(void)
{
    rng_seed(0x9e3779b97f4a7c15ull);
    log_init("test_yuv", 0);
    decoder = tjInitDecompress();
    if (!decoder)
        return 1;
    RUN_TEST(test_alloc_layout);
    RUN_TEST(test_packed_matches_reference);
    RUN_TEST(test_420_matches_reference);
    RUN_TEST(test_views);
    RUN_TEST(test_v4l2_dispatch);
    RUN_TEST(test_round_trip);
    RUN_TEST(test_turbojpeg_reads_only_plane_sizes);
    RUN_TEST(test_grey_is_one_component);
    RUN_TEST(test_encode_errors);
    RUN_TEST(test_rgb_and_bgr);
    RUN_TEST(test_i420_still_works);
    tjDestroy(decoder);
    return check_summary();
}
