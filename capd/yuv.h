/* yuv.h - V4L2 camera pixel formats to the planar YCbCr TurboJPEG encodes, with no RGB step. */
#ifndef CAPD_YUV_H
#define CAPD_YUV_H

#include <stddef.h>
#include <stdint.h>
#include <turbojpeg.h>

/*
 * Contract shared by every function here:
 * - Plane sizes are what tjCompressFromYUVPlanes reads (TurboJPEG's "YUV image format"): the Y
 *   plane is the image rounded up to the subsampling factor, i.e. to an even width for 4:2:2 and
 *   4:2:0 and to an even height for 4:2:0 (tjPlaneWidth/tjPlaneHeight); the chroma planes are
 *   that divided by the factor. TurboJPEG itself pads partial MCUs (16x8 for 4:2:2, 16x16 for
 *   4:2:0, 8x8 for grey) in a private copy, so nothing beyond those plane sizes is ever read:
 *   a 1920x1080 image needs no extra rows although 1080 is not a multiple of 16 (test_yuv checks
 *   this with planes that end at a guard page). For odd sizes the converters fill the padding
 *   column/row with a copy of the last real one (a clean edge).
 * - Colours pass through unchanged (JPEG/JFIF labels them full-range BT.601; most V4L2 YUV is
 *   limited range, which then shows with slightly lifted blacks, as with any YUV passthrough).
 * - Source rows are src_stride (V4L2 bytesperline) bytes apart and must hold the image width:
 *   src_stride >= yuv_v4l2_min_stride(). The converters read nothing outside
 *   yuv_v4l2_frame_bytes(); yuv_from_v4l2() checks both for callers holding a driver buffer.
 * - Nothing allocates except yuv_planar_alloc. No global state: functions are thread-safe as long
 *   as two threads never write the same image at once.
 */

/* A planar image in one of TurboJPEG's subsamplings; planes owned by whoever allocated them. */
struct yuv_planar {
    uint8_t *plane[3]; /* Y, Cb, Cr (Cb/Cr NULL for TJSAMP_GRAY) */
    int stride[3];     /* bytes per row of each plane (0 for a missing plane) */
    uint32_t width, height;
    int subsamp;   /* TJSAMP_422, TJSAMP_420 or TJSAMP_GRAY */
    void *storage; /* the block yuv_planar_alloc made (freed by yuv_planar_free); NULL in views */
};

/* Largest width or height accepted; keeps every plane offset inside int. */
#define YUV_MAX_DIMENSION 32768u

/* Allocates planes for width x height in subsamp with xcalloc (zeroed, aborts on OOM), rows
   32-byte aligned and padded past what TurboJPEG reads (to whole MCUs). width and height must be
   in [1, YUV_MAX_DIMENSION] and subsamp one of the three above (asserted: sizes are validated
   when the device is configured). Free with yuv_planar_free. */
void yuv_planar_alloc(struct yuv_planar *p, uint32_t w, uint32_t h, int subsamp);

/* Frees what yuv_planar_alloc allocated and zeroes *p. Accepts NULL, a zeroed image and a view
   (which owns nothing, so only the struct is cleared). */
void yuv_planar_free(struct yuv_planar *p);

/* Converters from V4L2 buffers (src_stride = bytesperline) into dst, which was allocated with
   yuv_planar_alloc in the subsampling named; dst's width and height are the frame size.
   Packed 4:2:2 (YUYV = Y0 Cb Y1 Cr, UYVY = Cb Y0 Cr Y1, YVYU = Y0 Cr Y1 Cb) -> TJSAMP_422. An
   odd width reads only width*2 bytes per row: the last pixel takes the chroma sample its
   partial pair lacks from the pair before it. */
void yuv_from_yuyv(struct yuv_planar *dst, const uint8_t *src, size_t src_stride); /* -> 422 */
void yuv_from_uyvy(struct yuv_planar *dst, const uint8_t *src, size_t src_stride); /* -> 422 */
void yuv_from_yvyu(struct yuv_planar *dst, const uint8_t *src, size_t src_stride); /* -> 422 */

/* NV12 (Y plane, then interleaved Cb Cr at src + src_stride * height, same stride) and NV21
   (Cr Cb) -> TJSAMP_420. The chroma plane has (height+1)/2 rows of (width+1)/2 pairs. */
void yuv_from_nv12(struct yuv_planar *dst, const uint8_t *src, size_t src_stride); /* -> 420 */
void yuv_from_nv21(struct yuv_planar *dst, const uint8_t *src, size_t src_stride); /* -> 420 */

/* YU12/I420 (Y plane, Cb plane, Cr plane; chroma rows src_stride/2 bytes, as V4L2 lays it out)
   copied into dst (TJSAMP_420). Only needed where a view cannot be used (odd sizes, below). */
void yuv_from_yu12(struct yuv_planar *dst, const uint8_t *src, size_t src_stride);

/* Zero-copy views (no conversion): YU12/I420 and GREY buffers straight from the driver. The view
   points into src (valid while the driver buffer is) and owns nothing. Meant for an even width
   and height, which is what drivers deliver: for an odd size TurboJPEG also reads the padding
   column/row, which in a driver buffer is whatever follows (row slack, the Cb plane) rather than
   a copy of the edge; it stays inside the buffer when stride >= yuv_v4l2_min_stride(), but the
   edge blocks then encode junk, so yuv_from_v4l2 copies odd sizes with yuv_from_yu12 instead.
   GREY has no padding (TJSAMP_GRAY's factor is 1): any size can be viewed. */
void yuv_view_yu12(struct yuv_planar *view, const uint8_t *src, uint32_t w, uint32_t h,
                   size_t stride);
void yuv_view_grey(struct yuv_planar *view, const uint8_t *src, uint32_t w, uint32_t h,
                   size_t stride);

/* ---- Row converters -------------------------------------------------------------------------
 * What the whole-image converters above are made of, for an encoder that converts a few rows at
 * a time while they are still in cache (encoder_encode_v4l2). Rows are written exactly as the
 * whole-image converters write a plane's rows. */

/* Splits rows of packed 4:2:2 in fourcc (V4L2_PIX_FMT_YUYV, UYVY or YVYU) into dst[0] (Y: the
   width rounded up to even, an odd width repeating its last luma), dst[1] (Cb) and dst[2] (Cr)
   ((width + 1) / 2 samples each); the rows of dst[c] are dst_stride[c] bytes apart. Returns 0,
   or -EINVAL for another fourcc (nothing written). */
int yuv_packed422_rows(uint32_t fourcc, const uint8_t *src, size_t src_stride, uint32_t width,
                       uint32_t rows, uint8_t *const dst[3], const size_t dst_stride[3]);

/* Splits rows of interleaved chroma (V4L2_PIX_FMT_NV12: Cb Cr pairs; NV21: Cr Cb), pairs per
   row, into Cb and Cr rows. Returns 0, or -EINVAL for another fourcc (nothing written). */
int yuv_semiplanar_chroma_rows(uint32_t fourcc, const uint8_t *src, size_t src_stride,
                               uint32_t pairs, uint32_t rows, uint8_t *cb, size_t cb_stride,
                               uint8_t *cr, size_t cr_stride);

/* ---- Dispatch on a V4L2 fourcc --------------------------------------------------------------
 * Formats: V4L2_PIX_FMT_YUYV, UYVY, YVYU (-> TJSAMP_422), NV12, NV21, YUV420 (YU12) (-> 420),
 * GREY (-> TJSAMP_GRAY). */

/* The TurboJPEG subsampling a fourcc is encoded in (allocate the scratch image with it), or -1
   for a fourcc this module does not handle. */
int yuv_v4l2_subsamp(uint32_t fourcc);

/* Smallest bytesperline that holds a row of w pixels of fourcc (0 for an unknown fourcc). */
size_t yuv_v4l2_min_stride(uint32_t fourcc, uint32_t w);

/* Bytes the converters read from a w x h buffer with this stride: what bytesused must be at
   least (0 for an unknown fourcc). Smaller than stride * rows by the unused end of the last row,
   which a driver need not provide. */
size_t yuv_v4l2_frame_bytes(uint32_t fourcc, uint32_t w, uint32_t h, size_t stride);

/* Prepares one captured frame for encoder_encode_planar: converts into scratch (allocated by
   the caller with yuv_planar_alloc at the frame size, in yuv_v4l2_subsamp(fourcc)), or, for
   YU12 of even size and GREY, makes a view of src without copying. *out is then the image to
   encode: it borrows scratch's planes or src and owns nothing (freeing it is a no-op), so it is
   valid while both are. Returns 0; -EINVAL for an unsupported fourcc, a scratch of another
   subsampling, or a stride too small for scratch's width; -EBADMSG when len (bytesused) is
   shorter than the frame (a truncated buffer). */
int yuv_from_v4l2(struct yuv_planar *scratch, struct yuv_planar *out, uint32_t fourcc,
                  const uint8_t *src, size_t len, size_t src_stride);

#endif
