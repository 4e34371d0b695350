/* pattern.c - the moving test pattern (capd's default source) and still status cards, in I420. */
#include "pattern.h"

#include "util.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The widest line in the info panel; every digit glyph has the same advance, so its width is
   fixed and the panel text does not jump around from frame to frame. */
#define TIME_TEMPLATE "0000-00-00 00:00:00.000"

struct pattern {
    struct draw_image frame;      /* what pattern_render/pattern_card return */
    struct draw_image background; /* bars, ramp and empty panel: copied into frame per frame */

    int bars_height; /* the sweep covers rows [0, bars_height) */
    int sweep_width, sweep_edge, sweep_step;

    int text_scale;
    int text_x, frame_line_y, time_line_y;
};

/* ---- Helpers shared by the pattern and the cards --------------------------- */

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

static int min_int(int a, int b)
{
    return a < b ? a : b;
}

/* Formats real_us as UTC "YYYY-MM-DD HH:MM:SS", then ".mmm" when with_ms, then suffix. */
static void format_utc(char *buf, size_t size, uint64_t real_us, int with_ms, const char *suffix)
{
    time_t secs = (time_t)(real_us / 1000000u);
    unsigned ms = (unsigned)(real_us / 1000u % 1000u);
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) {
        snprintf(buf, size, "----------%s", suffix);
        return;
    }
    int n = snprintf(buf, size, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n < 0 || (size_t)n >= size)
        return;
    if (with_ms)
        snprintf(buf + n, size - (size_t)n, ".%03u%s", ms, suffix);
    else
        snprintf(buf + n, size - (size_t)n, "%s", suffix);
}

/* The largest scale in [1, max_scale] at which text is at most max_width wide (1 if none). */
static int fit_scale(const char *text, int max_scale, int max_width)
{
    int scale = max_int(max_scale, 1);
    while (scale > 1 && draw_text_width(text, scale) > max_width)
        scale--;
    return scale;
}

/* Returns text, or when it is wider than max_width at scale, as much of it as fits followed by
   "..." written into buf. */
static const char *fit_text(const char *text, int scale, int max_width, char *buf, size_t size)
{
    if (draw_text_width(text, scale) <= max_width)
        return text;
    /* n glyphs are n * advance - blank wide: no blank column after the last one. */
    int advance = draw_text_width("xx", scale) - draw_text_width("x", scale);
    int blank = advance * 2 - draw_text_width("xx", scale);
    int glyphs = max_int((max_width + blank) / advance, 0);
    size_t keep = glyphs > 3 ? (size_t)glyphs - 3 : 0;
    if (keep > size - 4)
        keep = size - 4;
    memcpy(buf, text, keep);
    memcpy(buf + keep, "...", 4);
    return buf;
}

/* ---- Test pattern ---------------------------------------------------------- */

/* Paints the static part: colour bars, a grey ramp below them, and the empty info panel. */
static void paint_background(struct pattern *p, int panel_height, int ramp_height)
{
    struct draw_image *bg = &p->background;
    int width = (int)bg->width, height = (int)bg->height;
    /* 75% bars, the level broadcast test signals use, in the classic order. */
    static const uint8_t bar_rgb[][3] = {
        {191, 191, 191}, {191, 191, 0}, {0, 191, 191}, {0, 191, 0},
        {191, 0, 191},   {191, 0, 0},   {0, 0, 191},
    };
    const int bars = (int)ARRAY_SIZE(bar_rgb);
    for (int i = 0; i < bars; i++) {
        int x0 = (int)((int64_t)width * i / bars), x1 = (int)((int64_t)width * (i + 1) / bars);
        draw_rect(bg, x0, 0, x1 - x0, p->bars_height,
                  draw_rgb(bar_rgb[i][0], bar_rgb[i][1], bar_rgb[i][2]));
    }

    /* Black to white, left to right: shows clipping and banding after compression. */
    for (int x = 0; x < width; x++) {
        uint8_t level = (uint8_t)(width > 1 ? (int64_t)x * 255 / (width - 1) : 128);
        draw_rect(bg, x, p->bars_height, 1, ramp_height, draw_rgb(level, level, level));
    }

    int panel_y = height - panel_height;
    draw_rect(bg, 0, panel_y, width, panel_height, draw_rgb(18, 20, 24));
}

struct pattern *pattern_create(uint32_t width, uint32_t height)
{
    assert(width >= 1 && width <= DRAW_MAX_DIMENSION);
    assert(height >= 1 && height <= DRAW_MAX_DIMENSION);
    struct pattern *p = xcalloc(1, sizeof(*p));
    draw_image_alloc(&p->frame, width, height);
    draw_image_alloc(&p->background, width, height);
    int w = (int)width, h = (int)height;

    /* Text grows with the height (scale 2 at 240 lines, 8 at 1080) and shrinks to fit narrow
       frames; a 5*scale-pixel margin keeps it off the edges. */
    int scale = max_int(1, (h + 60) / 135);
    while (scale > 1 && draw_text_width(TIME_TEMPLATE, scale) + 10 * scale > w)
        scale--;
    p->text_scale = scale;

    /* Panel: padding, "FRAME n", gap, time, padding. Lines are caps and digits only, so cap
       height is their full height. */
    int pad = 5 * scale, line_gap = 4 * scale, cap = draw_text_cap_height(scale);
    int panel_height = min_int(2 * pad + 2 * cap + line_gap, h / 2);
    int ramp_height = min_int(max_int(1, h / 16), h - panel_height - 1);
    ramp_height = max_int(ramp_height, 0);
    p->bars_height = h - panel_height - ramp_height;

    int time_width = draw_text_width(TIME_TEMPLATE, scale);
    p->text_x = time_width < w ? (w - time_width) / 2 : scale;
    p->frame_line_y = h - panel_height + pad;
    p->time_line_y = p->frame_line_y + cap + line_gap;

    /* A bar about 1/40 of the width crossing in a little over 5 s at 30 fps, whatever the size. */
    p->sweep_width = max_int(4, w / 40);
    p->sweep_edge = max_int(1, p->sweep_width / 6);
    p->sweep_step = max_int(2, w / 160);

    paint_background(p, panel_height, ramp_height);
    return p;
}

void pattern_destroy(struct pattern *p)
{
    if (!p)
        return;
    draw_image_free(&p->frame);
    draw_image_free(&p->background);
    free(p);
}

/* Both images come from draw_image_alloc with the same size, hence the same strides: one
   memcpy per plane, padding included. */
static void copy_image(struct draw_image *dst, const struct draw_image *src)
{
    for (int i = 0; i < 3; i++) {
        uint32_t rows = i == 0 ? DRAW_LUMA_PAD(src->height) : (src->height + 1) / 2;
        memcpy(dst->plane[i], src->plane[i], (size_t)src->stride[i] * rows);
    }
}

/* A black-edged white bar moving right by sweep_step per frame and wrapping around: visible on
   every colour bar, and its position tells frames apart. */
static void draw_sweep(struct pattern *p, uint64_t frame)
{
    uint64_t period = p->frame.width + (uint64_t)p->sweep_width;
    /* sweep_step < period, so consecutive frames never land on the same position. */
    int offset = (int)((frame % period) * (uint64_t)p->sweep_step % period);
    int x = offset - p->sweep_width;
    draw_rect(&p->frame, x, 0, p->sweep_width, p->bars_height, draw_rgb(0, 0, 0));
    draw_rect(&p->frame, x + p->sweep_edge, 0, p->sweep_width - 2 * p->sweep_edge, p->bars_height,
              draw_rgb(255, 255, 255));
}

const struct draw_image *pattern_render(struct pattern *p, uint64_t frame, uint64_t real_us)
{
    copy_image(&p->frame, &p->background);
    draw_sweep(p, frame);

    char line[64];
    snprintf(line, sizeof(line), "FRAME %" PRIu64, frame);
    draw_text(&p->frame, p->text_x, p->frame_line_y, p->text_scale, line, draw_rgb(150, 156, 168));
    format_utc(line, sizeof(line), real_us, 1, "");
    draw_text(&p->frame, p->text_x, p->time_line_y, p->text_scale, line, draw_rgb(240, 240, 240));
    return &p->frame;
}

/* ---- Status cards ---------------------------------------------------------- */

const struct draw_image *pattern_card(struct pattern *p, const char *title, const char *detail,
                                      uint64_t real_us)
{
    struct draw_image *img = &p->frame;
    int w = (int)img->width, h = (int)img->height;
    int margin = max_int(2, w / 20), avail = max_int(1, w - 2 * margin);
    char title_buf[128], detail_buf[128], time_buf[64];
    if (!title)
        title = "";
    if (!detail)
        detail = "";

    draw_fill(img, draw_rgb(20, 22, 26));

    /* Title capitals about a tenth of the height (scale 2 at 120 lines, 15 at 1080), detail
       about a quarter of that; both shrink to fit the width, then get shortened. */
    int title_scale = fit_scale(title, max_int(1, (h + 48) / 72), avail);
    title = fit_text(title, title_scale, avail, title_buf, sizeof(title_buf));
    int detail_scale = fit_scale(detail, min_int(title_scale, max_int(1, h / 200)), avail);
    detail = fit_text(detail, detail_scale, avail, detail_buf, sizeof(detail_buf));

    /* Title, a short accent rule, then the detail, centred as one block. */
    int title_width = draw_text_width(title, title_scale);
    int title_height = draw_text_cap_height(title_scale);
    int gap = 3 * title_scale, rule_height = max_int(2, title_scale / 2);
    int block = title_height + gap + rule_height;
    if (*detail)
        block += gap + draw_text_height(detail_scale);
    int y = (h - block) / 2;

    draw_text(img, (w - title_width) / 2, y, title_scale, title, draw_rgb(240, 240, 240));
    y += title_height + gap;
    int rule_width = max_int(title_width / 4, 4 * title_scale);
    draw_rect(img, (w - rule_width) / 2, y, rule_width, rule_height, draw_rgb(232, 160, 40));
    y += rule_height + gap;
    if (*detail) {
        int detail_width = draw_text_width(detail, detail_scale);
        draw_text(img, (w - detail_width) / 2, y, detail_scale, detail, draw_rgb(160, 166, 178));
    }

    if (real_us != 0) {
        /* A quiet stamp: smaller and dimmer than the detail. */
        int time_scale = max_int(1, (h + 120) / 300), corner = max_int(2, h / 40);
        format_utc(time_buf, sizeof(time_buf), real_us, 0, " UTC");
        int time_width = draw_text_width(time_buf, time_scale);
        int x = max_int(corner, w - corner - time_width);
        draw_text(img, x, h - corner - draw_text_cap_height(time_scale), time_scale, time_buf,
                  draw_rgb(120, 126, 138));
    }
    return img;
}
