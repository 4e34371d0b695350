/* yuv.c - V4L2 camera pixel formats to the planar YCbCr TurboJPEG encodes, with no RGB step. */
#include "yuv.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <linux/videodev2.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Row alignment of allocated planes: whole cache lines, and aligned vector loads and stores. */
#define YUV_ROW_ALIGN 32u

/*
 * The hot loops work on fixed blocks of 16 pixel pairs (64 bytes of packed 4:2:2, 32 bytes of
 * interleaved chroma). A constant trip count with restrict pointers is what lets GCC's -O2
 * vectoriser (cheap cost model: no runtime alias checks, no epilogue) turn a block into a few
 * SSE2 loads, pand/psrlw/packuswb and stores; the scalar tail handles the last < 16 pairs of a
 * row once per row, so there is no per-pixel branch.
 */
#define YUV_BLOCK_PAIRS 16u

static uint32_t round_up(uint32_t v, uint32_t to)
{
    return (v + to - 1) / to * to;
}

static int valid_subsamp(int subsamp)
{
    return subsamp == TJSAMP_422 || subsamp == TJSAMP_420 || subsamp == TJSAMP_GRAY;
}

static int plane_count(int subsamp)
{
    return subsamp == TJSAMP_GRAY ? 1 : 3;
}

void yuv_planar_alloc(struct yuv_planar *p, uint32_t w, uint32_t h, int subsamp)
{
    size_t offset[3], total = 0;
    int n;

    assert(w >= 1 && w <= YUV_MAX_DIMENSION && h >= 1 && h <= YUV_MAX_DIMENSION);
    assert(valid_subsamp(subsamp));
    memset(p, 0, sizeof(*p));
    p->width = w;
    p->height = h;
    p->subsamp = subsamp;
    n = plane_count(subsamp);
    /* Size the planes for the image rounded up to whole MCUs: more than TurboJPEG reads today
       (see yuv.h), so a library that read whole MCUs in place would still stay inside, and the
       zeroed extra keeps such reads defined. */
    uint32_t mcu_w = round_up(w, (uint32_t)tjMCUWidth[subsamp]);
    uint32_t mcu_h = round_up(h, (uint32_t)tjMCUHeight[subsamp]);
    for (int c = 0; c < n; c++) {
        int plane_w = tjPlaneWidth(c, (int)mcu_w, subsamp);
        int plane_h = tjPlaneHeight(c, (int)mcu_h, subsamp);
        assert(plane_w > 0 && plane_h > 0);
        p->stride[c] = (int)round_up((uint32_t)plane_w, YUV_ROW_ALIGN);
        offset[c] = total;
        total += (size_t)p->stride[c] * (size_t)plane_h;
    }
    /* One block, with slack to align its start. */
    p->storage = xcalloc(1, total + YUV_ROW_ALIGN);
    uintptr_t base = ((uintptr_t)p->storage + YUV_ROW_ALIGN - 1) & ~(uintptr_t)(YUV_ROW_ALIGN - 1);
    for (int c = 0; c < n; c++)
        p->plane[c] = (uint8_t *)base + offset[c];
}

void yuv_planar_free(struct yuv_planar *p)
{
    if (!p)
        return;
    free(p->storage);
    memset(p, 0, sizeof(*p));
}

/* ---- Packed 4:2:2 ------------------------------------------------------------------------- */

/* Byte positions of the four samples inside one packed pixel pair (a "macropixel"). */
struct pair_layout {
    unsigned y0, cb, y1, cr;
};

/*
 * Splits one row of packed pixel pairs into its Y, Cb and Cr rows. Always inlined with a constant
 * layout, so each format gets its own loop with fixed offsets for the vectoriser. For an odd
 * width, only the first two bytes of the last pair exist (width * 2 bytes per row): they hold its
 * luma and one chroma sample; the other chroma sample is taken from the previous pair.
 */
static inline __attribute__((always_inline)) void
packed422_row(const uint8_t *restrict src, uint8_t *restrict y, uint8_t *restrict cb,
              uint8_t *restrict cr, uint32_t width, struct pair_layout l)
{
    uint32_t pairs = width / 2, blocks = pairs / YUV_BLOCK_PAIRS;
    uint32_t i;

    for (uint32_t b = 0; b < blocks; b++) {
        for (unsigned k = 0; k < YUV_BLOCK_PAIRS; k++) {
            y[2 * k] = src[4 * k + l.y0];
            y[2 * k + 1] = src[4 * k + l.y1];
            cb[k] = src[4 * k + l.cb];
            cr[k] = src[4 * k + l.cr];
        }
        src += 4 * YUV_BLOCK_PAIRS;
        y += 2 * YUV_BLOCK_PAIRS;
        cb += YUV_BLOCK_PAIRS;
        cr += YUV_BLOCK_PAIRS;
    }
    for (i = 0; i < pairs - blocks * YUV_BLOCK_PAIRS; i++) {
        y[2 * i] = src[4 * i + l.y0];
        y[2 * i + 1] = src[4 * i + l.y1];
        cb[i] = src[4 * i + l.cb];
        cr[i] = src[4 * i + l.cr];
    }
    if (width & 1) {
        const uint8_t *last = src + 4 * i;
        uint8_t luma = last[l.y0 < 2 ? l.y0 : l.y1];

        /* The Y plane is padded to an even width: repeat the last pixel. */
        y[2 * i] = luma;
        y[2 * i + 1] = luma;
        /* cb/cr were advanced past the blocks: the previous pair is at cb + i - 1 whenever
           the row has one (pairs > 0), even when i is 0. */
        cb[i] = l.cb < 2 ? last[l.cb] : (pairs ? *(cb + i - 1) : 128);
        cr[i] = l.cr < 2 ? last[l.cr] : (pairs ? *(cr + i - 1) : 128);
    }
}

/* Rows of one layout; always inlined so that each layout gets its own constant-offset loop. */
static inline __attribute__((always_inline)) void
packed422_rows(const uint8_t *src, size_t src_stride, uint32_t width, uint32_t rows,
               uint8_t *const dst[3], const size_t dst_stride[3], struct pair_layout l)
{
    for (uint32_t row = 0; row < rows; row++)
        packed422_row(src + row * src_stride, dst[0] + row * dst_stride[0],
                      dst[1] + row * dst_stride[1], dst[2] + row * dst_stride[2], width, l);
}

static const struct pair_layout layout_yuyv = {.y0 = 0, .cb = 1, .y1 = 2, .cr = 3};
static const struct pair_layout layout_uyvy = {.cb = 0, .y0 = 1, .cr = 2, .y1 = 3};
static const struct pair_layout layout_yvyu = {.y0 = 0, .cr = 1, .y1 = 2, .cb = 3};

int yuv_packed422_rows(uint32_t fourcc, const uint8_t *src, size_t src_stride, uint32_t width,
                       uint32_t rows, uint8_t *const dst[3], const size_t dst_stride[3])
{
    switch (fourcc) {
    case V4L2_PIX_FMT_YUYV:
        packed422_rows(src, src_stride, width, rows, dst, dst_stride, layout_yuyv);
        return 0;
    case V4L2_PIX_FMT_UYVY:
        packed422_rows(src, src_stride, width, rows, dst, dst_stride, layout_uyvy);
        return 0;
    case V4L2_PIX_FMT_YVYU:
        packed422_rows(src, src_stride, width, rows, dst, dst_stride, layout_yvyu);
        return 0;
    default:
        return -EINVAL;
    }
}

/* A whole image: the rows above, with dst's planes. */
static void packed422_image(struct yuv_planar *dst, const uint8_t *src, size_t src_stride,
                            uint32_t fourcc)
{
    size_t strides[3] = {(size_t)dst->stride[0], (size_t)dst->stride[1], (size_t)dst->stride[2]};
    int rc;

    assert(dst->subsamp == TJSAMP_422);
    rc = yuv_packed422_rows(fourcc, src, src_stride, dst->width, dst->height, dst->plane, strides);
    assert(rc == 0);
    (void)rc;
}

void yuv_from_yuyv(struct yuv_planar *dst, const uint8_t *src, size_t src_stride)
{
    packed422_image(dst, src, src_stride, V4L2_PIX_FMT_YUYV);
}

void yuv_from_uyvy(struct yuv_planar *dst, const uint8_t *src, size_t src_stride)
{
    packed422_image(dst, src, src_stride, V4L2_PIX_FMT_UYVY);
}

void yuv_from_yvyu(struct yuv_planar *dst, const uint8_t *src, size_t src_stride)
{
    packed422_image(dst, src, src_stride, V4L2_PIX_FMT_YVYU);
}

/* ---- 4:2:0 -------------------------------------------------------------------------------- */

/* Copies the Y plane of a 4:2:0 source (rows of width bytes) and fills the even-size padding. */
static void copy_luma_420(struct yuv_planar *dst, const uint8_t *src, size_t src_stride)
{
    uint32_t w = dst->width, h = dst->height;
    size_t dst_stride = (size_t)dst->stride[0];
    uint8_t *y = dst->plane[0];

    for (uint32_t row = 0; row < h; row++) {
        uint8_t *out = y + row * dst_stride;
        memcpy(out, src + row * src_stride, w);
        if (w & 1)
            out[w] = out[w - 1];
    }
    if (h & 1)
        memcpy(y + h * dst_stride, y + (h - 1) * dst_stride, (size_t)((w + 1) & ~1u));
}

/* Splits one row of interleaved chroma pairs (first, second) into two rows. */
static void split_pairs_row(const uint8_t *restrict src, uint8_t *restrict first,
                            uint8_t *restrict second, uint32_t pairs)
{
    uint32_t blocks = pairs / YUV_BLOCK_PAIRS;

    for (uint32_t b = 0; b < blocks; b++) {
        for (unsigned k = 0; k < YUV_BLOCK_PAIRS; k++) {
            first[k] = src[2 * k];
            second[k] = src[2 * k + 1];
        }
        src += 2 * YUV_BLOCK_PAIRS;
        first += YUV_BLOCK_PAIRS;
        second += YUV_BLOCK_PAIRS;
    }
    for (uint32_t i = 0; i < pairs - blocks * YUV_BLOCK_PAIRS; i++) {
        first[i] = src[2 * i];
        second[i] = src[2 * i + 1];
    }
}

int yuv_semiplanar_chroma_rows(uint32_t fourcc, const uint8_t *src, size_t src_stride,
                               uint32_t pairs, uint32_t rows, uint8_t *cb, size_t cb_stride,
                               uint8_t *cr, size_t cr_stride)
{
    uint8_t *first, *second;
    size_t first_stride, second_stride;

    if (fourcc == V4L2_PIX_FMT_NV12) {
        first = cb, first_stride = cb_stride, second = cr, second_stride = cr_stride;
    } else if (fourcc == V4L2_PIX_FMT_NV21) {
        first = cr, first_stride = cr_stride, second = cb, second_stride = cb_stride;
    } else {
        return -EINVAL;
    }
    for (uint32_t row = 0; row < rows; row++)
        split_pairs_row(src + row * src_stride, first + row * first_stride,
                        second + row * second_stride, pairs);
    return 0;
}

static void semiplanar_420(struct yuv_planar *dst, const uint8_t *src, size_t src_stride,
                           uint32_t fourcc)
{
    uint32_t chroma_w = (dst->width + 1) / 2, chroma_h = (dst->height + 1) / 2;
    const uint8_t *uv = src + (size_t)dst->height * src_stride;
    int rc;

    assert(dst->subsamp == TJSAMP_420);
    copy_luma_420(dst, src, src_stride);
    rc = yuv_semiplanar_chroma_rows(fourcc, uv, src_stride, chroma_w, chroma_h, dst->plane[1],
                                    (size_t)dst->stride[1], dst->plane[2], (size_t)dst->stride[2]);
    assert(rc == 0);
    (void)rc;
}

void yuv_from_nv12(struct yuv_planar *dst, const uint8_t *src, size_t src_stride)
{
    semiplanar_420(dst, src, src_stride, V4L2_PIX_FMT_NV12);
}

void yuv_from_nv21(struct yuv_planar *dst, const uint8_t *src, size_t src_stride)
{
    semiplanar_420(dst, src, src_stride, V4L2_PIX_FMT_NV21);
}

void yuv_from_yu12(struct yuv_planar *dst, const uint8_t *src, size_t src_stride)
{
    uint32_t chroma_w = (dst->width + 1) / 2, chroma_h = (dst->height + 1) / 2;
    size_t chroma_stride = src_stride / 2;
    const uint8_t *cb = src + (size_t)dst->height * src_stride;
    const uint8_t *cr = cb + chroma_h * chroma_stride;

    assert(dst->subsamp == TJSAMP_420);
    copy_luma_420(dst, src, src_stride);
    for (uint32_t row = 0; row < chroma_h; row++) {
        memcpy(dst->plane[1] + (size_t)row * (size_t)dst->stride[1], cb + row * chroma_stride,
               chroma_w);
        memcpy(dst->plane[2] + (size_t)row * (size_t)dst->stride[2], cr + row * chroma_stride,
               chroma_w);
    }
}

/* ---- Views -------------------------------------------------------------------------------- */

/* The views cast away const: plane[] is writable for images the converters fill, but a view is
   only ever passed to the encoder, which reads it. */
void yuv_view_yu12(struct yuv_planar *view, const uint8_t *src, uint32_t w, uint32_t h,
                   size_t stride)
{
    size_t chroma_stride = stride / 2;

    memset(view, 0, sizeof(*view));
    view->width = w;
    view->height = h;
    view->subsamp = TJSAMP_420;
    view->plane[0] = (uint8_t *)src;
    view->plane[1] = (uint8_t *)src + (size_t)h * stride;
    view->plane[2] = view->plane[1] + (size_t)((h + 1) / 2) * chroma_stride;
    view->stride[0] = (int)stride;
    view->stride[1] = (int)chroma_stride;
    view->stride[2] = (int)chroma_stride;
}

void yuv_view_grey(struct yuv_planar *view, const uint8_t *src, uint32_t w, uint32_t h,
                   size_t stride)
{
    memset(view, 0, sizeof(*view));
    view->width = w;
    view->height = h;
    view->subsamp = TJSAMP_GRAY;
    view->plane[0] = (uint8_t *)src;
    view->stride[0] = (int)stride;
}

/* ---- V4L2 dispatch ------------------------------------------------------------------------ */

int yuv_v4l2_subsamp(uint32_t fourcc)
{
    switch (fourcc) {
    case V4L2_PIX_FMT_YUYV:
    case V4L2_PIX_FMT_UYVY:
    case V4L2_PIX_FMT_YVYU:
        return TJSAMP_422;
    case V4L2_PIX_FMT_NV12:
    case V4L2_PIX_FMT_NV21:
    case V4L2_PIX_FMT_YUV420:
        return TJSAMP_420;
    case V4L2_PIX_FMT_GREY:
        return TJSAMP_GRAY;
    default:
        return -1;
    }
}

size_t yuv_v4l2_min_stride(uint32_t fourcc, uint32_t w)
{
    switch (fourcc) {
    case V4L2_PIX_FMT_YUYV:
    case V4L2_PIX_FMT_UYVY:
    case V4L2_PIX_FMT_YVYU:
        return 2 * (size_t)w;
    case V4L2_PIX_FMT_NV12:
    case V4L2_PIX_FMT_NV21:
    case V4L2_PIX_FMT_YUV420:
        /* A chroma row holds (w+1)/2 pairs (NV12) or samples in half a stride (YU12). */
        return 2 * (((size_t)w + 1) / 2);
    case V4L2_PIX_FMT_GREY:
        return w;
    default:
        return 0;
    }
}

size_t yuv_v4l2_frame_bytes(uint32_t fourcc, uint32_t w, uint32_t h, size_t stride)
{
    size_t chroma_w = ((size_t)w + 1) / 2, chroma_h = ((size_t)h + 1) / 2;

    if (w == 0 || h == 0)
        return 0;
    switch (fourcc) {
    case V4L2_PIX_FMT_YUYV:
    case V4L2_PIX_FMT_UYVY:
    case V4L2_PIX_FMT_YVYU:
        return stride * (h - 1) + 2 * (size_t)w;
    case V4L2_PIX_FMT_NV12:
    case V4L2_PIX_FMT_NV21:
        return stride * h + stride * (chroma_h - 1) + 2 * chroma_w;
    case V4L2_PIX_FMT_YUV420:
        return stride * h + (stride / 2) * chroma_h + (stride / 2) * (chroma_h - 1) + chroma_w;
    case V4L2_PIX_FMT_GREY:
        return stride * (h - 1) + w;
    default:
        return 0;
    }
}

int yuv_from_v4l2(struct yuv_planar *scratch, struct yuv_planar *out, uint32_t fourcc,
                  const uint8_t *src, size_t len, size_t src_stride)
{
    int subsamp = yuv_v4l2_subsamp(fourcc);
    uint32_t w = scratch->width, h = scratch->height;

    if (subsamp < 0 || subsamp != scratch->subsamp || !scratch->plane[0])
        return -EINVAL;
    if (src_stride < yuv_v4l2_min_stride(fourcc, w) || src_stride > INT_MAX)
        return -EINVAL;
    if (len < yuv_v4l2_frame_bytes(fourcc, w, h, src_stride))
        return -EBADMSG;
    switch (fourcc) {
    case V4L2_PIX_FMT_GREY:
        yuv_view_grey(out, src, w, h, src_stride);
        return 0;
    case V4L2_PIX_FMT_YUV420:
        /* Even sizes have no padding for TurboJPEG to read: encode from the driver's buffer. */
        if (!((w | h) & 1)) {
            yuv_view_yu12(out, src, w, h, src_stride);
            return 0;
        }
        yuv_from_yu12(scratch, src, src_stride);
        break;
    case V4L2_PIX_FMT_YUYV:
        yuv_from_yuyv(scratch, src, src_stride);
        break;
    case V4L2_PIX_FMT_UYVY:
        yuv_from_uyvy(scratch, src, src_stride);
        break;
    case V4L2_PIX_FMT_YVYU:
        yuv_from_yvyu(scratch, src, src_stride);
        break;
    case V4L2_PIX_FMT_NV12:
        yuv_from_nv12(scratch, src, src_stride);
        break;
    case V4L2_PIX_FMT_NV21:
        yuv_from_nv21(scratch, src, src_stride);
        break;
    }
    *out = *scratch;
    out->storage = NULL;
    return 0;
}
