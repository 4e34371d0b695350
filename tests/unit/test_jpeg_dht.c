/* test_jpeg_dht.c - unit tests for MJPEG frame copying with standard DHT insertion. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "check.h"
#include "testrand.h"
#include "jpeg_dht.c" /* for standard_dht, to check the table itself */
#include "jpeg_scan.h"
#include "util.h"

#define SENTINEL 0xA5

struct jpeg {
    uint8_t *data;
    size_t len;
};

static struct jpeg jpeg_dup(const uint8_t *data, size_t len)
{
    struct jpeg out = {xmalloc(len), len};
    memcpy(out.data, data, len);
    return out;
}

/*
 * Compresses a synthetic gradient-plus-noise image with TurboJPEG's default (standard,
 * unoptimized) Huffman tables. restart_rows > 0 adds a DRI segment and RSTn markers through
 * TurboJPEG's TJ_RESTART switch. The caller frees .data.
 */
static struct jpeg make_jpeg(int width, int height, int subsamp, int flags, int restart_rows)
{
    uint8_t *rgb = xmalloc((size_t)width * (size_t)height * 3);
    for (int y = 0; y < height; y++) {
        for (int x = 0; x < width; x++) {
            uint8_t *px = rgb + ((size_t)y * (size_t)width + (size_t)x) * 3;
            px[0] = (uint8_t)(x * 255 / width);
            px[1] = (uint8_t)(y * 255 / height);
            px[2] = (uint8_t)(rng_next() & 0x7F);
        }
    }
    if (restart_rows > 0) {
        char rows[16];
        snprintf(rows, sizeof(rows), "%d", restart_rows);
        setenv("TJ_RESTART", rows, 1);
    }
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg_buf = NULL;
    unsigned long jpeg_len = 0;
    if (!tj || tjCompress2(tj, rgb, width, 0, height, TJPF_RGB, &jpeg_buf, &jpeg_len, subsamp, 85,
                           flags) != 0) {
        printf("  turbojpeg: %s\n", tjGetErrorStr2(tj));
        abort();
    }
    unsetenv("TJ_RESTART");
    struct jpeg out = jpeg_dup(jpeg_buf, jpeg_len);
    tjFree(jpeg_buf);
    tjDestroy(tj);
    free(rgb);
    return out;
}

/* Decodes to RGB; returns NULL on error or warning (tjDecompress2 fails on both). */
static uint8_t *decode(const uint8_t *data, size_t len, int *width, int *height)
{
    uint8_t *rgb = NULL;
    int subsamp, colorspace;
    tjhandle tj = tjInitDecompress();
    if (!tj || tjDecompressHeader3(tj, data, len, width, height, &subsamp, &colorspace) != 0)
        goto out;
    rgb = xmalloc((size_t)*width * (size_t)*height * 3);
    if (tjDecompress2(tj, data, len, rgb, *width, 0, *height, TJPF_RGB, 0) != 0) {
        printf("  decode: %s\n", tjGetErrorStr2(tj));
        free(rgb);
        rgb = NULL;
    }
out:
    if (tj)
        tjDestroy(tj);
    return rgb;
}

/* Whether two JPEGs decode cleanly to the same size and exactly the same pixels. */
static bool same_pixels(const struct jpeg *a, const struct jpeg *b)
{
    int wa = 0, ha = 0, wb = 0, hb = 0;
    uint8_t *pa = decode(a->data, a->len, &wa, &ha);
    uint8_t *pb = decode(b->data, b->len, &wb, &hb);
    bool same =
        pa && pb && wa == wb && ha == hb && memcmp(pa, pb, (size_t)wa * (size_t)ha * 3) == 0;
    free(pa);
    free(pb);
    return same;
}

/* Test-side segment walker, independent of the module: offset of the first segment with the
   given marker before the first SOS (0 if none), or of the SOS itself for marker 0xDA. */
static size_t find_segment(const uint8_t *buf, size_t len, uint8_t marker)
{
    size_t pos = 2;
    while (pos + 4 <= len && buf[pos] == 0xFF) {
        if (buf[pos + 1] == marker)
            return pos;
        if (buf[pos + 1] == 0xDA)
            return 0;
        pos += 2 + ((size_t)buf[pos + 2] << 8 | buf[pos + 3]);
    }
    return 0;
}

static size_t segment_size(const uint8_t *buf, size_t pos)
{
    return 2 + ((size_t)buf[pos + 2] << 8 | buf[pos + 3]);
}

/* Removes the segment at pos in place; returns the new length. */
static size_t remove_segment(uint8_t *buf, size_t len, size_t pos)
{
    size_t size = segment_size(buf, pos);
    memmove(buf + pos, buf + pos + size, len - pos - size);
    return len - size;
}

/* Removes every DHT segment before the first SOS (what USB MJPEG cameras send). */
static size_t strip_dht(uint8_t *buf, size_t len)
{
    size_t pos;
    while ((pos = find_segment(buf, len, 0xC4)) != 0)
        len = remove_segment(buf, len, pos);
    return len;
}

/* The concatenated payloads (tables without marker and length) of every DHT segment before the
   first SOS, in file order; returns the byte count written to out (at most cap). */
static size_t dht_payloads(const uint8_t *buf, size_t len, uint8_t *out, size_t cap)
{
    size_t n = 0, pos = 2;
    while (pos + 4 <= len && buf[pos] == 0xFF && buf[pos + 1] != 0xDA) {
        size_t size = segment_size(buf, pos);
        if (buf[pos + 1] == 0xC4 && n + size - 4 <= cap) {
            memcpy(out + n, buf + pos + 4, size - 4);
            n += size - 4;
        }
        pos += size;
    }
    return n;
}

/* Returns a new JPEG: the SOI, an APP0 "AVI1" segment like UVC cameras write, then the input
   from its first non-APPn segment on (JFIF header dropped). */
static struct jpeg make_avi1(const struct jpeg *in)
{
    static const uint8_t avi1[] = {0xFF, 0xE0, 0x00, 0x10, 'A', 'V', 'I', '1', 0,
                                   0,    0,    0,    0,    0,   0,   0,   0,   0};
    size_t pos = 2;
    while (in->data[pos + 1] >= 0xE0 && in->data[pos + 1] <= 0xEF)
        pos += segment_size(in->data, pos);
    struct jpeg out = {xmalloc(2 + sizeof(avi1) + in->len - pos), 2 + sizeof(avi1) + in->len - pos};
    memcpy(out.data, in->data, 2);
    memcpy(out.data + 2, avi1, sizeof(avi1));
    memcpy(out.data + 2 + sizeof(avi1), in->data + pos, in->len - pos);
    return out;
}

/*
 * Runs jpeg_dht_copy on exact-size heap copies of the input and of a capacity-byte output
 * (ASan flags any access outside either). dst is prefilled with SENTINEL; on error the test
 * checks that it stayed untouched. On success *out holds the result (caller frees).
 */
static int copy_exact(const uint8_t *src, size_t len, size_t capacity, struct jpeg *out,
                      int *inserted)
{
    uint8_t *in = len ? xmalloc(len) : NULL;
    if (len)
        memcpy(in, src, len);
    uint8_t *dst = capacity ? xmalloc(capacity) : NULL;
    if (capacity)
        memset(dst, SENTINEL, capacity);
    size_t size = 0;
    *inserted = -1;
    int ret = jpeg_dht_copy(in, len, dst, capacity, &size, inserted);
    out->data = NULL;
    out->len = size;
    if (ret == 0) {
        CHECK(size <= capacity);
        CHECK(*inserted == 0 || *inserted == 1);
        out->data = dst;
        dst = NULL;
    } else {
        CHECKF(*inserted == 0, "inserted=%d on error %d", *inserted, ret);
        bool untouched = true;
        for (size_t i = 0; i < capacity; i++)
            untouched = untouched && dst[i] == SENTINEL;
        CHECKF(untouched, "dst written on error %d", ret);
    }
    free(in);
    free(dst);
    return ret;
}

/* jpeg_dht_copy with room to spare; aborts the check on failure. */
static struct jpeg copy_ok(const struct jpeg *in, int *inserted)
{
    struct jpeg out;
    int ret = copy_exact(in->data, in->len, in->len + jpeg_dht_extra_bytes(), &out, inserted);
    CHECK_EQ_INT(ret, 0);
    return out;
}

/* copy_exact() when only the result code matters; *size gets the reported size. */
static int copy_status(const uint8_t *src, size_t len, size_t capacity, size_t *size)
{
    struct jpeg out;
    int inserted;
    int ret = copy_exact(src, len, capacity, &out, &inserted);
    *size = out.len;
    free(out.data);
    return ret;
}

/* Canonical Huffman code of symbol index k in a table (T.81 Annex C), or -1 if absent. */
static int canonical_code(const uint8_t *bits, size_t k, int *length)
{
    int code = 0;
    size_t index = 0;
    for (int l = 1; l <= 16; l++) {
        for (int i = 0; i < bits[l - 1]; i++, index++, code++) {
            if (index == k) {
                *length = l;
                return code;
            }
        }
        code <<= 1;
    }
    return -1;
}

/* Code (as a '0'/'1' string) of symbol in the table starting at t (class/id byte). */
static const char *code_of(const uint8_t *t, uint8_t symbol, char *text)
{
    size_t total = 0;
    for (int l = 0; l < 16; l++)
        total += t[1 + l];
    strcpy(text, "absent");
    for (size_t k = 0; k < total; k++) {
        int length = 0, code = canonical_code(t + 1, k, &length);
        if (t[17 + k] == symbol && code >= 0) {
            for (int b = 0; b < length; b++)
                text[b] = (code >> (length - 1 - b)) & 1 ? '1' : '0';
            text[length] = '\0';
        }
    }
    return text;
}

/* The table itself: layout, symbol sets, Kraft inequality and codes listed in Annex K. */
static void test_standard_tables(void)
{
    const uint8_t *seg = standard_dht;
    size_t size = jpeg_dht_extra_bytes();
    CHECK(seg[0] == 0xFF && seg[1] == 0xC4);
    CHECK_EQ_INT((size_t)seg[2] << 8 | seg[3], size - 2);
    static const uint8_t expected_ids[4] = {0x00, 0x10, 0x01, 0x11};
    const uint8_t *table[4] = {NULL, NULL, NULL, NULL};
    size_t pos = 4;
    for (int t = 0; t < 4 && pos + 17 <= size; t++) {
        table[t] = seg + pos;
        CHECK_EQ_INT(seg[pos], expected_ids[t]);
        size_t total = 0;
        unsigned long kraft = 0;
        for (int l = 1; l <= 16; l++) {
            total += seg[pos + l];
            kraft += (unsigned long)seg[pos + l] << (16 - l);
        }
        /* No code may be all ones (T.81 reserves it); the AC tables use every other code. */
        bool is_ac = seg[pos] >> 4;
        CHECKF(is_ac ? kraft == 65535 : kraft < 65536, "table %d: Kraft sum %lu", t, kraft);
        CHECK_EQ_INT(total, is_ac ? 162 : 12);
        bool seen[256] = {false};
        for (size_t k = 0; k < total; k++) {
            uint8_t symbol = seg[pos + 17 + k];
            CHECKF(!seen[symbol], "table %d repeats 0x%02x", t, symbol);
            seen[symbol] = true;
            unsigned bits = symbol & 15;
            bool valid = is_ac ? (bits >= 1 && bits <= 10) || symbol == 0x00 || symbol == 0xF0
                               : symbol <= 11;
            CHECKF(valid, "table %d has symbol 0x%02x", t, symbol);
        }
        /* The 16-bit codes run through the remaining run/size pairs in increasing order. */
        size_t first16 = total - seg[pos + 16];
        for (size_t k = first16 + 1; k < total; k++)
            CHECK(seg[pos + 17 + k] > seg[pos + 17 + k - 1]);
        pos += 17 + total;
    }
    CHECK_EQ_INT(pos, size);
    /* A few codes as printed in Tables K.3 to K.6. */
    char text[17];
    if (table[0] && table[1] && table[2] && table[3]) {
        CHECK_STREQ(code_of(table[0], 0, text), "00");
        CHECK_STREQ(code_of(table[0], 11, text), "111111110");
        CHECK_STREQ(code_of(table[1], 0x00, text), "1010");
        CHECK_STREQ(code_of(table[1], 0x01, text), "00");
        CHECK_STREQ(code_of(table[1], 0xF0, text), "11111111001");
        CHECK_STREQ(code_of(table[1], 0xFA, text), "1111111111111110");
        CHECK_STREQ(code_of(table[2], 0, text), "00");
        CHECK_STREQ(code_of(table[2], 11, text), "11111111110");
        CHECK_STREQ(code_of(table[3], 0x00, text), "00");
        CHECK_STREQ(code_of(table[3], 0xF0, text), "1111111010");
        CHECK_STREQ(code_of(table[3], 0xFA, text), "1111111111111110");
    }
}

/*
 * libjpeg's encoder is an independent source of the same tables: the inserted segment's payload
 * equals the payloads of TurboJPEG's own DHT segments, concatenated (grayscale images carry only
 * the luminance pair, the segment's first half).
 */
static void test_tables_match_libjpeg(void)
{
    static const int subsamps[] = {TJSAMP_444, TJSAMP_422, TJSAMP_420, TJSAMP_440, TJSAMP_GRAY};
    for (size_t k = 0; k < ARRAY_SIZE(subsamps); k++) {
        struct jpeg orig = make_jpeg(80, 48, subsamps[k], 0, 0);
        uint8_t orig_tables[1024], ours[1024];
        size_t orig_n = dht_payloads(orig.data, orig.len, orig_tables, sizeof(orig_tables));
        struct jpeg stripped = jpeg_dup(orig.data, orig.len);
        stripped.len = strip_dht(stripped.data, stripped.len);
        int inserted = 0;
        struct jpeg out = copy_ok(&stripped, &inserted);
        CHECK_EQ_INT(inserted, 1);
        size_t ours_n = out.data ? dht_payloads(out.data, out.len, ours, sizeof(ours)) : 0;
        CHECK_EQ_INT(ours_n, jpeg_dht_extra_bytes() - 4);
        if (subsamps[k] == TJSAMP_GRAY)
            CHECKF(orig_n > 0 && orig_n < ours_n, "gray: %zu table bytes", orig_n);
        else
            CHECK_EQ_INT(orig_n, ours_n);
        CHECKF(orig_n <= ours_n && memcmp(orig_tables, ours, orig_n) == 0,
               "subsamp %d: tables differ from libjpeg's", subsamps[k]);
        free(orig.data);
        free(stripped.data);
        free(out.data);
    }
}

/*
 * Stripping a frame's DHT and inserting the standard one changes nothing else: the output minus
 * its DHT segment is the stripped frame byte for byte, the DHT sits directly before the SOS,
 * and it decodes without warnings to exactly the original's pixels.
 */
static void test_strip_insert_roundtrip(void)
{
    static const struct {
        int width, height, subsamp, restart_rows;
    } cases[] = {
        {640, 480, TJSAMP_422, 0}, {640, 480, TJSAMP_420, 0}, {97, 61, TJSAMP_422, 0},
        {97, 61, TJSAMP_420, 0},   {97, 61, TJSAMP_GRAY, 0},  {320, 240, TJSAMP_444, 0},
        {320, 240, TJSAMP_422, 1}, {33, 17, TJSAMP_420, 2},
    };
    for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
        struct jpeg orig =
            make_jpeg(cases[k].width, cases[k].height, cases[k].subsamp, 0, cases[k].restart_rows);
        struct jpeg stripped = jpeg_dup(orig.data, orig.len);
        stripped.len = strip_dht(stripped.data, stripped.len);
        CHECK(stripped.len < orig.len);
        if (cases[k].restart_rows)
            CHECKF(find_segment(stripped.data, stripped.len, 0xDD) != 0, "no DRI in case %zu", k);
        int inserted = 0;
        struct jpeg out = copy_ok(&stripped, &inserted);
        if (!out.data)
            continue;
        CHECK_EQ_INT(inserted, 1);
        CHECK_EQ_INT(out.len, stripped.len + jpeg_dht_extra_bytes());
        size_t dht = find_segment(out.data, out.len, 0xC4);
        CHECK(dht != 0 && memcmp(out.data + dht, standard_dht, sizeof(standard_dht)) == 0);
        CHECK(out.data[dht + sizeof(standard_dht)] == 0xFF &&
              out.data[dht + sizeof(standard_dht) + 1] == 0xDA);
        struct jpeg back = jpeg_dup(out.data, out.len);
        back.len = strip_dht(back.data, back.len);
        CHECK(back.len == stripped.len && memcmp(back.data, stripped.data, back.len) == 0);
        CHECKF(same_pixels(&orig, &out), "case %zu: pixels differ", k);
        free(back.data);
        free(orig.data);
        free(stripped.data);
        free(out.data);
    }
}

/*
 * libjpeg-turbo quietly falls back to the K.3 tables for a frame without DHT, so "it decodes"
 * alone would not show that the inserted tables are used. Swapping two symbols of the inserted
 * luminance AC table must change the decoded pixels (or break decoding).
 */
static void test_inserted_tables_are_used(void)
{
    struct jpeg orig = make_jpeg(128, 96, TJSAMP_420, 0, 0);
    struct jpeg stripped = jpeg_dup(orig.data, orig.len);
    stripped.len = strip_dht(stripped.data, stripped.len);
    printf("  this libjpeg-turbo %s frames without DHT by itself\n",
           same_pixels(&orig, &stripped) ? "decodes" : "rejects");
    int inserted = 0;
    struct jpeg out = copy_ok(&stripped, &inserted);
    size_t dht = out.data ? find_segment(out.data, out.len, 0xC4) : 0;
    CHECK(dht != 0);
    if (dht) {
        /* luminance AC HUFFVAL starts after the DC table: 4 + 17 + 12 + 17 bytes in */
        uint8_t *symbols = out.data + dht + 4 + 17 + 12 + 17;
        CHECK(symbols[0] == 0x01 && symbols[1] == 0x02);
        symbols[0] = 0x02;
        symbols[1] = 0x01;
        printf("  decoding with a corrupted table; an error may be printed:\n");
        CHECK(!same_pixels(&orig, &out));
    }
    free(orig.data);
    free(stripped.data);
    free(out.data);
}

/* Frames that carry DHT come out byte-identical, whether baseline or progressive. */
static void test_frames_with_dht_unchanged(void)
{
    struct jpeg list[] = {
        make_jpeg(640, 480, TJSAMP_422, 0, 0),
        make_jpeg(97, 61, TJSAMP_GRAY, 0, 0),
        make_jpeg(320, 240, TJSAMP_420, TJFLAG_PROGRESSIVE, 0),
        make_jpeg(64, 48, TJSAMP_422, 0, 1),
    };
    for (size_t k = 0; k < ARRAY_SIZE(list); k++) {
        int inserted = 1;
        struct jpeg out = copy_ok(&list[k], &inserted);
        CHECK_EQ_INT(inserted, 0);
        CHECK(out.data && out.len == list[k].len && memcmp(out.data, list[k].data, out.len) == 0);
        /* Exactly its own size is enough: nothing is added. */
        struct jpeg tight;
        CHECK_EQ_INT(copy_exact(list[k].data, list[k].len, list[k].len, &tight, &inserted), 0);
        free(tight.data);
        free(out.data);
        free(list[k].data);
    }
}

/* Driver padding after the EOI (zeros, 0xFF, junk) is dropped; the JPEG itself is kept. */
static void test_trailing_padding_dropped(void)
{
    struct jpeg orig = make_jpeg(160, 120, TJSAMP_422, 0, 0);
    struct jpeg stripped = jpeg_dup(orig.data, orig.len);
    stripped.len = strip_dht(stripped.data, stripped.len);
    int inserted;
    struct jpeg expect_stripped = copy_ok(&stripped, &inserted);
    static const size_t pads[] = {1, 2, 7, 4096};
    for (int source = 0; source < 2; source++) {
        const struct jpeg *in = source ? &stripped : &orig;
        const struct jpeg *expect = source ? &expect_stripped : &orig;
        for (size_t k = 0; k < ARRAY_SIZE(pads); k++) {
            for (int fill = 0; fill < 3; fill++) {
                struct jpeg padded = {xmalloc(in->len + pads[k]), in->len + pads[k]};
                memcpy(padded.data, in->data, in->len);
                for (size_t i = in->len; i < padded.len; i++)
                    padded.data[i] = fill == 0 ? 0 : fill == 1 ? 0xFF : (uint8_t)rng_next();
                struct jpeg out = copy_ok(&padded, &inserted);
                CHECK_EQ_INT(inserted, source);
                CHECKF(expect->data && out.data && out.len == expect->len &&
                           memcmp(out.data, expect->data, out.len) == 0,
                       "pad %zu fill %d source %d", pads[k], fill, source);
                free(out.data);
                free(padded.data);
            }
        }
    }
    free(expect_stripped.data);
    free(stripped.data);
    free(orig.data);
}

/* UVC "MJPG": APP0 AVI1 instead of JFIF, no DHT. The tables go after AVI1, before the SOS. */
static void test_avi1_frames(void)
{
    static const int subsamps[] = {TJSAMP_422, TJSAMP_420};
    for (size_t k = 0; k < ARRAY_SIZE(subsamps); k++) {
        for (int restart = 0; restart < 2; restart++) {
            struct jpeg orig = make_jpeg(176, 144, subsamps[k], 0, restart);
            struct jpeg stripped = jpeg_dup(orig.data, orig.len);
            stripped.len = strip_dht(stripped.data, stripped.len);
            struct jpeg avi1 = make_avi1(&stripped);
            CHECK(memcmp(avi1.data + 6, "AVI1", 4) == 0);
            CHECK(find_segment(avi1.data, avi1.len, 0xC4) == 0);
            int inserted = 0;
            struct jpeg out = copy_ok(&avi1, &inserted);
            CHECK_EQ_INT(inserted, 1);
            if (out.data) {
                size_t app0 = find_segment(out.data, out.len, 0xE0);
                size_t dht = find_segment(out.data, out.len, 0xC4);
                size_t sof = find_segment(out.data, out.len, 0xC0);
                CHECK(app0 == 2 && memcmp(out.data + 6, "AVI1", 4) == 0);
                CHECK(dht > sof && sof > app0);
                CHECK(out.data[dht + sizeof(standard_dht) + 1] == 0xDA);
                CHECKF(same_pixels(&orig, &out), "subsamp %d restart %d", subsamps[k], restart);
            }
            free(out.data);
            free(avi1.data);
            free(stripped.data);
            free(orig.data);
        }
    }
}

/*
 * Progressive frames without DHT before the first SOS are rejected: K.3's AC tables lack the
 * EOBRUN symbols progressive AC scans code, so no standard table makes them decodable.
 * Progressive frames with their tables pass unchanged (test_frames_with_dht_unchanged).
 */
static void test_progressive_without_dht(void)
{
    struct jpeg orig = make_jpeg(96, 64, TJSAMP_420, TJFLAG_PROGRESSIVE, 0);
    struct jpeg_scan_info info;
    CHECK(jpeg_scan_check(orig.data, orig.len, &info) == 0 && info.sof_marker == 0xC2);
    orig.len = strip_dht(orig.data, orig.len);
    CHECK(jpeg_scan_check(orig.data, orig.len, &info) == 0 && !info.has_dht);
    size_t size;
    CHECK_EQ_INT(copy_status(orig.data, orig.len, orig.len + 4096, &size), -EBADMSG);
    free(orig.data);
}

/* What other frame types without DHT get, by patching the SOF/SOS of a stripped baseline. */
static void test_frame_types(void)
{
    struct jpeg orig = make_jpeg(64, 48, TJSAMP_420, 0, 0);
    struct jpeg stripped = jpeg_dup(orig.data, orig.len);
    stripped.len = strip_dht(stripped.data, stripped.len);
    size_t sof = find_segment(stripped.data, stripped.len, 0xC0);
    size_t sos = find_segment(stripped.data, stripped.len, 0xDA);
    CHECK(sof != 0 && sos != 0);
    if (!sof || !sos)
        goto out;
    static const struct {
        uint8_t marker, precision;
        int expect; /* 1 inserted, 0 unchanged, else the error */
        const char *what;
    } cases[] = {
        {0xC1, 8, 1, "extended sequential, 8 bit"},
        {0xC1, 12, -EBADMSG, "extended sequential, 12 bit"},
        {0xC3, 8, -EBADMSG, "lossless"},
        {0xC5, 8, -EBADMSG, "hierarchical"},
        {0xC9, 8, 0, "arithmetic sequential"},
        {0xCA, 8, 0, "arithmetic progressive"},
    };
    for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
        struct jpeg in = jpeg_dup(stripped.data, stripped.len);
        in.data[sof + 1] = cases[k].marker;
        in.data[sof + 4] = cases[k].precision;
        struct jpeg out;
        int inserted;
        int ret = copy_exact(in.data, in.len, in.len + 1000, &out, &inserted);
        CHECKF(ret == (cases[k].expect < 0 ? cases[k].expect : 0), "%s: %d", cases[k].what, ret);
        if (ret == 0) {
            CHECKF(inserted == cases[k].expect, "%s", cases[k].what);
            CHECK(inserted || (out.len == in.len && memcmp(out.data, in.data, in.len) == 0));
        }
        if (ret == 0 && cases[k].marker == 0xC1)
            CHECKF(same_pixels(&orig, &out), "%s", cases[k].what);
        free(out.data);
        free(in.data);
    }
    /* A scan selecting Huffman table 2 or 3: K.3 defines only 0 and 1. */
    for (int byte = 0; byte < 2; byte++) {
        struct jpeg in = jpeg_dup(stripped.data, stripped.len);
        in.data[sos + 6] = byte ? 0x02 : 0x20;
        size_t size;
        CHECK_EQ_INT(copy_status(in.data, in.len, in.len + 1000, &size), -EBADMSG);
        free(in.data);
    }
out:
    free(stripped.data);
    free(orig.data);
}

/* Truncated, empty and garbage input: -EBADMSG, nothing written. */
static void test_invalid_frames(void)
{
    struct jpeg orig = make_jpeg(40, 24, TJSAMP_420, 0, 0);
    struct jpeg stripped = jpeg_dup(orig.data, orig.len);
    stripped.len = strip_dht(stripped.data, stripped.len);
    int inserted;
    size_t size, accepted = 0;
    for (int source = 0; source < 2; source++) {
        const struct jpeg *in = source ? &stripped : &orig;
        for (size_t len = 0; len < in->len; len++)
            accepted += copy_status(in->data, len, in->len + 1000, &size) != -EBADMSG;
    }
    CHECKF(accepted == 0, "%zu truncated frames not rejected", accepted);
    CHECK_EQ_INT(jpeg_dht_copy(NULL, 0, NULL, 0, &size, &inserted), -EBADMSG);
    /* Junk before the SOI, and a frame whose EOI was replaced. */
    uint8_t *shifted = xmalloc(orig.len + 1);
    shifted[0] = 0;
    memcpy(shifted + 1, orig.data, orig.len);
    CHECK_EQ_INT(copy_status(shifted, orig.len + 1, orig.len + 1000, &size), -EBADMSG);
    memcpy(shifted, orig.data, orig.len);
    shifted[orig.len - 1] = 0xD8;
    CHECK_EQ_INT(copy_status(shifted, orig.len, orig.len + 1000, &size), -EBADMSG);
    free(shifted);
    free(stripped.data);
    free(orig.data);
}

/* Every capacity below the result size gives -ENOSPC, the size needed, and no write. */
static void test_capacity(void)
{
    struct jpeg orig = make_jpeg(48, 32, TJSAMP_422, 0, 0);
    struct jpeg stripped = jpeg_dup(orig.data, orig.len);
    stripped.len = strip_dht(stripped.data, stripped.len);
    for (int source = 0; source < 2; source++) {
        const struct jpeg *in = source ? &stripped : &orig;
        size_t needed = in->len + (source ? jpeg_dht_extra_bytes() : 0);
        struct jpeg out;
        int inserted;
        size_t wrong = 0;
        for (size_t cap = 0; cap < needed; cap++) {
            size_t reported = 0;
            int ret = copy_status(in->data, in->len, cap, &reported);
            wrong += ret != -ENOSPC || reported != needed;
        }
        CHECKF(wrong == 0, "source %d: %zu capacities misreported", source, wrong);
        CHECK_EQ_INT(copy_exact(in->data, in->len, needed, &out, &inserted), 0);
        CHECK_EQ_INT(out.len, needed);
        free(out.data);
        /* NULL dst is fine when there is no room at all. */
        size_t size = 0;
        CHECK_EQ_INT(jpeg_dht_copy(in->data, in->len, NULL, 0, &size, &inserted), -ENOSPC);
        CHECK_EQ_INT(size, needed);
    }
    free(stripped.data);
    free(orig.data);
}

/*
 * Random mutations of real frames (with and without DHT, AVI1, padded), random capacities, fixed
 * seed: only 0 / -EBADMSG / -ENOSPC, no access outside the exact-size buffers (ASan), and every
 * success is the input up to its EOI with at most the standard DHT spliced in before the SOS.
 */
static void test_fuzz(void)
{
    struct jpeg base = make_jpeg(48, 32, TJSAMP_420, 0, 0);
    struct jpeg stripped = jpeg_dup(base.data, base.len);
    stripped.len = strip_dht(stripped.data, stripped.len);
    struct jpeg seeds[] = {
        base,
        stripped,
        make_avi1(&stripped),
        make_jpeg(32, 16, TJSAMP_GRAY, TJFLAG_PROGRESSIVE, 0),
        make_jpeg(40, 24, TJSAMP_422, 0, 1),
    };
    size_t counts[3] = {0, 0, 0}, inserted_count = 0;
    size_t buf_cap = 8192;
    uint8_t *buf = xmalloc(buf_cap);
    for (int iter = 0; iter < 200000; iter++) {
        const struct jpeg *seed = &seeds[rng_below(ARRAY_SIZE(seeds))];
        size_t len = seed->len;
        CHECK(len + 64 <= buf_cap);
        memcpy(buf, seed->data, len);
        for (size_t m = rng_below(4); m > 0; m--) {
            size_t at = rng_below(len);
            switch (rng_below(4)) {
            case 0:
                buf[at] = (uint8_t)rng_next();
                break;
            case 1:
                buf[at] = 0xFF;
                break;
            case 2: /* nudge a likely length byte */
                buf[at] = (uint8_t)(buf[at] + (rng_below(2) ? 1 : -1));
                break;
            default:
                len = at + 1;
                break;
            }
        }
        if (rng_below(4) == 0) {
            size_t pad = rng_below(64);
            memset(buf + len, rng_below(2) ? 0 : (int)rng_next(), pad);
            len += pad;
        }
        size_t capacity = rng_below(3) == 0 ? rng_below(len + 500) : len + jpeg_dht_extra_bytes();
        struct jpeg out;
        int inserted;
        int ret = copy_exact(buf, len, capacity, &out, &inserted);
        struct jpeg_scan_info info;
        int scan = jpeg_scan_check(buf, len, &info);
        if (ret == 0) {
            counts[0]++;
            inserted_count += (size_t)inserted;
            CHECK(scan == 0);
            if (scan != 0)
                continue;
            size_t head = inserted ? info.sos_offset : info.length;
            size_t extra = inserted ? sizeof(standard_dht) : 0;
            bool spliced = out.len == info.length + extra && memcmp(out.data, buf, head) == 0 &&
                           memcmp(out.data + head, standard_dht, extra) == 0 &&
                           memcmp(out.data + head + extra, buf + head, info.length - head) == 0;
            CHECKF(spliced, "iteration %d: output is not the input plus DHT", iter);
            struct jpeg_scan_info out_info;
            CHECK(jpeg_scan_check(out.data, out.len, &out_info) == 0 && out_info.length == out.len);
            CHECK(!inserted || out_info.has_dht);
        } else if (ret == -EBADMSG) {
            counts[1]++;
        } else if (ret == -ENOSPC) {
            counts[2]++;
            CHECK(scan == 0 && out.len > capacity);
        } else {
            CHECKF(false, "unexpected %d", ret);
        }
        free(out.data);
    }
    printf("  fuzz: %zu copied (%zu with tables inserted), %zu bad, %zu no space\n", counts[0],
           inserted_count, counts[1], counts[2]);
    CHECK(counts[0] > 0 && counts[1] > 0 && counts[2] > 0 && inserted_count > 0);
    free(buf);
    for (size_t k = 0; k < ARRAY_SIZE(seeds); k++)
        free(seeds[k].data);
}

int main(void)
{
    rng_seed(0x2545F4914F6CDD1DULL);
    RUN_TEST(test_standard_tables);
    RUN_TEST(test_tables_match_libjpeg);
    RUN_TEST(test_strip_insert_roundtrip);
    RUN_TEST(test_inserted_tables_are_used);
    RUN_TEST(test_frames_with_dht_unchanged);
    RUN_TEST(test_trailing_padding_dropped);
    RUN_TEST(test_avi1_frames);
    RUN_TEST(test_progressive_without_dht);
    RUN_TEST(test_frame_types);
    RUN_TEST(test_invalid_frames);
    RUN_TEST(test_capacity);
    RUN_TEST(test_fuzz);
    return check_summary();
}
