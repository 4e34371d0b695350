/* test_mjpeg_split.c - unit tests for the MJPEG stream splitter (capd/mjpeg_split.c). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "check.h"
#include "testrand.h"
#include "util.h"

/* Included to reach the buffer bounds (cap, head, tail) for the memory checks. */
#include "../../capd/mjpeg_split.c"

#define MAX_FRAMES 4096

struct bytes {
    uint8_t *data;
    size_t len, cap;
};

struct jpeg {
    uint8_t *data;
    size_t len;
};

/* What a feed produced: copies of every returned frame plus the final counters. */
struct result {
    size_t count;
    struct jpeg frames[MAX_FRAMES];
    struct mjpeg_split_stats stats;
    size_t max_retained; /* largest unconsumed input seen after draining */
    bool bound_broken;   /* the buffer indices ever left [0, cap] */
};

static void append(struct bytes *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2;
        b->data = xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void append_str(struct bytes *b, const char *s)
{
    append(b, s, strlen(s));
}

/* Compresses a synthetic image; `noise` (0..255) controls how large the JPEG gets. */
static struct jpeg make_jpeg(int width, int height, int noise, int quality)
{
    uint8_t *rgb = xmalloc((size_t)width * (size_t)height * 3);
    for (int y = 0; y < height; y++) {
        for (int x = 0; x < width; x++) {
            uint8_t *px = rgb + ((size_t)y * (size_t)width + (size_t)x) * 3;
            px[0] = (uint8_t)(x * 255 / width);
            px[1] = (uint8_t)(y * 255 / height);
            px[2] = (uint8_t)((x ^ y) + (noise ? (int)rng_below((size_t)noise + 1) : 0));
        }
    }
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg_buf = NULL;
    unsigned long jpeg_len = 0;
    if (!tj || tjCompress2(tj, rgb, width, 0, height, TJPF_RGB, &jpeg_buf, &jpeg_len, TJSAMP_420,
                           quality, 0) != 0) {
        printf("  turbojpeg: %s\n", tjGetErrorStr2(tj));
        abort();
    }
    struct jpeg out = {xmalloc(jpeg_len), jpeg_len};
    memcpy(out.data, jpeg_buf, jpeg_len);
    tjFree(jpeg_buf);
    tjDestroy(tj);
    free(rgb);
    return out;
}

/* A set of distinct small JPEGs (about 1..40 KB). */
static void make_set(struct jpeg *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        set[i] = make_jpeg(32 + (int)rng_below(300), 24 + (int)rng_below(200), (int)rng_below(200),
                           60 + (int)rng_below(35));
}

static void free_set(struct jpeg *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(set[i].data);
}

static size_t random_chunk(void)
{
    /* Mix tiny, medium and large reads so every split point gets exercised. */
    switch (rng_below(3)) {
    case 0:
        return 1 + rng_below(16);
    case 1:
        return 1 + rng_below(4096);
    default:
        return 1 + rng_below(65536);
    }
}

static void drain(struct mjpeg_split *s, struct result *r)
{
    const uint8_t *frame;
    size_t len;
    while (mjpeg_split_next(s, &frame, &len) == 0) {
        if (r->count < MAX_FRAMES) {
            r->frames[r->count].data = xmalloc(len);
            memcpy(r->frames[r->count].data, frame, len);
            r->frames[r->count].len = len;
        }
        r->count++;
    }
    if (s->head > s->tail || s->tail > s->cap)
        r->bound_broken = true;
    if (s->tail - s->head > r->max_retained)
        r->max_retained = s->tail - s->head;
}

/* Feeds stream[0..len) in chunks of chunk_size bytes (0: random sizes) and drains after each. */
static void feed(struct mjpeg_split *s, const uint8_t *stream, size_t len, size_t chunk_size,
                 struct result *r)
{
    size_t pos = 0;
    while (pos < len) {
        size_t space;
        uint8_t *dst = mjpeg_split_space(s, &space);
        CHECK(space > 0);
        size_t n = chunk_size ? chunk_size : random_chunk();
        if (n > space)
            n = space;
        if (n > len - pos)
            n = len - pos;
        memcpy(dst, stream + pos, n);
        mjpeg_split_commit(s, n);
        pos += n;
        drain(s, r);
    }
    mjpeg_split_stats(s, &r->stats);
}

static void free_result(struct result *r)
{
    for (size_t i = 0; i < r->count && i < MAX_FRAMES; i++)
        free(r->frames[i].data);
    r->count = 0;
}

/* The frames must be exactly `expect` (in order), byte for byte. */
static void check_frames(const struct result *r, const struct jpeg *expect, size_t n)
{
    CHECK_EQ_INT(r->count, n);
    for (size_t i = 0; i < n && i < r->count; i++) {
        CHECKF(r->frames[i].len == expect[i].len &&
                   memcmp(r->frames[i].data, expect[i].data, expect[i].len) == 0,
               "frame %zu differs (len %zu, expected %zu)", i, r->frames[i].len, expect[i].len);
    }
    CHECK(!r->bound_broken);
}

/* Runs the stream through a fresh splitter, once with random chunks and once byte by byte
   (small streams only), and checks both runs agree on frames and counters. */
static void split_stream(const struct bytes *stream, size_t max_frame, struct result *r)
{
    struct mjpeg_split *s = mjpeg_split_create(max_frame);
    feed(s, stream->data, stream->len, 0, r);
    mjpeg_split_destroy(s);
    if (stream->len > 400000)
        return;
    struct result *bytewise = xcalloc(1, sizeof(*bytewise));
    s = mjpeg_split_create(max_frame);
    feed(s, stream->data, stream->len, 1, bytewise);
    mjpeg_split_destroy(s);
    CHECK_EQ_INT(bytewise->count, r->count);
    CHECK(memcmp(&bytewise->stats, &r->stats, sizeof(r->stats)) == 0);
    for (size_t i = 0; i < r->count && i < bytewise->count && i < MAX_FRAMES; i++)
        CHECK(bytewise->frames[i].len == r->frames[i].len);
    free_result(bytewise);
    free(bytewise);
}

/* Content-Length: exact (cl_delta 0), absent (NO_LENGTH) or off by cl_delta. */
#define NO_LENGTH INT32_MIN

static void append_part(struct bytes *b, const char *delim, const char *eol, const uint8_t *body,
                        size_t body_len, int32_t cl_delta)
{
    char line[256];
    append_str(b, delim);
    append_str(b, eol);
    snprintf(line, sizeof(line), "Content-Type: image/jpeg%s", eol);
    append_str(b, line);
    if (cl_delta != NO_LENGTH) {
        snprintf(line, sizeof(line), "Content-Length: %lld%s", (long long)body_len + cl_delta, eol);
        append_str(b, line);
    }
    append_str(b, eol);
    append(b, body, body_len);
    append_str(b, eol);
}

static void test_concatenated_random_chunks(void)
{
    enum { N = 60 };
    struct jpeg set[N];
    make_set(set, N);
    struct bytes stream = {0};
    for (size_t i = 0; i < N; i++)
        append(&stream, set[i].data, set[i].len);
    struct result *r = xcalloc(1, sizeof(*r));
    split_stream(&stream, 1 << 20, r);
    check_frames(r, set, N);
    CHECK_EQ_INT(r->stats.frames, N);
    CHECK_EQ_INT(r->stats.bad, 0);
    CHECK_EQ_INT(r->stats.oversize, 0);
    CHECK_EQ_INT(r->stats.skipped_bytes, 0);
    free_result(r);
    free(r);
    free(stream.data);
    free_set(set, N);
}

/* Multipart variants: Content-Length or not, CRLF or LF, with or without dashes and an HTTP
   response header in front, as ffmpeg -f mpjpeg and curl -i produce. */
static void check_multipart(const char *http_prefix, const char *delim, const char *eol,
                            bool with_length)
{
    enum { N = 25 };
    struct jpeg set[N];
    make_set(set, N);
    struct bytes stream = {0};
    if (http_prefix)
        append_str(&stream, http_prefix);
    for (size_t i = 0; i < N; i++)
        append_part(&stream, delim, eol, set[i].data, set[i].len, with_length ? 0 : NO_LENGTH);
    struct result *r = xcalloc(1, sizeof(*r));
    split_stream(&stream, 1 << 20, r);
    check_frames(r, set, N);
    CHECK_EQ_INT(r->stats.bad, 0);
    CHECK_EQ_INT(r->stats.oversize, 0);
    CHECK_EQ_INT(r->stats.skipped_bytes, 0);
    free_result(r);
    free(r);
    free(stream.data);
    free_set(set, N);
}

static void test_multipart_content_length(void)
{
    check_multipart(NULL, "--ffmpeg", "\r\n", true);
}

static void test_multipart_no_content_length(void)
{
    check_multipart(NULL, "--myboundary", "\r\n", false);
}

static void test_multipart_http_header(void)
{
    const char *http = "HTTP/1.1 200 OK\r\n"
                       "Server: cam\r\n"
                       "Content-Type: multipart/x-mixed-replace; boundary=frame\r\n"
                       "Content-Length: 99\r\n" /* must be ignored for a multipart response */
                       "\r\n";
    check_multipart(http, "--frame", "\r\n", true);
    check_multipart(http, "--frame", "\r\n", false);
}

static void test_multipart_lf_only(void)
{
    check_multipart(NULL, "--b", "\n", true);
    check_multipart("HTTP/1.0 200 OK\nContent-Type: multipart/x-mixed-replace;boundary=b\n\n",
                    "--b", "\n", false);
}

static void test_multipart_boundary_without_dashes(void)
{
    check_multipart(NULL, "myboundary", "\r\n", true);
    check_multipart(NULL, "myboundary", "\r\n", false);
}

/* Single-image HTTP response (curl -i http://cam/snapshot.jpg). */
static void test_http_single_image(void)
{
    struct jpeg j = make_jpeg(100, 80, 50, 80);
    struct bytes stream = {0};
    char header[128];
    snprintf(header, sizeof(header),
             "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: %zu\r\n\r\n", j.len);
    append_str(&stream, header);
    append(&stream, j.data, j.len);
    struct result *r = xcalloc(1, sizeof(*r));
    split_stream(&stream, 1 << 20, r);
    check_frames(r, &j, 1);
    free_result(r);
    free(r);
    free(stream.data);
    free(j.data);
}

/* Part `bad_index` is broken by `damage`; every other part must come through intact. */
enum damage { TRUNCATED, TRUNCATED_WITH_LENGTH, LENGTH_TOO_SHORT, LENGTH_TOO_LONG };

static void check_bad_part(enum damage damage, bool with_length)
{
    enum { N = 12, BAD = 5 };
    struct jpeg set[N], expect[N];
    make_set(set, N);
    struct bytes stream = {0};
    size_t n_expect = 0;
    for (size_t i = 0; i < N; i++) {
        int32_t cl = with_length ? 0 : NO_LENGTH;
        size_t len = set[i].len;
        if (i == BAD) {
            switch (damage) {
            case TRUNCATED:
                len = len / 2;
                break;
            case TRUNCATED_WITH_LENGTH:
                len = len / 2;
                cl = 0;
                break;
            case LENGTH_TOO_SHORT:
                cl = -100;
                break;
            case LENGTH_TOO_LONG:
                cl = 300;
                break;
            }
        } else {
            expect[n_expect++] = set[i];
        }
        append_part(&stream, "--frame", "\r\n", set[i].data, len, cl);
    }
    struct result *r = xcalloc(1, sizeof(*r));
    split_stream(&stream, 1 << 20, r);
    check_frames(r, expect, n_expect);
    CHECK_EQ_INT(r->stats.bad, 1);
    CHECK_EQ_INT(r->stats.oversize, 0);
    CHECK(r->stats.skipped_bytes > 0);
    free_result(r);
    free(r);
    free(stream.data);
    free_set(set, N);
}

static void test_truncated_part(void)
{
    check_bad_part(TRUNCATED, false);
    check_bad_part(TRUNCATED, true);
    check_bad_part(TRUNCATED_WITH_LENGTH, false);
}

static void test_lying_content_length(void)
{
    check_bad_part(LENGTH_TOO_SHORT, true);
    check_bad_part(LENGTH_TOO_LONG, true);
}

/* A truncated JPEG between bare JPEGs: the next SOI ends it. */
static void test_truncated_concatenated(void)
{
    enum { N = 8 };
    struct jpeg set[N];
    make_set(set, N);
    struct bytes stream = {0};
    for (size_t i = 0; i < N; i++)
        append(&stream, set[i].data, i == 3 ? set[i].len * 2 / 3 : set[i].len);
    struct jpeg expect[N - 1];
    for (size_t i = 0, k = 0; i < N; i++)
        if (i != 3)
            expect[k++] = set[i];
    struct result *r = xcalloc(1, sizeof(*r));
    split_stream(&stream, 1 << 20, r);
    check_frames(r, expect, N - 1);
    CHECK_EQ_INT(r->stats.bad, 1);
    CHECK_EQ_INT(r->stats.skipped_bytes, set[3].len * 2 / 3);
    free_result(r);
    free(r);
    free(stream.data);
    free_set(set, N);
}

/* One JPEG of ~300 KB among small ones, with max_frame 100 KB: skipped without buffering it. */
static void check_oversize(int mode)
{
    enum { N = 9, BIG = 4 };
    const size_t max_frame = 100000;
    struct jpeg set[N], expect[N];
    make_set(set, N);
    free(set[BIG].data);
    set[BIG] = make_jpeg(1024, 768, 255, 95);
    CHECKF(set[BIG].len > 2 * max_frame, "big frame only %zu bytes", set[BIG].len);
    struct bytes stream = {0};
    size_t n_expect = 0;
    for (size_t i = 0; i < N; i++) {
        if (i != BIG)
            expect[n_expect++] = set[i];
        if (mode == 0)
            append(&stream, set[i].data, set[i].len);
        else
            append_part(&stream, "--frame", "\r\n", set[i].data, set[i].len,
                        mode == 1 ? NO_LENGTH : 0);
    }
    struct result *r = xcalloc(1, sizeof(*r));
    split_stream(&stream, max_frame, r);
    check_frames(r, expect, n_expect);
    CHECK_EQ_INT(r->stats.oversize, 1);
    CHECK_EQ_INT(r->stats.bad, 0);
    CHECK_EQ_INT(r->stats.skipped_bytes, set[BIG].len);
    CHECKF(r->max_retained <= max_frame, "retained %zu", r->max_retained);
    free_result(r);
    free(r);
    free(stream.data);
    free_set(set, N);
}

static void test_oversize_frame(void)
{
    check_oversize(0); /* concatenated */
    check_oversize(1); /* multipart without Content-Length */
    check_oversize(2); /* multipart with Content-Length */
}

static void test_junk_between_frames(void)
{
    enum { N = 20 };
    struct jpeg set[N];
    make_set(set, N);
    struct bytes stream = {0};
    size_t junk_total = 0;
    uint8_t junk[3000];
    for (size_t i = 0; i < N; i++) {
        /* Binary junk with no FF, CR, LF or text: none of it can start a part. */
        size_t n = rng_below(sizeof(junk));
        for (size_t k = 0; k < n; k++)
            junk[k] = (uint8_t)(0x80 + rng_below(0x7F));
        if (i % 4 == 1 && n > 4) {
            junk[0] = 0xFF; /* a fake SOI start */
            junk[1] = 0xD8;
            junk[2] = 0x00;
        }
        if (i % 4 == 2 && n > 20)
            memcpy(junk, "text: junk without end", 20);
        append(&stream, junk, n);
        junk_total += n;
        append(&stream, set[i].data, set[i].len);
    }
    append_str(&stream, "trailing: junk"); /* never completed: stays pending, not skipped */
    struct result *r = xcalloc(1, sizeof(*r));
    split_stream(&stream, 1 << 20, r);
    check_frames(r, set, N);
    CHECK_EQ_INT(r->stats.bad, 0);
    CHECK_EQ_INT(r->stats.skipped_bytes, junk_total);
    free_result(r);
    free(r);
    free(stream.data);
    free_set(set, N);
}

/* Endless hostile input of several kinds: the buffer is never reallocated nor overrun, and
   what stays buffered after draining is bounded. */
static void check_endless(const char *name, void (*fill)(uint8_t *, size_t, size_t))
{
    const size_t max_frame = 200000, total = 64u << 20;
    struct mjpeg_split *s = mjpeg_split_create(max_frame);
    uint8_t *const buf = s->buf;
    const size_t cap = s->cap;
    struct result *r = xcalloc(1, sizeof(*r));
    size_t fed = 0;
    while (fed < total) {
        size_t space;
        uint8_t *dst = mjpeg_split_space(s, &space);
        CHECK(space > 0);
        size_t n = space < 65536 ? space : 65536;
        fill(dst, n, fed);
        mjpeg_split_commit(s, n);
        fed += n;
        drain(s, r);
    }
    mjpeg_split_stats(s, &r->stats);
    CHECK(s->buf == buf && s->cap == cap);
    CHECK(cap <= 2 * max_frame + HEADER_MAX);
    CHECK(!r->bound_broken);
    CHECKF(r->max_retained <= max_frame, "%s: retained %zu", name, r->max_retained);
    CHECK_EQ_INT(r->count, 0);
    CHECKF(r->stats.skipped_bytes + (s->tail - s->head) == fed, "%s: skipped %llu of %zu", name,
           (unsigned long long)r->stats.skipped_bytes, fed);
    mjpeg_split_destroy(s);
    free(r);
}

static void fill_random(uint8_t *dst, size_t n, size_t offset)
{
    (void)offset;
    for (size_t i = 0; i < n; i++)
        dst[i] = (uint8_t)rng_next();
}

/* SOI, SOF, SOS, then entropy data forever: a JPEG that never ends. */
static void fill_endless_scan(uint8_t *dst, size_t n, size_t offset)
{
    static const uint8_t head[] = {0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0, 16, 0, 16, 1, 1,
                                   0x11, 0,    0xFF, 0xDA, 0, 8,  1, 1, 0,  0, 63, 0};
    for (size_t i = 0; i < n; i++) {
        size_t at = offset + i;
        dst[i] = at < sizeof(head) ? head[at] : (uint8_t)(at % 0xFF);
    }
}

/* SOI then 64 KB COM segments forever. */
static void fill_endless_segments(uint8_t *dst, size_t n, size_t offset)
{
    for (size_t i = 0; i < n; i++) {
        size_t at = offset + i;
        if (at < 2) {
            dst[i] = at == 0 ? 0xFF : 0xD8;
            continue;
        }
        size_t k = (at - 2) % 65537; /* FF FE, length 65535 */
        dst[i] = k == 0 ? 0xFF : k == 1 ? 0xFE : k <= 3 ? 0xFF : 'c';
    }
}

/* A header block that never ends, then lines that look like delimiters. */
static void fill_endless_header(uint8_t *dst, size_t n, size_t offset)
{
    static const char text[] = "--frame\r\nX-Junk: 0123456789\r\n";
    for (size_t i = 0; i < n; i++)
        dst[i] = (uint8_t)text[(offset + i) % (sizeof(text) - 1)];
}

static void test_endless_garbage_bounded(void)
{
    check_endless("random", fill_random);
    check_endless("endless scan", fill_endless_scan);
    check_endless("endless segments", fill_endless_segments);
    check_endless("endless header", fill_endless_header);
}

/* The caller must drain next() before space(); if it does not, space() still makes room. */
static void test_space_never_zero(void)
{
    struct mjpeg_split *s = mjpeg_split_create(1000);
    for (int i = 0; i < 10; i++) {
        size_t space;
        uint8_t *dst = mjpeg_split_space(s, &space);
        CHECK(space > 0);
        memset(dst, 0x41, space);
        mjpeg_split_commit(s, space);
    }
    struct mjpeg_split_stats stats;
    mjpeg_split_stats(s, &stats);
    CHECK(stats.skipped_bytes > 0);
    mjpeg_split_destroy(s);
    mjpeg_split_destroy(NULL);
    CHECK(mjpeg_split_create(0) == NULL);
}

static void test_frame_info(void)
{
    struct jpeg j = make_jpeg(123, 45, 10, 80);
    struct mjpeg_split *s = mjpeg_split_create(1 << 20);
    size_t space;
    uint8_t *dst = mjpeg_split_space(s, &space);
    CHECK(space >= j.len);
    memcpy(dst, j.data, j.len);
    mjpeg_split_commit(s, j.len);
    const uint8_t *frame;
    size_t len;
    CHECK_EQ_INT(mjpeg_split_next(s, &frame, &len), 0);
    CHECK_EQ_INT(len, j.len);
    CHECK_EQ_INT(mjpeg_split_frame_info(s)->width, 123);
    CHECK_EQ_INT(mjpeg_split_frame_info(s)->height, 45);
    CHECK_EQ_INT(mjpeg_split_next(s, &frame, &len), -EAGAIN);
    mjpeg_split_destroy(s);
    free(j.data);
}

/* Throughput on ~100 KB JPEGs in 64 KB reads; MJPEG_SPLIT_BENCH_MB sets the stream size. */
static void test_throughput(void)
{
    const char *env = getenv("MJPEG_SPLIT_BENCH_MB");
    size_t total_mb = env ? (size_t)atoi(env) : 100;
    enum { DISTINCT = 8 };
    struct jpeg set[DISTINCT];
    size_t sum = 0;
    for (size_t i = 0; i < DISTINCT; i++) {
        set[i] = make_jpeg(640, 480, 150, 88);
        sum += set[i].len;
    }
    struct bytes stream = {0};
    size_t parts = 0;
    while (stream.len < total_mb << 20) {
        const struct jpeg *j = &set[parts % DISTINCT];
        if (parts % 2)
            append(&stream, j->data, j->len);
        else
            append_part(&stream, "--frame", "\r\n", j->data, j->len, 0);
        parts++;
    }
    struct mjpeg_split *s = mjpeg_split_create(4 << 20);
    size_t frames = 0, bytes = 0, pos = 0;
    uint64_t start = time_mono_ns();
    while (pos < stream.len) {
        size_t space;
        uint8_t *dst = mjpeg_split_space(s, &space);
        size_t n = space < 65536 ? space : 65536;
        if (n > stream.len - pos)
            n = stream.len - pos;
        memcpy(dst, stream.data + pos, n);
        mjpeg_split_commit(s, n);
        pos += n;
        const uint8_t *frame;
        size_t len;
        while (mjpeg_split_next(s, &frame, &len) == 0) {
            frames++;
            bytes += len;
        }
    }
    double seconds = (double)(time_mono_ns() - start) / 1e9;
    printf("  throughput: %zu frames of ~%zu KB, %.1f MB in %.3f s = %.0f MB/s\n", frames,
           sum / DISTINCT / 1024, (double)stream.len / 1e6, seconds,
           (double)stream.len / 1e6 / seconds);
    CHECK_EQ_INT(frames, parts);
    struct mjpeg_split_stats stats;
    mjpeg_split_stats(s, &stats);
    CHECK_EQ_INT(stats.bad + stats.oversize + stats.skipped_bytes, 0);
    mjpeg_split_destroy(s);
    free(stream.data);
    free_set(set, DISTINCT);
}

int main(void)
{
    rng_seed(0x2545F4914F6CDD1DULL);
    RUN_TEST(test_concatenated_random_chunks);
    RUN_TEST(test_multipart_content_length);
    RUN_TEST(test_multipart_no_content_length);
    RUN_TEST(test_multipart_http_header);
    RUN_TEST(test_multipart_lf_only);
    RUN_TEST(test_multipart_boundary_without_dashes);
    RUN_TEST(test_http_single_image);
    RUN_TEST(test_truncated_part);
    RUN_TEST(test_lying_content_length);
    RUN_TEST(test_truncated_concatenated);
    RUN_TEST(test_oversize_frame);
    RUN_TEST(test_junk_between_frames);
    RUN_TEST(test_endless_garbage_bounded);
    RUN_TEST(test_space_never_zero);
    RUN_TEST(test_frame_info);
    RUN_TEST(test_throughput);
    return check_summary();
}
