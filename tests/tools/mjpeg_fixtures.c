/* mjpeg_fixtures.c - writes camera-like MJPEG frames (with/without DHT) and checks capd's copies.
 */
#include "jpeg_dht.h"
#include "jpeg_scan.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

/*
 * Generate mode (run on the host, needs TurboJPEG):
 *   mjpeg_fixtures --dir DIR [--count N] [--size WxH] [--subsamp 422|420] [--pad BYTES]
 *                  [--seed S]
 * writes DIR/frame_NNN.jpg (what to feed a v4l2loopback device, one frame per write()),
 * DIR/expected_NNN.jpg (what capd must publish for it: jpeg_dht_copy() of the frame) and
 * DIR/manifest.txt, one line per frame, also printed on stdout:
 *   frame_000.jpg expected_000.jpg kind=dht in=BYTES out=BYTES inserted=0
 * Kinds cycle with the frame number:
 *   dht     TurboJPEG baseline with its DHT: expected is the same bytes
 *   nodht   the same without DHT (JFIF kept): expected has the standard DHT inserted
 *   avi1    UVC style: APP0 "AVI1" instead of JFIF, restart markers, no DHT: DHT inserted
 *   padded  dht followed by --pad zero bytes (driver padding): expected drops the padding
 * Every frame has different pixels, so no two expected files are equal. Before writing, each
 * expected file is checked to decode without warnings to the same pixels as the frame it
 * came from; exit 1 if not.
 *
 * Verify mode (no TurboJPEG needed at run time):
 *   mjpeg_fixtures --verify DIR PATH...
 * compares every regular file given (or found directly inside a given directory, e.g. frames
 * saved by ringcheck --save) with DIR's expected files. Prints one line per unmatched file and
 * a summary "verify: files= matched= unmatched= inserted= passthrough=", where inserted and
 * passthrough count matched files whose expected frame had DHT inserted or not. Exit 0 only if
 * every file matched and at least one of each was seen; 1 otherwise, 2 for a bad command line.
 */

#define MAX_FRAMES    1000
#define MAX_DIMENSION 8192
#define MAX_PAD       (1u << 20)

enum kind { KIND_DHT, KIND_NODHT, KIND_AVI1, KIND_PADDED, KIND_COUNT };

static const char *const kind_names[KIND_COUNT] = {"dht", "nodht", "avi1", "padded"};

struct buffer {
    uint8_t *data;
    size_t len;
};

struct expected {
    char name[64];
    struct buffer bytes;
    bool inserted;
};

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* xorshift64*: the same seed gives the same fixtures. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static int write_file(const char *dir, const char *name, const uint8_t *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        log_error("%s: %s", path, strerror(errno));
        return -EIO;
    }
    bool ok = fwrite(data, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (!ok)
        log_error("%s: write failed", path);
    return ok ? 0 : -EIO;
}

/* Reads a whole file; returns 0 or -errno. The caller frees out->data. */
static int read_file(const char *path, struct buffer *out)
{
    int ret = 0;
    FILE *f = fopen(path, "rb");
    out->data = NULL;
    out->len = 0;
    if (!f)
        return neg_errno();
    size_t cap = 64 * 1024;
    out->data = xmalloc(cap);
    size_t n;
    while ((n = fread(out->data + out->len, 1, cap - out->len, f)) > 0) {
        out->len += n;
        if (out->len == cap) {
            cap *= 2;
            out->data = xrealloc(out->data, cap);
        }
    }
    if (ferror(f))
        ret = -EIO;
    fclose(f);
    return ret;
}

/* A gradient whose phase moves with the frame number, plus noise: every frame differs. */
static uint8_t *make_pixels(uint32_t width, uint32_t height, unsigned frame)
{
    uint8_t *rgb = xmalloc((size_t)width * height * 3);
    for (uint32_t y = 0; y < height; y++) {
        for (uint32_t x = 0; x < width; x++) {
            uint8_t *px = rgb + ((size_t)y * width + x) * 3;
            px[0] = (uint8_t)((x + frame * 8) * 255 / width);
            px[1] = (uint8_t)((y + frame * 4) * 255 / height);
            px[2] = (uint8_t)(rng_next() & 0x3F);
        }
    }
    return rgb;
}

/* TurboJPEG baseline with the standard tables; restart adds DRI and RSTn (TJ_RESTART). */
static int compress(tjhandle tj, const uint8_t *rgb, uint32_t width, uint32_t height, int subsamp,
                    bool restart, struct buffer *out)
{
    unsigned char *jpeg = NULL;
    unsigned long len = 0;
    if (restart)
        setenv("TJ_RESTART", "1", 1);
    int ret =
        tjCompress2(tj, rgb, (int)width, 0, (int)height, TJPF_RGB, &jpeg, &len, subsamp, 85, 0);
    unsetenv("TJ_RESTART");
    if (ret != 0) {
        log_error("compress: %s", tjGetErrorStr2(tj));
        tjFree(jpeg);
        return -EIO;
    }
    out->data = xmalloc(len);
    memcpy(out->data, jpeg, len);
    out->len = len;
    tjFree(jpeg);
    return 0;
}

static size_t segment_size(const uint8_t *p)
{
    return 2 + ((size_t)p[2] << 8 | p[3]);
}

/*
 * Rewrites a TurboJPEG frame the way cameras send it: without DHT segments before the SOS
 * and, for avi1, with the JFIF APP0 replaced by an AVI1 APP0. The frame was just produced
 * by TurboJPEG, so its headers are well-formed.
 */
static void make_camera_style(struct buffer *frame, bool avi1)
{
    static const uint8_t avi1_app0[] = {0xFF, 0xE0, 0x00, 0x10, 'A', 'V', 'I', '1', 0,
                                        0,    0,    0,    0,    0,   0,   0,   0,   0};
    uint8_t *out = xmalloc(frame->len + sizeof(avi1_app0));
    size_t n = 2, pos = 2;
    memcpy(out, frame->data, 2);
    if (avi1) {
        memcpy(out + n, avi1_app0, sizeof(avi1_app0));
        n += sizeof(avi1_app0);
    }
    while (frame->data[pos + 1] != 0xDA) {
        size_t size = segment_size(frame->data + pos);
        uint8_t marker = frame->data[pos + 1];
        if (marker != 0xC4 && !(avi1 && marker == 0xE0)) {
            memcpy(out + n, frame->data + pos, size);
            n += size;
        }
        pos += size;
    }
    memcpy(out + n, frame->data + pos, frame->len - pos);
    n += frame->len - pos;
    free(frame->data);
    frame->data = out;
    frame->len = n;
}

/* Whether two JPEGs decode without warnings to the same pixels. */
static bool same_pixels(tjhandle tj, const struct buffer *a, const struct buffer *b, uint32_t width,
                        uint32_t height)
{
    size_t size = (size_t)width * height * 3;
    uint8_t *pa = xmalloc(size), *pb = xmalloc(size);
    bool same =
        tjDecompress2(tj, a->data, a->len, pa, (int)width, 0, (int)height, TJPF_RGB, 0) == 0 &&
        tjDecompress2(tj, b->data, b->len, pb, (int)width, 0, (int)height, TJPF_RGB, 0) == 0 &&
        memcmp(pa, pb, size) == 0;
    if (!same)
        log_error("decode check: %s", tjGetErrorStr2(tj));
    free(pa);
    free(pb);
    return same;
}

struct gen_options {
    const char *dir;
    uint32_t count, width, height, pad, seed;
    int subsamp;
};

/* Builds, checks and writes frame number i; appends its manifest line to manifest. */
static int generate_one(const struct gen_options *o, tjhandle ctj, tjhandle dtj, unsigned i,
                        FILE *manifest)
{
    struct buffer original = {NULL, 0}, frame = {NULL, 0}, expected = {NULL, 0};
    enum kind kind = (enum kind)(i % KIND_COUNT);
    uint8_t *rgb = make_pixels(o->width, o->height, i);
    int ret = compress(ctj, rgb, o->width, o->height, o->subsamp, kind == KIND_AVI1, &original);
    if (ret < 0)
        goto out;
    frame.len = original.len + (kind == KIND_PADDED ? o->pad : 0);
    frame.data = xcalloc(1, frame.len);
    memcpy(frame.data, original.data, original.len);
    if (kind == KIND_NODHT || kind == KIND_AVI1)
        make_camera_style(&frame, kind == KIND_AVI1);

    expected.data = xmalloc(frame.len + jpeg_dht_extra_bytes());
    int inserted = 0;
    ret = jpeg_dht_copy(frame.data, frame.len, expected.data, frame.len + jpeg_dht_extra_bytes(),
                        &expected.len, &inserted);
    if (ret < 0) {
        log_error("frame %u: jpeg_dht_copy: %s", i, strerror(-ret));
        goto out;
    }
    bool has_dht = kind == KIND_DHT || kind == KIND_PADDED;
    bool consistent = inserted == !has_dht &&
                      (!has_dht || (expected.len == original.len &&
                                    memcmp(expected.data, original.data, original.len) == 0)) &&
                      same_pixels(dtj, &original, &expected, o->width, o->height);
    if (!consistent) {
        log_error("frame %u (%s): expected output fails its self-check", i, kind_names[kind]);
        ret = -EPROTO;
        goto out;
    }

    char frame_name[64], expected_name[64];
    snprintf(frame_name, sizeof(frame_name), "frame_%03u.jpg", i);
    snprintf(expected_name, sizeof(expected_name), "expected_%03u.jpg", i);
    ret = write_file(o->dir, frame_name, frame.data, frame.len);
    if (ret == 0)
        ret = write_file(o->dir, expected_name, expected.data, expected.len);
    if (ret < 0)
        goto out;
    char line[256];
    snprintf(line, sizeof(line), "%s %s kind=%s in=%zu out=%zu inserted=%d\n", frame_name,
             expected_name, kind_names[kind], frame.len, expected.len, inserted);
    fputs(line, manifest);
    fputs(line, stdout);
out:
    free(rgb);
    free(original.data);
    free(frame.data);
    free(expected.data);
    return ret;
}

static int generate(const struct gen_options *o)
{
    int ret = 0;
    char path[4096];
    tjhandle ctj = tjInitCompress(), dtj = tjInitDecompress();
    FILE *manifest = NULL;
    if (!ctj || !dtj) {
        log_error("turbojpeg: %s", tjGetErrorStr2(NULL));
        ret = -EIO;
        goto out;
    }
    if (mkdir(o->dir, 0755) != 0 && errno != EEXIST) {
        log_error("%s: %s", o->dir, strerror(errno));
        ret = -EIO;
        goto out;
    }
    snprintf(path, sizeof(path), "%s/manifest.txt", o->dir);
    manifest = fopen(path, "w");
    if (!manifest) {
        log_error("%s: %s", path, strerror(errno));
        ret = -EIO;
        goto out;
    }
    rng_state = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)o->seed << 1 | 1);
    for (unsigned i = 0; i < o->count && ret == 0; i++)
        ret = generate_one(o, ctj, dtj, i, manifest);
out:
    if (manifest && fclose(manifest) != 0 && ret == 0) {
        log_error("%s: write failed", path);
        ret = -EIO;
    }
    if (ctj)
        tjDestroy(ctj);
    if (dtj)
        tjDestroy(dtj);
    return ret;
}

/* Loads the expected files named in DIR/manifest.txt; returns how many, or -errno. */
static int load_expected(const char *dir, struct expected *list, size_t max)
{
    char path[4096], line[512];
    snprintf(path, sizeof(path), "%s/manifest.txt", dir);
    FILE *manifest = fopen(path, "r");
    if (!manifest) {
        log_error("%s: %s", path, strerror(errno));
        return -ENOENT;
    }
    int count = 0;
    while (fgets(line, sizeof(line), manifest) && (size_t)count < max) {
        struct expected *e = &list[count];
        char frame_name[64];
        int inserted;
        if (sscanf(line, "%63s %63s %*s %*s %*s inserted=%d", frame_name, e->name, &inserted) !=
            3) {
            log_error("%s: bad line: %s", path, line);
            count = -EINVAL;
            break;
        }
        e->inserted = inserted != 0;
        char expected_path[4096];
        snprintf(expected_path, sizeof(expected_path), "%s/%s", dir, e->name);
        if (read_file(expected_path, &e->bytes) < 0) {
            log_error("%s: cannot read", expected_path);
            free(e->bytes.data);
            count = -ENOENT;
            break;
        }
        count++;
    }
    fclose(manifest);
    return count;
}

struct verify_counts {
    unsigned files, matched, inserted, passthrough;
};

static void verify_file(const char *path, const struct expected *list, int count,
                        struct verify_counts *c)
{
    struct buffer got;
    c->files++;
    if (read_file(path, &got) < 0) {
        printf("unreadable %s\n", path);
        free(got.data);
        return;
    }
    const struct expected *match = NULL;
    for (int k = 0; k < count && !match; k++) {
        if (list[k].bytes.len == got.len && memcmp(list[k].bytes.data, got.data, got.len) == 0)
            match = &list[k];
    }
    if (match) {
        c->matched++;
        if (match->inserted)
            c->inserted++;
        else
            c->passthrough++;
    } else {
        struct jpeg_scan_info info;
        int scan = jpeg_scan_check(got.data, got.len, &info);
        printf("unmatched %s (%zu bytes, %s)\n", path, got.len,
               scan != 0      ? "not a JPEG"
               : info.has_dht ? "has DHT"
                              : "no DHT");
    }
    free(got.data);
}

/* Checks every file in paths (directories: their regular files) against DIR's expectations. */
static int verify(const char *dir, char **paths, int npaths)
{
    struct expected *list = xcalloc(MAX_FRAMES, sizeof(*list));
    struct verify_counts c = {0, 0, 0, 0};
    int count = load_expected(dir, list, MAX_FRAMES);
    int ret = count < 0 ? count : 0;
    for (int p = 0; p < npaths && ret == 0; p++) {
        struct stat st;
        if (stat(paths[p], &st) != 0) {
            log_error("%s: %s", paths[p], strerror(errno));
            ret = -ENOENT;
            break;
        }
        if (!S_ISDIR(st.st_mode)) {
            verify_file(paths[p], list, count, &c);
            continue;
        }
        DIR *d = opendir(paths[p]);
        struct dirent *entry;
        while (d && (entry = readdir(d)) != NULL) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", paths[p], entry->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
                verify_file(path, list, count, &c);
        }
        if (d)
            closedir(d);
    }
    if (ret == 0) {
        printf("verify: files=%u matched=%u unmatched=%u inserted=%u passthrough=%u\n", c.files,
               c.matched, c.files - c.matched, c.inserted, c.passthrough);
        if (c.files == 0 || c.matched != c.files || c.inserted == 0 || c.passthrough == 0)
            ret = -EPROTO;
    }
    for (int k = 0; k < count; k++)
        free(list[k].bytes.data);
    free(list);
    return ret;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: mjpeg_fixtures --dir DIR [--count N] [--size WxH] [--subsamp 422|420]\n"
                 "                      [--pad BYTES] [--seed S]\n"
                 "       mjpeg_fixtures --verify DIR PATH...\n"
                 "Generates MJPEG frames with and without DHT plus the bytes capd must publish\n"
                 "for each (see manifest.txt), or checks published frames against them.\n");
}

int main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"dir", required_argument, NULL, 'd'},
        {"count", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'},
        {"subsamp", required_argument, NULL, 'j'},
        {"pad", required_argument, NULL, 'p'},
        {"seed", required_argument, NULL, 'r'},
        {"verify", required_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct gen_options o = {NULL, 8, 640, 480, 512, 1, TJSAMP_422};
    const char *verify_dir = NULL;
    uint32_t subsamp = 422;
    int opt;
    log_init("mjpeg_fixtures", 0);
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'd':
            o.dir = optarg;
            break;
        case 'n':
            if (parse_u32(optarg, 1, MAX_FRAMES, &o.count) != 0)
                die_bad_option("--count", optarg, "expected 1..1000");
            break;
        case 's':
            if (parse_size(optarg, 16, MAX_DIMENSION, &o.width, &o.height) != 0)
                die_bad_option("--size", optarg, "expected WxH, 16..8192");
            break;
        case 'j':
            if (parse_u32(optarg, 420, 422, &subsamp) != 0 || subsamp == 421)
                die_bad_option("--subsamp", optarg, "expected 422 or 420");
            o.subsamp = subsamp == 420 ? TJSAMP_420 : TJSAMP_422;
            break;
        case 'p':
            if (parse_u32(optarg, 0, MAX_PAD, &o.pad) != 0)
                die_bad_option("--pad", optarg, "expected 0..1048576");
            break;
        case 'r':
            if (parse_u32(optarg, 0, UINT32_MAX, &o.seed) != 0)
                die_bad_option("--seed", optarg, "expected a number");
            break;
        case 'v':
            verify_dir = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (verify_dir) {
        if (optind >= argc)
            die_bad_option("--verify", verify_dir, "needs files or directories to check");
        return verify(verify_dir, argv + optind, argc - optind) == 0 ? 0 : 1;
    }
    if (!o.dir || optind != argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    return generate(&o) == 0 ? 0 : 1;
}
