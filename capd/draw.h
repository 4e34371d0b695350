/* draw.h - rectangles and bitmap-font text drawn straight into planar YUV 4:2:0 (I420) images. */
#ifndef CAPD_DRAW_H
#define CAPD_DRAW_H

#include <stdint.h>

/*
 * Contract shared by every function here:
 * - Images are I420 laid out the way TurboJPEG's tjCompressFromYUVPlanes(TJSAMP_420) reads them:
 *   a Y plane of DRAW_LUMA_PAD(width) x DRAW_LUMA_PAD(height) samples (the image size rounded up
 *   to even; the extra column/row exists only for odd sizes) and Cb/Cr planes of
 *   ((width+1)/2) x ((height+1)/2) samples, each chroma sample covering a 2x2 block of luma
 *   pixels. The draw functions keep the Y padding column/row a copy of the last real column/row,
 *   so the encoder sees a clean edge. Callers may build a draw_image over their own buffers (any
 *   stride >= the plane width above); nothing outside those plane sizes is ever touched.
 * - Colours are full-range BT.601 YCbCr, the JPEG/JFIF convention TurboJPEG expects.
 * - Drawing is clipped to the image: any coordinates, including negative and out-of-range ones,
 *   are accepted. Chroma is written for every 2x2 block a shape touches, so a shape whose edge
 *   falls on an odd coordinate tints at most one chroma sample beyond it (invisible for the
 *   neutral colours used on text backgrounds).
 * - No global state: the functions are thread-safe as long as two threads never draw into the
 *   same image at once. Nothing allocates except draw_image_alloc.
 */

/* Samples per row (or rows) the Y plane holds for an image dimension: rounded up to even. */
#define DRAW_LUMA_PAD(size) (((size) + 1u) & ~1u)

/* An I420 image: Y plane of DRAW_LUMA_PAD(width) x DRAW_LUMA_PAD(height), chroma planes of
   ((width+1)/2) x ((height+1)/2). Pass plane[] and stride[] to tjCompressFromYUVPlanes as is. */
struct draw_image {
    uint8_t *plane[3];  /* Y, Cb, Cr */
    uint32_t stride[3]; /* bytes per row of each plane */
    uint32_t width, height;
};

struct draw_color {
    uint8_t y, cb, cr;
};

/* Largest width or height the draw functions accept; keeps pixel arithmetic inside int. */
#define DRAW_MAX_DIMENSION 32768u

/* Converts sRGB 0..255 to BT.601 full-range YCbCr (JPEG/JFIF convention), rounded to nearest.
   Meant for colour constants, not per-pixel work. */
struct draw_color draw_rgb(uint8_t r, uint8_t g, uint8_t b);

/* Allocates tightly packed planes (stride == plane width, Y padded as above) with xmalloc and
   fills the image, padding included, with black. width and height must be in [1,
   DRAW_MAX_DIMENSION] (asserted: sizes are validated when the configuration is parsed). The caller
   frees the planes with draw_image_free. */
void draw_image_alloc(struct draw_image *img, uint32_t width, uint32_t height);

/* Frees the planes of an image from draw_image_alloc and zeroes *img. Accepts NULL, a zeroed
   image and a half-built one (planes that are NULL are skipped). */
void draw_image_free(struct draw_image *img);

/* Sets every pixel of the image to c. */
void draw_fill(struct draw_image *img, struct draw_color c);

/* Fills the rectangle with top-left (x, y) and size w x h, clipped to the image. Nothing is
   drawn when w <= 0 or h <= 0. */
void draw_rect(struct draw_image *img, int x, int y, int w, int h, struct draw_color c);

/* Draws text in the built-in 5x7 bitmap font (with 2 extra rows for descenders), each font pixel
   scaled to scale x scale image pixels, with the top-left of the first glyph cell at (x, y).
   Glyphs advance by 6 * scale pixels. Printable ASCII 32..126 has its own glyphs (lowercase
   included); any other byte renders as '?'. Only the glyph pixels are drawn: the background shows
   through. Clipped at the image edges (negative x/y allowed). scale is clamped to
   [1, DRAW_MAX_DIMENSION], here and in the size functions below; a NULL text draws nothing. */
void draw_text(struct draw_image *img, int x, int y, int scale, const char *text,
               struct draw_color fg);

/* Width in pixels of the ink box of text at scale: strlen(text) glyph advances minus the blank
   column after the last glyph; 0 for "" or NULL. Saturates at INT_MAX. */
int draw_text_width(const char *text, int scale);

/* Height in pixels of a line of text at scale, descenders included (9 font rows). */
int draw_text_height(int scale);

/* Height in pixels of capital letters and digits at scale (7 font rows, from the top of the
   cell): use it to centre text that has no descenders. */
int draw_text_cap_height(int scale);

#endif
