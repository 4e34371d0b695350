/* test_jpeg_scan.c - unit tests for the structural JPEG walker (capd/jpeg_scan.c). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "check.h"
#include "testrand.h"
#include "jpeg_scan.h"
#include "util.h"

struct jpeg {
    uint8_t *data;
    size_t len;
};

/* Compresses a synthetic gradient-plus-noise image; the caller frees .data. */
static struct jpeg make_jpeg(int width, int height, int subsamp, int flags, int quality)
{
    struct jpeg out = {NULL, 0};
    uint8_t *rgb = xmalloc((size_t)width * (size_t)height * 3);
    for (int y = 0; y < height; y++) {
        for (int x = 0; x < width; x++) {
            uint8_t *px = rgb + ((size_t)y * (size_t)width + (size_t)x) * 3;
            px[0] = (uint8_t)(x * 255 / width);
            px[1] = (uint8_t)(y * 255 / height);
            px[2] = (uint8_t)rng_next();
        }
    }
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg_buf = NULL;
    unsigned long jpeg_len = 0;
    if (!tj || tjCompress2(tj, rgb, width, 0, height, TJPF_RGB, &jpeg_buf, &jpeg_len, subsamp,
                           quality, flags) != 0) {
        printf("  turbojpeg: %s\n", tjGetErrorStr2(tj));
        abort();
    }
    out.data = xmalloc(jpeg_len);
    memcpy(out.data, jpeg_buf, jpeg_len);
    out.len = jpeg_len;
    tjFree(jpeg_buf);
    tjDestroy(tj);
    free(rgb);
    return out;
}

/* Checks buf[0..len) through an exact-size heap copy, so ASan flags any read past the end. */
static int check_exact(const uint8_t *buf, size_t len, struct jpeg_scan_info *info)
{
    uint8_t *copy = xmalloc(len ? len : 1);
    memcpy(copy, buf, len);
    int ret = jpeg_scan_check(copy, len, info);
    free(copy);
    return ret;
}

/* Test-side segment finder, independent of the module: offset of the first segment with the
   given marker before SOS, or 0 if none. */
static size_t find_segment(const uint8_t *buf, size_t len, uint8_t marker)
{
    size_t pos = 2;
    while (pos + 4 <= len && buf[pos] == 0xFF && buf[pos + 1] != 0xDA) {
        if (buf[pos + 1] == marker)
            return pos;
        pos += 2 + ((size_t)buf[pos + 2] << 8 | buf[pos + 3]);
    }
    return 0;
}

/* Removes every DHT segment before the first SOS (what USB MJPEG cameras send). */
static size_t strip_dht(uint8_t *buf, size_t len)
{
    size_t pos;
    while ((pos = find_segment(buf, len, 0xC4)) != 0) {
        size_t seglen = 2 + ((size_t)buf[pos + 2] << 8 | buf[pos + 3]);
        memmove(buf + pos, buf + pos + seglen, len - pos - seglen);
        len -= seglen;
    }
    return len;
}

/* Returns a new buffer: buf with `insert` placed at offset `at`. */
static uint8_t *splice(const uint8_t *buf, size_t len, size_t at, const uint8_t *insert,
                       size_t insert_len)
{
    uint8_t *out = xmalloc(len + insert_len);
    memcpy(out, buf, at);
    memcpy(out + at, insert, insert_len);
    memcpy(out + at + insert_len, buf + at, len - at);
    return out;
}

static void check_valid(struct jpeg j, int width, int height, int components, uint8_t sof)
{
    struct jpeg_scan_info info;
    memset(&info, 0xAA, sizeof(info));
    CHECK_EQ_INT(check_exact(j.data, j.len, &info), 0);
    CHECK_EQ_INT(info.length, j.len);
    CHECK_EQ_INT(info.width, width);
    CHECK_EQ_INT(info.height, height);
    CHECK_EQ_INT(info.components, components);
    CHECK_EQ_INT(info.sof_marker, sof);
    CHECK(info.has_dht);
    CHECK(info.sos_offset > 2 && info.sos_offset + 1 < j.len);
    CHECK(j.data[info.sos_offset] == 0xFF && j.data[info.sos_offset + 1] == 0xDA);
    if (sof == 0xC2)
        CHECKF(info.scans > 1, "progressive scans=%u", info.scans);
    else
        CHECK_EQ_INT(info.scans, 1);

    /* Trailing bytes after EOI are not part of the JPEG. */
    uint8_t *padded = xmalloc(j.len + 7);
    memcpy(padded, j.data, j.len);
    memcpy(padded + j.len, "\r\n--xy\xFF", 7);
    CHECK_EQ_INT(check_exact(padded, j.len + 7, &info), 0);
    CHECK_EQ_INT(info.length, j.len);
    free(padded);
}

static void test_valid_baseline_420(void)
{
    struct jpeg j = make_jpeg(333, 217, TJSAMP_420, 0, 85);
    check_valid(j, 333, 217, 3, 0xC0);
    free(j.data);
}

static void test_valid_grayscale(void)
{
    struct jpeg j = make_jpeg(64, 480, TJSAMP_GRAY, 0, 90);
    check_valid(j, 64, 480, 1, 0xC0);
    free(j.data);
}

static void test_valid_progressive(void)
{
    struct jpeg color = make_jpeg(200, 150, TJSAMP_420, TJFLAG_PROGRESSIVE, 80);
    check_valid(color, 200, 150, 3, 0xC2);
    struct jpeg gray = make_jpeg(40, 30, TJSAMP_GRAY, TJFLAG_PROGRESSIVE, 80);
    check_valid(gray, 40, 30, 1, 0xC2);
    free(color.data);
    free(gray.data);
}

static void test_every_prefix_needs_more(void)
{
    struct jpeg list[] = {
        make_jpeg(24, 16, TJSAMP_420, 0, 75),
        make_jpeg(24, 16, TJSAMP_GRAY, TJFLAG_PROGRESSIVE, 75),
        make_jpeg(17, 9, TJSAMP_420, TJFLAG_PROGRESSIVE, 95),
    };
    for (size_t k = 0; k < ARRAY_SIZE(list); k++) {
        int wrong = 0;
        for (size_t n = 0; n < list[k].len; n++) {
            int ret = check_exact(list[k].data, n, NULL);
            if (ret != -EAGAIN && wrong++ < 5)
                CHECKF(ret == -EAGAIN, "jpeg %zu prefix %zu/%zu -> %d", k, n, list[k].len, ret);
        }
        CHECK_EQ_INT(wrong, 0);
        CHECK_EQ_INT(check_exact(list[k].data, list[k].len, NULL), 0);
        free(list[k].data);
    }
}

/* Feeding the JPEG one byte at a time through one state gives the same answer as a whole
   buffer, and releasing consumed bytes (as the splitter does for oversize frames) too. */
static void test_incremental_and_release(void)
{
    struct jpeg j = make_jpeg(120, 90, TJSAMP_420, TJFLAG_PROGRESSIVE, 85);
    struct jpeg_scan_info whole;
    CHECK_EQ_INT(jpeg_scan_check(j.data, j.len, &whole), 0);

    struct jpeg_scan_state st;
    jpeg_scan_init(&st);
    int ret = -EAGAIN;
    size_t n;
    for (n = 1; n <= j.len && ret == -EAGAIN; n++)
        ret = jpeg_scan_resume(&st, j.data, n);
    CHECK_EQ_INT(ret, 0);
    CHECK_EQ_INT(n - 1, j.len);
    CHECK(memcmp(&st.info, &whole, sizeof(whole)) == 0);

    /* Release after every step: the window handed in starts at `base`. */
    jpeg_scan_init(&st);
    size_t base = 0, max_window = 0;
    ret = -EAGAIN;
    for (size_t end = 0; end < j.len && ret == -EAGAIN;) {
        end += 1 + rng_below(300);
        if (end > j.len)
            end = j.len;
        ret = jpeg_scan_resume(&st, j.data + base, end - base);
        if (ret == -EAGAIN) {
            base += jpeg_scan_release(&st);
            if (end - base > max_window)
                max_window = end - base;
        }
    }
    CHECK_EQ_INT(ret, 0);
    CHECK_EQ_INT(st.info.length, j.len);
    CHECK_EQ_INT(st.info.sos_offset, whole.sos_offset);
    CHECKF(max_window <= JPEG_SCAN_MAX_RETAINED, "window %zu", max_window);
    CHECK(base > j.len / 2);
    free(j.data);
}

static void expect_bad(const uint8_t *buf, size_t len, const char *what)
{
    int ret = check_exact(buf, len, NULL);
    CHECKF(ret == -EBADMSG, "%s -> %d", what, ret);
}

static void test_corrupt_structure(void)
{
    struct jpeg j = make_jpeg(48, 32, TJSAMP_420, 0, 85);
    uint8_t *b = xmalloc(j.len);
    size_t dqt = find_segment(j.data, j.len, 0xDB), sof = find_segment(j.data, j.len, 0xC0);
    size_t dht = find_segment(j.data, j.len, 0xC4);
    CHECK(dqt && sof && dht);

#define MUTATE(stmt, what)                                                                         \
    do {                                                                                           \
        memcpy(b, j.data, j.len);                                                                  \
        stmt;                                                                                      \
        expect_bad(b, j.len, what);                                                                \
    } while (0)

    MUTATE(b[0] = 0x00, "no SOI");
    MUTATE(b[1] = 0xD9, "FFD9 instead of SOI");
    MUTATE(b[dqt] = 0x00, "segment without FF");
    MUTATE(b[dqt + 1] = 0xD8, "SOI inside");
    MUTATE(b[dqt + 1] = 0xD3, "RST outside a scan");
    MUTATE(b[dqt + 1] = 0x00, "FF00 outside a scan");
    MUTATE(b[dqt + 1] = 0x42, "reserved marker");
    MUTATE((b[dqt + 2] = 0, b[dqt + 3] = 1), "segment length 1");
    MUTATE(b[dqt + 4] = 0x57, "DQT precision/table id");
    MUTATE(b[sof + 9] = 0, "SOF without components");
    MUTATE((b[sof + 7] = 0, b[sof + 8] = 0), "SOF width 0");
    MUTATE(b[dht + 4] = 0x25, "DHT class");
    MUTATE(b[dht + 5] = 0xFF, "DHT counts overflow the segment");
    MUTATE(b[sof + 1] = 0xFE, "SOS without SOF (SOF turned into COM)");
    /* A marker that ends the scan early and is not a valid continuation. */
    struct jpeg_scan_info info;
    CHECK_EQ_INT(jpeg_scan_check(j.data, j.len, &info), 0);
    size_t entropy = info.sos_offset + 2 + 12, mid = entropy + (j.len - entropy) / 2;
    CHECK(mid + 4 < j.len);
    MUTATE((b[mid] = 0xFF, b[mid + 1] = 0xD8), "SOI inside entropy data");
    MUTATE((b[mid] = 0xFF, b[mid + 1] = 0xC0), "second SOF after the scan");
    MUTATE((b[info.sos_offset + 4] = 0, b[info.sos_offset + 5] = 10), "SOS length mismatch");
#undef MUTATE

    /* An image needs a scan: SOI, DQT, EOI is structurally a tables-only stream. */
    const uint8_t no_scan[] = {0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x03, 'x', 0xFF, 0xD9};
    expect_bad(no_scan, sizeof(no_scan), "EOI before any scan");

    /* The pristine copy still passes, so the mutations are what failed. */
    CHECK_EQ_INT(check_exact(j.data, j.len, NULL), 0);
    free(b);
    free(j.data);
}

/* An EXIF APP1 holding a complete thumbnail JPEG must be skipped as one opaque segment. */
static void test_embedded_thumbnail(void)
{
    struct jpeg outer = make_jpeg(160, 120, TJSAMP_420, 0, 80);
    struct jpeg thumb = make_jpeg(32, 24, TJSAMP_420, 0, 60);
    size_t app1_len = 2 + 6 + thumb.len;
    CHECK(app1_len <= 65535);
    uint8_t *app1 = xmalloc(2 + app1_len);
    app1[0] = 0xFF;
    app1[1] = 0xE1;
    app1[2] = (uint8_t)(app1_len >> 8);
    app1[3] = (uint8_t)app1_len;
    memcpy(app1 + 4, "Exif\0\0", 6);
    memcpy(app1 + 10, thumb.data, thumb.len);
    size_t total = outer.len + 2 + app1_len;
    uint8_t *with_thumb = splice(outer.data, outer.len, 2, app1, 2 + app1_len);

    /* A search for FFD9 would stop at the thumbnail's EOI. */
    const uint8_t eoi[2] = {0xFF, 0xD9};
    const uint8_t *first_eoi = memmem(with_thumb, total, eoi, 2);
    CHECK(first_eoi && (size_t)(first_eoi - with_thumb) + 2 < total);

    struct jpeg_scan_info info;
    CHECK_EQ_INT(check_exact(with_thumb, total, &info), 0);
    CHECK_EQ_INT(info.length, total);
    CHECK_EQ_INT(info.width, 160);
    CHECK_EQ_INT(info.height, 120);
    free(with_thumb);
    free(app1);
    free(thumb.data);
    free(outer.data);
}

static void test_fill_bytes(void)
{
    struct jpeg j = make_jpeg(64, 64, TJSAMP_420, 0, 85);
    size_t dqt = find_segment(j.data, j.len, 0xDB);
    const uint8_t fill[5] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    /* Fill before a header segment and before the EOI (i.e. right after entropy data). */
    uint8_t *a = splice(j.data, j.len, dqt, fill, 3);
    uint8_t *b = splice(a, j.len + 3, j.len + 3 - 2, fill, 5);
    struct jpeg_scan_info info;
    CHECK_EQ_INT(check_exact(b, j.len + 8, &info), 0);
    CHECK_EQ_INT(info.length, j.len + 8);
    /* Every prefix of a fill run is still a valid prefix. */
    for (size_t n = j.len + 1; n < j.len + 8; n++)
        CHECK_EQ_INT(check_exact(b, n, NULL), -EAGAIN);
    /* Fill before a restart marker inside entropy data is allowed too (FF FF D0). */
    const uint8_t rst_with_fill[] = {0xFF, 0xFF, 0xD0};
    uint8_t *c = splice(j.data, j.len, j.len - 2, rst_with_fill, 3);
    CHECK_EQ_INT(check_exact(c, j.len + 3, &info), 0);
    CHECK_EQ_INT(info.length, j.len + 3);
    free(a);
    free(b);
    free(c);
    free(j.data);
}

static void test_has_dht(void)
{
    struct jpeg list[] = {
        make_jpeg(96, 64, TJSAMP_420, 0, 85),
        make_jpeg(96, 64, TJSAMP_GRAY, 0, 85),
        make_jpeg(96, 64, TJSAMP_422, TJFLAG_PROGRESSIVE, 85),
    };
    for (size_t k = 0; k < ARRAY_SIZE(list); k++) {
        struct jpeg_scan_info before, after;
        CHECK_EQ_INT(check_exact(list[k].data, list[k].len, &before), 0);
        CHECK(before.has_dht);
        size_t stripped = strip_dht(list[k].data, list[k].len);
        CHECKF(stripped < list[k].len, "jpeg %zu had no DHT to strip", k);
        CHECK_EQ_INT(check_exact(list[k].data, stripped, &after), 0);
        CHECK(!after.has_dht);
        CHECK_EQ_INT(after.length, stripped);
        CHECK_EQ_INT(after.sos_offset, before.sos_offset - (list[k].len - stripped));
        free(list[k].data);
    }
}

/* Random input and mutated JPEGs: only 0/-EAGAIN/-EBADMSG, never a read past the end (ASan). */
static void test_random_garbage(void)
{
    struct jpeg seed = make_jpeg(40, 24, TJSAMP_420, TJFLAG_PROGRESSIVE, 70);
    size_t counts[3] = {0, 0, 0};
    uint8_t *buf = xmalloc(4096);
    for (int iter = 0; iter < 200000; iter++) {
        size_t len;
        if (iter % 2 == 0 && seed.len <= 4096) {
            len = seed.len;
            memcpy(buf, seed.data, len);
            for (size_t m = 1 + rng_below(4); m > 0; m--)
                buf[rng_below(len)] = (uint8_t)rng_next();
            if (rng_below(4) == 0)
                len = rng_below(len + 1);
        } else {
            len = rng_below(600);
            for (size_t i = 0; i < len; i++) {
                /* Bias towards marker bytes so the walker gets past the SOI often. */
                uint8_t r = (uint8_t)rng_next();
                buf[i] = (r & 3) == 0 ? 0xFF : (uint8_t)rng_next();
            }
            if (len >= 2 && iter % 4 == 1) {
                buf[0] = 0xFF;
                buf[1] = 0xD8;
            }
        }
        struct jpeg_scan_info info;
        int ret = check_exact(buf, len, &info);
        if (ret == 0) {
            counts[0]++;
            CHECK(info.length <= len);
        } else if (ret == -EAGAIN) {
            counts[1]++;
        } else if (ret == -EBADMSG) {
            counts[2]++;
        } else {
            CHECKF(false, "unexpected %d", ret);
        }
    }
    printf("  garbage: %zu complete, %zu prefix, %zu bad\n", counts[0], counts[1], counts[2]);
    CHECK(counts[1] > 0 && counts[2] > 0);
    free(buf);
    free(seed.data);
}

int main(void)
{
    rng_seed(0x9E3779B97F4A7C15ULL);
    RUN_TEST(test_valid_baseline_420);
    RUN_TEST(test_valid_grayscale);
    RUN_TEST(test_valid_progressive);
    RUN_TEST(test_every_prefix_needs_more);
    RUN_TEST(test_incremental_and_release);
    RUN_TEST(test_corrupt_structure);
    RUN_TEST(test_embedded_thumbnail);
    RUN_TEST(test_fill_bytes);
    RUN_TEST(test_has_dht);
    RUN_TEST(test_random_garbage);
    return check_summary();
}
