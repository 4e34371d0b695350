/* encoder.c - JPEG encoding from YUV (TurboJPEG, libjpeg), straight into a caller's buffer. */
#include "encoder.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <linux/videodev2.h>
#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include <jpeglib.h>

#include "util.h"
#include "yuv.h"

/* Subsampling of the RGB fallback: 4:2:2, like the YUYV cameras it stands in for. */
#define ENCODER_RGB_SUBSAMP TJSAMP_422

/* TJFLAG_NOREALLOC: TurboJPEG writes into the buffer we were given (it assumes tjBufSize bytes,
   which every encode checks first) and never allocates one. */
#define ENCODER_FLAGS (TJFLAG_NOREALLOC | TJFLAG_FASTDCT)

/* Most rows one component contributes to an iMCU row (v_samp_factor 2 x DCTSIZE, 4:2:0 luma). */
#define ENCODER_MAX_IMCU_ROWS (2 * DCTSIZE)

/* Stripe rows are this aligned and padded: whole cache lines, and room for the MCU padding. */
#define ENCODER_STRIPE_ALIGN 64u

struct encoder {
    tjhandle tj;
    int quality;

    /* ---- libjpeg state of the fused path (encoder_encode_v4l2), set up once ---- */
    struct jpeg_compress_struct cinfo; /* client_data points back here */
    struct jpeg_error_mgr jerr;
    struct jpeg_destination_mgr dest;
    int jpeg_ready;   /* jpeg_create_compress succeeded (jpeg_destroy_compress needed) */
    int jpeg_subsamp; /* TJSAMP_* cinfo's colour space and sampling are set for, -1: none */
    jmp_buf escape;   /* where libjpeg errors and a full destination leave the encode */
    int overflow;     /* the JPEG did not fit: the escape means -ENOSPC, not -EIO */
    int warned;       /* libjpeg warned during this encode (TurboJPEG fails those too) */
    uint8_t *out;     /* the caller's buffer and its size, for the destination manager */
    size_t out_capacity;
    /* Where libjpeg continues once the caller's buffer is exactly full: a JPEG that ends right
       there still fits; any byte landing here means it does not (see dest_full). */
    uint8_t spill[16];
    int spilled;
    /* The stripe: one iMCU row of each component, converted from the frame just before libjpeg
       encodes it, so the rows are still in L1/L2. Allocated for stripe_width and kept. */
    void *stripe_storage;
    uint32_t stripe_width;
    uint8_t *stripe[3];
    size_t stripe_stride[3];
    JSAMPROW rows[3][ENCODER_MAX_IMCU_ROWS]; /* what jpeg_write_raw_data reads */
};

static int jpeg_setup(struct encoder *e);

int encoder_create(int quality, struct encoder **out)
{
    struct encoder *e;

    *out = NULL;
    if (quality < 1 || quality > 100)
        return -EINVAL;
    e = xcalloc(1, sizeof(*e));
    e->quality = quality;
    e->tj = tjInitCompress();
    if (!e->tj || jpeg_setup(e) < 0) {
        encoder_destroy(e);
        return -ENOMEM;
    }
    *out = e;
    return 0;
}

void encoder_destroy(struct encoder *e)
{
    if (!e)
        return;
    if (e->tj)
        tjDestroy(e->tj);
    if (e->jpeg_ready)
        jpeg_destroy_compress(&e->cinfo);
    free(e->stripe_storage);
    free(e);
}

size_t encoder_max_size_planar(uint32_t w, uint32_t h, int subsamp)
{
    unsigned long n;

    if (w < 1 || h < 1 || w > YUV_MAX_DIMENSION || h > YUV_MAX_DIMENSION)
        return 0;
    if (subsamp != TJSAMP_422 && subsamp != TJSAMP_420 && subsamp != TJSAMP_GRAY)
        return 0;
    n = tjBufSize((int)w, (int)h, subsamp);
    return n == (unsigned long)-1 ? 0 : (size_t)n;
}

size_t encoder_max_size(uint32_t width, uint32_t height)
{
    return encoder_max_size_planar(width, height, TJSAMP_420);
}

size_t encoder_max_size_rgb(uint32_t w, uint32_t h)
{
    return encoder_max_size_planar(w, h, ENCODER_RGB_SUBSAMP);
}

/* The one call into tjCompressFromYUVPlanes; the caller has checked the image. */
static int encode_planes(struct encoder *e, const unsigned char *const planes[3],
                         const int strides[3], uint32_t w, uint32_t h, int subsamp, uint8_t *dst,
                         size_t capacity, size_t *size)
{
    const unsigned char *tj_planes[3] = {planes[0], planes[1], planes[2]};
    int tj_strides[3] = {strides[0], strides[1], strides[2]};
    unsigned char *out = dst;
    unsigned long out_size = (unsigned long)capacity;
    size_t need = encoder_max_size_planar(w, h, subsamp);

    if (need == 0)
        return -EINVAL;
    if (capacity < need)
        return -ENOSPC;
    if (tjCompressFromYUVPlanes(e->tj, tj_planes, (int)w, tj_strides, (int)h, subsamp, &out,
                                &out_size, e->quality, ENCODER_FLAGS) != 0) {
        log_error("JPEG encode failed: %s", tjGetErrorStr2(e->tj));
        return -EIO;
    }
    *size = (size_t)out_size;
    return 0;
}

int encoder_encode_i420(struct encoder *e, const struct draw_image *img, uint8_t *dst,
                        size_t capacity, size_t *size)
{
    const unsigned char *planes[3] = {img->plane[0], img->plane[1], img->plane[2]};
    int strides[3] = {(int)img->stride[0], (int)img->stride[1], (int)img->stride[2]};

    return encode_planes(e, planes, strides, img->width, img->height, TJSAMP_420, dst, capacity,
                         size);
}

int encoder_encode_planar(struct encoder *e, const struct yuv_planar *img, uint8_t *dst,
                          size_t capacity, size_t *size)
{
    const unsigned char *planes[3] = {img->plane[0], img->plane[1], img->plane[2]};

    if (!img->plane[0] || (img->subsamp != TJSAMP_GRAY && (!img->plane[1] || !img->plane[2])))
        return -EINVAL;
    return encode_planes(e, planes, img->stride, img->width, img->height, img->subsamp, dst,
                         capacity, size);
}

int encoder_encode_rgb(struct encoder *e, const uint8_t *rgb, uint32_t w, uint32_t h, size_t stride,
                       int bgr, uint8_t *dst, size_t capacity, size_t *size)
{
    unsigned char *out = dst;
    unsigned long out_size = (unsigned long)capacity;
    size_t need = encoder_max_size_rgb(w, h);

    if (need == 0 || stride < 3 * (size_t)w || stride > INT_MAX)
        return -EINVAL;
    if (capacity < need)
        return -ENOSPC;
    if (tjCompress2(e->tj, rgb, (int)w, (int)stride, (int)h, bgr ? TJPF_BGR : TJPF_RGB, &out,
                    &out_size, ENCODER_RGB_SUBSAMP, e->quality, ENCODER_FLAGS) != 0) {
        log_error("JPEG encode failed: %s", tjGetErrorStr2(e->tj));
        return -EIO;
    }
    *size = (size_t)out_size;
    return 0;
}

/* ---- Fused V4L2 path: libjpeg's raw-data API, converting one iMCU row at a time ------------ */

/* libjpeg's error_exit: log the reason and leave the encode (libjpeg's default would exit()). */
static void jpeg_fail(j_common_ptr cinfo)
{
    struct encoder *e = cinfo->client_data;
    char msg[JMSG_LENGTH_MAX];

    cinfo->err->format_message(cinfo, msg);
    log_error("JPEG encode failed: %s", msg);
    longjmp(e->escape, 1);
}

/* libjpeg's emit_message: warnings (level -1) are logged and fail the encode afterwards, as
   TurboJPEG does; trace messages (level >= 0) stay off (trace_level is 0). */
static void jpeg_message(j_common_ptr cinfo, int level)
{
    struct encoder *e = cinfo->client_data;
    char msg[JMSG_LENGTH_MAX];

    if (level >= 0)
        return;
    e->warned = 1;
    cinfo->err->format_message(cinfo, msg);
    log_warn("JPEG encode: %s", msg);
}

/* libjpeg's output_message; only the two above would call it, but never let it reach stderr. */
static void jpeg_output(j_common_ptr cinfo)
{
    char msg[JMSG_LENGTH_MAX];

    cinfo->err->format_message(cinfo, msg);
    log_error("JPEG encode: %s", msg);
}

static void dest_start(j_compress_ptr cinfo)
{
    struct encoder *e = cinfo->client_data;

    cinfo->dest->next_output_byte = e->out;
    cinfo->dest->free_in_buffer = e->out_capacity;
    e->spilled = 0;
}

/*
 * libjpeg calls this when the buffer is full, which it notices right after storing the last
 * byte that fits, before it knows whether more will follow. The first time, let it continue
 * into the spill area: if the JPEG was complete nothing lands there (dest_used checks). The
 * second time, the JPEG certainly does not fit: leave the encode. libjpeg never stores more
 * than free_in_buffer bytes, so nothing is written past capacity.
 */
static boolean dest_full(j_compress_ptr cinfo)
{
    struct encoder *e = cinfo->client_data;

    if (e->spilled) {
        e->overflow = 1;
        longjmp(e->escape, 1);
    }
    e->spilled = 1;
    cinfo->dest->next_output_byte = e->spill;
    cinfo->dest->free_in_buffer = sizeof(e->spill);
    return TRUE;
}

static void dest_end(j_compress_ptr cinfo)
{
    (void)cinfo; /* the size is read from the manager after jpeg_finish_compress */
}

/* Bytes the finished JPEG has in the caller's buffer; sets overflow when some went to spill. */
static size_t dest_used(struct encoder *e)
{
    if (!e->spilled)
        return e->out_capacity - e->dest.free_in_buffer;
    if (e->dest.free_in_buffer != sizeof(e->spill))
        e->overflow = 1;
    return e->out_capacity;
}

/* Creates the compress object and sets what every frame shares, the way TurboJPEG's encodes
   set it (setCompDefaults: quality, DCT, JFIF YCbCr): done once per encoder, not per frame.
   Returns 0, or -ENOMEM when libjpeg fails (logged). */
static int jpeg_setup(struct encoder *e)
{
    struct jpeg_compress_struct *cinfo = &e->cinfo;

    cinfo->err = jpeg_std_error(&e->jerr);
    e->jerr.error_exit = jpeg_fail;
    e->jerr.emit_message = jpeg_message;
    e->jerr.output_message = jpeg_output;
    cinfo->client_data = e;
    e->jpeg_subsamp = -1;
    if (setjmp(e->escape))
        return -ENOMEM; /* jpeg_fail logged why; encoder_destroy cleans up */
    jpeg_create_compress(cinfo);
    e->jpeg_ready = 1;
    cinfo->in_color_space = JCS_YCbCr;
    cinfo->input_components = 3;
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, e->quality, TRUE);
    /* TurboJPEG's TJFLAG_FASTDCT: the fast integer DCT, except from quality 96 up, where
       TurboJPEG itself switches to the accurate one (its rounding errors would show). */
    cinfo->dct_method = e->quality >= 96 ? JDCT_ISLOW : JDCT_IFAST;
    cinfo->raw_data_in = TRUE;
    e->dest.init_destination = dest_start;
    e->dest.empty_output_buffer = dest_full;
    e->dest.term_destination = dest_end;
    cinfo->dest = &e->dest;
    return 0;
}

/* Grows the stripe to frames of width w (the first encode of a wider frame allocates; later
   ones reuse it). Luma gets the 16 rows of a 4:2:0 iMCU row, each chroma component 8. */
static void stripe_reserve(struct encoder *e, uint32_t w)
{
    size_t luma_stride = round_up_pow2(w, ENCODER_STRIPE_ALIGN);
    size_t chroma_stride = round_up_pow2(((size_t)w + 1) / 2, ENCODER_STRIPE_ALIGN);
    uintptr_t base;

    if (e->stripe_storage && w <= e->stripe_width)
        return;
    free(e->stripe_storage);
    e->stripe_storage = xmalloc(ENCODER_MAX_IMCU_ROWS * luma_stride + 2 * DCTSIZE * chroma_stride +
                                ENCODER_STRIPE_ALIGN);
    base = round_up_pow2((uintptr_t)e->stripe_storage, ENCODER_STRIPE_ALIGN);
    e->stripe[0] = (uint8_t *)base;
    e->stripe[1] = e->stripe[0] + ENCODER_MAX_IMCU_ROWS * luma_stride;
    e->stripe[2] = e->stripe[1] + DCTSIZE * chroma_stride;
    e->stripe_stride[0] = luma_stride;
    e->stripe_stride[1] = e->stripe_stride[2] = chroma_stride;
    e->stripe_width = w;
}

/* A frame as the driver delivered it. */
struct v4l2_frame {
    uint32_t fourcc;
    const uint8_t *src;
    size_t stride;
    uint32_t w, h;
    int subsamp;
};

/* Pads a row of width samples to padded by repeating its last sample, as TurboJPEG pads a
   partial MCU (libjpeg's raw-data input must cover whole DCT blocks). */
static inline void pad_row(uint8_t *row, uint32_t width, uint32_t padded)
{
    if (padded > width)
        memset(row + width, row[width - 1], padded - width);
}

/* Row pointers for count rows of a component whose first `real` rows were converted into its
   stripe (width samples each): those are padded; the rows past the image repeat the last one. */
static void rows_from_stripe(JSAMPROW *out, unsigned count, unsigned real, uint8_t *stripe,
                             size_t stripe_stride, uint32_t width, uint32_t padded)
{
    for (unsigned j = 0; j < count; j++) {
        if (j < real) {
            out[j] = stripe + j * stripe_stride;
            pad_row(out[j], width, padded);
        } else {
            out[j] = out[real - 1];
        }
    }
}

/* Row pointers for count rows of a plane (width x height samples, rows stride apart, in the
   driver's buffer) from row `first` (< height): straight into the buffer when the rows need no
   padding (libjpeg only reads raw input), else copied into the stripe and padded. Rows past the
   plane repeat its last row. */
static void rows_from_plane(JSAMPROW *out, unsigned count, const uint8_t *base, size_t stride,
                            uint32_t width, uint32_t height, uint32_t first, uint32_t padded,
                            uint8_t *stripe, size_t stripe_stride)
{
    for (unsigned j = 0; j < count; j++) {
        const uint8_t *row = base + (size_t)(first + j) * stride;

        if (first + j >= height) {
            out[j] = out[j - 1]; /* j > 0: first < height */
        } else if (padded == width) {
            out[j] = (JSAMPROW)row;
        } else {
            out[j] = stripe + j * stripe_stride;
            memcpy(out[j], row, width);
            pad_row(out[j], width, padded);
        }
    }
}

/* Fills e->rows with the iMCU row that starts at luma row row0 (libjpeg's next_scanline). */
static void fill_imcu_row(struct encoder *e, const struct v4l2_frame *f, uint32_t row0)
{
    const jpeg_component_info *comp = e->cinfo.comp_info;
    uint32_t padded[3];
    unsigned count[3];
    uint32_t cw = (f->w + 1) / 2, ch = (f->h + 1) / 2;
    const uint8_t *chroma = f->src + (size_t)f->h * f->stride;

    /* encoder_open() set up 1 component for GREY and 3 (Y, Cb, Cr) for the others. */
    assert(e->cinfo.num_components == (f->fourcc == V4L2_PIX_FMT_GREY ? 1 : 3));
    for (int c = 0; c < e->cinfo.num_components; c++) {
        padded[c] = comp[c].width_in_blocks * DCTSIZE;
        count[c] = (unsigned)comp[c].v_samp_factor * DCTSIZE;
    }
    switch (f->fourcc) {
    case V4L2_PIX_FMT_YUYV:
    case V4L2_PIX_FMT_UYVY:
    case V4L2_PIX_FMT_YVYU: {
        unsigned real = f->h - row0 < count[0] ? f->h - row0 : count[0];

        yuv_packed422_rows(f->fourcc, f->src + row0 * f->stride, f->stride, f->w, real, e->stripe,
                           e->stripe_stride);
        rows_from_stripe(e->rows[0], count[0], real, e->stripe[0], e->stripe_stride[0],
                         (f->w + 1) & ~1u, padded[0]);
        for (int c = 1; c < 3; c++)
            rows_from_stripe(e->rows[c], count[c], real, e->stripe[c], e->stripe_stride[c], cw,
                             padded[c]);
        break;
    }
    case V4L2_PIX_FMT_NV12:
    case V4L2_PIX_FMT_NV21: {
        uint32_t crow0 = row0 / 2;
        unsigned real = ch - crow0 < count[1] ? ch - crow0 : count[1];

        rows_from_plane(e->rows[0], count[0], f->src, f->stride, f->w, f->h, row0, padded[0],
                        e->stripe[0], e->stripe_stride[0]);
        yuv_semiplanar_chroma_rows(f->fourcc, chroma + crow0 * f->stride, f->stride, cw, real,
                                   e->stripe[1], e->stripe_stride[1], e->stripe[2],
                                   e->stripe_stride[2]);
        for (int c = 1; c < 3; c++)
            rows_from_stripe(e->rows[c], count[c], real, e->stripe[c], e->stripe_stride[c], cw,
                             padded[c]);
        break;
    }
    case V4L2_PIX_FMT_YUV420: {
        size_t chroma_stride = f->stride / 2;

        rows_from_plane(e->rows[0], count[0], f->src, f->stride, f->w, f->h, row0, padded[0],
                        e->stripe[0], e->stripe_stride[0]);
        for (int c = 1; c < 3; c++)
            rows_from_plane(e->rows[c], count[c], chroma + (size_t)(c - 1) * ch * chroma_stride,
                            chroma_stride, cw, ch, row0 / 2, padded[c], e->stripe[c],
                            e->stripe_stride[c]);
        break;
    }
    default: /* V4L2_PIX_FMT_GREY */
        rows_from_plane(e->rows[0], count[0], f->src, f->stride, f->w, f->h, row0, padded[0],
                        e->stripe[0], e->stripe_stride[0]);
        break;
    }
}

/* Everything that can call back into jpeg_fail or dest_full, for encoder_encode_v4l2 to run
   under its setjmp. */
static void compress_frame(struct encoder *e, const struct v4l2_frame *f)
{
    struct jpeg_compress_struct *cinfo = &e->cinfo;
    JSAMPARRAY planes[3] = {e->rows[0], e->rows[1], e->rows[2]};

    if (e->jpeg_subsamp != f->subsamp) {
        e->jpeg_subsamp = -1;
        jpeg_set_colorspace(cinfo, f->subsamp == TJSAMP_GRAY ? JCS_GRAYSCALE : JCS_YCbCr);
        /* TurboJPEG's sampling factors: luma carries the subsampling, chroma is 1x1. */
        cinfo->comp_info[0].h_samp_factor = tjMCUWidth[f->subsamp] / DCTSIZE;
        cinfo->comp_info[0].v_samp_factor = tjMCUHeight[f->subsamp] / DCTSIZE;
        for (int c = 1; c < cinfo->num_components; c++)
            cinfo->comp_info[c].h_samp_factor = cinfo->comp_info[c].v_samp_factor = 1;
        e->jpeg_subsamp = f->subsamp;
    }
    cinfo->image_width = f->w;
    cinfo->image_height = f->h;
    jpeg_start_compress(cinfo, TRUE);
    while (cinfo->next_scanline < cinfo->image_height) {
        fill_imcu_row(e, f, cinfo->next_scanline);
        jpeg_write_raw_data(cinfo, planes, (JDIMENSION)cinfo->max_v_samp_factor * DCTSIZE);
    }
    jpeg_finish_compress(cinfo);
}

int encoder_encode_v4l2(struct encoder *e, uint32_t fourcc, const uint8_t *src, size_t len,
                        size_t stride, uint32_t w, uint32_t h, uint8_t *dst, size_t capacity,
                        size_t *size)
{
    struct v4l2_frame frame = {fourcc, src, stride, w, h, yuv_v4l2_subsamp(fourcc)};
    size_t used;

    if (frame.subsamp < 0 || w < 1 || h < 1 || w > YUV_MAX_DIMENSION || h > YUV_MAX_DIMENSION)
        return -EINVAL;
    if (stride < yuv_v4l2_min_stride(fourcc, w))
        return -EINVAL;
    if (len < yuv_v4l2_frame_bytes(fourcc, w, h, stride))
        return -EBADMSG;
    if (capacity == 0)
        return -ENOSPC; /* libjpeg stores a byte before it checks for room */
    stripe_reserve(e, w);
    e->out = dst;
    e->out_capacity = capacity;
    e->overflow = 0;
    e->warned = 0;
    if (setjmp(e->escape)) {
        /* Back to the start state, ready for the next frame (frees libjpeg's per-image pool). */
        jpeg_abort_compress(&e->cinfo);
        return e->overflow ? -ENOSPC : -EIO;
    }
    compress_frame(e, &frame);
    used = dest_used(e);
    if (e->overflow)
        return -ENOSPC;
    if (e->warned)
        return -EIO;
    *size = used;
    return 0;
}
