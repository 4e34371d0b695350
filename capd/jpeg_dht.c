/* jpeg_dht.c - copies camera MJPEG frames, inserting the standard Huffman tables when missing. */
#include "jpeg_dht.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "jpeg_scan.h"

#define MARKER_SOF0 0xC0
#define MARKER_SOF1 0xC1
#define MARKER_SOF9 0xC9

/* Each table: class/id byte (class 0 = DC, 1 = AC), BITS (codes of length 1..16), HUFFVAL. */
#define DHT_TABLE_SIZE(symbols) (1 + 16 + (symbols))
#define DHT_PAYLOAD_SIZE        (2 * DHT_TABLE_SIZE(12) + 2 * DHT_TABLE_SIZE(162))
#define DHT_LENGTH              (2 + DHT_PAYLOAD_SIZE) /* the segment's length field: 418 */
#define DHT_SEGMENT_SIZE        (2 + DHT_LENGTH)       /* with the FF C4 marker: 420 */

/*
 * The example tables of ITU-T T.81 Annex K.3 (Tables K.3 to K.6) as one DHT segment, in the
 * order libjpeg writes them for a colour image (luminance DC and AC, then chrominance DC and
 * AC), so the segment carries exactly the bytes libjpeg's separate DHT segments carry.
 * HUFFVAL lists the symbols in code order; an AC symbol is run << 4 | size, 0x00 being EOB and
 * 0xF0 ZRL (a run of 16 zeros).
 */
/* One row per code length keeps BITS and HUFFVAL visibly in step, hence no clang-format. */
/* clang-format off */
static const uint8_t standard_dht[] = {
    0xFF, 0xC4, DHT_LENGTH >> 8, DHT_LENGTH & 0xFF,

    /* Table K.3: luminance DC differences, categories 0..11. */
    0x00,
    0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0,
    0,                                  /* length 2 */
    1, 2, 3, 4, 5,                      /* length 3 */
    6, 7, 8, 9, 10, 11,                 /* lengths 4..9 */

    /* Table K.5: luminance AC coefficients. */
    0x10,
    0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 125,
    0x01, 0x02,                         /* length 2 */
    0x03,                               /* length 3 */
    0x00, 0x04, 0x11,                   /* length 4 */
    0x05, 0x12, 0x21,                   /* length 5 */
    0x31, 0x41,                         /* length 6 */
    0x06, 0x13, 0x51, 0x61,             /* length 7 */
    0x07, 0x22, 0x71,                   /* length 8 */
    0x14, 0x32, 0x81, 0x91, 0xA1,       /* length 9 */
    0x08, 0x23, 0x42, 0xB1, 0xC1,       /* length 10 */
    0x15, 0x52, 0xD1, 0xF0,             /* length 11 */
    0x24, 0x33, 0x62, 0x72,             /* length 12 */
    0x82,                               /* length 15 */
    /* length 16: every remaining run/size pair, in run-major order */
    0x09, 0x0A,
    0x16, 0x17, 0x18, 0x19, 0x1A,
    0x25, 0x26, 0x27, 0x28, 0x29, 0x2A,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A,
    0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A,
    0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A,
    0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A,
    0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A,
    0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A,
    0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A,
    0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA,
    0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA,
    0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA,
    0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA,
    0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA,
    0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,

    /* Table K.4: chrominance DC differences, categories 0..11. */
    0x01,
    0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
    0, 1, 2,                            /* length 2 */
    3, 4, 5, 6, 7, 8, 9, 10, 11,        /* lengths 3..11 */

    /* Table K.6: chrominance AC coefficients. */
    0x11,
    0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 119,
    0x00, 0x01,                                 /* length 2 */
    0x02,                                       /* length 3 */
    0x03, 0x11,                                 /* length 4 */
    0x04, 0x05, 0x21, 0x31,                     /* length 5 */
    0x06, 0x12, 0x41, 0x51,                     /* length 6 */
    0x07, 0x61, 0x71,                           /* length 7 */
    0x13, 0x22, 0x32, 0x81,                     /* length 8 */
    0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1,   /* length 9 */
    0x09, 0x23, 0x33, 0x52, 0xF0,               /* length 10 */
    0x15, 0x62, 0x72, 0xD1,                     /* length 11 */
    0x0A, 0x16, 0x24, 0x34,                     /* length 12 */
    0xE1,                                       /* length 14 */
    0x25, 0xF1,                                 /* length 15 */
    /* length 16: every remaining run/size pair, in run-major order */
    0x17, 0x18, 0x19, 0x1A,
    0x26, 0x27, 0x28, 0x29, 0x2A,
    0x35, 0x36, 0x37, 0x38, 0x39, 0x3A,
    0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A,
    0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A,
    0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A,
    0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A,
    0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A,
    0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A,
    0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA,
    0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA,
    0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA,
    0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA,
    0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA,
    0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA,
};
/* clang-format on */
_Static_assert(sizeof(standard_dht) == DHT_SEGMENT_SIZE, "BITS and HUFFVAL out of step");

/* Whether every component of the SOS segment at sos (already validated by jpeg_scan) selects
   DC and AC tables that the standard segment defines (ids 0 and 1). */
static bool sos_uses_standard_ids(const uint8_t *sos)
{
    size_t components = sos[4];
    for (size_t i = 0; i < components; i++) {
        uint8_t selectors = sos[5 + 2 * i + 1];
        if (selectors >> 4 > 1 || (selectors & 15) > 1)
            return false;
    }
    return true;
}

/*
 * Decides what a frame without DHT before its first SOS needs. Returns 1 to insert the
 * standard tables, 0 to copy unchanged (arithmetic coding uses no Huffman tables), -EBADMSG
 * when no standard table can describe the frame (see jpeg_dht.h).
 */
static int tables_needed(const struct jpeg_scan_info *info, const uint8_t *src)
{
    if (info->sof_marker >= MARKER_SOF9)
        return 0;
    bool sequential = info->sof_marker == MARKER_SOF0 ||
                      (info->sof_marker == MARKER_SOF1 && info->precision == 8);
    if (!sequential || !sos_uses_standard_ids(src + info->sos_offset))
        return -EBADMSG;
    return 1;
}

int jpeg_dht_copy(const uint8_t *src, size_t len, uint8_t *dst, size_t capacity, size_t *out_size,
                  int *inserted)
{
    struct jpeg_scan_info info;
    *inserted = 0;
    if (len == 0 || jpeg_scan_check(src, len, &info) != 0)
        return -EBADMSG; /* -EAGAIN from the walker means truncated: just as fatal here */

    int insert = info.has_dht ? 0 : tables_needed(&info, src);
    if (insert < 0)
        return insert;
    size_t needed = info.length + (insert ? sizeof(standard_dht) : 0);
    if (needed > capacity) {
        *out_size = needed;
        return -ENOSPC;
    }
    if (insert) {
        size_t head = info.sos_offset;
        memcpy(dst, src, head);
        memcpy(dst + head, standard_dht, sizeof(standard_dht));
        memcpy(dst + head + sizeof(standard_dht), src + head, info.length - head);
    } else {
        memcpy(dst, src, info.length);
    }
    *out_size = needed;
    *inserted = insert;
    return 0;
}

size_t jpeg_dht_extra_bytes(void)
{
    return sizeof(standard_dht);
}
