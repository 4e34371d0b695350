/* draw.c - rectangles and bitmap-font text drawn straight into planar YUV 4:2:0 (I420) images. */
#include "draw.h"

#include "util.h"

#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- Font ------------------------------------------------------------------
 * The font is kept as a picture so it can be read and edited: a sheet of 8 blocks of 12 glyphs
 * (ASCII 32..127 in order), each block FONT_ROWS text lines tall. In a line every glyph takes
 * FONT_WIDTH characters ('#' = ink) plus one blank separator. Rows 0..6 hold capitals and digits
 * (baseline under row 6); rows 7..8 hold descenders. DEL (127) is blank and never drawn. */
#define FONT_FIRST        32
#define FONT_LAST         126
#define FONT_WIDTH        5
#define FONT_ADVANCE      6 /* FONT_WIDTH plus one blank column between glyphs */
#define FONT_ROWS         9
#define FONT_CAP_ROWS     7
#define SHEET_GLYPHS      12 /* glyphs per block */
#define SHEET_BLOCKS      8
#define SHEET_GLYPH_CHARS (FONT_WIDTH + 1) /* glyph plus separator */
#define SHEET_LINE_CHARS  (SHEET_GLYPHS * SHEET_GLYPH_CHARS)

static const char font_sheet[] =
    /* SP ! " # $ % & ' ( ) * + */
    "..... ..#.. .#.#. .#.#. ..#.. ##... .##.. ..#.. ...#. .#... ..... ..... "
    "..... ..#.. .#.#. .#.#. .#### ##..# #..#. ..#.. ..#.. ..#.. ..#.. ..#.. "
    "..... ..#.. .#.#. ##### #.#.. ...#. #.#.. .#... .#... ...#. #.#.# ..#.. "
    "..... ..#.. ..... .#.#. .###. ..#.. .#... ..... .#... ...#. .###. ##### "
    "..... ..#.. ..... ##### ..#.# .#... #.#.# ..... .#... ...#. #.#.# ..#.. "
    "..... ..... ..... .#.#. ####. #..## #..#. ..... ..#.. ..#.. ..#.. ..#.. "
    "..... ..#.. ..... .#.#. ..#.. ...## .##.# ..... ...#. .#... ..... ..... "
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... "
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... "
    /* , - . / 0 1 2 3 4 5 6 7 */
    "..... ..... ..... ....# .###. ..#.. .###. .###. ...#. ##### ..##. ##### "
    "..... ..... ..... ....# #...# .##.. #...# #...# ..##. #.... .#... ....# "
    "..... ..... ..... ...#. #..## ..#.. ....# ....# .#.#. ####. #.... ...#. "
    "..... .###. ..... ..#.. #.#.# ..#.. ...#. ..##. #..#. ....# ####. ..#.. "
    "..... ..... ..... .#... ##..# ..#.. ..#.. ....# ##### ....# #...# .#... "
    ".##.. ..... .##.. #.... #...# ..#.. .#... #...# ...#. #...# #...# .#... "
    ".##.. ..... .##.. #.... .###. .###. ##### .###. ...#. .###. .###. .#... "
    "..#.. ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... "
    ".#... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... "
    /* 8 9 : ; < = > ? @ A B C */
    ".###. .###. ..... ..... ...#. ..... .#... .###. .###. .###. ####. .###. "
    "#...# #...# .##.. .##.. ..#.. ..... ..#.. #...# #...# #...# #...# #...# "
    "#...# #...# .##.. .##.. .#... ##### ...#. ....# #.### #...# #...# #.... "
    ".###. .#### ..... ..... #.... ..... ....# ...#. #.#.# ##### ####. #.... "
    "#...# ....# .##.. .##.. .#... ##### ...#. ..#.. #.### #...# #...# #.... "
    "#...# ...#. .##.. .##.. ..#.. ..... ..#.. ..... #.... #...# #...# #...# "
    ".###. .##.. ..... ..#.. ...#. ..... .#... ..#.. .#### #...# ####. .###. "
    "..... ..... ..... .#... ..... ..... ..... ..... ..... ..... ..... ..... "
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... "
    /* D E F G H I J K L M N O */
    "####. ##### ##### .###. #...# .###. ..### #...# #.... #...# #...# .###. "
    "#...# #.... #.... #...# #...# ..#.. ...#. #..#. #.... ##.## #...# #...# "
    "#...# #.... #.... #.... #...# ..#.. ...#. #.#.. #.... #.#.# ##..# #...# "
    "#...# ####. ####. #.### ##### ..#.. ...#. ##... #.... #.#.# #.#.# #...# "
    "#...# #.... #.... #...# #...# ..#.. ...#. #.#.. #.... #...# #..## #...# "
    "#...# #.... #.... #...# #...# ..#.. #..#. #..#. #.... #...# #...# #...# "
    "####. ##### #.... .#### #...# .###. .##.. #...# ##### #...# #...# .###. "
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... "
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... "
    /* P Q R S T U V W X Y Z [ */
    "####. .###. ####. .#### ##### #...# #...# #...# #...# #...# ##### .###. "
    "#...# #...# #...# #.... ..#.. #...# #...# #...# #...# #...# ....# .#... "
    "#...# #...# #...# #.... ..#.. #...# #...# #...# .#.#. .#.#. ...#. .#... "
    "####. #...# ####. .###. ..#.. #...# #...# #.#.# ..#.. ..#.. ..#.. .#... "
    "#.... #.#.# #.#.. ....# ..#.. #...# #...# #.#.# .#.#. ..#.. .#... .#... "
    "#.... #..#. #..#. ....# ..#.. #...# .#.#. #.#.# #...# ..#.. #.... .#... "
    "#.... .##.# #...# ####. ..#.. .###. ..#.. .#.#. #...# ..#.. ##### .###. "
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... "
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... "
    /* \ ] ^ _ ` a b c d e f g */
    "#.... .###. ..#.. ..... .#... ..... #.... ..... ....# ..... ..##. ..... "
    "#.... ...#. .#.#. ..... ..#.. ..... #.... ..... ....# ..... .#..# ..... "
    ".#... ...#. #...# ..... ...#. .###. #.##. .###. .##.# .###. .#... .#### "
    "..#.. ...#. ..... ..... ..... ....# ##..# #.... #..## #...# ###.. #...# "
    "...#. ...#. ..... ..... ..... .#### #...# #.... #...# ##### .#... #...# "
    "....# ...#. ..... ..... ..... #...# #...# #...# #...# #.... .#... #...# "
    "....# .###. ..... ..... ..... .#### ####. .###. .#### .###. .#... .#### "
    "..... ..... ..... ##### ..... ..... ..... ..... ..... ..... ..... ....# "
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .###. "
    /* h i j k l m n o p q r s */
    "#.... ..#.. ...#. #.... .##.. ..... ..... ..... ..... ..... ..... ..... "
    "#.... ..... ..... #.... ..#.. ..... ..... ..... ..... ..... ..... ..... "
    "#.##. .##.. ..##. #..#. ..#.. ##.#. #.##. .###. ####. .#### #.##. .#### "
    "##..# ..#.. ...#. #.#.. ..#.. #.#.# ##..# #...# #...# #...# ##..# #.... "
    "#...# ..#.. ...#. ##... ..#.. #.#.# #...# #...# #...# #...# #.... .###. "
    "#...# ..#.. ...#. #.#.. ..#.. #.#.# #...# #...# #...# #...# #.... ....# "
    "#...# .###. ...#. #..#. .###. #.#.# #...# .###. ####. .#### #.... ####. "
    "..... ..... #..#. ..... ..... ..... ..... ..... #.... ....# ..... ..... "
    "..... ..... .##.. ..... ..... ..... ..... ..... #.... ....# ..... ..... "
    /* t u v w x y z { | } ~ DEL */
    ".#... ..... ..... ..... ..... ..... ..... ...## ..#.. ##... ..... ..... "
    ".#... ..... ..... ..... ..... ..... ..... ..#.. ..#.. ..#.. ..... ..... "
    "####. #...# #...# #...# #...# #...# ##### ..#.. ..#.. ..#.. .#... ..... "
    ".#... #...# #...# #...# .#.#. #...# ...#. .#... ..#.. ...#. #.#.# ..... "
    ".#... #...# #...# #.#.# ..#.. #...# ..#.. ..#.. ..#.. ..#.. ...#. ..... "
    ".#..# #..## .#.#. #.#.# .#.#. #...# .#... ..#.. ..#.. ..#.. ..... ..... "
    "..##. .##.# ..#.. .#.#. #...# .#### ##### ...## ..#.. ##... ..... ..... "
    "..... ..... ..... ..... ..... ....# ..... ..... ..... ..... ..... ..... "
    "..... ..... ..... ..... ..... .###. ..... ..... ..... ..... ..... ..... ";

_Static_assert(sizeof(font_sheet) == SHEET_BLOCKS * FONT_ROWS * SHEET_LINE_CHARS + 1,
               "every font sheet line must be SHEET_LINE_CHARS long");
_Static_assert((SHEET_BLOCKS * SHEET_GLYPHS) > (FONT_LAST - FONT_FIRST), "sheet covers the font");

/* Maps any byte to the glyph drawn for it. */
static unsigned font_glyph_index(unsigned char c)
{
    if (c < FONT_FIRST || c > FONT_LAST)
        c = '?';
    return (unsigned)(c - FONT_FIRST);
}

static int font_pixel(unsigned glyph, int row, int col)
{
    unsigned block = glyph / SHEET_GLYPHS, slot = glyph % SHEET_GLYPHS;
    size_t line = (size_t)block * FONT_ROWS + (size_t)row;
    return font_sheet[line * SHEET_LINE_CHARS + slot * SHEET_GLYPH_CHARS + (size_t)col] == '#';
}

/* A glyph pixel bigger than any image is pointless; the clamp keeps scaled sizes far from
   int overflow. */
static int clamp_scale(int scale)
{
    if (scale < 1)
        return 1;
    if (scale > (int)DRAW_MAX_DIMENSION)
        return (int)DRAW_MAX_DIMENSION;
    return scale;
}

/* ---- Colours and images --------------------------------------------------- */

static uint8_t clamp_u8(int32_t v)
{
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

struct draw_color draw_rgb(uint8_t r, uint8_t g, uint8_t b)
{
    /* JFIF coefficients in 16.16 fixed point; the 1 << 15 terms round to nearest. */
    int32_t y = (19595 * r + 38470 * g + 7471 * b + (1 << 15)) >> 16;
    int32_t cb = (-11059 * r - 21709 * g + 32768 * b + (128 << 16) + (1 << 15)) >> 16;
    int32_t cr = (32768 * r - 27439 * g - 5329 * b + (128 << 16) + (1 << 15)) >> 16;
    struct draw_color c = {clamp_u8(y), clamp_u8(cb), clamp_u8(cr)};
    return c;
}

static uint32_t chroma_size(uint32_t luma_size)
{
    return (luma_size + 1) / 2;
}

void draw_image_alloc(struct draw_image *img, uint32_t width, uint32_t height)
{
    assert(width >= 1 && width <= DRAW_MAX_DIMENSION);
    assert(height >= 1 && height <= DRAW_MAX_DIMENSION);
    memset(img, 0, sizeof(*img));
    img->width = width;
    img->height = height;
    for (int i = 0; i < 3; i++) {
        uint32_t w = i == 0 ? DRAW_LUMA_PAD(width) : chroma_size(width);
        uint32_t h = i == 0 ? DRAW_LUMA_PAD(height) : chroma_size(height);
        img->stride[i] = w;
        img->plane[i] = xmalloc((size_t)w * h);
    }
    draw_fill(img, draw_rgb(0, 0, 0));
}

void draw_image_free(struct draw_image *img)
{
    if (!img)
        return;
    for (int i = 0; i < 3; i++)
        free(img->plane[i]);
    memset(img, 0, sizeof(*img));
}

/* Fills the luma rectangle [x0, x1) x [y0, y1), clipped, and every chroma sample whose 2x2 block
   it touches. A rectangle reaching the last column (row) of an odd-sized image also fills the
   padding column (row), which keeps the padding a copy of the edge. 64-bit coordinates so
   callers can pass x + w without overflow checks. */
static void fill_clipped(struct draw_image *img, int64_t x0, int64_t y0, int64_t x1, int64_t y1,
                         struct draw_color c)
{
    if (x0 < 0)
        x0 = 0;
    if (y0 < 0)
        y0 = 0;
    if (x1 > (int64_t)img->width)
        x1 = img->width;
    if (y1 > (int64_t)img->height)
        y1 = img->height;
    if (x0 >= x1 || y0 >= y1)
        return;
    if (x1 == (int64_t)img->width)
        x1 = DRAW_LUMA_PAD(img->width);
    if (y1 == (int64_t)img->height)
        y1 = DRAW_LUMA_PAD(img->height);

    size_t len = (size_t)(x1 - x0);
    for (int64_t y = y0; y < y1; y++)
        memset(img->plane[0] + (size_t)y * img->stride[0] + (size_t)x0, c.y, len);

    /* x1 <= DRAW_LUMA_PAD(width) == 2 * chroma width, so every chroma sample is in the plane. */
    int64_t cx0 = x0 / 2, cx1 = (x1 - 1) / 2 + 1;
    int64_t cy0 = y0 / 2, cy1 = (y1 - 1) / 2 + 1;
    size_t clen = (size_t)(cx1 - cx0);
    for (int64_t y = cy0; y < cy1; y++) {
        memset(img->plane[1] + (size_t)y * img->stride[1] + (size_t)cx0, c.cb, clen);
        memset(img->plane[2] + (size_t)y * img->stride[2] + (size_t)cx0, c.cr, clen);
    }
}

void draw_fill(struct draw_image *img, struct draw_color c)
{
    fill_clipped(img, 0, 0, img->width, img->height, c);
}

void draw_rect(struct draw_image *img, int x, int y, int w, int h, struct draw_color c)
{
    if (w <= 0 || h <= 0)
        return;
    fill_clipped(img, x, y, (int64_t)x + w, (int64_t)y + h, c);
}

/* ---- Text ----------------------------------------------------------------- */

void draw_text(struct draw_image *img, int x, int y, int scale, const char *text,
               struct draw_color fg)
{
    if (!text)
        return;
    scale = clamp_scale(scale);
    int64_t pen_x = x;
    for (const unsigned char *p = (const unsigned char *)text; *p;
         p++, pen_x += FONT_ADVANCE * scale) {
        if (pen_x >= (int64_t)img->width)
            break; /* this and every later glyph lies right of the image */
        if (pen_x + FONT_WIDTH * scale <= 0)
            continue;
        unsigned glyph = font_glyph_index(*p);
        for (int row = 0; row < FONT_ROWS; row++) {
            int64_t top = (int64_t)y + (int64_t)row * scale;
            if (top + scale <= 0 || top >= (int64_t)img->height)
                continue;
            /* One rectangle per horizontal run of ink: fewer, wider memsets. */
            int col = 0;
            while (col < FONT_WIDTH) {
                if (!font_pixel(glyph, row, col)) {
                    col++;
                    continue;
                }
                int run_start = col;
                while (col < FONT_WIDTH && font_pixel(glyph, row, col))
                    col++;
                fill_clipped(img, pen_x + (int64_t)run_start * scale, top,
                             pen_x + (int64_t)col * scale, top + scale, fg);
            }
        }
    }
}

int draw_text_width(const char *text, int scale)
{
    if (!text || !*text)
        return 0;
    uint64_t s = (uint64_t)clamp_scale(scale);
    size_t len = strlen(text);
    if (len >= INT_MAX / FONT_ADVANCE)
        return INT_MAX;
    uint64_t width = (uint64_t)len * FONT_ADVANCE * s - s;
    return width > INT_MAX ? INT_MAX : (int)width;
}

int draw_text_height(int scale)
{
    return FONT_ROWS * clamp_scale(scale);
}

int draw_text_cap_height(int scale)
{
    return FONT_CAP_ROWS * clamp_scale(scale);
}
