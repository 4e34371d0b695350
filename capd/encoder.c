/* encoder.c - JPEG encoding from planar YUV with TurboJPEG, straight into a caller's buffer. */
#include "encoder.h"

#include <errno.h>
#include <stdlib.h>
#include <turbojpeg.h>

#include "util.h"

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

size_t encoder_max_size(uint32_t width, uint32_t height)
{
    unsigned long n = tjBufSize((int)width, (int)height, TJSAMP_420);
    return n == (unsigned long)-1 ? 0 : (size_t)n;
}

int encoder_encode_i420(struct encoder *e, const struct draw_image *img, uint8_t *dst,
                        size_t capacity, size_t *size)
{
    const unsigned char *planes[3] = {img->plane[0], img->plane[1], img->plane[2]};
    int strides[3] = {(int)img->stride[0], (int)img->stride[1], (int)img->stride[2]};
    unsigned char *out = dst;
    unsigned long out_size = (unsigned long)capacity;
    size_t need = encoder_max_size(img->width, img->height);

    if (need == 0 || capacity < need)
        return -ENOSPC;
    /* TJFLAG_NOREALLOC: TurboJPEG writes into the slot we were given (it
     * assumes tjBufSize bytes, checked above) and never allocates. */
    if (tjCompressFromYUVPlanes(e->tj, planes, (int)img->width, strides, (int)img->height,
                                TJSAMP_420, &out, &out_size, e->quality,
                                TJFLAG_NOREALLOC | TJFLAG_FASTDCT) != 0) {
        log_error("JPEG encode failed: %s", tjGetErrorStr2(e->tj));
        return -EIO;
    }
    *size = (size_t)out_size;
    return 0;
}
