/* jpeg_scan.c - structural JPEG walker: finds where a JPEG ends and checks its marker layout. */
#include "jpeg_scan.h"

#include <errno.h>
#include <string.h>

enum {
    PHASE_SOI,     /* expecting FF D8 at offset 0 */
    PHASE_MARKER,  /* expecting a marker (possibly after fill bytes) at offset */
    PHASE_ENTROPY, /* inside entropy-coded data; offset is the next unexamined byte */
    PHASE_DONE,    /* EOI reached */
    PHASE_BAD,     /* structure invalid */
};

#define MARKER_TEM     0x01
#define MARKER_SOF0    0xC0
#define MARKER_DHT     0xC4
#define MARKER_JPG     0xC8
#define MARKER_DAC     0xCC
#define MARKER_RST0    0xD0
#define MARKER_RST7    0xD7
#define MARKER_SOI     0xD8
#define MARKER_EOI     0xD9
#define MARKER_SOS     0xDA
#define MARKER_DQT     0xDB
#define MARKER_DRI     0xDD
#define MAX_COMPONENTS 4

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static bool is_sof(uint8_t marker)
{
    return marker >= MARKER_SOF0 && marker <= 0xCF && marker != MARKER_DHT &&
           marker != MARKER_JPG && marker != MARKER_DAC;
}

/* The parsers below get a segment's payload (after the 2 length bytes) and return whether its
   layout is consistent: a corrupt length or table count means we are not looking at a JPEG. */

static bool parse_sof(struct jpeg_scan_state *st, uint8_t marker, const uint8_t *p, size_t n)
{
    if (n < 6)
        return false;
    uint16_t height = be16(p + 1), width = be16(p + 3);
    uint8_t components = p[5];
    if (width == 0 || components == 0 || components > MAX_COMPONENTS ||
        n != 6 + 3 * (size_t)components)
        return false;
    for (size_t i = 0; i < components; i++) {
        const uint8_t *c = p + 6 + 3 * i;
        uint8_t h = c[1] >> 4, v = c[1] & 15;
        if (h < 1 || h > 4 || v < 1 || v > 4 || c[2] > 3)
            return false;
    }
    st->seen_sof = true;
    st->info.width = width;
    st->info.height = height;
    st->info.components = components;
    st->info.sof_marker = marker;
    st->info.precision = p[0];
    return true;
}

static bool parse_sos(const uint8_t *p, size_t n)
{
    if (n < 1)
        return false;
    size_t components = p[0];
    return components >= 1 && components <= MAX_COMPONENTS && n == 1 + 2 * components + 3;
}

static bool parse_dht(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (n - i < 17 || p[i] >> 4 > 1 || (p[i] & 15) > 3)
            return false;
        size_t symbols = 0;
        for (size_t k = 1; k <= 16; k++)
            symbols += p[i + k];
        if (symbols > 256 || n - i - 17 < symbols)
            return false;
        i += 17 + symbols;
    }
    return n > 0;
}

static bool parse_dqt(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t precision = p[i] >> 4;
        if (precision > 1 || (p[i] & 15) > 3)
            return false;
        size_t size = 1 + 64 * ((size_t)precision + 1);
        if (n - i < size)
            return false;
        i += size;
    }
    return n > 0;
}

/* Handles one complete segment; returns the phase to continue in. */
static int handle_segment(struct jpeg_scan_state *st, uint8_t marker, size_t marker_pos,
                          const uint8_t *payload, size_t n)
{
    if (is_sof(marker))
        return !st->seen_sof && parse_sof(st, marker, payload, n) ? PHASE_MARKER : PHASE_BAD;
    switch (marker) {
    case MARKER_DHT:
        if (!parse_dht(payload, n))
            return PHASE_BAD;
        if (st->info.scans == 0)
            st->info.has_dht = true;
        return PHASE_MARKER;
    case MARKER_DQT:
        return parse_dqt(payload, n) ? PHASE_MARKER : PHASE_BAD;
    case MARKER_DRI:
        return n == 2 ? PHASE_MARKER : PHASE_BAD;
    case MARKER_SOS:
        if (!st->seen_sof || !parse_sos(payload, n))
            return PHASE_BAD;
        if (st->info.scans == 0)
            st->info.sos_offset = st->dropped + marker_pos;
        if (st->info.scans < UINT16_MAX)
            st->info.scans++;
        return PHASE_ENTROPY;
    default:
        /* APPn, COM, DNL, DAC, JPGn, ...: payload is opaque to us. */
        return PHASE_MARKER;
    }
}

/*
 * Walks markers from st->offset. Returns the next phase; st->offset is left at the first byte
 * still needed (the FF of an incomplete segment, or the entropy data after an SOS).
 */
static int walk_markers(struct jpeg_scan_state *st, const uint8_t *buf, size_t len)
{
    for (;;) {
        size_t pos = st->offset;
        if (pos >= len)
            return PHASE_MARKER;
        if (buf[pos] != 0xFF)
            return PHASE_BAD;
        /* Skip fill bytes; keep only the last FF so they are never re-read. */
        while (pos + 1 < len && buf[pos + 1] == 0xFF)
            pos++;
        st->offset = pos;
        if (pos + 1 >= len)
            return PHASE_MARKER;
        uint8_t marker = buf[pos + 1];
        if (marker == MARKER_EOI) {
            if (st->info.scans == 0)
                return PHASE_BAD;
            st->info.length = st->dropped + pos + 2;
            st->offset = pos + 2;
            return PHASE_DONE;
        }
        if (marker == MARKER_TEM) {
            st->offset = pos + 2;
            continue;
        }
        if (marker < MARKER_SOF0 || marker == MARKER_SOI ||
            (marker >= MARKER_RST0 && marker <= MARKER_RST7))
            return PHASE_BAD;
        /* Order errors are known before the segment arrives: report them early. */
        if ((is_sof(marker) && st->seen_sof) || (marker == MARKER_SOS && !st->seen_sof))
            return PHASE_BAD;
        if (len - pos < 4)
            return PHASE_MARKER;
        size_t seglen = be16(buf + pos + 2);
        if (seglen < 2)
            return PHASE_BAD;
        if (len - pos - 2 < seglen)
            return PHASE_MARKER;
        int next = handle_segment(st, marker, pos, buf + pos + 4, seglen - 2);
        if (next == PHASE_BAD)
            return PHASE_BAD;
        st->offset = pos + 2 + seglen;
        if (next == PHASE_ENTROPY)
            return PHASE_ENTROPY;
    }
}

/*
 * Skips entropy-coded data from st->offset with memchr. Inside it 0xFF is followed by 0x00
 * (stuffing) or RSTn; any other marker, possibly after fill bytes, ends the scan. Returns
 * PHASE_MARKER with st->offset at the last FF before that marker, or PHASE_ENTROPY when the
 * buffer ran out.
 */
static int walk_entropy(struct jpeg_scan_state *st, const uint8_t *buf, size_t len)
{
    size_t pos = st->offset;
    while (pos < len) {
        const uint8_t *ff = memchr(buf + pos, 0xFF, len - pos);
        if (!ff)
            break;
        size_t last_ff = (size_t)(ff - buf);
        while (last_ff + 1 < len && buf[last_ff + 1] == 0xFF)
            last_ff++;
        if (last_ff + 1 >= len) {
            st->offset = last_ff;
            return PHASE_ENTROPY;
        }
        uint8_t next = buf[last_ff + 1];
        if (next == 0x00 || (next >= MARKER_RST0 && next <= MARKER_RST7)) {
            pos = last_ff + 2;
            continue;
        }
        st->offset = last_ff;
        return PHASE_MARKER;
    }
    st->offset = len;
    return PHASE_ENTROPY;
}

void jpeg_scan_init(struct jpeg_scan_state *st)
{
    memset(st, 0, sizeof(*st));
    st->phase = PHASE_SOI;
}

int jpeg_scan_resume(struct jpeg_scan_state *st, const uint8_t *buf, size_t len)
{
    for (;;) {
        switch (st->phase) {
        case PHASE_SOI:
            if (len >= 1 && buf[0] != 0xFF)
                st->phase = PHASE_BAD;
            else if (len >= 2 && buf[1] != MARKER_SOI)
                st->phase = PHASE_BAD;
            else if (len < 2)
                return -EAGAIN;
            else {
                st->offset = 2;
                st->phase = PHASE_MARKER;
            }
            break;
        case PHASE_MARKER:
            st->phase = walk_markers(st, buf, len);
            if (st->phase == PHASE_MARKER)
                return -EAGAIN;
            break;
        case PHASE_ENTROPY:
            st->phase = walk_entropy(st, buf, len);
            if (st->phase == PHASE_ENTROPY)
                return -EAGAIN;
            break;
        case PHASE_DONE:
            return 0;
        default:
            return -EBADMSG;
        }
    }
}

size_t jpeg_scan_release(struct jpeg_scan_state *st)
{
    size_t n = st->offset;
    st->offset = 0;
    st->dropped += n;
    return n;
}

int jpeg_scan_check(const uint8_t *buf, size_t len, struct jpeg_scan_info *info)
{
    struct jpeg_scan_state st;
    jpeg_scan_init(&st);
    int ret = jpeg_scan_resume(&st, buf, len);
    if (ret == 0 && info)
        *info = st.info;
    return ret;
}
