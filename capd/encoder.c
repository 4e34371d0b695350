/* encoder.c - JPEG encoding from planar YUV with TurboJPEG, straight into a caller's buffer. */
#include "encoder.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <turbojpeg.h>

#include "util.h"
#include "yuv.h"

/* Subsampling of the RGB fallback: 4:2:2, like the YUYV cameras it stands in for. */
#define ENCODER_RGB_SUBSAMP TJSAMP_422

/* TJFLAG_NOREALLOC: TurboJPEG writes into the buffer we were given (it assumes tjBufSize bytes,
   which every encode checks first) and never allocates one. */
#define ENCODER_FLAGS (TJFLAG_NOREALLOC | TJFLAG_FASTDCT)

struct encoder {
    tjhandle tj;
    int quality;
};

int encoder_create(int quality, struct encoder **out)
{
    struct encoder *e;

    *out = NULL;
    if (quality < 1 || quality > 100)
        return -EINVAL;
    e = xcalloc(1, sizeof(*e));
    e->quality = quality;
    e->tj = tjInitCompress();
    if (!e->tj) {
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
