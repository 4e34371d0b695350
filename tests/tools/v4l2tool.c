/* v4l2tool.c - small V4L2 helper for the vivid VM: query caps, press controls, feed MJPEG. */
#include "jpeg_scan.h"
#include "jpeg_strip.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/videodev2.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 *   v4l2tool caps DEV                      driver, card and capabilities; exit 0 when DEV
 *                                          can capture video
 *   v4l2tool ctrl DEV NAME=VALUE           sets a control found by its name, spelled like
 *                                          capd --list (lowercase, '_' for other characters)
 *   v4l2tool feed DEV [--fps N] [--count N] JPEG...
 *                                          an MJPEG producer for v4l2loopback: sets the output
 *                                          format from the first file and queues the files in
 *                                          turn (MMAP streaming) at N fps until SIGTERM or
 *                                          --count frames
 *   v4l2tool strip-dht IN OUT              writes IN without its Huffman tables (a fixture
 *                                          for cameras that omit them)
 *
 * It talks to the kernel with plain ioctl(), not libv4l2, so it sees what the driver does.
 * Exit status: 0 success, 1 failure (message on stderr), 2 usage.
 */

#define DEFAULT_FEED_FPS 30
#define MAX_FEED_FILES   16
#define MAX_OUT_BUFFERS  8

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *f)
{
    fputs("usage: v4l2tool caps DEV\n"
          "       v4l2tool ctrl DEV NAME=VALUE\n"
          "       v4l2tool feed DEV [--fps N] [--count N] JPEG...\n"
          "       v4l2tool strip-dht IN OUT\n",
          f);
}

/* ioctl() retried on EINTR; returns 0 or -errno. */
static int xioctl(int fd, unsigned long request, void *arg)
{
    int rc;

    do {
        rc = ioctl(fd, request, arg);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? neg_errno() : 0;
}

static int open_device(const char *path, int *fd)
{
    *fd = open(path, O_RDWR | O_CLOEXEC);
    if (*fd < 0) {
        int rc = neg_errno();
        fprintf(stderr, "v4l2tool: %s: %s\n", path, strerror(-rc));
        return rc;
    }
    return 0;
}

static int cmd_caps(const char *dev)
{
    struct v4l2_capability cap;
    int fd, rc;

    if (open_device(dev, &fd) < 0)
        return 1;
    memset(&cap, 0, sizeof(cap));
    rc = xioctl(fd, VIDIOC_QUERYCAP, &cap);
    close(fd);
    if (rc < 0) {
        fprintf(stderr, "v4l2tool: %s: VIDIOC_QUERYCAP: %s\n", dev, strerror(-rc));
        return 1;
    }
    uint32_t caps = (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities;
    printf("driver=%.16s card=\"%.32s\" bus=%.32s caps=0x%08x%s%s%s\n", (const char *)cap.driver,
           (const char *)cap.card, (const char *)cap.bus_info, caps,
           (caps & V4L2_CAP_VIDEO_CAPTURE) ? " capture" : "",
           (caps & V4L2_CAP_VIDEO_OUTPUT) ? " output" : "",
           (caps & V4L2_CAP_STREAMING) ? " streaming" : "");
    return (caps & V4L2_CAP_VIDEO_CAPTURE) ? 0 : 1;
}

/* The name as capd --list prints it: lowercase, runs of other characters become one '_'. */
static void control_key(const char *name, char *out, size_t len)
{
    size_t n = 0;
    bool sep = false;

    for (; *name && n + 2 < len; name++) {
        unsigned char ch = (unsigned char)*name;
        if (isalnum(ch)) {
            if (sep && n > 0)
                out[n++] = '_';
            out[n++] = (char)tolower(ch);
            sep = false;
        } else {
            sep = true;
        }
    }
    out[n] = '\0';
}

static int cmd_ctrl(const char *dev, const char *assignment)
{
    struct v4l2_queryctrl q;
    const char *eq = strchr(assignment, '=');
    char key[64], want[64];
    int fd, rc, status = 1;
    long value;
    char *end;

    if (!eq || eq == assignment) {
        usage(stderr);
        return EXIT_USAGE;
    }
    snprintf(want, sizeof(want), "%.*s", (int)(eq - assignment), assignment);
    errno = 0;
    value = strtol(eq + 1, &end, 0);
    if (errno || *end || end == eq + 1) {
        fprintf(stderr, "v4l2tool: bad value in %s\n", assignment);
        return EXIT_USAGE;
    }
    if (open_device(dev, &fd) < 0)
        return 1;
    memset(&q, 0, sizeof(q));
    q.id = V4L2_CTRL_FLAG_NEXT_CTRL;
    while (xioctl(fd, VIDIOC_QUERYCTRL, &q) == 0) {
        control_key((const char *)q.name, key, sizeof(key));
        if (strcmp(key, want) == 0 && q.type != V4L2_CTRL_TYPE_CTRL_CLASS) {
            struct v4l2_control c = {.id = q.id, .value = (int32_t)value};
            rc = xioctl(fd, VIDIOC_S_CTRL, &c);
            if (rc < 0)
                fprintf(stderr, "v4l2tool: %s: set %s: %s\n", dev, want, strerror(-rc));
            else
                status = 0;
            goto out;
        }
        q.id |= V4L2_CTRL_FLAG_NEXT_CTRL;
    }
    fprintf(stderr, "v4l2tool: %s: no control named %s\n", dev, want);
out:
    close(fd);
    return status;
}

struct jpeg_file {
    uint8_t *data;
    size_t size;
    struct jpeg_scan_info info;
};

/* Reads one JPEG file and checks its structure. Returns 0, or -errno with a message printed. */
static int read_jpeg(const char *path, struct jpeg_file *j)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 64 * 1024, n;
    int rc = 0;

    *j = (struct jpeg_file){0};
    if (!f) {
        rc = neg_errno();
        fprintf(stderr, "v4l2tool: %s: %s\n", path, strerror(-rc));
        return rc;
    }
    j->data = xmalloc(cap);
    while ((n = fread(j->data + j->size, 1, cap - j->size, f)) > 0) {
        j->size += n;
        if (j->size == cap) {
            cap *= 2;
            j->data = xrealloc(j->data, cap);
        }
    }
    if (ferror(f)) {
        rc = -EIO;
        fprintf(stderr, "v4l2tool: %s: read error\n", path);
    } else if (jpeg_scan_check(j->data, j->size, &j->info) != 0) {
        rc = -EBADMSG;
        fprintf(stderr, "v4l2tool: %s: not a complete JPEG\n", path);
    }
    fclose(f);
    return rc;
}

static int cmd_strip(const char *in, const char *out)
{
    struct jpeg_file j;
    FILE *f = NULL;
    uint8_t *dst = NULL;
    size_t n;
    int status = 1;

    if (read_jpeg(in, &j) < 0)
        goto out;
    dst = xmalloc(j.size);
    n = jpeg_strip_dht(j.data, j.size, dst);
    if (n == 0) {
        fprintf(stderr, "v4l2tool: %s: cannot walk its segments\n", in);
        goto out;
    }
    f = fopen(out, "wb");
    if (!f || fwrite(dst, 1, n, f) != n || fflush(f) != 0) {
        fprintf(stderr, "v4l2tool: %s: %s\n", out, strerror(errno));
        goto out;
    }
    status = 0;
out:
    if (f)
        fclose(f);
    free(dst);
    free(j.data);
    return status;
}

/* Sets the output format for the frames: MJPEG at their size, buffers big enough for all. */
static int set_output_format(int fd, const char *dev, const struct jpeg_file *files, int count)
{
    struct v4l2_format fmt;
    size_t biggest = 0;
    int rc;

    for (int i = 0; i < count; i++) {
        if (files[i].size > biggest)
            biggest = files[i].size;
    }
    memset(&fmt, 0, sizeof(fmt));
    fmt.type = V4L2_BUF_TYPE_VIDEO_OUTPUT;
    fmt.fmt.pix.width = files[0].info.width;
    fmt.fmt.pix.height = files[0].info.height;
    fmt.fmt.pix.pixelformat = V4L2_PIX_FMT_MJPEG;
    fmt.fmt.pix.field = V4L2_FIELD_NONE;
    fmt.fmt.pix.sizeimage = (uint32_t)biggest;
    rc = xioctl(fd, VIDIOC_S_FMT, &fmt);
    if (rc < 0) {
        fprintf(stderr, "v4l2tool: %s: VIDIOC_S_FMT MJPEG %ux%u: %s\n", dev, files[0].info.width,
                files[0].info.height, strerror(-rc));
        return rc;
    }
    if (fmt.fmt.pix.pixelformat != V4L2_PIX_FMT_MJPEG || fmt.fmt.pix.sizeimage < biggest) {
        fprintf(stderr, "v4l2tool: %s: driver chose %.4s with %u-byte buffers (need %zu)\n", dev,
                (const char *)&fmt.fmt.pix.pixelformat, fmt.fmt.pix.sizeimage, biggest);
        return -EINVAL;
    }
    return 0;
}

/* The output side's MMAP buffers. */
struct out_buffers {
    void *map[MAX_OUT_BUFFERS];
    size_t length[MAX_OUT_BUFFERS];
    uint32_t count;
};

static int map_output_buffers(int fd, const char *dev, struct out_buffers *ob)
{
    struct v4l2_requestbuffers req;
    int rc;

    memset(&req, 0, sizeof(req));
    req.count = MAX_OUT_BUFFERS;
    req.type = V4L2_BUF_TYPE_VIDEO_OUTPUT;
    req.memory = V4L2_MEMORY_MMAP;
    rc = xioctl(fd, VIDIOC_REQBUFS, &req);
    if (rc < 0 || req.count == 0) {
        fprintf(stderr, "v4l2tool: %s: VIDIOC_REQBUFS: %s\n", dev, rc < 0 ? strerror(-rc) : "none");
        return rc < 0 ? rc : -ENOMEM;
    }
    ob->count = req.count < MAX_OUT_BUFFERS ? req.count : MAX_OUT_BUFFERS;
    for (uint32_t i = 0; i < ob->count; i++) {
        struct v4l2_buffer b = {.index = i, .type = req.type, .memory = req.memory};
        rc = xioctl(fd, VIDIOC_QUERYBUF, &b);
        if (rc < 0) {
            fprintf(stderr, "v4l2tool: %s: VIDIOC_QUERYBUF: %s\n", dev, strerror(-rc));
            return rc;
        }
        ob->map[i] = mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, b.m.offset);
        if (ob->map[i] == MAP_FAILED) {
            ob->map[i] = NULL;
            rc = neg_errno();
            fprintf(stderr, "v4l2tool: %s: mmap: %s\n", dev, strerror(-rc));
            return rc;
        }
        ob->length[i] = b.length;
    }
    return 0;
}

/* Copies a frame into output buffer index and queues it. */
static int queue_frame(int fd, const char *dev, struct out_buffers *ob, uint32_t index,
                       const struct jpeg_file *j)
{
    struct v4l2_buffer b = {
        .index = index, .type = V4L2_BUF_TYPE_VIDEO_OUTPUT, .memory = V4L2_MEMORY_MMAP};
    int rc;

    if (j->size > ob->length[index]) {
        fprintf(stderr, "v4l2tool: %s: a %zu-byte frame does not fit a %zu-byte buffer\n", dev,
                j->size, ob->length[index]);
        return -ENOSPC;
    }
    memcpy(ob->map[index], j->data, j->size);
    b.bytesused = (uint32_t)j->size;
    b.field = V4L2_FIELD_NONE;
    rc = xioctl(fd, VIDIOC_QBUF, &b);
    if (rc < 0)
        fprintf(stderr, "v4l2tool: %s: VIDIOC_QBUF: %s\n", dev, strerror(-rc));
    return rc;
}

static int cmd_feed(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"fps", required_argument, NULL, 'f'},
        {"count", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    struct jpeg_file files[MAX_FEED_FILES];
    struct out_buffers ob;
    uint32_t fps = DEFAULT_FEED_FPS;
    uint64_t count = 0, written = 0;
    int nfiles = 0, fd = -1, status = 1, c;
    const char *dev;

    memset(files, 0, sizeof(files));
    memset(&ob, 0, sizeof(ob));
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'f' && parse_u32(optarg, 1, 1000, &fps) == 0)
            continue;
        if (c == 'c' && parse_u64(optarg, 1, UINT64_MAX, &count) == 0)
            continue;
        usage(stderr);
        return EXIT_USAGE;
    }
    if (argc - optind < 2 || argc - optind - 1 > MAX_FEED_FILES) {
        usage(stderr);
        return EXIT_USAGE;
    }
    dev = argv[optind];
    for (int i = optind + 1; i < argc; i++) {
        if (read_jpeg(argv[i], &files[nfiles++]) < 0)
            goto out;
        if (files[nfiles - 1].info.width != files[0].info.width ||
            files[nfiles - 1].info.height != files[0].info.height) {
            fprintf(stderr, "v4l2tool: %s: not the size of %s\n", argv[i], argv[optind + 1]);
            goto out;
        }
    }
    /* Streaming output, as v4l2-ctl --stream-out-mmap does: v4l2loopback only counts a
     * producer that streams as its writer, and only a writer's close lets the next producer
     * set a format again (with exclusive_caps=1). */
    if (open_device(dev, &fd) < 0 || set_output_format(fd, dev, files, nfiles) < 0 ||
        map_output_buffers(fd, dev, &ob) < 0)
        goto out;
    fprintf(stderr, "v4l2tool: feeding %d JPEG(s) of %ux%u to %s at %u fps, %u buffers\n", nfiles,
            files[0].info.width, files[0].info.height, dev, fps, ob.count);

    /* v4l2loopback does not pace its producer: we do, against absolute deadlines. */
    uint64_t period = 1000000000u / fps, next = time_mono_ns();
    while (!stop_requested && (count == 0 || written < count)) {
        const struct jpeg_file *j = &files[written % (uint64_t)nfiles];
        uint32_t index = (uint32_t)written;
        if (written >= ob.count) { /* every buffer was queued once: take back the oldest */
            struct v4l2_buffer b = {.type = V4L2_BUF_TYPE_VIDEO_OUTPUT, .memory = V4L2_MEMORY_MMAP};
            int rc = xioctl(fd, VIDIOC_DQBUF, &b);
            if (rc < 0) {
                fprintf(stderr, "v4l2tool: %s: VIDIOC_DQBUF: %s\n", dev, strerror(-rc));
                goto out;
            }
            index = b.index % ob.count;
        }
        if (queue_frame(fd, dev, &ob, index, j) < 0)
            goto out;
        if (written == 0) {
            int type = V4L2_BUF_TYPE_VIDEO_OUTPUT, rc = xioctl(fd, VIDIOC_STREAMON, &type);
            if (rc < 0) {
                fprintf(stderr, "v4l2tool: %s: VIDIOC_STREAMON: %s\n", dev, strerror(-rc));
                goto out;
            }
        }
        written++;
        next += period;
        time_sleep_until_ns(next);
    }
    fprintf(stderr, "v4l2tool: wrote %llu frames to %s\n", (unsigned long long)written, dev);
    status = 0;
out:
    for (uint32_t i = 0; i < ob.count; i++) {
        if (ob.map[i])
            munmap(ob.map[i], ob.length[i]);
    }
    if (fd >= 0)
        close(fd);
    for (int i = 0; i < nfiles; i++)
        free(files[i].data);
    return status;
}

int main(int argc, char **argv)
{
    struct sigaction sa = {.sa_handler = on_signal};

    log_init("v4l2tool", 0);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (argc == 3 && strcmp(argv[1], "caps") == 0)
        return cmd_caps(argv[2]);
    if (argc == 4 && strcmp(argv[1], "ctrl") == 0)
        return cmd_ctrl(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "strip-dht") == 0)
        return cmd_strip(argv[2], argv[3]);
    if (argc >= 2 && strcmp(argv[1], "feed") == 0)
        return cmd_feed(argc - 1, argv + 1);
    usage(argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
    return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : EXIT_USAGE;
}
