/* jpeg_dht.h - copies camera MJPEG frames, inserting the standard Huffman tables when missing. */
#ifndef CAPD_JPEG_DHT_H
#define CAPD_JPEG_DHT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Many UVC cameras send "MJPG" frames without DHT segments (often with an APP0 "AVI1" segment
 * instead of JFIF): the Motion-JPEG convention is that a decoder falls back to the example
 * tables of ITU-T T.81 Annex K.3. Browsers and strict decoders do not, so capd inserts those
 * four tables (luminance DC/AC, chrominance DC/AC; the tables libjpeg encodes with unless it
 * optimizes) as one DHT segment directly before the first SOS, after any APP0/AVI1, DQT, SOF
 * and DRI segment.
 *
 * What gets tables (no DHT before the first SOS):
 *   - SOF0 baseline, and SOF1 extended sequential with 8-bit samples: the K.3 tables are the
 *     ones such a frame was encoded with. Its scans must select Huffman tables 0 or 1, the only
 *     ones K.3 defines.
 *   - Arithmetic-coded frames (SOF9..SOF15) use no Huffman tables: copied unchanged.
 *   - Progressive (SOF2), lossless (SOF3), hierarchical (SOF5..SOF7) and 12-bit sequential
 *     frames are rejected with -EBADMSG: the K.3 tables cannot describe them (progressive AC
 *     scans code EOBRUN symbols the K.3 AC tables lack; lossless and 12-bit data need DC
 *     categories above 11), so no table we could insert would make them decodable.
 * A frame with any DHT before its first SOS is copied unchanged, whatever else it lacks.
 *
 * Nothing here allocates or keeps state; the functions are reentrant and thread-safe.
 */

/*
 * Copies the MJPEG frame at src[0..len) into dst[0..capacity), which must not overlap src.
 * The frame must start with SOI and be structurally valid through its EOI (jpeg_scan); bytes
 * after the EOI (drivers report bytesused with padding, often zeros) are dropped. When the
 * frame has no DHT before its first SOS and is eligible (see above), one DHT segment of
 * jpeg_dht_extra_bytes() bytes holding the four standard tables is inserted directly before
 * that SOS; every other byte is copied unchanged.
 * Returns 0 with *out_size = bytes written and *inserted = 1 if tables were inserted, else 0.
 * Returns -EBADMSG for an invalid, truncated or ineligible frame (src may be NULL when len is
 * 0), -ENOSPC when the result would not fit: then *out_size is set to the size needed. On any
 * error dst is left untouched and *inserted is 0. Never reads outside src[0..len) nor writes
 * outside dst[0..capacity).
 */
int jpeg_dht_copy(const uint8_t *src, size_t len, uint8_t *dst, size_t capacity, size_t *out_size,
                  int *inserted);

/* How many bytes jpeg_dht_copy() can add to a frame: the size of the inserted DHT segment
   (420). A destination of len + jpeg_dht_extra_bytes() bytes never fails with -ENOSPC. */
size_t jpeg_dht_extra_bytes(void);

#endif
