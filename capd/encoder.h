/* encoder.h - JPEG encoding from YUV (TurboJPEG, libjpeg), straight into a caller's buffer. */
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
 * out of range); -EIO when TurboJPEG fails (the reason is logged). encoder_encode_v4l2() (libjpeg
 * directly) differs in its -ENOSPC rule only; see there.
 */
struct encoder;

/* Creates an encoder at quality [1, 100]. Returns 0, -EINVAL for a bad quality,
 * or -ENOMEM when TurboJPEG or libjpeg cannot initialise. One encoder per thread: an encoder
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

/*
 * Encodes a raw V4L2 frame straight from the driver's buffer: the same JPEG, byte for byte, as
 * yuv_from_v4l2() + encoder_encode_planar() (same quality, DCT, tables, subsampling and edge
 * padding), but faster on large frames: it converts one iMCU row (8 rows, 16 for 4:2:0) into a
 * small stripe just before libjpeg encodes it, so the converted rows are still in cache, instead
 * of writing whole planes out to memory and reading them back. Planes that need no conversion
 * (the Y of NV12, YU12, GREY) are read in place.
 *   fourcc: V4L2_PIX_FMT_YUYV, UYVY, YVYU (-> 4:2:2), NV12, NV21, YUV420 (-> 4:2:0), GREY;
 *   src/len: the buffer and its bytesused; stride: bytesperline; w x h: the frame size.
 * No scratch planes are needed. The encoder's stripe (about 32 bytes per pixel of width) is
 * allocated by the first encode of a wider frame than before and then reused; nothing else is
 * allocated here per frame (libjpeg's own per-image pool makes a few small allocations inside
 * jpeg_start_compress, as TurboJPEG's encodes do).
 * capacity may be smaller than encoder_max_size_planar(w, h, yuv_v4l2_subsamp(fourcc)), which
 * always suffices: the encode stops with -ENOSPC as soon as the JPEG does not fit, never writing
 * past dst + capacity (dst's contents are then undefined).
 * Returns 0 with the JPEG size in *size; -EINVAL for another fourcc, a size out of range or a
 * stride below yuv_v4l2_min_stride(); -EBADMSG when len < yuv_v4l2_frame_bytes() (a truncated
 * buffer); -ENOSPC as above; -EIO when libjpeg fails or warns (the message is logged). After
 * any return the encoder is ready for the next frame. *size is only set on success.
 */
int encoder_encode_v4l2(struct encoder *e, uint32_t fourcc, const uint8_t *src, size_t len,
                        size_t stride, uint32_t w, uint32_t h, uint8_t *dst, size_t capacity,
                        size_t *size);

/* The capacity encoder_encode_rgb() needs for w x h. */
size_t encoder_max_size_rgb(uint32_t w, uint32_t h);

/* RGB24/BGR24 fallback (libv4l2-emulated formats): packed pixels straight to TurboJPEG, which
   converts to YCbCr 4:2:2 itself (the subsampling of the YUYV path, so a camera looks the same
   either way). stride is bytes per row (>= 3 * w); bgr selects B,G,R byte order. Returns as
   above. */
int encoder_encode_rgb(struct encoder *e, const uint8_t *rgb, uint32_t w, uint32_t h, size_t stride,
                       int bgr, uint8_t *dst, size_t capacity, size_t *size);

#endif
