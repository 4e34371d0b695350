/* jpeg_scan.h - structural JPEG walker: finds where a JPEG ends and checks its marker layout. */
#ifndef CAPD_JPEG_SCAN_H
#define CAPD_JPEG_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The walker follows the marker structure (SOI, length-delimited segments, SOS plus
 * entropy-coded data, ..., EOI) instead of searching for FFD9, so embedded EXIF thumbnails
 * and other segment payloads cannot end a frame early. It checks structure, not pixels:
 * segment lengths, SOF/SOS/DQT/DHT/DRI layouts, marker order (one SOF before the first SOS,
 * at least one scan before EOI, no SOI/RSTn outside their place). Fill bytes (runs of 0xFF
 * before a marker) are accepted everywhere a marker may start.
 *
 * Nothing here allocates or keeps pointers into the caller's buffer; the state is a plain
 * struct the caller owns. Functions are reentrant; one state must not be used by two threads
 * at once. Errors: -EAGAIN means "the bytes so far are a valid JPEG prefix, give me more",
 * -EBADMSG means the structure is invalid (nothing more can fix it).
 */

/* Upper bound of the bytes a walk still needs after jpeg_scan_release(): FF, marker code and the
   largest segment a 16-bit length can describe. */
#define JPEG_SCAN_MAX_RETAINED (2 + 65535)

/* What a complete JPEG contains. Offsets count from the SOI marker. */
struct jpeg_scan_info {
    size_t length;          /* bytes from SOI through EOI inclusive */
    size_t sos_offset;      /* offset of the first SOS marker: where missing DHT tables go */
    uint16_t width, height; /* from the SOFn segment (height 0 means "defined by DNL") */
    uint8_t components;     /* from the SOFn segment, 1..4 */
    uint8_t sof_marker;     /* second byte of the SOFn marker: 0xC0 baseline, 0xC2 progressive */
    uint8_t precision;      /* sample precision in bits from the SOFn segment (8 for cameras) */
    uint16_t scans;         /* SOS segments seen (1 for baseline, several when progressive) */
    bool has_dht;           /* a DHT segment appears before the first SOS */
};

/* Incremental walk over a JPEG that arrives in pieces. Treat the fields as private. */
struct jpeg_scan_state {
    size_t offset;  /* resume point, relative to the caller's current buffer start */
    size_t dropped; /* bytes the caller released from the front (see jpeg_scan_release) */
    int phase;
    bool seen_sof;
    struct jpeg_scan_info info;
};

/* Prepares st for a new JPEG whose SOI will be at the start of the buffer. Cannot fail. */
void jpeg_scan_init(struct jpeg_scan_state *st);

/*
 * Continues the walk over buf[0..len), which must hold the same bytes as on the previous call
 * plus any appended since (minus what jpeg_scan_release() released). Work done earlier is not
 * repeated, so feeding a JPEG in any number of pieces costs O(total length). Returns 0 once the
 * EOI is reached (st->info then describes the JPEG; info.length counts released bytes too, so
 * the JPEG ends at buf[info.length - released]), -EAGAIN when more bytes are needed, -EBADMSG
 * when the structure is invalid. After 0 or -EBADMSG further calls return the same value.
 * Never reads outside buf[0..len).
 */
int jpeg_scan_resume(struct jpeg_scan_state *st, const uint8_t *buf, size_t len);

/*
 * Lets a caller that cannot hold the whole JPEG (an oversize frame being skipped) drop bytes
 * it no longer needs: returns n, the number of leading buffer bytes the walk will never read
 * again, and from then on expects buf to start n bytes later. What stays needed after an -EAGAIN
 * is at most one incomplete marker segment: JPEG_SCAN_MAX_RETAINED bytes.
 */
size_t jpeg_scan_release(struct jpeg_scan_state *st);

/*
 * Checks that buf starts with a complete, structurally valid JPEG. Returns 0 and fills *info
 * (info->length may be < len when trailing bytes follow), -EAGAIN if buf is a valid prefix that
 * needs more bytes, -EBADMSG if the structure is invalid. Never reads outside buf[0..len).
 * info may be NULL; it is only written on success.
 */
int jpeg_scan_check(const uint8_t *buf, size_t len, struct jpeg_scan_info *info);

#endif
