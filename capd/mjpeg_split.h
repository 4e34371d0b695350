/* mjpeg_split.h - splits a byte stream of concatenated JPEGs or multipart MJPEG into frames. */
#ifndef CAPD_MJPEG_SPLIT_H
#define CAPD_MJPEG_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "jpeg_scan.h"

/*
 * Input is what `ffmpeg -f mjpeg -`, `ffmpeg -f mpjpeg -` or `curl [-i] http://cam/video.mjpg`
 * write, detected per frame, so a stream may mix both forms:
 *   - bare JPEGs back to back, possibly with junk between them;
 *   - multipart parts: a delimiter line ("--boundary", or a bare "boundary"), header lines, a
 *     blank line, the JPEG; CRLF or LF line ends; optionally preceded by an HTTP response
 *     header block. With Content-Length the part is accepted only if its body is exactly one
 *     valid JPEG plus optional CR/LF/space padding; without it, the JPEG structure is walked.
 * Frames are returned byte for byte as they arrived; jpeg_scan validates their structure.
 * A bad part (invalid or truncated JPEG, lying Content-Length) is counted in `bad` and parsing
 * resumes at the next delimiter line or SOI after its start. A JPEG longer than max_frame (or a
 * part announcing a longer Content-Length) is counted in `oversize` and skipped by walking its
 * structure while discarding it, so it is never buffered whole. skipped_bytes counts every
 * input byte that ended up in no frame, except part headers and whitespace between parts.
 *
 * Memory: one buffer of about 2 * max_frame bytes allocated at create time; nothing is
 * allocated afterwards. Not thread-safe: one splitter belongs to one reader thread.
 */
struct mjpeg_split;

struct mjpeg_split_stats {
    uint64_t frames;        /* frames returned by mjpeg_split_next() */
    uint64_t bad;           /* parts or JPEGs dropped as invalid or truncated */
    uint64_t oversize;      /* JPEGs dropped for being longer than max_frame */
    uint64_t skipped_bytes; /* input bytes dropped (junk, bad and oversize frames) */
};

/* Creates a splitter accepting JPEGs of up to max_frame bytes (>= 1). Returns NULL only for
   max_frame == 0 or one so large the buffer size overflows. Free with mjpeg_split_destroy(). */
struct mjpeg_split *mjpeg_split_create(size_t max_frame);

/* Frees the splitter and its buffer; accepts NULL. Frames previously returned become invalid. */
void mjpeg_split_destroy(struct mjpeg_split *s);

/*
 * Returns where to read() input to and stores the room there in *space (never 0). Call
 * mjpeg_split_next() until it returns -EAGAIN before asking for space: the splitter then holds
 * at most about max_frame unconsumed bytes and offers at least max_frame / 2 bytes of room. If
 * the caller did not drain it and the buffer is full, the buffered input is dropped (counted
 * in skipped_bytes) to make room. May move buffered data, so previously returned frame
 * pointers become invalid.
 */
uint8_t *mjpeg_split_space(struct mjpeg_split *s, size_t *space);

/* Records that n bytes (at most the last *space) were written at the mjpeg_split_space()
   pointer. */
void mjpeg_split_commit(struct mjpeg_split *s, size_t n);

/*
 * Finds the next complete frame. Returns 0 with *frame / *len describing it inside the
 * splitter's buffer (valid until the next call of any mjpeg_split_ function), or -EAGAIN when
 * more input is needed. Bad parts and oversize frames are skipped and counted, never returned.
 * Amortized O(input bytes) in total.
 */
int mjpeg_split_next(struct mjpeg_split *s, const uint8_t **frame, size_t *len);

/* Structure of the frame last returned by mjpeg_split_next() (size, components, ...). */
const struct jpeg_scan_info *mjpeg_split_frame_info(const struct mjpeg_split *s);

/* Copies the counters into *out. */
void mjpeg_split_stats(const struct mjpeg_split *s, struct mjpeg_split_stats *out);

#endif
