/* encoder.h - JPEG encoding from planar YUV with TurboJPEG, straight into a caller's buffer. */
#ifndef CAPD_ENCODER_H
#define CAPD_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "draw.h"

struct encoder;

/* Creates an encoder at quality [1, 100]. Returns 0, -EINVAL for a bad quality,
 * or -ENOMEM when TurboJPEG cannot initialise. One encoder per thread. Free it
 * with encoder_destroy(). */
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

#endif
