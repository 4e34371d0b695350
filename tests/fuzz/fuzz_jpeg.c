/* fuzz_jpeg.c - libFuzzer target: the JPEG structure walker (jpeg_scan) and DHT inserter
 * (jpeg_dht). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "jpeg_dht.h"
#include "jpeg_scan.h"

/*
 * Input: the bytes of a would-be JPEG (any file; plain .jpg files make good seeds). How the
 * bytes are cut into pieces for the incremental walk comes from a PRNG seeded with a hash of
 * the input. Every buffer handed to the code under test is a heap block of exactly the length
 * passed, so ASan reports any read or write outside it.
 *
 * Invariants checked (from jpeg_scan.h and jpeg_dht.h):
 *   - jpeg_scan_check returns 0, -EAGAIN or -EBADMSG; on 0 the info describes a JPEG that
 *     starts with SOI, ends with EOI at info.length, has its first SOS at sos_offset;
 *   - prefixes behave: every strict prefix of a complete JPEG is -EAGAIN, a prefix of a valid
 *     prefix is a valid prefix, and an invalid prefix never becomes valid with more bytes;
 *   - the incremental walk (any chunking, releasing bytes whenever allowed) ends exactly like
 *     the one-shot walk, and after -EAGAIN it never needs more than JPEG_SCAN_MAX_RETAINED
 *     bytes back;
 *   - jpeg_dht_copy succeeds on every valid frame that has tables, never writes past capacity,
 *     produces a valid JPEG that differs from the input only by the inserted DHT segment, and
 *     with too little room fails with -ENOSPC, the size needed, and dst untouched.
 */

#define MAX_PIECES 24
#define CANARY     0xA5

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return h;
}

/* An exact-size heap copy of p[0..n) (a 1-byte block when n is 0, never passed as data). */
static uint8_t *copy_of(const uint8_t *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    FUZZ_CHECK(c != NULL, "out of memory");
    if (n)
        memcpy(c, p, n);
    return c;
}

static bool info_equal(const struct jpeg_scan_info *a, const struct jpeg_scan_info *b)
{
    return a->length == b->length && a->sos_offset == b->sos_offset && a->width == b->width &&
           a->height == b->height && a->components == b->components &&
           a->sof_marker == b->sof_marker && a->precision == b->precision && a->scans == b->scans &&
           a->has_dht == b->has_dht;
}

static int check_copy(const uint8_t *data, size_t n, struct jpeg_scan_info *info)
{
    uint8_t *c = copy_of(data, n);
    int rc = jpeg_scan_check(c, n, info);
    free(c);
    return rc;
}

static void check_complete(const uint8_t *data, size_t size, const struct jpeg_scan_info *info)
{
    size_t n = info->length;

    FUZZ_CHECK(n >= 4 && n <= size, "length %zu of %zu bytes", n, size);
    FUZZ_CHECK(data[0] == 0xFF && data[1] == 0xD8, "no SOI");
    FUZZ_CHECK(data[n - 2] == 0xFF && data[n - 1] == 0xD9, "no EOI at length %zu", n);
    FUZZ_CHECK(info->components >= 1 && info->components <= 4, "%u components", info->components);
    FUZZ_CHECK(info->width > 0, "width 0");
    FUZZ_CHECK(info->scans >= 1, "no scan");
    FUZZ_CHECK(info->sof_marker >= 0xC0 && info->sof_marker <= 0xCF, "SOF marker %02x",
               info->sof_marker);
    FUZZ_CHECK(info->sos_offset + 4 <= n && data[info->sos_offset] == 0xFF &&
                   data[info->sos_offset + 1] == 0xDA,
               "sos_offset %zu does not point at SOS", info->sos_offset);
}

/* Compares the one-shot verdict on data[0..size) with a random prefix of it. */
static void check_prefix(const uint8_t *data, size_t size, int rc,
                         const struct jpeg_scan_info *info, struct fuzz_rng *rng)
{
    struct jpeg_scan_info pinfo;
    size_t k = fuzz_rng_range(rng, 0, size);
    int prc = check_copy(data, k, &pinfo);

    switch (rc) {
    case 0:
        if (k < info->length)
            FUZZ_CHECK(prc == -EAGAIN, "prefix %zu of a %zu-byte JPEG: %d", k, info->length, prc);
        else
            FUZZ_CHECK(prc == 0 && info_equal(&pinfo, info), "prefix %zu: %d", k, prc);
        break;
    case -EAGAIN:
        FUZZ_CHECK(prc == -EAGAIN, "prefix %zu of a valid prefix: %d", k, prc);
        break;
    default:
        FUZZ_CHECK(prc == -EAGAIN || prc == -EBADMSG, "prefix %zu of an invalid JPEG: %d", k, prc);
        break;
    }
}

/*
 * Walks data in random pieces the way mjpeg_split does when it skips an oversize frame:
 * after each -EAGAIN it releases what the walk no longer needs and passes only the rest.
 * Returns the final verdict and fills *info on 0.
 */
static int walk_in_pieces(const uint8_t *data, size_t size, struct fuzz_rng *rng, bool release,
                          struct jpeg_scan_info *info)
{
    struct jpeg_scan_state st;
    size_t start = 0, end = 0; /* the window handed to the walker is data[start..end) */
    int rc;

    jpeg_scan_init(&st);
    for (int piece = 0;; piece++) {
        end = piece + 1 >= MAX_PIECES ? size : fuzz_rng_range(rng, end, size);
        uint8_t *window = copy_of(data + start, end - start);
        rc = jpeg_scan_resume(&st, window, end - start);
        free(window);
        FUZZ_CHECK(rc == 0 || rc == -EAGAIN || rc == -EBADMSG, "resume returned %d", rc);
        if (rc != -EAGAIN || end == size)
            break;
        if (release) {
            size_t n = jpeg_scan_release(&st);
            FUZZ_CHECK(n <= end - start, "released %zu of %zu bytes", n, end - start);
            start += n;
            FUZZ_CHECK(end - start <= JPEG_SCAN_MAX_RETAINED, "%zu bytes still needed",
                       end - start);
        }
    }
    if (rc == 0)
        *info = st.info;
    return rc;
}

static void fuzz_dht(const uint8_t *data, size_t size, int scan_rc,
                     const struct jpeg_scan_info *info, struct fuzz_rng *rng)
{
    size_t extra = jpeg_dht_extra_bytes();
    size_t capacity = size + extra, out_size = 0, needed;
    uint8_t *dst = malloc(capacity);
    struct jpeg_scan_info out_info;
    int inserted = -1;
    int rc;

    FUZZ_CHECK(dst != NULL, "out of memory");
    rc = jpeg_dht_copy(size ? data : NULL, size, dst, capacity, &out_size, &inserted);
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG, "jpeg_dht_copy returned %d with room", rc);
    if (scan_rc != 0)
        FUZZ_CHECK(rc == -EBADMSG, "copied a frame jpeg_scan rejects (%d)", scan_rc);
    if (scan_rc == 0 && info->has_dht)
        FUZZ_CHECK(rc == 0 && inserted == 0, "frame with tables not copied: %d", rc);
    if (rc != 0) {
        FUZZ_CHECK(inserted == 0, "inserted %d on error", inserted);
        free(dst);
        return;
    }
    FUZZ_CHECK(inserted == 0 || inserted == 1, "inserted %d", inserted);
    FUZZ_CHECK(out_size == info->length + (inserted ? extra : 0), "out_size %zu for %zu bytes",
               out_size, info->length);
    FUZZ_CHECK(jpeg_scan_check(dst, out_size, &out_info) == 0 && out_info.length == out_size,
               "output is not one valid JPEG");
    FUZZ_CHECK(out_info.width == info->width && out_info.height == info->height &&
                   out_info.components == info->components &&
                   out_info.sof_marker == info->sof_marker && out_info.scans == info->scans,
               "output describes another image");
    if (inserted) {
        size_t sos = info->sos_offset;
        FUZZ_CHECK(!info->has_dht && (info->sof_marker == 0xC0 || info->sof_marker == 0xC1),
                   "tables inserted into SOF %02x (had DHT: %d)", info->sof_marker, info->has_dht);
        FUZZ_CHECK(out_info.has_dht && out_info.sos_offset == sos + extra, "tables misplaced");
        FUZZ_CHECK(memcmp(dst, data, sos) == 0 && dst[sos] == 0xFF && dst[sos + 1] == 0xC4 &&
                       memcmp(dst + sos + extra, data + sos, info->length - sos) == 0,
                   "bytes other than the inserted DHT changed");
    } else {
        FUZZ_CHECK(memcmp(dst, data, out_size) == 0, "copy differs from the input");
        FUZZ_CHECK(info->has_dht || info->sof_marker >= 0xC9,
                   "a frame without tables (SOF %02x) copied without inserting any",
                   info->sof_marker);
    }
    free(dst);

    /* Too little room, down to none: -ENOSPC, the size needed, dst untouched. */
    needed = out_size;
    capacity = fuzz_rng_range(rng, 0, needed - 1);
    dst = malloc(capacity ? capacity : 1);
    FUZZ_CHECK(dst != NULL, "out of memory");
    memset(dst, CANARY, capacity);
    out_size = 0;
    rc = jpeg_dht_copy(data, size, dst, capacity, &out_size, &inserted);
    FUZZ_CHECK(rc == -ENOSPC && out_size == needed && inserted == 0,
               "capacity %zu of %zu: rc %d, out_size %zu", capacity, needed, rc, out_size);
    for (size_t i = 0; i < capacity; i++)
        FUZZ_CHECK(dst[i] == CANARY, "dst[%zu] written on -ENOSPC", i);
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_rng rng = {fnv1a(data, size)};
    struct jpeg_scan_info info, walk_info;
    int rc, walk_rc;

    memset(&info, 0, sizeof(info));
    rc = jpeg_scan_check(data, size, &info);
    FUZZ_CHECK(rc == 0 || rc == -EAGAIN || rc == -EBADMSG, "jpeg_scan_check returned %d", rc);
    if (rc == 0)
        check_complete(data, size, &info);
    check_prefix(data, size, rc, &info, &rng);

    for (int release = 0; release <= 1; release++) {
        walk_rc = walk_in_pieces(data, size, &rng, release, &walk_info);
        FUZZ_CHECK(walk_rc == rc, "walk in pieces (release %d): %d, in one go: %d", release,
                   walk_rc, rc);
        if (rc == 0)
            FUZZ_CHECK(info_equal(&walk_info, &info), "walk in pieces (release %d) differs",
                       release);
    }
    fuzz_dht(data, size, rc, &info, &rng);
    return 0;
}
