/* test_draw.c - unit tests for the I420 drawing primitives, the bitmap font and the test pattern.
 */
#include "check.h"

/* Included to reach the font sheet and the pattern's layout fields. */
#include "draw.c"
#include "pattern.c"

#include <limits.h>
#include <math.h>

#define GUARD       8
#define GUARD_BYTE  0xA5
#define FONT_COLUMN SHEET_GLYPH_CHARS

/* ---- Helpers ---------------------------------------------------------------- */

/* Samples per row and rows of plane i, as TurboJPEG reads them for 4:2:0: the Y plane is
   rounded up to even, the chroma planes are half of that. */
static size_t plane_cols(uint32_t width, int i)
{
    return i == 0 ? (width + 1u) / 2u * 2u : (width + 1u) / 2u;
}

static size_t plane_rows(uint32_t height, int i)
{
    return plane_cols(height, i);
}

/* An image whose planes sit inside larger buffers: GUARD bytes of GUARD_BYTE on every side of
   every plane, and in the stride padding, catch writes outside width x height. */
struct guarded_image {
    struct draw_image img;
    uint8_t *buf[3];
    size_t buf_rows[3], buf_stride[3];
};

static void guarded_alloc(struct guarded_image *g, uint32_t width, uint32_t height)
{
    memset(g, 0, sizeof(*g));
    g->img.width = width;
    g->img.height = height;
    for (int i = 0; i < 3; i++) {
        size_t w = plane_cols(width, i), h = plane_rows(height, i);
        g->buf_stride[i] = w + 2 * GUARD;
        g->buf_rows[i] = h + 2 * GUARD;
        g->buf[i] = xmalloc(g->buf_stride[i] * g->buf_rows[i]);
        memset(g->buf[i], GUARD_BYTE, g->buf_stride[i] * g->buf_rows[i]);
        g->img.plane[i] = g->buf[i] + GUARD * g->buf_stride[i] + GUARD;
        g->img.stride[i] = (uint32_t)g->buf_stride[i];
    }
}

/* Number of guard bytes that no longer hold GUARD_BYTE. */
static int guarded_damage(const struct guarded_image *g)
{
    int damaged = 0;
    for (int i = 0; i < 3; i++) {
        size_t w = plane_cols(g->img.width, i), h = plane_rows(g->img.height, i);
        for (size_t y = 0; y < g->buf_rows[i]; y++) {
            for (size_t x = 0; x < g->buf_stride[i]; x++) {
                int inside = y >= GUARD && y < GUARD + h && x >= GUARD && x < GUARD + w;
                if (!inside && g->buf[i][y * g->buf_stride[i] + x] != GUARD_BYTE)
                    damaged++;
            }
        }
    }
    return damaged;
}

/* Number of Y padding samples (odd sizes only) that differ from the real edge next to them. */
static int padding_mismatches(const struct draw_image *img)
{
    int bad = 0;
    size_t cols = plane_cols(img->width, 0), rows = plane_rows(img->height, 0);
    const uint8_t *y = img->plane[0];
    if (cols != img->width)
        for (size_t row = 0; row < img->height; row++)
            bad += y[row * img->stride[0] + cols - 1] != y[row * img->stride[0] + cols - 2];
    if (rows != img->height)
        for (size_t col = 0; col < cols; col++)
            bad += y[(rows - 1) * img->stride[0] + col] != y[(rows - 2) * img->stride[0] + col];
    return bad;
}

static void guarded_free(struct guarded_image *g)
{
    for (int i = 0; i < 3; i++)
        free(g->buf[i]);
}

static uint8_t pixel(const struct draw_image *img, int plane, uint32_t x, uint32_t y)
{
    return img->plane[plane][(size_t)y * img->stride[plane] + x];
}

/* Counts luma pixels equal to value inside [x0, x1) x [y0, y1) (clipped to the image). */
static long count_luma(const struct draw_image *img, uint8_t value, int x0, int y0, int x1, int y1)
{
    long n = 0;
    for (int y = y0 < 0 ? 0 : y0; y < y1 && y < (int)img->height; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x1 && x < (int)img->width; x++)
            n += pixel(img, 0, (uint32_t)x, (uint32_t)y) == value;
    return n;
}

/* Bounding box of luma pixels equal to value; returns 0 when there are none. */
static int luma_bbox(const struct draw_image *img, uint8_t value, int *x0, int *y0, int *x1,
                     int *y1)
{
    int found = 0;
    for (uint32_t y = 0; y < img->height; y++) {
        for (uint32_t x = 0; x < img->width; x++) {
            if (pixel(img, 0, x, y) != value)
                continue;
            if (!found) {
                *x0 = *x1 = (int)x;
                *y0 = *y1 = (int)y;
                found = 1;
            }
            *x0 = min_int(*x0, (int)x);
            *x1 = max_int(*x1, (int)x);
            *y0 = min_int(*y0, (int)y);
            *y1 = max_int(*y1, (int)y);
        }
    }
    return found;
}

static int images_equal(const struct draw_image *a, const struct draw_image *b)
{
    if (a->width != b->width || a->height != b->height)
        return 0;
    for (int i = 0; i < 3; i++) {
        size_t w = plane_cols(a->width, i), h = plane_rows(a->height, i);
        for (size_t y = 0; y < h; y++)
            if (memcmp(a->plane[i] + (size_t)y * a->stride[i],
                       b->plane[i] + (size_t)y * b->stride[i], w) != 0)
                return 0;
    }
    return 1;
}

/* Deep copy into a freshly allocated image, to compare against the next render. */
static void snapshot(struct draw_image *dst, const struct draw_image *src)
{
    draw_image_alloc(dst, src->width, src->height);
    for (int i = 0; i < 3; i++) {
        size_t w = plane_cols(src->width, i), h = plane_rows(src->height, i);
        for (size_t y = 0; y < h; y++)
            memcpy(dst->plane[i] + (size_t)y * dst->stride[i],
                   src->plane[i] + (size_t)y * src->stride[i], w);
    }
}

/* Do luma rectangles [x0, x1) x [y0, y1) of two images differ anywhere? */
static int region_differs(const struct draw_image *a, const struct draw_image *b, int x0, int y0,
                          int x1, int y1)
{
    for (int y = max_int(y0, 0); y < y1 && y < (int)a->height; y++)
        for (int x = max_int(x0, 0); x < x1 && x < (int)a->width; x++)
            if (pixel(a, 0, (uint32_t)x, (uint32_t)y) != pixel(b, 0, (uint32_t)x, (uint32_t)y))
                return 1;
    return 0;
}

/* Deterministic pseudo-random numbers (a 32-bit LCG) so failures reproduce. */
static uint32_t lcg_state = 12345;
static int lcg_range(int lo, int hi)
{
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return lo + (int)((lcg_state >> 8) % (uint32_t)(hi - lo + 1));
}

/* ---- Colours ---------------------------------------------------------------- */

static void test_rgb_known_colours(void)
{
    struct draw_color white = draw_rgb(255, 255, 255), black = draw_rgb(0, 0, 0);
    struct draw_color red = draw_rgb(255, 0, 0);
    CHECK(white.y >= 254 && abs(white.cb - 128) <= 1 && abs(white.cr - 128) <= 1);
    CHECK(black.y <= 1 && abs(black.cb - 128) <= 1 && abs(black.cr - 128) <= 1);
    /* JFIF: red is Y 76.2, Cb 85.0, Cr 255.5 (clamped). */
    CHECKF(abs(red.y - 76) <= 1 && abs(red.cb - 85) <= 1 && red.cr >= 254, "red = %d %d %d", red.y,
           red.cb, red.cr);
}

static void test_rgb_matches_jfif_formula(void)
{
    int worst = 0;
    for (int r = 0; r <= 255; r += 15) {
        for (int g = 0; g <= 255; g += 15) {
            for (int b = 0; b <= 255; b += 15) {
                double y = 0.299 * r + 0.587 * g + 0.114 * b;
                double cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b;
                double cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b;
                struct draw_color c = draw_rgb((uint8_t)r, (uint8_t)g, (uint8_t)b);
                int err = (int)fmax(fabs(c.y - fmin(255, y)),
                                    fmax(fabs(c.cb - fmin(255, cb)), fabs(c.cr - fmin(255, cr))));
                worst = max_int(worst, err);
            }
        }
    }
    CHECKF(worst <= 1, "worst error %d", worst);
}

/* ---- Images and rectangles -------------------------------------------------- */

static void test_image_alloc_fill_free(void)
{
    struct draw_image img;
    draw_image_alloc(&img, 17, 19);
    CHECK_EQ_INT(img.width, 17);
    CHECK_EQ_INT(img.height, 19);
    /* TurboJPEG's 4:2:0 plane sizes: Y rounded up to even. */
    CHECK(img.stride[0] >= 18 && img.stride[1] >= 9 && img.stride[2] >= 9);
    struct draw_color c = draw_rgb(10, 200, 30);
    draw_fill(&img, c);
    long wrong = 0;
    for (uint32_t y = 0; y < 20; y++)
        for (uint32_t x = 0; x < 18; x++)
            wrong += pixel(&img, 0, x, y) != c.y;
    for (uint32_t y = 0; y < 10; y++)
        for (uint32_t x = 0; x < 9; x++)
            wrong += pixel(&img, 1, x, y) != c.cb || pixel(&img, 2, x, y) != c.cr;
    CHECK_EQ_INT(wrong, 0);
    draw_image_free(&img);
    CHECK(img.plane[0] == NULL && img.width == 0);
    draw_image_free(&img); /* zeroed: must be a no-op */
    draw_image_free(NULL);

    struct draw_image half = {0};
    half.plane[0] = xmalloc(16);
    draw_image_free(&half);
}

static void test_rect_exact_coverage(void)
{
    /* Every odd/even combination of edges, on an odd-sized image. */
    struct guarded_image g;
    guarded_alloc(&g, 17, 19);
    struct draw_color bg = draw_rgb(0, 0, 0), fg = draw_rgb(255, 0, 0);
    for (int x = 0; x < 4; x++) {
        for (int y = 0; y < 4; y++) {
            for (int w = 1; w < 5; w++) {
                for (int h = 1; h < 5; h++) {
                    draw_fill(&g.img, bg);
                    draw_rect(&g.img, x + 5, y + 6, w, h, fg);
                    long wrong = 0;
                    for (int py = 0; py < 19; py++) {
                        for (int px = 0; px < 17; px++) {
                            int in = px >= x + 5 && px < x + 5 + w && py >= y + 6 && py < y + 6 + h;
                            wrong +=
                                pixel(&g.img, 0, (uint32_t)px, (uint32_t)py) != (in ? fg.y : bg.y);
                        }
                    }
                    /* A chroma sample changes iff its 2x2 block overlaps the rectangle. */
                    for (int cy = 0; cy < 10; cy++) {
                        for (int cx = 0; cx < 9; cx++) {
                            int touched = 2 * cx + 2 > x + 5 && 2 * cx < x + 5 + w &&
                                          2 * cy + 2 > y + 6 && 2 * cy < y + 6 + h;
                            wrong += pixel(&g.img, 1, (uint32_t)cx, (uint32_t)cy) !=
                                     (touched ? fg.cb : bg.cb);
                            wrong += pixel(&g.img, 2, (uint32_t)cx, (uint32_t)cy) !=
                                     (touched ? fg.cr : bg.cr);
                        }
                    }
                    CHECKF(wrong == 0, "rect %d,%d %dx%d: %ld wrong samples", x + 5, y + 6, w, h,
                           wrong);
                }
            }
        }
    }
    CHECK_EQ_INT(guarded_damage(&g), 0);
    guarded_free(&g);
}

static void test_rect_clipping_never_writes_outside(void)
{
    static const uint32_t sizes[][2] = {{16, 16}, {17, 19}, {19, 17}, {1, 1}, {2, 3}};
    static const int extremes[] = {INT_MIN, INT_MIN / 2, -100000,     -1,     0,
                                   1,       100000,      INT_MAX / 2, INT_MAX};
    for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
        struct guarded_image g;
        guarded_alloc(&g, sizes[s][0], sizes[s][1]);
        draw_fill(&g.img, draw_rgb(0, 0, 0));
        struct draw_color fg = draw_rgb(255, 255, 255);
        for (int i = 0; i < 2000; i++)
            draw_rect(&g.img, lcg_range(-30, 40), lcg_range(-30, 40), lcg_range(-5, 60),
                      lcg_range(-5, 60), fg);
        for (size_t a = 0; a < ARRAY_SIZE(extremes); a++)
            for (size_t b = 0; b < ARRAY_SIZE(extremes); b++)
                draw_rect(&g.img, extremes[a], extremes[b], extremes[b], extremes[a], fg);
        CHECKF(guarded_damage(&g) == 0, "%ux%u", sizes[s][0], sizes[s][1]);
        CHECKF(padding_mismatches(&g.img) == 0, "%ux%u", sizes[s][0], sizes[s][1]);
        draw_rect(&g.img, -5, -5, 1000, 1000, fg); /* covers everything */
        CHECK_EQ_INT(count_luma(&g.img, fg.y, 0, 0, 1000, 1000), (long)sizes[s][0] * sizes[s][1]);
        guarded_free(&g);
    }
}

static void test_rect_degenerate_draws_nothing(void)
{
    struct draw_image img;
    draw_image_alloc(&img, 16, 16);
    draw_fill(&img, draw_rgb(0, 0, 0));
    struct draw_color fg = draw_rgb(255, 255, 255);
    draw_rect(&img, 2, 2, 0, 5, fg);
    draw_rect(&img, 2, 2, 5, 0, fg);
    draw_rect(&img, 2, 2, -5, 5, fg);
    draw_rect(&img, 16, 0, 5, 5, fg);
    draw_rect(&img, 0, 16, 5, 5, fg);
    draw_rect(&img, -5, 0, 5, 5, fg);
    draw_rect(&img, 0, -5, 5, 5, fg);
    CHECK_EQ_INT(count_luma(&img, fg.y, 0, 0, 16, 16), 0);
    draw_image_free(&img);
}

/* ---- Font and text ---------------------------------------------------------- */

static void test_font_sheet_well_formed(void)
{
    int bad_chars = 0;
    for (size_t i = 0; i + 1 < sizeof(font_sheet); i++) {
        char c = font_sheet[i];
        int separator = i % FONT_COLUMN == FONT_WIDTH;
        bad_chars += separator ? c != ' ' : c != '#' && c != '.';
    }
    CHECK_EQ_INT(bad_chars, 0);

    for (int c = FONT_FIRST + 1; c <= FONT_LAST; c++) {
        int ink = 0, descender_ink = 0;
        for (int row = 0; row < FONT_ROWS; row++)
            for (int col = 0; col < FONT_WIDTH; col++) {
                int on = font_pixel((unsigned)(c - FONT_FIRST), row, col);
                ink += on;
                descender_ink += on && row >= FONT_CAP_ROWS;
            }
        CHECKF(ink > 0, "'%c' has no ink", c);
        if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' || c == '-' || c == '.' ||
            c == '/' || c == '#')
            CHECKF(descender_ink == 0, "'%c' reaches below the baseline", c);
        /* Two characters sharing a glyph means a copy/paste slip in the sheet. */
        for (int d = FONT_FIRST + 1; d < c; d++) {
            int same = 1;
            for (int row = 0; row < FONT_ROWS && same; row++)
                for (int col = 0; col < FONT_WIDTH && same; col++)
                    same = font_pixel((unsigned)(c - FONT_FIRST), row, col) ==
                           font_pixel((unsigned)(d - FONT_FIRST), row, col);
            CHECKF(!same, "'%c' and '%c' share a glyph", c, d);
        }
    }
    for (int row = 0; row < FONT_ROWS; row++)
        for (int col = 0; col < FONT_WIDTH; col++)
            CHECK(!font_pixel(0, row, col)); /* space */
}

static void test_text_ink(void)
{
    struct draw_image img;
    draw_image_alloc(&img, 40, 30);
    struct draw_color bg = draw_rgb(0, 0, 0), fg = draw_rgb(255, 255, 255);

    draw_fill(&img, bg);
    draw_text(&img, 3, 4, 1, " ", fg);
    CHECK_EQ_INT(count_luma(&img, fg.y, 0, 0, 40, 30), 0);

    draw_text(&img, 3, 4, 1, "8", fg);
    long ink1 = count_luma(&img, fg.y, 0, 0, 40, 30);
    CHECK(ink1 > 10);
    /* All of it inside the glyph's cap box. */
    CHECK_EQ_INT(count_luma(&img, fg.y, 3, 4, 3 + FONT_WIDTH, 4 + FONT_CAP_ROWS), ink1);

    draw_fill(&img, bg);
    draw_text(&img, 3, 4, 3, "8", fg);
    CHECK_EQ_INT(count_luma(&img, fg.y, 0, 0, 40, 30), 9 * ink1);

    /* Bytes outside 32..126 draw exactly like '?'. */
    struct draw_image other;
    draw_image_alloc(&other, 40, 30);
    draw_fill(&img, bg);
    draw_fill(&other, bg);
    draw_text(&img, 3, 4, 2, "?", fg);
    draw_text(&other, 3, 4, 2, "\x01", fg);
    CHECK(count_luma(&img, fg.y, 0, 0, 40, 30) > 0);
    CHECK(images_equal(&img, &other));
    draw_fill(&other, bg);
    draw_text(&other, 3, 4, 2, "\xff", fg);
    CHECK(images_equal(&img, &other));

    draw_fill(&img, bg);
    draw_text(&img, 3, 4, 2, NULL, fg);
    draw_text(&img, 3, 4, 2, "", fg);
    CHECK_EQ_INT(count_luma(&img, fg.y, 0, 0, 40, 30), 0);
    draw_image_free(&other);
    draw_image_free(&img);
}

static void test_text_metrics_match_ink(void)
{
    struct draw_image img;
    draw_image_alloc(&img, 200, 60);
    struct draw_color bg = draw_rgb(0, 0, 0), fg = draw_rgb(255, 255, 255);
    int x0, y0, x1, y1;
    for (int scale = 1; scale <= 3; scale++) {
        /* 'H' has ink in its first and last columns and rows 0..6: the ink box is the text box. */
        for (int n = 1; n <= 5; n++) {
            char text[8] = "HHHHH";
            text[n] = '\0';
            draw_fill(&img, bg);
            draw_text(&img, 7, 5, scale, text, fg);
            CHECK(luma_bbox(&img, fg.y, &x0, &y0, &x1, &y1));
            CHECKF(x0 == 7 && x1 - x0 + 1 == draw_text_width(text, scale), "n=%d scale=%d", n,
                   scale);
            CHECK_EQ_INT(y1 - y0 + 1, draw_text_cap_height(scale));
        }
        /* 'g' reaches the lowest row: the line height covers descenders. */
        draw_fill(&img, bg);
        draw_text(&img, 7, 5, scale, "g", fg);
        CHECK(luma_bbox(&img, fg.y, &x0, &y0, &x1, &y1));
        CHECK_EQ_INT(y1 + 1 - 5, draw_text_height(scale));
    }
    /* Constant advance: every extra glyph adds the same width. */
    CHECK_EQ_INT(draw_text_width("AB", 2) - draw_text_width("A", 2),
                 draw_text_width("ABCD", 2) - draw_text_width("ABC", 2));
    CHECK_EQ_INT(draw_text_width("", 3), 0);
    CHECK_EQ_INT(draw_text_width(NULL, 3), 0);
    CHECK_EQ_INT(draw_text_width("A", 0), draw_text_width("A", 1));
    CHECK(draw_text_width("A", INT_MAX) > 0);
    draw_image_free(&img);
}

static void test_text_clipping_never_writes_outside(void)
{
    static const uint32_t sizes[][2] = {{16, 16}, {17, 19}, {3, 2}};
    const char *texts[] = {"FRAME 123", "2024-01-02 03:04:05.678", "gjpqy_#/@", "\x7f\x80~"};
    for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
        struct guarded_image g;
        guarded_alloc(&g, sizes[s][0], sizes[s][1]);
        draw_fill(&g.img, draw_rgb(0, 0, 0));
        for (int i = 0; i < 400; i++)
            draw_text(&g.img, lcg_range(-60, 30), lcg_range(-30, 30), lcg_range(-1, 4),
                      texts[i % ARRAY_SIZE(texts)], draw_rgb(255, 255, 255));
        draw_text(&g.img, INT_MIN, INT_MIN, INT_MAX, "ABC", draw_rgb(255, 255, 255));
        draw_text(&g.img, INT_MAX, INT_MAX, INT_MAX, "ABC", draw_rgb(255, 255, 255));
        draw_text(&g.img, -INT_MAX / 2, 0, 1000, "ABC", draw_rgb(255, 255, 255));
        CHECKF(guarded_damage(&g) == 0, "%ux%u", sizes[s][0], sizes[s][1]);
        CHECKF(padding_mismatches(&g.img) == 0, "%ux%u", sizes[s][0], sizes[s][1]);
        guarded_free(&g);
    }
}

/* ---- Test pattern ----------------------------------------------------------- */

static void test_format_utc(void)
{
    char buf[64];
    format_utc(buf, sizeof(buf), 0, 1, "");
    CHECK_STREQ(buf, "1970-01-01 00:00:00.000");
    /* 1700000000 s is 2023-11-14 22:13:20 UTC. */
    format_utc(buf, sizeof(buf), 1700000000123456u, 1, "");
    CHECK_STREQ(buf, "2023-11-14 22:13:20.123");
    format_utc(buf, sizeof(buf), 1700000000999999u, 0, " UTC");
    CHECK_STREQ(buf, "2023-11-14 22:13:20 UTC");
    format_utc(buf, sizeof(buf), UINT64_MAX, 1, "");
    CHECK(strlen(buf) > 0);
    char small[8];
    format_utc(small, sizeof(small), 1700000000123456u, 1, "");
    CHECK_EQ_INT(strlen(small), sizeof(small) - 1);
}

static void test_pattern_consecutive_frames_differ(void)
{
    static const uint32_t sizes[][2] = {{16, 16}, {17, 19}, {33, 17}, {320, 240}};
    for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
        struct pattern *p = pattern_create(sizes[s][0], sizes[s][1]);
        struct draw_image prev;
        snapshot(&prev, pattern_render(p, 0, 1700000000000000u));
        /* More than one full sweep, all with the same clock, so only the motion and the
           frame number can tell frames apart. */
        uint64_t frames = 2 * (sizes[s][0] + (uint64_t)p->sweep_width) + 2;
        int same = 0;
        for (uint64_t f = 1; f <= frames; f++) {
            const struct draw_image *img = pattern_render(p, f, 1700000000000000u);
            if (images_equal(img, &prev))
                same++;
            draw_image_free(&prev);
            snapshot(&prev, img);
        }
        CHECKF(same == 0, "%ux%u: %d frames equal to the previous one", sizes[s][0], sizes[s][1],
               same);
        draw_image_free(&prev);
        /* Frame numbers near the top of the range wrap cleanly too. */
        snapshot(&prev, pattern_render(p, UINT64_MAX - 1, 1700000000000000u));
        CHECK(!images_equal(pattern_render(p, UINT64_MAX, 1700000000000000u), &prev));
        draw_image_free(&prev);
        pattern_destroy(p);
    }
}

static void test_pattern_text_regions(void)
{
    struct pattern *p = pattern_create(320, 240);
    int cap = draw_text_cap_height(p->text_scale);
    int frame_x1 = p->text_x + draw_text_width("FRAME 00000000", p->text_scale);
    int time_x1 = p->text_x + draw_text_width(TIME_TEMPLATE, p->text_scale);

    struct draw_image frame7;
    snapshot(&frame7, pattern_render(p, 7, 1700000000123000u));
    const struct draw_image *frame8 = pattern_render(p, 8, 1700000000123000u);
    CHECK(region_differs(&frame7, frame8, p->text_x, p->frame_line_y, frame_x1,
                         p->frame_line_y + cap));
    /* Same clock: the time line is identical. */
    CHECK(!region_differs(&frame7, frame8, 0, p->time_line_y, 320, p->time_line_y + cap));
    /* The text sits inside the image and does not overlap the bars. */
    CHECK(p->text_x >= 0 && time_x1 <= 320);
    CHECK(p->time_line_y + cap <= 240 && p->frame_line_y > p->bars_height);

    /* One millisecond later: only the time line changes. */
    const struct draw_image *later = pattern_render(p, 7, 1700000000124000u);
    CHECK(region_differs(&frame7, later, p->text_x, p->time_line_y, time_x1, p->time_line_y + cap));
    CHECK(!region_differs(&frame7, later, 0, 0, 320, p->time_line_y));

    /* A card in between does not disturb the next render. */
    pattern_card(p, "NO SIGNAL", "cam", 1);
    CHECK(images_equal(pattern_render(p, 7, 1700000000123000u), &frame7));
    draw_image_free(&frame7);
    pattern_destroy(p);
}

static void test_pattern_text_fits(void)
{
    static const uint32_t sizes[][2] = {{320, 240},   {640, 480}, {1280, 720},
                                        {1920, 1080}, {240, 320}, {400, 1080}};
    for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
        struct pattern *p = pattern_create(sizes[s][0], sizes[s][1]);
        int right = p->text_x + draw_text_width(TIME_TEMPLATE, p->text_scale);
        CHECKF(p->text_x > 0 && right < (int)sizes[s][0], "%ux%u: text spans %d..%d", sizes[s][0],
               sizes[s][1], p->text_x, right);
        /* Readable: capitals about 1/24 of the height (10 pixels at 240 lines) when the width
           allows it, and never below the font's native 7 pixels. */
        int cap = draw_text_cap_height(p->text_scale);
        int wanted = sizes[s][0] >= sizes[s][1] ? (int)sizes[s][1] / 24 : 7;
        CHECKF(cap >= wanted && cap >= 7, "%ux%u: scale %d", sizes[s][0], sizes[s][1],
               p->text_scale);
        pattern_destroy(p);
    }
}

static void test_pattern_sizes(void)
{
    static const uint32_t sizes[][2] = {{16, 16}, {17, 19}, {1, 1}, {1920, 1080}, {1921, 1081}};
    for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
        struct pattern *p = pattern_create(sizes[s][0], sizes[s][1]);
        const struct draw_image *img = pattern_render(p, 1, 1700000000000000u);
        CHECK(img->width == sizes[s][0] && img->height == sizes[s][1]);
        CHECK_EQ_INT(padding_mismatches(img), 0);
        img = pattern_card(p, "CAMERA OFFLINE", "front door", 1700000000000000u);
        CHECK(img->width == sizes[s][0] && img->height == sizes[s][1]);
        CHECK_EQ_INT(padding_mismatches(img), 0);
        pattern_destroy(p);
    }
    pattern_destroy(NULL);
}

static void test_card(void)
{
    struct pattern *p = pattern_create(640, 480);
    uint8_t title_y = draw_rgb(240, 240, 240).y;
    int x0, y0, x1, y1;

    const struct draw_image *img = pattern_card(p, "NO SIGNAL", NULL, 0);
    CHECK(luma_bbox(img, title_y, &x0, &y0, &x1, &y1));
    /* Centred: equal margins left and right, within a pixel. */
    CHECKF(abs(x0 - (639 - x1)) <= 1, "title spans %d..%d", x0, x1);
    CHECK(y0 > 480 / 4 && y1 < 480 * 3 / 4);
    /* Big: several times the 7-pixel font. */
    CHECK(y1 - y0 + 1 >= 35);
    /* No time without real_us: the bottom quarter is plain background. */
    uint8_t bg = pixel(img, 0, 0, 0);
    CHECK_EQ_INT(count_luma(img, bg, 0, 360, 640, 480), 640 * 120);

    struct draw_image no_detail;
    snapshot(&no_detail, img);
    img = pattern_card(p, "NO SIGNAL", "", 0);
    CHECK(images_equal(img, &no_detail));
    img = pattern_card(p, "NO SIGNAL", "camera default", 0);
    CHECK(!images_equal(img, &no_detail));
    img = pattern_card(p, "NO SIGNAL", "camera default", 1700000000000000u);
    CHECK(count_luma(img, bg, 320, 420, 640, 480) < 320 * 60);
    draw_image_free(&no_detail);

    /* An over-long detail is shortened and stays inside the image margins. */
    char detail[600];
    memset(detail, 'W', sizeof(detail) - 1);
    detail[sizeof(detail) - 1] = '\0';
    img = pattern_card(p, "CAMERA OFFLINE WITH A VERY LONG TITLE THAT CANNOT FIT", detail, 0);
    CHECK(count_luma(img, bg, 0, 0, 640 / 20, 480) == (640 / 20) * 480);
    CHECK(count_luma(img, bg, 640 - 640 / 20, 0, 640, 480) == (640 / 20) * 480);
    img = pattern_card(p, NULL, NULL, 0);
    CHECK_EQ_INT(img->width, 640);
    pattern_destroy(p);
}

int main(void)
{
    RUN_TEST(test_rgb_known_colours);
    RUN_TEST(test_rgb_matches_jfif_formula);
    RUN_TEST(test_image_alloc_fill_free);
    RUN_TEST(test_rect_exact_coverage);
    RUN_TEST(test_rect_clipping_never_writes_outside);
    RUN_TEST(test_rect_degenerate_draws_nothing);
    RUN_TEST(test_font_sheet_well_formed);
    RUN_TEST(test_text_ink);
    RUN_TEST(test_text_metrics_match_ink);
    RUN_TEST(test_text_clipping_never_writes_outside);
    RUN_TEST(test_format_utc);
    RUN_TEST(test_pattern_consecutive_frames_differ);
    RUN_TEST(test_pattern_text_regions);
    RUN_TEST(test_pattern_text_fits);
    RUN_TEST(test_pattern_sizes);
    RUN_TEST(test_card);
    return check_summary();
}
