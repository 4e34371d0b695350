/* encoder.h - JPEG encoding from planar YUV with TurboJPEG, straight into a caller's buffer. */
#ifndef CAPD_ENCODER_H
#define CAPD_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "draw.h"

struct yuv_planar; /* yuv.h */

/*
 * Every encode writes into the caller's buffer with TJFLAG_NOREALLOC and allocates nothing of
 * its own (TurboJPEG keeps small per-call work buffers internally). All encodes use the same
 * quality and TJFLAG_FASTDCT. Returns of the encode functions: 0 with the JPEG size in *size;
 * -ENOSPC when capacity is below the matching encoder_max_size*() (nothing is written then);
 * -EINVAL for an image the encoder cannot take (bad subsampling, missing plane, size or stride
 * out of range); -EIO when TurboJPEG fails (the reason is logged).
 */
struct encoder;

/* Creates an encoder at quality [1, 100]. Returns 0, -EINVAL for a bad quality,
 * or -ENOMEM when TurboJPEG cannot initialise. One encoder per thread: an encoder
 * is not thread-safe, distinct encoders are independent. Free it with
 * encoder_destroy(). */
int encoder_create(int quality, struct encoder **out);
void encoder_destroy(struct encoder *e); /* accepts NULL */

/* The largest JPEG a 4:2:0 encode of width x height can produce: the buffer
 * size encoder_encode_i420() needs. */
size_t encoder_max_size(uint32_t width, uint32_t height);

/* Encodes an I420 image into dst (no RGB step, no allocation). Returns 0 and
 * the JPEG size in *size; -ENOSPC when capacity < encoder_max_size(); -EIO when
 * TurboJPEG fails (the reason is logged). */
int encoder_encode_i420(struct encoder *e, const struct draw_image *img, uint8_t *dst,
                        size_t capacity, size_t *size);

/* The largest JPEG an encode of width x height in subsamp (TJSAMP_422, TJSAMP_420 or
   TJSAMP_GRAY) can produce: the capacity encoder_encode_planar() needs. 0 for an invalid
   subsampling or size. */
size_t encoder_max_size_planar(uint32_t w, uint32_t h, int subsamp);

/* Encodes a planar image (converted by yuv_from_*() or a yuv_view_*()) into dst, keeping its
   subsampling: no colour conversion, no resampling. img is only read. Returns as above. */
int encoder_encode_planar(struct encoder *e, const struct yuv_planar *img, uint8_t *dst,
                          size_t capacity, size_t *size);

/* The capacity encoder_encode_rgb() needs for w x h. */
size_t encoder_max_size_rgb(uint32_t w, uint32_t h);

/* RGB24/BGR24 fallback (libv4l2-emulated formats): packed pixels straight to TurboJPEG, which
   converts to YCbCr 4:2:2 itself (the subsampling of the YUYV path, so a camera looks the same
   either way). stride is bytes per row (>= 3 * w); bgr selects B,G,R byte order. Returns as
   above. */
int encoder_encode_rgb(struct encoder *e, const uint8_t *rgb, uint32_t w, uint32_t h, size_t stride,
                       int bgr, uint8_t *dst, size_t capacity, size_t *size);

#endif
