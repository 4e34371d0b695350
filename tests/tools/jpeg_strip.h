/* jpeg_strip.h - test helper: a copy of a JPEG without the DHT segments before its first SOS. */
#ifndef CAPD_TESTS_JPEG_STRIP_H
#define CAPD_TESTS_JPEG_STRIP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * Copies src[0..len) into dst (which must hold len bytes) leaving out every DHT segment that
 * comes before the first SOS, which is where cameras and capd's jpeg_dht put them. Used to make
 * the "camera without Huffman tables" fixture and to check that capd inserted tables and changed
 * nothing else. Returns the new length, or 0 when src does not start with SOI and a sane
 * segment chain up to an SOS. Never reads outside src[0..len).
 */
static inline size_t jpeg_strip_dht(const uint8_t *src, size_t len, uint8_t *dst)
{
    size_t in = 2, out = 2;

    if (len < 4 || src[0] != 0xFF || src[1] != 0xD8)
        return 0;
    dst[0] = 0xFF;
    dst[1] = 0xD8;
    while (in + 4 <= len) {
        if (src[in] != 0xFF)
            return 0;
        if (src[in + 1] == 0xFF) { /* fill byte before a marker */
            in++;
            continue;
        }
        uint8_t marker = src[in + 1];
        if (marker == 0xDA) { /* SOS: header and entropy-coded data are copied unchanged */
            memcpy(dst + out, src + in, len - in);
            return out + (len - in);
        }
        size_t seg = 2 + (((size_t)src[in + 2] << 8) | src[in + 3]);
        if (seg < 4 || in + seg > len)
            return 0;
        if (marker != 0xC4) {
            memcpy(dst + out, src + in, seg);
            out += seg;
        }
        in += seg;
    }
    return 0;
}

#endif
