/* encode_bench.c - YUYV to JPEG speed: capd's planar path against the RGB round trip it avoids. */
/*
 * All paths encode the same YUYV frames at the same quality into 4:2:2 JPEGs with the same
 * TurboJPEG flags (capd's encoder):
 *   planar: yuv_from_yuyv (YUYV -> planar 4:2:2) + encoder_encode_planar (tjCompressFromYUVPlanes)
 *   fused:  encoder_encode_v4l2: the same conversion, 8 rows at a time, each stripe encoded by
 *           libjpeg's raw-data API while it is in cache (byte-identical JPEGs to planar)
 *   rgb:    YUYV -> RGB24 in C (below) + encoder_encode_rgb (tjCompress2, TJSAMP_422, which
 *           converts RGB back to YCbCr and downsamples the chroma again: the round trip)
 *   libv4l: the same with libv4lconvert's YUYV -> RGB24 (what libv4l2's emulated RGB24, capd's
 *           fallback format, runs), when libv4lconvert.so.0 can be loaded (dlopen: the
 *           benchmark does not link it). Reported for reference; the pass/fail speed-up is
 *           fused (what capd runs for YUYV) against rgb, the faster of the two round trips.
 * The frames are capd's test pattern converted to YUYV with sensor-like noise added (so the
 * entropy coder does real work), several different ones per round. Rounds alternate the order
 * of the paths (A,B,C,D then B,C,D,A ...) so drift from other load on a shared machine hits all
 * alike; the speed-up reported is the median of the per-round ratios, with their range. Wall time
 * is CLOCK_MONOTONIC, CPU time CLOCK_THREAD_CPUTIME_ID (the benchmark is single-threaded).
 *
 *   encode_bench [--rounds N] [--frames N] [--quality Q] [--size WxH]... [--noise N]
 *                [--min-speedup X]
 *   encode_bench --only planar|fused|rgb|libv4l ...  (one path, no table: for valgrind/callgrind)
 *
 * Default: 1280x720 and 1920x1080, 7 rounds of 24 frames each per path, quality 80 (capd's
 * default), noise 4 (luma standard deviation about 2.6, chroma half that). With
 * --min-speedup the exit status is 1 when a size's median wall-time speed-up of fused over rgb
 * is below X.
 */
#include <dlfcn.h>
#include <errno.h>
#include <libv4l-plugin.h>
#include <linux/videodev2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "draw.h"
#include "encoder.h"
#include "pattern.h"
#include "util.h"
#include "yuv.h"

#define MAX_SIZES       8
#define MAX_ROUNDS      101
#define DISTINCT_FRAMES 6

struct options {
    unsigned rounds, frames, quality;
    unsigned n_sizes;
    uint32_t w[MAX_SIZES], h[MAX_SIZES];
    double min_speedup;
    int only;       /* -1: the comparison; else one path alone (PATH_*, for profilers) */
    unsigned noise; /* luma noise spread; chroma gets half */
};

/* Per path and round: totals over the round's frames. */
struct sample {
    double wall_ms, cpu_ms, convert_ms;
    size_t jpeg_bytes;
};

enum { PATH_PLANAR, PATH_FUSED, PATH_RGB, PATH_V4L, PATHS };
static const char *const path_names[PATHS] = {"planar", "fused", "rgb", "libv4l"};

/* libv4lconvert, loaded at run time; its header is not -Wstrict-prototypes clean. */
struct v4lconvert_data;
struct v4lconv {
    void *lib;
    struct v4lconvert_data *(*create)(int fd, void *priv, const struct libv4l_dev_ops *ops);
    int (*convert)(struct v4lconvert_data *data, const struct v4l2_format *src_fmt,
                   const struct v4l2_format *dst_fmt, unsigned char *src, int src_size,
                   unsigned char *dst, int dst_size);
    void (*destroy)(struct v4lconvert_data *data);
    struct v4lconvert_data *data;
    struct v4l2_format src_fmt, dst_fmt;
};

struct bench {
    uint32_t w, h;
    struct v4lconv v4l;
    uint8_t *yuyv[DISTINCT_FRAMES];
    size_t yuyv_stride;
    struct yuv_planar planar;
    uint8_t *rgb;
    uint8_t *jpeg;
    size_t jpeg_capacity;
    struct encoder *enc;
};

static double now_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint64_t noise_state = 0x243f6a8885a308d3ull;

/* Roughly Gaussian noise with the given spread (sum of four uniform values), for sensor grain. */
static int noise(int spread)
{
    int sum = 0;

    if (spread == 0)
        return 0;
    for (int i = 0; i < 4; i++) {
        noise_state ^= noise_state << 13;
        noise_state ^= noise_state >> 7;
        noise_state ^= noise_state << 17;
        sum += (int)(noise_state % (uint64_t)(2 * spread + 1)) - spread;
    }
    return sum / 2;
}

static uint8_t clamp_u8(int v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One camera-like YUYV frame: the I420 test pattern, chroma repeated over row pairs, levels
   squeezed into the 16..235 / 16..240 video range a camera delivers, plus noise. The margin
   keeps the noisy samples inside the RGB gamut, so the RGB path does not clip them and both
   paths compress the same picture (compare the jpeg KB columns). */
static void make_yuyv(const struct draw_image *img, uint8_t *dst, size_t stride, int spread)
{
    for (uint32_t y = 0; y < img->height; y++) {
        const uint8_t *luma = img->plane[0] + (size_t)y * img->stride[0];
        const uint8_t *cb = img->plane[1] + (size_t)(y / 2) * img->stride[1];
        const uint8_t *cr = img->plane[2] + (size_t)(y / 2) * img->stride[2];
        uint8_t *out = dst + y * stride;
        for (uint32_t x = 0; x + 1 < img->width; x += 2) {
            out[2 * x] = clamp_u8(16 + luma[x] * 219 / 255 + noise(spread));
            out[2 * x + 1] = clamp_u8(128 + (cb[x / 2] - 128) * 224 / 255 + noise(spread / 2));
            out[2 * x + 2] = clamp_u8(16 + luma[x + 1] * 219 / 255 + noise(spread));
            out[2 * x + 3] = clamp_u8(128 + (cr[x / 2] - 128) * 224 / 255 + noise(spread / 2));
        }
    }
}

/*
 * The RGB path's first step: YUYV to RGB24, full-range BT.601 (the JFIF equations TurboJPEG
 * inverts), 16.16 fixed point, chroma terms computed once per pixel pair. This is the usual
 * shape of such code (libv4lconvert's yuyv_to_rgb24 is similar); GCC -O2 compiles it without
 * branches.
 */
static void yuyv_to_rgb(const uint8_t *src, size_t src_stride, uint8_t *rgb, size_t rgb_stride,
                        uint32_t w, uint32_t h)
{
    for (uint32_t y = 0; y < h; y++) {
        const uint8_t *s = src + y * src_stride;
        uint8_t *d = rgb + y * rgb_stride;
        for (uint32_t x = 0; x + 1 < w; x += 2, s += 4, d += 6) {
            int cb = s[1] - 128, cr = s[3] - 128;
            int r_off = (91881 * cr + 32768) >> 16;
            int g_off = (-22554 * cb - 46802 * cr + 32768) >> 16;
            int b_off = (116130 * cb + 32768) >> 16;
            int y0 = s[0], y1 = s[2];
            d[0] = clamp_u8(y0 + r_off);
            d[1] = clamp_u8(y0 + g_off);
            d[2] = clamp_u8(y0 + b_off);
            d[3] = clamp_u8(y1 + r_off);
            d[4] = clamp_u8(y1 + g_off);
            d[5] = clamp_u8(y1 + b_off);
        }
    }
}

/* libv4lconvert asks "the device" for its capabilities once; there is no device here. */
static int fake_device_ioctl(void *priv, int fd, unsigned long request, void *arg)
{
    (void)priv;
    (void)fd;
    if (request == VIDIOC_QUERYCAP) {
        struct v4l2_capability *cap = arg;
        memset(cap, 0, sizeof(*cap));
        snprintf((char *)cap->driver, sizeof(cap->driver), "encode_bench");
        cap->capabilities = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING;
        cap->device_caps = cap->capabilities;
        return 0;
    }
    errno = EINVAL;
    return -1;
}

static const struct libv4l_dev_ops fake_device_ops = {.ioctl = fake_device_ioctl};

/* Loads libv4lconvert for a w x h YUYV -> RGB24 conversion; returns 0 or -1 (path skipped). */
static int v4lconv_open(struct v4lconv *v, uint32_t w, uint32_t h)
{
    v->lib = dlopen("libv4lconvert.so.0", RTLD_NOW);
    if (!v->lib)
        return -1;
    *(void **)&v->create = dlsym(v->lib, "v4lconvert_create_with_dev_ops");
    *(void **)&v->convert = dlsym(v->lib, "v4lconvert_convert");
    *(void **)&v->destroy = dlsym(v->lib, "v4lconvert_destroy");
    if (!v->create || !v->convert || !v->destroy)
        return -1;
    v->data = v->create(-1, NULL, &fake_device_ops);
    if (!v->data)
        return -1;
    v->src_fmt.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    v->src_fmt.fmt.pix = (struct v4l2_pix_format){.width = w,
                                                  .height = h,
                                                  .pixelformat = V4L2_PIX_FMT_YUYV,
                                                  .field = V4L2_FIELD_NONE,
                                                  .bytesperline = 2 * w,
                                                  .sizeimage = 2 * w * h};
    v->dst_fmt = v->src_fmt;
    v->dst_fmt.fmt.pix.pixelformat = V4L2_PIX_FMT_RGB24;
    v->dst_fmt.fmt.pix.bytesperline = 3 * w;
    v->dst_fmt.fmt.pix.sizeimage = 3 * w * h;
    return 0;
}

static void v4lconv_close(struct v4lconv *v)
{
    if (v->data)
        v->destroy(v->data);
    if (v->lib)
        dlclose(v->lib);
    memset(v, 0, sizeof(*v));
}

static void bench_init(struct bench *b, uint32_t w, uint32_t h, int quality, int spread)
{
    struct pattern *pat = pattern_create(w, h);

    memset(b, 0, sizeof(*b));
    b->w = w;
    b->h = h;
    b->yuyv_stride = 2 * (size_t)w;
    for (int i = 0; i < DISTINCT_FRAMES; i++) {
        /* Frames far apart in the animation, a second apart in time. */
        const struct draw_image *img =
            pattern_render(pat, 1 + 37 * (uint64_t)i, 1700000000000000ull + 1000000ull * i);
        b->yuyv[i] = xmalloc(b->yuyv_stride * h);
        make_yuyv(img, b->yuyv[i], b->yuyv_stride, spread);
    }
    pattern_destroy(pat);
    if (v4lconv_open(&b->v4l, w, h) < 0)
        v4lconv_close(&b->v4l);
    yuv_planar_alloc(&b->planar, w, h, TJSAMP_422);
    b->rgb = xmalloc(3 * (size_t)w * h);
    b->jpeg_capacity = encoder_max_size_planar(w, h, TJSAMP_422);
    if (encoder_max_size_rgb(w, h) > b->jpeg_capacity)
        b->jpeg_capacity = encoder_max_size_rgb(w, h);
    b->jpeg = xmalloc(b->jpeg_capacity);
    if (encoder_create(quality, &b->enc) < 0) {
        fprintf(stderr, "encode_bench: cannot create the encoder\n");
        exit(1);
    }
}

static void bench_free(struct bench *b)
{
    for (int i = 0; i < DISTINCT_FRAMES; i++)
        free(b->yuyv[i]);
    yuv_planar_free(&b->planar);
    free(b->rgb);
    free(b->jpeg);
    encoder_destroy(b->enc);
    v4lconv_close(&b->v4l);
}

/* Encodes one frame through one path, adding its times and size to *acc. */
static void encode_one(struct bench *b, int path, unsigned frame_no, struct sample *acc)
{
    const uint8_t *frame = b->yuyv[frame_no % DISTINCT_FRAMES];
    double wall0 = now_ms(CLOCK_MONOTONIC), cpu0 = now_ms(CLOCK_THREAD_CPUTIME_ID), converted;
    size_t rgb_stride = 3 * (size_t)b->w, size = 0;
    int rc;

    if (path == PATH_PLANAR) {
        yuv_from_yuyv(&b->planar, frame, b->yuyv_stride);
        converted = now_ms(CLOCK_MONOTONIC);
        rc = encoder_encode_planar(b->enc, &b->planar, b->jpeg, b->jpeg_capacity, &size);
    } else if (path == PATH_FUSED) {
        converted = wall0; /* conversion and encoding are interleaved: all counts as encode */
        rc = encoder_encode_v4l2(b->enc, V4L2_PIX_FMT_YUYV, frame, b->yuyv_stride * b->h,
                                 b->yuyv_stride, b->w, b->h, b->jpeg, b->jpeg_capacity, &size);
    } else {
        if (path == PATH_RGB) {
            yuyv_to_rgb(frame, b->yuyv_stride, b->rgb, rgb_stride, b->w, b->h);
        } else if (b->v4l.convert(b->v4l.data, &b->v4l.src_fmt, &b->v4l.dst_fmt,
                                  (unsigned char *)frame, (int)(b->yuyv_stride * b->h), b->rgb,
                                  (int)(rgb_stride * b->h)) < 0) {
            fprintf(stderr, "encode_bench: libv4lconvert failed\n");
            exit(1);
        }
        converted = now_ms(CLOCK_MONOTONIC);
        rc = encoder_encode_rgb(b->enc, b->rgb, b->w, b->h, rgb_stride, 0, b->jpeg,
                                b->jpeg_capacity, &size);
    }
    if (rc < 0) {
        fprintf(stderr, "encode_bench: encode failed: %s\n", strerror(-rc));
        exit(1);
    }
    acc->wall_ms += now_ms(CLOCK_MONOTONIC) - wall0;
    acc->cpu_ms += now_ms(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    acc->convert_ms += converted - wall0;
    acc->jpeg_bytes += size;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values (n <= MAX_ROUNDS), and optionally their range; v is left as it was. */
static double median_range(const double *v, unsigned n, double *lo, double *hi)
{
    double sorted[MAX_ROUNDS];

    memcpy(sorted, v, n * sizeof(*v));
    qsort(sorted, n, sizeof(*sorted), cmp_double);
    if (lo)
        *lo = sorted[0];
    if (hi)
        *hi = sorted[n - 1];
    return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

static double median(const double *v, unsigned n)
{
    return median_range(v, n, NULL, NULL);
}

/* The speed-ups printed, faster path first; the first is the one --min-speedup checks. */
static const struct {
    int fast, slow;
} comparisons[] = {{PATH_FUSED, PATH_RGB},
                   {PATH_PLANAR, PATH_RGB},
                   {PATH_FUSED, PATH_PLANAR},
                   {PATH_FUSED, PATH_V4L},
                   {PATH_PLANAR, PATH_V4L}};

static void usage(void)
{
    fprintf(stderr, "usage: encode_bench [--rounds N] [--frames N] [--quality Q] [--size WxH]... "
                    "[--noise N] [--min-speedup X] [--only planar|fused|rgb|libv4l]\n");
    exit(EXIT_USAGE);
}

static int path_index(const char *name)
{
    for (int i = 0; i < PATHS; i++)
        if (strcmp(name, path_names[i]) == 0)
            return i;
    return -1;
}

static void parse_options(int argc, char **argv, struct options *o)
{
    uint32_t v;

    *o = (struct options){.rounds = 7, .frames = 24, .quality = 80, .only = -1, .noise = 4};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val)
            usage();
        if (strcmp(arg, "--rounds") == 0 && parse_u32(val, 1, MAX_ROUNDS, &v) == 0)
            o->rounds = v;
        else if (strcmp(arg, "--frames") == 0 && parse_u32(val, 1, 100000, &v) == 0)
            o->frames = v;
        else if (strcmp(arg, "--noise") == 0 && parse_u32(val, 0, 64, &v) == 0)
            o->noise = v;
        else if (strcmp(arg, "--quality") == 0 && parse_u32(val, 1, 100, &v) == 0)
            o->quality = v;
        else if (strcmp(arg, "--size") == 0 && o->n_sizes < MAX_SIZES &&
                 parse_size(val, 16, 8192, &o->w[o->n_sizes], &o->h[o->n_sizes]) == 0 &&
                 o->w[o->n_sizes] % 2 == 0)
            o->n_sizes++;
        else if (strcmp(arg, "--min-speedup") == 0 && (o->min_speedup = atof(val)) > 0)
            ;
        else if (strcmp(arg, "--only") == 0 && (o->only = path_index(val)) >= 0)
            ;
        else
            usage();
        i++;
    }
    if (o->n_sizes == 0) {
        o->w[0] = 1280, o->h[0] = 720;
        o->w[1] = 1920, o->h[1] = 1080;
        o->n_sizes = 2;
    }
}

/* Prints the machine the numbers come from: CPU model, cores, load. */
static void print_machine(void)
{
    char line[256], model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    double load[3] = {0};

    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "model name", 10) == 0) {
            const char *colon = strchr(line, ':');
            snprintf(model, sizeof(model), "%s", colon ? colon + 2 : line);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    if (f)
        fclose(f);
    if (getloadavg(load, 3) < 0)
        load[0] = -1;
    printf("# cpu: %s, %ld cores online, load average %.2f %.2f %.2f\n", model,
           sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1], load[2]);
}

int main(int argc, char **argv)
{
    struct options o;
    int status = 0;

    log_init("encode_bench", 0);
    parse_options(argc, argv, &o);
    if (o.only >= 0) {
        for (unsigned s = 0; s < o.n_sizes; s++) {
            struct bench b;
            struct sample smp = {0};

            bench_init(&b, o.w[s], o.h[s], (int)o.quality, (int)o.noise);
            if (o.only == PATH_V4L && !b.v4l.data) {
                fprintf(stderr, "encode_bench: libv4lconvert.so.0 is not available\n");
                return 1;
            }
            for (unsigned f = 0; f < o.frames; f++)
                encode_one(&b, o.only, f, &smp);
            printf("%ux%u %s: %u frames, %.2f ms/frame\n", o.w[s], o.h[s], path_names[o.only],
                   o.frames, smp.wall_ms / o.frames);
            bench_free(&b);
        }
        return 0;
    }
    print_machine();
    printf("# %u rounds x %u frames per path, quality %u, 4:2:2, %d distinct frames, noise %u\n",
           o.rounds, o.frames, o.quality, DISTINCT_FRAMES, o.noise);
    printf("# ms are medians over rounds; convert = YUYV -> planar or RGB, encode = the JPEG "
           "library (fused: both, interleaved)\n");
    printf("%-10s %-7s %8s %9s %9s %9s %9s %8s\n", "size", "path", "fps", "ms/frame", "cpu ms",
           "convert", "encode", "jpeg KB");
    for (unsigned s = 0; s < o.n_sizes; s++) {
        struct bench b;
        double wall[PATHS][MAX_ROUNDS], cpu[PATHS][MAX_ROUNDS], conv[PATHS][MAX_ROUNDS];
        size_t bytes[PATHS] = {0};
        char size_str[24];
        struct sample warm = {0};
        int paths;

        bench_init(&b, o.w[s], o.h[s], (int)o.quality, (int)o.noise);
        paths = b.v4l.data ? PATHS : PATH_V4L;
        for (unsigned f = 0; f < DISTINCT_FRAMES; f++) /* caches, TurboJPEG's tables */
            for (int path = 0; path < paths; path++)
                encode_one(&b, path, f, &warm);
        for (unsigned r = 0; r < o.rounds; r++) {
            struct sample smp[PATHS];

            memset(smp, 0, sizeof(smp));
            /* Frame by frame, the paths take turns going first (A,B,C then B,C,A ...), so
               whatever else the machine does falls on all of them alike. */
            for (unsigned f = 0; f < o.frames; f++)
                for (int k = 0; k < paths; k++) {
                    int path = (int)((f + r + (unsigned)k) % (unsigned)paths);
                    encode_one(&b, path, f, &smp[path]);
                }
            for (int path = 0; path < paths; path++) {
                wall[path][r] = smp[path].wall_ms / o.frames;
                cpu[path][r] = smp[path].cpu_ms / o.frames;
                conv[path][r] = smp[path].convert_ms / o.frames;
                bytes[path] = smp[path].jpeg_bytes / o.frames;
            }
        }
        snprintf(size_str, sizeof(size_str), "%ux%u", o.w[s], o.h[s]);
        for (int path = 0; path < paths; path++) {
            double ms = median(wall[path], o.rounds), cms = median(cpu[path], o.rounds);
            double cv = median(conv[path], o.rounds);
            char convert[16] = "-";

            if (path != PATH_FUSED)
                snprintf(convert, sizeof(convert), "%.2f", cv);
            printf("%-10s %-7s %8.1f %9.2f %9.2f %9s %9.2f %8.1f\n", size_str, path_names[path],
                   1000.0 / ms, ms, cms, convert, ms - cv, (double)bytes[path] / 1024.0);
        }
        for (size_t c = 0; c < ARRAY_SIZE(comparisons); c++) {
            int fast = comparisons[c].fast, slow = comparisons[c].slow;
            double wall_ratio[MAX_ROUNDS], cpu_ratio[MAX_ROUNDS], lo, hi, speedup;

            if (fast >= paths || slow >= paths)
                continue;
            for (unsigned r = 0; r < o.rounds; r++) {
                wall_ratio[r] = wall[slow][r] / wall[fast][r];
                cpu_ratio[r] = cpu[slow][r] / cpu[fast][r];
            }
            speedup = median_range(wall_ratio, o.rounds, &lo, &hi);
            printf("%-10s %6s vs %-6s speed-up: wall %.2fx (rounds %.2f..%.2f), cpu %.2fx\n",
                   size_str, path_names[fast], path_names[slow], speedup, lo, hi,
                   median(cpu_ratio, o.rounds));
            if (c == 0 && o.min_speedup > 0 && speedup < o.min_speedup) {
                printf("%-10s FAIL: below the required %.2fx\n", size_str, o.min_speedup);
                status = 1;
            }
        }
        bench_free(&b);
    }
    return status;
}
