/* cards.h - the responder's "CAMERA OFFLINE" JPEG, rendered on demand and cached per thread. */
#ifndef CAPD_CARDS_H
#define CAPD_CARDS_H

#include <stddef.h>
#include <stdint.h>

/* A small per-thread cache: the card is rendered once per (size, camera) and
 * reused, so a stream that stays offline encodes nothing more. Not thread-safe;
 * one per serving thread. */
struct cards {
    struct pattern *pattern;
    struct encoder *encoder;
    uint8_t *jpeg;
    size_t jpeg_size;
    size_t jpeg_capacity;
    uint32_t width, height;
    char camera[72];
};

/* Returns the offline card for camera at width x height (clamped to 16..4096;
 * 0 means 640x480) and its size in *size, or NULL when encoding failed (logged).
 * The bytes belong to the cache and stay valid until the next call. */
const uint8_t *cards_offline(struct cards *c, uint32_t width, uint32_t height, const char *camera,
                             size_t *size);

/* Frees the cache; accepts a zeroed struct. */
void cards_free(struct cards *c);

#endif
