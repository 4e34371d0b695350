/* pattern.h - the moving test pattern (capd's default source) and still status cards, in I420. */
#ifndef CAPD_PATTERN_H
#define CAPD_PATTERN_H

#include <stdint.h>

#include "draw.h"

/*
 * A pattern owns one output image and the precomputed static background; it allocates only in
 * pattern_create, so rendering is cheap enough for 30 fps at 1920x1080. The image returned by
 * pattern_render or pattern_card belongs to the pattern and is overwritten by the next call on
 * the same pattern. Not thread-safe: use a pattern from one thread at a time (distinct patterns
 * are independent). Times are shown in UTC.
 */
struct pattern;

/* Creates a pattern for width x height frames, each in [1, DRAW_MAX_DIMENSION] (asserted; sizes
   of 16 and up give legible text, smaller ones clip it). Never returns NULL (xmalloc aborts).
   Free with pattern_destroy. */
struct pattern *pattern_create(uint32_t width, uint32_t height);

/* Frees the pattern and its images. Accepts NULL. */
void pattern_destroy(struct pattern *p);

/* Renders frame number `frame` captured at `real_us` (microseconds since the epoch,
   CLOCK_REALTIME): 75% colour bars with a bar sweeping across them by a few pixels per frame, a
   grey ramp, and an info panel with "FRAME <n>" and the UTC time "YYYY-MM-DD HH:MM:SS.mmm".
   Consecutive frames always differ. Returns the image, owned by p and valid until the next
   pattern_render/pattern_card call on p. */
const struct draw_image *pattern_render(struct pattern *p, uint64_t frame, uint64_t real_us);

/* Renders a still card: dark background, `title` big and centred (e.g. "NO SIGNAL"), `detail`
   smaller below it (NULL or "" for none; shortened with "..." when too long to fit), and the UTC
   time of `real_us` in the bottom-right corner unless real_us is 0. Returns the image, owned by p
   and valid until the next pattern_render/pattern_card call on p. */
const struct draw_image *pattern_card(struct pattern *p, const char *title, const char *detail,
                                      uint64_t real_us);

#endif
