/* seedgen.c - writes the fuzz seed corpora: queries, small JPEGs, MJPEG streams, ring images. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "ring.h"
#include "ring_image.h"
#include "tools/jpeg_strip.h"
#include "util.h"

/*
 * Usage: seedgen DIR  (make fuzz-seeds runs it with DIR = tests/fuzz/corpus)
 * Writes DIR/<target>/<name> for every fuzz target. The output is deterministic: the JPEGs
 * come from fixed pixel patterns, and the ring images have their random and time-dependent
 * fields (generation, pid, clocks) replaced with fixed values. Each seed is small (the whole
 * corpus stays far below 200 KB); the fuzzer grows them.
 */

struct buf {
    uint8_t *data;
    size_t len;
};

static const char *out_dir;

static void append(struct buf *b, const void *p, size_t n)
{
    b->data = xrealloc(b->data, b->len + n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void append_bytes(struct buf *b, size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)va_arg(ap, int);
        append(b, &c, 1);
    }
    va_end(ap);
}

static void append_str(struct buf *b, const char *s)
{
    append(b, s, strlen(s));
}

static void write_seed(const char *target, const char *name, const void *p, size_t n)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", out_dir, target);
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
    f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* ---- JPEGs ------------------------------------------------------------------------------ */

/* A w x h JPEG of a fixed gradient (pattern picks which); flags are TurboJPEG's. */
static struct buf tj_jpeg(int w, int h, int subsamp, int quality, int flags, int pattern)
{
    int gray = subsamp == TJSAMP_GRAY;
    size_t pixel = gray ? 1 : 3;
    uint8_t *pixels = xmalloc((size_t)w * (size_t)h * pixel);
    unsigned char *jpeg = NULL;
    unsigned long jpeg_len = 0;
    struct buf out = {0};
    tjhandle tj = tjInitCompress();

    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (size_t c = 0; c < pixel; c++)
                pixels[((size_t)y * (size_t)w + (size_t)x) * pixel + c] =
                    (uint8_t)(x * 16 + y * 8 * (int)c + pattern * 40);
    if (!tj || tjCompress2(tj, pixels, w, 0, h, gray ? TJPF_GRAY : TJPF_RGB, &jpeg, &jpeg_len,
                           subsamp, quality, flags) != 0) {
        fprintf(stderr, "seedgen: TurboJPEG: %s\n", tjGetErrorStr2(tj));
        exit(1);
    }
    append(&out, jpeg, jpeg_len);
    tjFree(jpeg);
    tjDestroy(tj);
    free(pixels);
    return out;
}

/* A camera-style frame: the JPEG without its DHT segments (jpeg_dht must insert them). */
static struct buf without_dht(const struct buf *jpeg)
{
    struct buf out = {xmalloc(jpeg->len), 0};
    out.len = jpeg_strip_dht(jpeg->data, jpeg->len, out.data);
    if (out.len == 0) {
        fprintf(stderr, "seedgen: cannot strip DHT\n");
        exit(1);
    }
    return out;
}

/* The offset of the first marker segment after SOI with the given code, or 0. */
static size_t find_marker(const struct buf *jpeg, uint8_t code)
{
    size_t pos = 2;
    while (pos + 4 <= jpeg->len && jpeg->data[pos] == 0xFF) {
        if (jpeg->data[pos + 1] == code)
            return pos;
        pos += 2 + ((size_t)jpeg->data[pos + 2] << 8 | jpeg->data[pos + 3]);
    }
    return 0;
}

/* jpeg with extra[0..n) inserted at offset at. */
static struct buf spliced(const struct buf *jpeg, size_t at, const void *extra, size_t n)
{
    struct buf out = {0};
    append(&out, jpeg->data, at);
    append(&out, extra, n);
    append(&out, jpeg->data + at, jpeg->len - at);
    return out;
}

/*
 * A structurally valid but synthetic JPEG (jpeg_scan checks structure, not pixels): SOF of
 * the given marker and precision, optional DRI with restart markers in the entropy data,
 * stuffed FF 00 bytes, fill bytes before a marker. No DHT: jpeg_dht decides what to do.
 */
static struct buf synthetic(uint8_t sof, uint8_t precision, int restarts)
{
    struct buf b = {0};
    append_bytes(&b, 2, 0xFF, 0xD8);
    /* APP0 "AVI1" as UVC cameras send it instead of JFIF. */
    append_bytes(&b, 16, 0xFF, 0xE0, 0x00, 0x10, 'A', 'V', 'I', '1', 0, 0, 0, 0, 0, 0, 0, 0);
    append_bytes(&b, 5, 0xFF, 0xDB, 0x00, 0x43, 0x00);
    for (int i = 0; i < 64; i++)
        append_bytes(&b, 1, 1 + i);
    append_bytes(&b, 3, 0xFF, 0xFF, 0xFF); /* fill bytes before the SOF */
    append_bytes(&b, 19, 0xFF, sof, 0x00, 0x11, precision, 0x00, 0x10, 0x00, 0x10, 0x03, 0x01, 0x22,
                 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01);
    if (restarts)
        append_bytes(&b, 6, 0xFF, 0xDD, 0x00, 0x04, 0x00, 0x01);
    append_bytes(&b, 14, 0xFF, 0xDA, 0x00, 0x0C, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00,
                 0x3F, 0x00);
    for (int i = 0; i < 4; i++) {
        append_bytes(&b, 6, 0x12, 0x34, 0xFF, 0x00, 0x56, 0x78);
        if (restarts)
            append_bytes(&b, 2, 0xFF, 0xD0 + i);
    }
    append_bytes(&b, 2, 0xFF, 0xD9);
    return b;
}

static void write_buf(const char *target, const char *name, const struct buf *b)
{
    write_seed(target, name, b->data, b->len);
}

static void jpeg_seeds(void)
{
    struct buf color = tj_jpeg(16, 16, TJSAMP_420, 50, 0, 0);
    struct buf gray = tj_jpeg(8, 8, TJSAMP_GRAY, 50, 0, 1);
    struct buf s422 = tj_jpeg(16, 8, TJSAMP_422, 75, 0, 2);
    struct buf progressive = tj_jpeg(16, 16, TJSAMP_444, 50, TJFLAG_PROGRESSIVE, 3);
    struct buf nodht = without_dht(&color);
    struct buf nodht_prog = without_dht(&progressive);
    struct buf restarts = synthetic(0xC0, 8, 1);
    struct buf extended = synthetic(0xC1, 8, 0);
    struct buf twelve_bit = synthetic(0xC1, 12, 0);
    struct buf arithmetic = synthetic(0xC9, 8, 1);
    struct buf exif = {0}, padded = {0}, com = {0};

    /* An APP1 "Exif" segment holding a whole thumbnail JPEG: its EOI must not end the frame. */
    append_bytes(&exif, 4, 0xFF, 0xE1, (int)((8 + gray.len) >> 8), (int)((8 + gray.len) & 0xFF));
    append_str(&exif, "Exif");
    append_bytes(&exif, 2, 0, 0);
    append(&exif, gray.data, gray.len);
    struct buf with_thumb = spliced(&color, 2, exif.data, exif.len);

    /* A COM segment and fill bytes before the SOS. */
    static const uint8_t comment[] = {0xFF, 0xFE, 0x00, 0x07, 'c', 'a', 'p', 'd', '!', 0xFF, 0xFF};
    struct buf with_com = spliced(&color, find_marker(&color, 0xDA), comment, sizeof(comment));

    /* Driver padding after the EOI. */
    append(&padded, s422.data, s422.len);
    for (int i = 0; i < 32; i++)
        append_bytes(&padded, 1, 0);

    const struct {
        const char *name;
        const struct buf *b;
    } seeds[] = {
        {"color-420.jpg", &color},
        {"gray-8x8.jpg", &gray},
        {"color-422.jpg", &s422},
        {"progressive.jpg", &progressive},
        {"nodht-420.jpg", &nodht},
        {"nodht-progressive.jpg", &nodht_prog},
        {"restarts-avi1.jpg", &restarts},
        {"sof1-avi1.jpg", &extended},
        {"sof1-12bit.jpg", &twelve_bit},
        {"arithmetic.jpg", &arithmetic},
        {"exif-thumbnail.jpg", &with_thumb},
        {"comment-fill.jpg", &with_com},
        {"padded.jpg", &padded},
    };
    for (size_t i = 0; i < ARRAY_SIZE(seeds); i++)
        write_buf("fuzz_jpeg", seeds[i].name, seeds[i].b);

    /* ---- MJPEG streams for the splitter ---- */
    struct buf s = {0};
    char line[160];

    /* Bare JPEGs back to back, with junk and whitespace between. */
    append(&s, gray.data, gray.len);
    append(&s, nodht.data, nodht.len);
    append_str(&s, "junk\r\n");
    append(&s, with_thumb.data, with_thumb.len);
    write_buf("fuzz_mjpeg_split", "bare-concatenated.mjpeg", &s);
    s.len = 0;

    /* ffmpeg -f mpjpeg: CRLF, Content-Length, "--ffmpeg". */
    for (int i = 0; i < 2; i++) {
        const struct buf *j = i ? &s422 : &gray;
        snprintf(line, sizeof(line),
                 "--ffmpeg\r\nContent-type: image/jpeg\r\nContent-length: %zu\r\n\r\n", j->len);
        append_str(&s, line);
        append(&s, j->data, j->len);
        append_str(&s, "\r\n");
    }
    write_buf("fuzz_mjpeg_split", "mpjpeg-content-length.mjpeg", &s);
    s.len = 0;

    /* curl -i of a camera: HTTP header, LF only, no Content-Length, a lying part, padding. */
    append_str(&s, "HTTP/1.1 200 OK\nContent-Type: multipart/x-mixed-replace; boundary=cam\n\n");
    append_str(&s, "--cam\nContent-Type: image/jpeg\n\n");
    append(&s, gray.data, gray.len);
    append_str(&s, "\n--cam\nContent-Type: image/jpeg\nContent-Length: 10\n\n");
    append(&s, gray.data, gray.len); /* Content-Length lies */
    snprintf(line, sizeof(line), "\n--cam\nContent-Type: image/jpeg\nContent-Length: %zu\n\n",
             gray.len + 3);
    append_str(&s, line);
    append(&s, gray.data, gray.len);
    append_str(&s, " \r\n"); /* padding inside the announced length */
    write_buf("fuzz_mjpeg_split", "http-multipart-lf.mjpeg", &s);
    s.len = 0;

    /* A bare boundary (no dashes), a truncated JPEG, then a good one. */
    append_str(&s, "myboundary\r\nContent-Type: image/jpeg\r\n\r\n");
    append(&s, gray.data, gray.len / 2);
    append_str(&s, "\r\nmyboundary\r\nContent-Type: image/jpeg\r\n\r\n");
    append(&s, restarts.data, restarts.len);
    write_buf("fuzz_mjpeg_split", "bare-boundary-truncated.mjpeg", &s);
    s.len = 0;

    free(s.data);
    free(exif.data);
    free(com.data);
    free(with_thumb.data);
    free(with_com.data);
    free(padded.data);
    for (size_t i = 0; i < 10; i++) {
        struct buf *all[] = {&color,      &gray,     &s422,     &progressive, &nodht,
                             &nodht_prog, &restarts, &extended, &twelve_bit,  &arithmetic};
        free(all[i]->data);
    }
}

/* ---- queries ------------------------------------------------------------------------------ */

/* Encoded as fuzz_query.c reads it: flag byte, QUERY_STRING, NUL, SCRIPT_NAME, NUL, PATH_INFO. */
static void query_seeds(void)
{
    static const struct {
        const char *qs, *script, *path;
    } seeds[] = {
        {"action=stream&cam=a-b_c&fps=2.5&frames=10&seconds=60&parts=early&_=1700000000",
         "/capd.fcgi", ""},
        {"action=snapshot&cam=front", "/capd.fcgi", "/snapshot"},
        {"action=state", "/cgi-bin/capd.cgi", "/state/"},
        {"camera=1&resolution=640x480&fps=15&nbrofframes=100&duration=5",
         "/axis-cgi/mjpg/video.cgi", NULL},
        {"resolution=320x240", "/axis-cgi/jpg/image.cgi", NULL},
        {"cam=a%2Db&fps=0&parts=full&dual_final=1&headers=1", "/capd.fcgi", "/stream"},
        {"fps=119.999&seconds=31536000&frames=1000000000", NULL, "/stream"},
        {"c%61m=x&%61ction=str%65am", "/capd.fcgi", NULL},
        {"_=123&cam=x&foo=bar&debug&=5&%2B=%2B&x+y=a+b&CAM=Bad/Name&Fps=abc", "/x/", "//"},
        {"cam=a&cam=b", NULL, "/stream"},
        {"cam=a&camera=b", NULL, NULL},
        {"fps=1e99&frames=99999999999999999999", NULL, "/stream"},
        {"fps=-1", NULL, NULL},
        {"cam=%00&action=%zz", NULL, NULL},
        {"cam=..%2Fetc&cam=caf%C3%A9", "/capd.fcgi", "/../state"},
        {"action=snapshot", NULL, "/stream"},
        {"_=%", "", "/video.cgi"},
        {"parts=auto&&&", "/", "/nothing"},
        {"", NULL, NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(seeds); i++) {
        struct buf b = {0};
        char name[32];
        append_bytes(&b, 1, 0xFF); /* a 64-byte err buffer, 63-byte unescape destination */
        append_str(&b, seeds[i].qs);
        if (seeds[i].script || seeds[i].path) {
            append_bytes(&b, 1, 0);
            append_str(&b, seeds[i].script ? seeds[i].script : "");
        }
        if (seeds[i].path) {
            append_bytes(&b, 1, 0);
            append_str(&b, seeds[i].path);
        }
        snprintf(name, sizeof(name), "query-%02zu", i);
        write_buf("fuzz_query", name, &b);
        free(b.data);
    }
}

/* ---- ring images -------------------------------------------------------------------------- */

/* Reads the object a real writer laid out, with its random and clock fields made fixed. */
static struct buf ring_object(uint32_t slot_count, uint64_t generation, int frames)
{
    char prefix[RING_PREFIX_MAX + 1], path[256];
    struct ring_writer_params p = {
        .name = "cam",
        .source = "testpattern",
        .slot_count = slot_count,
        .slot_size = 4096,
        .width = 8,
        .height = 8,
        .fps_milli = 25000,
        .group = (gid_t)-1,
    };
    struct ring_writer *w;
    struct buf out = {0};
    FILE *f;
    long len;

    snprintf(prefix, sizeof(prefix), "fzseed%d-", (int)getpid());
    p.prefix = prefix;
    if (ring_writer_create(&p, &w) != 0) {
        fprintf(stderr, "seedgen: cannot create a ring\n");
        exit(1);
    }
    for (int i = 0; i < frames; i++) {
        struct buf jpeg = tj_jpeg(8, 8, TJSAMP_GRAY, 30, 0, i);
        struct ring_frame_meta meta = {8, 8, UINT64_C(1700000000000000) + (uint64_t)i,
                                       i == 0 ? RING_FRAME_CARD : 0};
        ring_writer_publish(w, jpeg.data, jpeg.len, &meta);
        free(jpeg.data);
    }
    ring_writer_set_state(w, RING_STATE_RUNNING);
    ring_writer_set_stats(w, 25000, 1);
    snprintf(path, sizeof(path), "/dev/shm/%scam", prefix);
    f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) != 0) {
        perror(path);
        exit(1);
    }
    out.data = xmalloc((size_t)len);
    out.len = (size_t)len;
    if (fread(out.data, 1, out.len, f) != out.len) {
        perror(path);
        exit(1);
    }
    fclose(f);
    ring_writer_destroy(w, 0);

    struct ring_header *h = (struct ring_header *)out.data;
    struct ring_slot *slots = (struct ring_slot *)(out.data + sizeof(*h));
    h->generation = generation;
    h->pid = 0;
    atomic_store_explicit(&h->heartbeat_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&h->state, RING_STATE_RUNNING, memory_order_relaxed);
    for (uint32_t i = 0; i < slot_count; i++)
        atomic_store_explicit(&slots[i].publish_ns, 0, memory_order_relaxed);
    return out;
}

/* The structured encoding of ring_image.h: header, slot table, data areas; zeros trimmed. */
static struct buf structured(const struct buf *object)
{
    const struct ring_header *h = (const struct ring_header *)object->data;
    size_t table = sizeof(*h) + (size_t)h->slot_count * sizeof(struct ring_slot);
    struct buf out = {0};
    append(&out, object->data, table);
    append(&out, object->data + h->data_offset, object->len - h->data_offset);
    while (out.len > table && out.data[out.len - 1] == 0)
        out.len--;
    return out;
}

static struct buf with_mode(uint8_t mode, const struct buf *a, const struct buf *b)
{
    struct buf out = {0};
    append_bytes(&out, 1, mode);
    if (b)
        append_bytes(&out, 2, (int)(a->len & 0xFF), (int)(a->len >> 8));
    append(&out, a->data, a->len);
    if (b)
        append(&out, b->data, b->len);
    return out;
}

static void ring_seeds(void)
{
    struct buf two = ring_object(2, UINT64_C(0x1122334455667788), 3);
    struct buf three = ring_object(3, UINT64_C(0x8877665544332211), 5);
    struct buf two_s = structured(&two), three_s = structured(&three);
    const unsigned S = RING_IMAGE_STRUCTURED, L = RING_IMAGE_LIVE;
    struct buf seeds[6];

    seeds[0] = with_mode(0, &two, NULL);         /* raw, capd gone */
    seeds[1] = with_mode(L, &three, NULL);       /* raw, live */
    seeds[2] = with_mode(S | L, &three_s, NULL); /* structured, live */
    write_buf("fuzz_ring", "raw-2slots", &seeds[0]);
    write_buf("fuzz_ring", "raw-3slots-live", &seeds[1]);
    write_buf("fuzz_ring", "structured-3slots-live", &seeds[2]);

    /* fuzz_ring_shm: mode bits 2-3 pick what happens next (fuzz_ring_shm.c). */
    seeds[3] = with_mode(S | L, &two_s, NULL);
    seeds[4] = with_mode((uint8_t)(S | L | 1u << 2 | (S | L) << 4), &two_s, &three_s);
    seeds[5] = with_mode((uint8_t)(S | L | 2u << 2 | L << 4), &three_s, &two_s);
    write_buf("fuzz_ring_shm", "structured-live", &seeds[3]);
    write_buf("fuzz_ring_shm", "replaced-by-other-size", &seeds[4]);
    write_buf("fuzz_ring_shm", "overwritten-in-place", &seeds[5]);

    for (size_t i = 0; i < ARRAY_SIZE(seeds); i++)
        free(seeds[i].data);
    free(two.data);
    free(three.data);
    free(two_s.data);
    free(three_s.data);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seedgen DIR\n");
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0755) < 0 && errno != EEXIST) {
        perror(out_dir);
        return 1;
    }
    log_init("seedgen", 0);
    query_seeds();
    jpeg_seeds();
    ring_seeds();
    return 0;
}
