/* cards.c - the responder's "CAMERA OFFLINE" JPEG, rendered on demand and cached per thread. */
#include "cards.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"
#include "pattern.h"
#include "util.h"

#define CARD_QUALITY 80

static uint32_t clamp_dim(uint32_t v, uint32_t fallback)
{
    if (v == 0)
        return fallback;
    return v < 16 ? 16 : v > 4096 ? 4096 : v;
}

const uint8_t *cards_offline(struct cards *c, uint32_t width, uint32_t height, const char *camera,
                             size_t *size)
{
    const struct draw_image *img;
    char detail[96];
    size_t need;

    width = clamp_dim(width, 640);
    height = clamp_dim(height, 480);
    if (c->jpeg_size && c->width == width && c->height == height &&
        strncmp(c->camera, camera, sizeof(c->camera)) == 0) {
        *size = c->jpeg_size;
        return c->jpeg;
    }
    if (!c->encoder && encoder_create(CARD_QUALITY, &c->encoder) < 0)
        return NULL;
    if (!c->pattern || c->width != width || c->height != height) {
        pattern_destroy(c->pattern);
        c->pattern = pattern_create(width, height);
    }
    need = encoder_max_size(width, height);
    if (c->jpeg_capacity < need) {
        free(c->jpeg);
        c->jpeg = xmalloc(need);
        c->jpeg_capacity = need;
    }
    snprintf(detail, sizeof(detail), "camera %s - waiting for capd", camera);
    img = pattern_card(c->pattern, "CAMERA OFFLINE", detail, 0);
    c->jpeg_size = 0;
    if (encoder_encode_i420(c->encoder, img, c->jpeg, c->jpeg_capacity, &c->jpeg_size) < 0)
        return NULL;
    c->width = width;
    c->height = height;
    snprintf(c->camera, sizeof(c->camera), "%s", camera);
    *size = c->jpeg_size;
    return c->jpeg;
}

void cards_free(struct cards *c)
{
    pattern_destroy(c->pattern);
    encoder_destroy(c->encoder);
    free(c->jpeg);
    memset(c, 0, sizeof(*c));
}
