/* v4l2dev.c - one V4L2 capture device through libv4l2: format choice, MMAP streaming, controls. */
#include "v4l2dev.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libv4l2.h>

#include "util.h"

/* Sizes and rates that fit into the ring and the encoder. */
#define MAX_DIMENSION 16384u
/* A V4L2 timestamp older than this is not trusted (a driver with a broken clock). */
#define MAX_STAMP_AGE_US (10u * 1000000u)
/* Formats a device offers: vivid has 83, with emulated ones a few more. */
#define MAX_OFFERED 256

struct format_desc {
    enum v4l2dev_format format;
    uint32_t fourcc;
    uint32_t alt_fourcc; /* an equivalent fourcc (JPEG for MJPEG), 0 if none */
    const char *name;    /* for logs */
    const char *option;  /* for --format */
};

/* In --format auto order. */
static const struct format_desc format_table[] = {
    {V4L2DEV_MJPEG, V4L2_PIX_FMT_MJPEG, V4L2_PIX_FMT_JPEG, "MJPEG", "mjpeg"},
    {V4L2DEV_YUYV, V4L2_PIX_FMT_YUYV, 0, "YUYV", "yuyv"},
    {V4L2DEV_UYVY, V4L2_PIX_FMT_UYVY, 0, "UYVY", "uyvy"},
    {V4L2DEV_NV12, V4L2_PIX_FMT_NV12, 0, "NV12", "nv12"},
    {V4L2DEV_YU12, V4L2_PIX_FMT_YUV420, 0, "YU12", "yu12"},
    {V4L2DEV_GREY, V4L2_PIX_FMT_GREY, 0, "GREY", "grey"},
    {V4L2DEV_RGB24, V4L2_PIX_FMT_RGB24, 0, "RGB24", "rgb24"},
    {V4L2DEV_BGR24, V4L2_PIX_FMT_BGR24, 0, "BGR24", "bgr24"},
};

/* One entry of VIDIOC_ENUM_FMT. */
struct offered_format {
    uint32_t fourcc;
    int emulated;
};

struct mapped_buffer {
    void *start;
    size_t length;
};

struct v4l2dev {
    int fd;
    int streaming;
    char node[PATH_MAX];
    struct v4l2dev_mode mode;
    uint32_t asked_width, asked_height, asked_fps_milli;
    struct mapped_buffer *buffers;
    uint32_t buffer_count; /* entries of buffers[] that are mapped */
};

/* ---- small helpers ----------------------------------------------------------------------- */

static void set_why(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;
    if (!why || why_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

/* v4l2_ioctl, retried when a signal interrupts it. Returns 0 or -errno. */
static int xioctl(int fd, unsigned long request, void *arg)
{
    int rc;
    do {
        rc = v4l2_ioctl(fd, request, arg);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? neg_errno() : 0;
}

static const struct format_desc *desc_by_format(enum v4l2dev_format f)
{
    for (size_t i = 0; i < ARRAY_SIZE(format_table); i++)
        if (format_table[i].format == f)
            return &format_table[i];
    return NULL;
}

static const struct format_desc *desc_by_fourcc(uint32_t fourcc)
{
    for (size_t i = 0; i < ARRAY_SIZE(format_table); i++)
        if (format_table[i].fourcc == fourcc ||
            (format_table[i].alt_fourcc && format_table[i].alt_fourcc == fourcc))
            return &format_table[i];
    return NULL;
}

/* "YUYV" from a fourcc, printable characters only. buf holds at least 5 bytes. */
static const char *fourcc_str(uint32_t fourcc, char buf[5])
{
    for (int i = 0; i < 4; i++) {
        char c = (char)((fourcc >> (8 * i)) & 0xff);
        buf[i] = isprint((unsigned char)c) ? c : '.';
    }
    buf[4] = '\0';
    /* Trailing spaces ("Y16 ") read better trimmed. */
    for (int i = 3; i > 0 && buf[i] == ' '; i--)
        buf[i] = '\0';
    return buf;
}

/* "25" or "12.5" for a rate in milli-fps. */
static const char *fps_str(uint32_t fps_milli, char *buf, size_t len)
{
    size_t n;
    if (fps_milli % 1000 == 0) {
        snprintf(buf, len, "%u", fps_milli / 1000);
        return buf;
    }
    snprintf(buf, len, "%u.%03u", fps_milli / 1000, fps_milli % 1000);
    n = strlen(buf);
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
    return buf;
}

/* The --ctrl name of a control label: lowercase letters and digits, every run of other
 * characters one '_', none at either end ("White Balance, Auto" -> "white_balance_auto"). */
static void control_name(const char *label, char *out, size_t len)
{
    size_t n = 0;
    int gap = 0;

    if (len == 0)
        return;
    for (const char *p = label; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!isalnum(c)) {
            gap = 1;
            continue;
        }
        if (gap && n > 0 && n + 1 < len)
            out[n++] = '_';
        gap = 0;
        if (n + 1 < len)
            out[n++] = (char)tolower(c);
    }
    out[n] = '\0';
}

/* Frame rate in milli-fps of a frame interval; 0 when the interval is degenerate. */
static uint32_t interval_to_fps_milli(uint32_t numerator, uint32_t denominator)
{
    uint64_t v;
    if (numerator == 0 || denominator == 0)
        return 0;
    v = ((uint64_t)denominator * 1000u + numerator / 2) / numerator;
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* ---- public pure helpers ------------------------------------------------------------------ */

int v4l2dev_format_parse(const char *name, enum v4l2dev_format *out)
{
    static const struct {
        const char *alias;
        enum v4l2dev_format format;
    } aliases[] = {
        {"auto", V4L2DEV_AUTO}, {"yuv420", V4L2DEV_YU12}, {"i420", V4L2DEV_YU12},
        {"gray", V4L2DEV_GREY}, {"mjpg", V4L2DEV_MJPEG},  {"jpeg", V4L2DEV_MJPEG},
    };
    for (size_t i = 0; i < ARRAY_SIZE(format_table); i++) {
        if (strcasecmp(name, format_table[i].option) == 0) {
            *out = format_table[i].format;
            return 0;
        }
    }
    for (size_t i = 0; i < ARRAY_SIZE(aliases); i++) {
        if (strcasecmp(name, aliases[i].alias) == 0) {
            *out = aliases[i].format;
            return 0;
        }
    }
    return -EINVAL;
}

const char *v4l2dev_format_name(enum v4l2dev_format format)
{
    const struct format_desc *d = desc_by_format(format);
    return d ? d->name : "auto";
}

const char *v4l2dev_format_option(enum v4l2dev_format format)
{
    const struct format_desc *d = desc_by_format(format);
    return d ? d->option : "auto";
}

size_t v4l2dev_frame_bytes(const struct v4l2dev_mode *m)
{
    size_t rows = m->height;
    switch (m->format) {
    case V4L2DEV_NV12:
    case V4L2DEV_YU12:
        /* Chroma rows follow the luma rows (half as many, same bytesperline in total). */
        rows = (size_t)m->height + (m->height + 1) / 2;
        break;
    case V4L2DEV_MJPEG:
    case V4L2DEV_AUTO:
    case V4L2DEV_FORMAT_COUNT:
        return 0;
    default:
        break;
    }
    return (size_t)m->bytesperline * rows;
}

uint64_t v4l2dev_timestamp_to_real_us(int monotonic, uint64_t stamp_us, uint64_t now_mono_us,
                                      uint64_t now_real_us)
{
    uint64_t age;
    if (!monotonic || stamp_us == 0 || stamp_us > now_mono_us)
        return now_real_us;
    age = now_mono_us - stamp_us;
    if (age > MAX_STAMP_AGE_US || age > now_real_us)
        return now_real_us;
    return now_real_us - age;
}

/* ---- format, size and rate choice ------------------------------------------------------- */

static int enum_formats(int fd, struct offered_format *out, int max)
{
    int n = 0;
    for (uint32_t i = 0; n < max; i++) {
        struct v4l2_fmtdesc fd_desc = {.index = i, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
        if (xioctl(fd, VIDIOC_ENUM_FMT, &fd_desc) < 0)
            break;
        out[n].fourcc = fd_desc.pixelformat;
        out[n].emulated = (fd_desc.flags & V4L2_FMT_FLAG_EMULATED) != 0;
        n++;
    }
    return n;
}

/* Index into offered[] of the format to capture, or -1. forced == V4L2DEV_AUTO applies the
 * issue's order: native MJPEG, then native YUYV, UYVY, NV12, YU12, GREY, then RGB24 and BGR24
 * (libv4lconvert's emulation is what makes those available on odd cameras). A forced format
 * is taken emulated too when the device does not have it natively. */
static int choose_format(const struct offered_format *offered, int n, enum v4l2dev_format forced)
{
    for (size_t t = 0; t < ARRAY_SIZE(format_table); t++) {
        const struct format_desc *d = &format_table[t];
        int emulated_match = -1;
        if (forced != V4L2DEV_AUTO && d->format != forced)
            continue;
        for (int i = 0; i < n; i++) {
            if (offered[i].fourcc != d->fourcc &&
                !(d->alt_fourcc && offered[i].fourcc == d->alt_fourcc))
                continue;
            if (!offered[i].emulated)
                return i;
            if (emulated_match < 0)
                emulated_match = i;
        }
        /* Emulated MJPEG/YUV would mean libv4lconvert decoding something else into it: auto
         * only accepts emulation for the RGB fallback. */
        if (emulated_match >= 0 &&
            (forced != V4L2DEV_AUTO || d->format == V4L2DEV_RGB24 || d->format == V4L2DEV_BGR24))
            return emulated_match;
    }
    return -1;
}

/* Distance between two sizes for "nearest": the sum of the differences; ties go to the
 * larger size (better to scale down in the browser than to lose detail). */
static uint64_t size_distance(uint32_t w, uint32_t h, uint32_t want_w, uint32_t want_h)
{
    uint64_t dw = w > want_w ? w - want_w : want_w - w;
    uint64_t dh = h > want_h ? h - want_h : want_h - h;
    return dw + dh;
}

/* Clamps want into [min, max] and rounds it to min + k * step. */
static uint32_t clamp_step(uint32_t want, uint32_t min, uint32_t max, uint32_t step)
{
    uint32_t v;
    if (want <= min)
        return min;
    if (want >= max)
        return max;
    if (step == 0)
        return want;
    v = min + (want - min + step / 2) / step * step;
    return v > max ? max : v;
}

/* Picks the size of fourcc nearest to want_w x want_h. Without size enumeration (some
 * drivers) it leaves the request as is and lets S_FMT adjust it. */
static void choose_size(int fd, uint32_t fourcc, uint32_t want_w, uint32_t want_h, uint32_t *w,
                        uint32_t *h)
{
    uint64_t best = UINT64_MAX;
    *w = want_w;
    *h = want_h;
    for (uint32_t i = 0;; i++) {
        struct v4l2_frmsizeenum fs = {.index = i, .pixel_format = fourcc};
        uint32_t cw, ch;
        uint64_t dist;
        if (xioctl(fd, VIDIOC_ENUM_FRAMESIZES, &fs) < 0)
            break;
        if (fs.type == V4L2_FRMSIZE_TYPE_DISCRETE) {
            cw = fs.discrete.width;
            ch = fs.discrete.height;
        } else {
            uint32_t sw = fs.type == V4L2_FRMSIZE_TYPE_STEPWISE ? fs.stepwise.step_width : 1;
            uint32_t sh = fs.type == V4L2_FRMSIZE_TYPE_STEPWISE ? fs.stepwise.step_height : 1;
            cw = clamp_step(want_w, fs.stepwise.min_width, fs.stepwise.max_width, sw);
            ch = clamp_step(want_h, fs.stepwise.min_height, fs.stepwise.max_height, sh);
        }
        dist = size_distance(cw, ch, want_w, want_h);
        if (dist < best || (dist == best && (uint64_t)cw * ch > (uint64_t)*w * *h)) {
            best = dist;
            *w = cw;
            *h = ch;
        }
        if (fs.type != V4L2_FRMSIZE_TYPE_DISCRETE)
            break; /* one stepwise/continuous entry describes them all */
    }
}

/* The frame interval (as numerator/denominator) nearest to want_fps_milli for the format
 * and size; when the driver does not enumerate intervals, exactly the one asked for. */
static void choose_interval(int fd, uint32_t fourcc, uint32_t w, uint32_t h,
                            uint32_t want_fps_milli, struct v4l2_fract *out)
{
    uint64_t best = UINT64_MAX;
    uint32_t best_fps = 0;

    out->numerator = 1000;
    out->denominator = want_fps_milli;
    for (uint32_t i = 0;; i++) {
        struct v4l2_frmivalenum fi = {.index = i, .pixel_format = fourcc, .width = w, .height = h};
        uint32_t fps;
        uint64_t dist;
        if (xioctl(fd, VIDIOC_ENUM_FRAMEINTERVALS, &fi) < 0)
            break;
        if (fi.type == V4L2_FRMIVAL_TYPE_DISCRETE) {
            fps = interval_to_fps_milli(fi.discrete.numerator, fi.discrete.denominator);
            dist = fps > want_fps_milli ? fps - want_fps_milli : want_fps_milli - fps;
            if (fps && (dist < best || (dist == best && fps > best_fps))) {
                best = dist;
                best_fps = fps;
                *out = fi.discrete;
            }
            continue;
        }
        /* Stepwise or continuous: clamp the wanted rate to the fastest and slowest. */
        {
            uint32_t fastest =
                interval_to_fps_milli(fi.stepwise.min.numerator, fi.stepwise.min.denominator);
            uint32_t slowest =
                interval_to_fps_milli(fi.stepwise.max.numerator, fi.stepwise.max.denominator);
            if (fastest && want_fps_milli > fastest)
                *out = fi.stepwise.min;
            else if (slowest && want_fps_milli < slowest)
                *out = fi.stepwise.max;
        }
        break;
    }
}

/* ---- open, stream, close ------------------------------------------------------------------ */

/* 1 when the node's owner, group and mode let this process open it read-write, so that a
 * refusal comes from elsewhere; 0 otherwise or when it cannot tell. */
static int mode_allows_rw(const char *node)
{
    struct stat st;
    gid_t groups[256];
    int n;

    if (!node || stat(node, &st) != 0)
        return 0;
    if (geteuid() == 0)
        return 1;
    if (st.st_uid == geteuid())
        return (st.st_mode & (S_IRUSR | S_IWUSR)) == (S_IRUSR | S_IWUSR);
    if ((st.st_mode & (S_IROTH | S_IWOTH)) == (S_IROTH | S_IWOTH))
        return 1;
    if ((st.st_mode & (S_IRGRP | S_IWGRP)) != (S_IRGRP | S_IWGRP))
        return 0;
    if (st.st_gid == getegid())
        return 1;
    n = getgroups((int)ARRAY_SIZE(groups), groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == st.st_gid)
            return 1;
    return 0;
}

/* A hint after "cannot open NODE: strerror(err)". A permission error names the usual cause
 * (not in the device's group) only when it is the cause: under a systemd unit without the
 * device in DeviceAllow=, in a container or under a security module the group is right and
 * the advice would mislead. */
static const char *open_hint(int err, const char *node)
{
    switch (err) {
    case EACCES:
    case EPERM:
        if (mode_allows_rw(node))
            return " (the device's owner, group and mode allow capd read-write access, so "
                   "something else refuses: a systemd unit's DeviceAllow=, a container or a "
                   "security module)";
        return " (capd needs read-write access: run it as a member of the device's group, "
               "usually 'video')";
    case ENOENT:
        return " (is the camera plugged in? capd --list shows the devices)";
    case EBUSY:
        return " (another program is using the camera)";
    default:
        return "";
    }
}

/* Resolves path to the node it names now (by-id symlinks move on replug). */
static void resolve_node(const char *path, char *node, size_t len)
{
    char resolved[PATH_MAX];
    if (realpath(path, resolved))
        snprintf(node, len, "%s", resolved);
    else
        snprintf(node, len, "%s", path);
}

static int device_caps(int fd, struct v4l2_capability *cap)
{
    int rc;
    memset(cap, 0, sizeof(*cap));
    rc = xioctl(fd, VIDIOC_QUERYCAP, cap);
    if (rc < 0)
        return rc;
    return (int)((cap->capabilities & V4L2_CAP_DEVICE_CAPS) ? cap->device_caps : cap->capabilities);
}

static int negotiate(struct v4l2dev *d, const struct v4l2dev_request *req, char *why,
                     size_t why_len)
{
    struct offered_format *offered = xcalloc(MAX_OFFERED, sizeof(*offered));
    struct v4l2_format fmt;
    struct v4l2_streamparm parm;
    const struct format_desc *desc;
    char a[5], b[5];
    uint32_t w, h;
    int n, pick, rc = 0;

    n = enum_formats(d->fd, offered, MAX_OFFERED);
    pick = choose_format(offered, n, req->format);
    if (pick < 0) {
        /* Name what would work, not everything the driver has (vivid has 83 formats). */
        size_t used = 0;
        char list[128] = "";
        for (size_t t = 0; t < ARRAY_SIZE(format_table); t++) {
            if (choose_format(offered, n, format_table[t].format) < 0)
                continue;
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "",
                                     format_table[t].option);
            if (used >= sizeof(list))
                break;
        }
        if (req->format != V4L2DEV_AUTO)
            set_why(why, why_len, "%s does not offer %s; it can do: %s (capd --list shows more)",
                    d->node, v4l2dev_format_name(req->format), used ? list : "none of capd's");
        else
            set_why(why, why_len,
                    "%s offers no format capd can use (%d formats; capd --list shows them)",
                    d->node, n);
        rc = -ENOTSUP;
        goto out;
    }
    desc = desc_by_fourcc(offered[pick].fourcc);
    d->mode.format = desc->format;
    d->mode.emulated = offered[pick].emulated;
    choose_size(d->fd, offered[pick].fourcc, req->width, req->height, &w, &h);

    memset(&fmt, 0, sizeof(fmt));
    fmt.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    fmt.fmt.pix.width = w;
    fmt.fmt.pix.height = h;
    fmt.fmt.pix.pixelformat = offered[pick].fourcc;
    fmt.fmt.pix.field = V4L2_FIELD_NONE;
    rc = xioctl(d->fd, VIDIOC_S_FMT, &fmt);
    if (rc < 0) {
        set_why(why, why_len, "%s: setting %ux%u %s failed: %s%s", d->node, w, h, desc->name,
                strerror(-rc), open_hint(-rc, d->node));
        goto out;
    }
    if (fmt.fmt.pix.pixelformat != offered[pick].fourcc) {
        set_why(why, why_len, "%s: asked for %s, the driver set %s", d->node,
                fourcc_str(offered[pick].fourcc, a), fourcc_str(fmt.fmt.pix.pixelformat, b));
        rc = -ENOTSUP;
        goto out;
    }
    if (fmt.fmt.pix.width == 0 || fmt.fmt.pix.height == 0 || fmt.fmt.pix.width > MAX_DIMENSION ||
        fmt.fmt.pix.height > MAX_DIMENSION) {
        set_why(why, why_len, "%s: the driver set an unusable size %ux%u", d->node,
                fmt.fmt.pix.width, fmt.fmt.pix.height);
        rc = -ENOTSUP;
        goto out;
    }
    d->mode.fourcc = fmt.fmt.pix.pixelformat;
    d->mode.width = fmt.fmt.pix.width;
    d->mode.height = fmt.fmt.pix.height;
    d->mode.bytesperline = fmt.fmt.pix.bytesperline;
    d->mode.sizeimage = fmt.fmt.pix.sizeimage;
    if (d->mode.bytesperline == 0) {
        /* Drivers may leave it 0 for packed formats; derive the tight value. */
        uint32_t bpp = d->mode.format == V4L2DEV_YUYV || d->mode.format == V4L2DEV_UYVY     ? 2
                       : d->mode.format == V4L2DEV_RGB24 || d->mode.format == V4L2DEV_BGR24 ? 3
                                                                                            : 1;
        d->mode.bytesperline = d->mode.format == V4L2DEV_MJPEG ? 0 : d->mode.width * bpp;
    }

    /* Frame rate: only when the driver lets us choose it. */
    memset(&parm, 0, sizeof(parm));
    parm.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    if (xioctl(d->fd, VIDIOC_G_PARM, &parm) == 0) {
        if (parm.parm.capture.capability & V4L2_CAP_TIMEPERFRAME) {
            choose_interval(d->fd, d->mode.fourcc, d->mode.width, d->mode.height, req->fps_milli,
                            &parm.parm.capture.timeperframe);
            parm.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
            if (xioctl(d->fd, VIDIOC_S_PARM, &parm) < 0)
                xioctl(d->fd, VIDIOC_G_PARM, &parm);
        }
        d->mode.fps_milli = interval_to_fps_milli(parm.parm.capture.timeperframe.numerator,
                                                  parm.parm.capture.timeperframe.denominator);
    }
    d->asked_width = req->width;
    d->asked_height = req->height;
    d->asked_fps_milli = req->fps_milli;
out:
    free(offered);
    return rc;
}

static int map_buffers(struct v4l2dev *d, uint32_t want, char *why, size_t why_len)
{
    struct v4l2_requestbuffers rb = {
        .count = want, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP};
    int rc = xioctl(d->fd, VIDIOC_REQBUFS, &rb);

    if (rc < 0) {
        set_why(why, why_len, "%s: cannot get MMAP buffers: %s%s", d->node, strerror(-rc),
                open_hint(-rc, d->node));
        return rc;
    }
    if (rb.count < V4L2DEV_MIN_GRANTED) {
        set_why(why, why_len, "%s: the driver granted %u MMAP buffers, capd needs %u", d->node,
                rb.count, V4L2DEV_MIN_GRANTED);
        return -ENOMEM;
    }
    if (rb.count > V4L2DEV_MAX_BUFFERS)
        rb.count = V4L2DEV_MAX_BUFFERS; /* mapping only these; the rest stay unused */
    d->buffers = xcalloc(rb.count, sizeof(*d->buffers));
    for (uint32_t i = 0; i < rb.count; i++) {
        struct v4l2_buffer b = {
            .index = i, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP};
        void *p;
        rc = xioctl(d->fd, VIDIOC_QUERYBUF, &b);
        if (rc < 0) {
            set_why(why, why_len, "%s: QUERYBUF failed: %s", d->node, strerror(-rc));
            return rc;
        }
        p = v4l2_mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, b.m.offset);
        if (p == MAP_FAILED) {
            rc = neg_errno();
            set_why(why, why_len, "%s: mmap failed: %s", d->node, strerror(-rc));
            return rc;
        }
        d->buffers[i].start = p;
        d->buffers[i].length = b.length;
        d->buffer_count = i + 1;
    }
    d->mode.buffers = d->buffer_count;
    if (d->mode.format != V4L2DEV_MJPEG) {
        size_t need = v4l2dev_frame_bytes(&d->mode);
        for (uint32_t i = 0; i < d->buffer_count; i++) {
            if (d->buffers[i].length < need) {
                set_why(why, why_len, "%s: buffers of %zu bytes cannot hold a %ux%u frame (%zu)",
                        d->node, d->buffers[i].length, d->mode.width, d->mode.height, need);
                return -EINVAL;
            }
        }
    }
    return 0;
}

int v4l2dev_open(const struct v4l2dev_request *req, struct v4l2dev **out, char *why, size_t why_len)
{
    struct v4l2dev *d = xcalloc(1, sizeof(*d));
    struct v4l2_capability cap;
    int caps, rc;

    *out = NULL;
    d->fd = -1;
    set_why(why, why_len, "no error");
    if (req->buffers < V4L2DEV_MIN_BUFFERS ||
        (req->buffers_mjpeg && req->buffers_mjpeg < V4L2DEV_MIN_BUFFERS) || req->width == 0 ||
        req->height == 0 || req->fps_milli == 0) {
        set_why(why, why_len, "bad request");
        rc = -EINVAL;
        goto out;
    }
    resolve_node(req->path, d->node, sizeof(d->node));
    d->fd = v4l2_open(req->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (d->fd < 0) {
        rc = neg_errno();
        if (rc == -ENOTTY) {
            /* libv4l2 asks for the capabilities while opening. */
            set_why(why, why_len, "%s is not a V4L2 device", req->path);
            rc = -ENODEV;
            goto out;
        }
        if (strcmp(d->node, req->path) != 0)
            set_why(why, why_len, "cannot open %s (%s): %s%s", req->path, d->node, strerror(-rc),
                    open_hint(-rc, d->node));
        else
            set_why(why, why_len, "cannot open %s: %s%s", req->path, strerror(-rc),
                    open_hint(-rc, d->node));
        goto out;
    }
    caps = device_caps(d->fd, &cap);
    if (caps < 0) {
        rc = caps == -ENOTTY || caps == -EINVAL ? -ENODEV : caps;
        set_why(why, why_len, "%s is not a V4L2 device (%s)", d->node, strerror(-caps));
        goto out;
    }
    if (!((uint32_t)caps & V4L2_CAP_VIDEO_CAPTURE) || !((uint32_t)caps & V4L2_CAP_STREAMING)) {
        set_why(why, why_len, "%s (%.32s) is not a streaming video capture device", d->node,
                (const char *)cap.card);
        rc = -ENODEV;
        goto out;
    }
    rc = negotiate(d, req, why, why_len);
    if (rc < 0)
        goto out;
    rc = map_buffers(d,
                     d->mode.format == V4L2DEV_MJPEG && req->buffers_mjpeg ? req->buffers_mjpeg
                                                                           : req->buffers,
                     why, why_len);
    if (rc < 0)
        goto out;
    *out = d;
    return 0;
out:
    v4l2dev_close(d);
    return rc;
}

void v4l2dev_close(struct v4l2dev *d)
{
    if (!d)
        return;
    if (d->fd >= 0 && d->streaming) {
        int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        xioctl(d->fd, VIDIOC_STREAMOFF, &type); /* fails harmlessly on a vanished device */
    }
    for (uint32_t i = 0; i < d->buffer_count; i++)
        v4l2_munmap(d->buffers[i].start, d->buffers[i].length);
    free(d->buffers);
    if (d->fd >= 0) {
        /* Releasing the buffers before close lets the driver free them at once. */
        struct v4l2_requestbuffers rb = {
            .count = 0, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP};
        if (d->buffer_count)
            xioctl(d->fd, VIDIOC_REQBUFS, &rb);
        v4l2_close(d->fd);
    }
    free(d);
}

const struct v4l2dev_mode *v4l2dev_mode(const struct v4l2dev *d)
{
    return &d->mode;
}

const char *v4l2dev_node(const struct v4l2dev *d)
{
    return d->node;
}

void v4l2dev_describe(const struct v4l2dev *d, char *buf, size_t len)
{
    char fourcc[5], got[16], asked[16];
    snprintf(buf, len, "%ux%u %s @ %s fps (%s%s, asked for %ux%u @ %s; %s, %u buffers)",
             d->mode.width, d->mode.height, v4l2dev_format_name(d->mode.format),
             d->mode.fps_milli ? fps_str(d->mode.fps_milli, got, sizeof(got)) : "?",
             d->mode.emulated ? "emulated by libv4l2 from the camera's format, " : "native, ",
             fourcc_str(d->mode.fourcc, fourcc), d->asked_width, d->asked_height,
             fps_str(d->asked_fps_milli, asked, sizeof(asked)), d->node, d->mode.buffers);
}

int v4l2dev_start(struct v4l2dev *d, char *why, size_t why_len)
{
    int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    int rc;

    for (uint32_t i = 0; i < d->buffer_count; i++) {
        rc = v4l2dev_requeue(d, i);
        if (rc < 0) {
            set_why(why, why_len, "%s: cannot queue buffers: %s", d->node, strerror(-rc));
            return rc;
        }
    }
    rc = xioctl(d->fd, VIDIOC_STREAMON, &type);
    if (rc < 0) {
        set_why(why, why_len, "%s: cannot start streaming: %s%s", d->node, strerror(-rc),
                open_hint(-rc, d->node));
        return rc;
    }
    d->streaming = 1;
    return 0;
}

int v4l2dev_wait(struct v4l2dev *d, int other_fd, int timeout_ms)
{
    struct pollfd pfd[2] = {{.fd = d->fd, .events = POLLIN}, {.fd = other_fd, .events = POLLIN}};
    int rc = poll(pfd, other_fd >= 0 ? 2 : 1, timeout_ms);
    int mask = 0;

    if (rc < 0)
        return errno == EINTR ? -EINTR : neg_errno();
    /* POLLERR/POLLHUP mean "gone" or "broken": DQBUF says which. */
    if (pfd[0].revents)
        mask |= V4L2DEV_WAIT_DEVICE;
    if (other_fd >= 0 && pfd[1].revents)
        mask |= V4L2DEV_WAIT_OTHER;
    return mask;
}

int v4l2dev_dequeue(struct v4l2dev *d, struct v4l2dev_frame *f)
{
    struct v4l2_buffer b = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP};
    uint64_t stamp_us;
    int rc = v4l2_ioctl(d->fd, VIDIOC_DQBUF, &b);

    if (rc < 0)
        return errno == EAGAIN ? -EAGAIN : neg_errno();
    if (b.index >= d->buffer_count) {
        /* A buffer beyond the ones mapped (the driver granted more than we map): hand it
         * straight back. */
        v4l2dev_requeue(d, b.index);
        return -EAGAIN;
    }
    f->index = b.index;
    f->data = d->buffers[b.index].start;
    f->bytes = b.bytesused;
    if (f->bytes == 0 && d->mode.format != V4L2DEV_MJPEG)
        f->bytes = d->buffers[b.index].length; /* old drivers leave bytesused 0 */
    if (f->bytes > d->buffers[b.index].length)
        f->bytes = d->buffers[b.index].length;
    f->sequence = b.sequence;
    f->corrupt = (b.flags & V4L2_BUF_FLAG_ERROR) != 0;
    stamp_us = (uint64_t)b.timestamp.tv_sec * 1000000u + (uint64_t)b.timestamp.tv_usec;
    f->capture_us = v4l2dev_timestamp_to_real_us((b.flags & V4L2_BUF_FLAG_TIMESTAMP_MASK) ==
                                                     V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC,
                                                 stamp_us, time_mono_ns() / 1000u, time_real_us());
    return 0;
}

int v4l2dev_requeue(struct v4l2dev *d, uint32_t index)
{
    struct v4l2_buffer b = {
        .index = index, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP};
    return xioctl(d->fd, VIDIOC_QBUF, &b);
}

/* ---- controls ------------------------------------------------------------------------------- */

/* Finds the control whose --ctrl name is name. Returns 0 with q filled, or -ENOENT. */
static int find_control(int fd, const char *name, struct v4l2_queryctrl *q)
{
    char cname[64];
    memset(q, 0, sizeof(*q));
    q->id = V4L2_CTRL_FLAG_NEXT_CTRL;
    while (xioctl(fd, VIDIOC_QUERYCTRL, q) == 0) {
        if (!(q->flags & V4L2_CTRL_FLAG_DISABLED) && q->type != V4L2_CTRL_TYPE_CTRL_CLASS) {
            control_name((const char *)q->name, cname, sizeof(cname));
            if (strcmp(cname, name) == 0)
                return 0;
        }
        q->id |= V4L2_CTRL_FLAG_NEXT_CTRL;
    }
    return -ENOENT;
}

/* Strict signed decimal. Returns 0 or -EINVAL. */
static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    long long v;
    if (!*s || isspace((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end)
        return -EINVAL;
    *out = v;
    return 0;
}

/* The value for a menu control: an index the driver accepts, or an item's --list name. */
static int menu_value(int fd, const struct v4l2_queryctrl *q, const char *value, int64_t *out)
{
    char item[64];
    int64_t idx;
    int numeric = parse_i64(value, &idx) == 0;

    for (int64_t i = q->minimum; i <= q->maximum; i++) {
        struct v4l2_querymenu m = {.id = q->id, .index = (uint32_t)i};
        if (xioctl(fd, VIDIOC_QUERYMENU, &m) < 0)
            continue;
        if (numeric) {
            if (i == idx) {
                *out = i;
                return 0;
            }
            continue;
        }
        if (q->type == V4L2_CTRL_TYPE_MENU) {
            control_name((const char *)m.name, item, sizeof(item));
            if (strcmp(item, value) == 0) {
                *out = i;
                return 0;
            }
        }
    }
    return -EINVAL;
}

/* Lists the valid menu entries of q as "0=disabled, 1=50_hz" into buf. */
static void menu_choices(int fd, const struct v4l2_queryctrl *q, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int64_t i = q->minimum; i <= q->maximum && used + 1 < len; i++) {
        struct v4l2_querymenu m = {.id = q->id, .index = (uint32_t)i};
        char item[64];
        int n;
        if (xioctl(fd, VIDIOC_QUERYMENU, &m) < 0)
            continue;
        if (q->type == V4L2_CTRL_TYPE_MENU)
            control_name((const char *)m.name, item, sizeof(item));
        else
            snprintf(item, sizeof(item), "%lld", (long long)m.value);
        n = snprintf(buf + used, len - used, "%s%" PRId64 "=%s", used ? ", " : "", i, item);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
}

int v4l2dev_set_control(struct v4l2dev *d, const char *name, const char *value, char *why,
                        size_t why_len)
{
    struct v4l2_queryctrl q;
    int64_t v = 0;
    int rc = find_control(d->fd, name, &q);

    if (rc < 0) {
        set_why(why, why_len, "%s has no control '%s' (capd --list --source %s lists them)",
                d->node, name, d->node);
        return -ENOENT;
    }
    if (q.flags & V4L2_CTRL_FLAG_READ_ONLY) {
        set_why(why, why_len, "control '%s' of %s is read-only", name, d->node);
        return -EACCES;
    }
    switch (q.type) {
    case V4L2_CTRL_TYPE_BOOLEAN:
        if (!strcasecmp(value, "1") || !strcasecmp(value, "true") || !strcasecmp(value, "on") ||
            !strcasecmp(value, "yes")) {
            v = 1;
        } else if (!strcasecmp(value, "0") || !strcasecmp(value, "false") ||
                   !strcasecmp(value, "off") || !strcasecmp(value, "no")) {
            v = 0;
        } else {
            set_why(why, why_len, "'%s' is a boolean: use 0 or 1 (or true/false, on/off)", name);
            return -EINVAL;
        }
        break;
    case V4L2_CTRL_TYPE_INTEGER:
    case V4L2_CTRL_TYPE_INTEGER64:
        if (parse_i64(value, &v) < 0 || v < q.minimum || v > q.maximum ||
            (q.step > 1 && (v - q.minimum) % q.step != 0)) {
            if (q.step > 1)
                set_why(why, why_len, "'%s' takes a whole number from %d to %d in steps of %d",
                        name, q.minimum, q.maximum, q.step);
            else
                set_why(why, why_len, "'%s' takes a whole number from %d to %d", name, q.minimum,
                        q.maximum);
            return -EINVAL;
        }
        break;
    case V4L2_CTRL_TYPE_MENU:
    case V4L2_CTRL_TYPE_INTEGER_MENU:
        if (menu_value(d->fd, &q, value, &v) < 0) {
            char choices[512];
            menu_choices(d->fd, &q, choices, sizeof(choices));
            set_why(why, why_len, "'%s' is a menu: use one of %s", name, choices);
            return -EINVAL;
        }
        break;
    case V4L2_CTRL_TYPE_BUTTON:
        v = 1;
        break;
    default:
        set_why(why, why_len, "control '%s' has a type capd cannot set (%u)", name, q.type);
        return -EINVAL;
    }
    if (q.type == V4L2_CTRL_TYPE_INTEGER64) {
        struct v4l2_ext_control c = {.id = q.id, .value64 = v};
        struct v4l2_ext_controls cs = {
            .which = V4L2_CTRL_WHICH_CUR_VAL, .count = 1, .controls = &c};
        rc = xioctl(d->fd, VIDIOC_S_EXT_CTRLS, &cs);
    } else {
        struct v4l2_control c = {.id = q.id, .value = (int32_t)v};
        rc = xioctl(d->fd, VIDIOC_S_CTRL, &c);
    }
    if (rc < 0) {
        set_why(why, why_len, "setting '%s' to %s on %s failed: %s%s", name, value, d->node,
                strerror(-rc),
                rc == -EBUSY || (q.flags & V4L2_CTRL_FLAG_INACTIVE)
                    ? " (the control is inactive now: another control, such as an automatic "
                      "mode, overrides it)"
                    : "");
        return rc == -ERANGE ? -EINVAL : rc;
    }
    return 0;
}

/* ---- listing -------------------------------------------------------------------------------- */

static const char *control_type_name(uint32_t type)
{
    switch (type) {
    case V4L2_CTRL_TYPE_INTEGER:
        return "int";
    case V4L2_CTRL_TYPE_BOOLEAN:
        return "bool";
    case V4L2_CTRL_TYPE_MENU:
        return "menu";
    case V4L2_CTRL_TYPE_INTEGER_MENU:
        return "intmenu";
    case V4L2_CTRL_TYPE_BUTTON:
        return "button";
    case V4L2_CTRL_TYPE_INTEGER64:
        return "int64";
    case V4L2_CTRL_TYPE_STRING:
        return "string";
    case V4L2_CTRL_TYPE_BITMASK:
        return "bitmask";
    default:
        return "other";
    }
}

static void list_intervals(FILE *out, int fd, uint32_t fourcc, uint32_t w, uint32_t h)
{
    char a[16], b[16];
    int any = 0;
    for (uint32_t i = 0;; i++) {
        struct v4l2_frmivalenum fi = {.index = i, .pixel_format = fourcc, .width = w, .height = h};
        if (xioctl(fd, VIDIOC_ENUM_FRAMEINTERVALS, &fi) < 0)
            break;
        if (fi.type == V4L2_FRMIVAL_TYPE_DISCRETE) {
            fprintf(out, "%s%s", any ? ", " : " @ ",
                    fps_str(interval_to_fps_milli(fi.discrete.numerator, fi.discrete.denominator),
                            a, sizeof(a)));
            any = 1;
            continue;
        }
        fprintf(
            out, " @ %s to %s",
            fps_str(interval_to_fps_milli(fi.stepwise.max.numerator, fi.stepwise.max.denominator),
                    a, sizeof(a)),
            fps_str(interval_to_fps_milli(fi.stepwise.min.numerator, fi.stepwise.min.denominator),
                    b, sizeof(b)));
        any = 1;
        break;
    }
    fprintf(out, any ? " fps\n" : "\n");
}

static void list_formats(FILE *out, int fd)
{
    fprintf(out, "  formats (* = emulated by libv4l2):\n");
    for (uint32_t i = 0;; i++) {
        struct v4l2_fmtdesc f = {.index = i, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
        const struct format_desc *desc;
        char a[5];
        if (xioctl(fd, VIDIOC_ENUM_FMT, &f) < 0)
            break;
        desc = desc_by_fourcc(f.pixelformat);
        fprintf(out, "    %-4s%s %.32s%s%s\n", fourcc_str(f.pixelformat, a),
                (f.flags & V4L2_FMT_FLAG_EMULATED) ? "*" : " ", (const char *)f.description,
                desc ? "  --format " : "", desc ? desc->option : "");
        for (uint32_t j = 0;; j++) {
            struct v4l2_frmsizeenum fs = {.index = j, .pixel_format = f.pixelformat};
            if (xioctl(fd, VIDIOC_ENUM_FRAMESIZES, &fs) < 0)
                break;
            if (fs.type == V4L2_FRMSIZE_TYPE_DISCRETE) {
                fprintf(out, "        %ux%u", fs.discrete.width, fs.discrete.height);
                list_intervals(out, fd, f.pixelformat, fs.discrete.width, fs.discrete.height);
                continue;
            }
            fprintf(out, "        %ux%u to %ux%u (steps of %ux%u)", fs.stepwise.min_width,
                    fs.stepwise.min_height, fs.stepwise.max_width, fs.stepwise.max_height,
                    fs.type == V4L2_FRMSIZE_TYPE_STEPWISE ? fs.stepwise.step_width : 1,
                    fs.type == V4L2_FRMSIZE_TYPE_STEPWISE ? fs.stepwise.step_height : 1);
            list_intervals(out, fd, f.pixelformat, fs.stepwise.max_width, fs.stepwise.max_height);
            break;
        }
    }
}

static void list_controls(FILE *out, int fd)
{
    struct v4l2_queryctrl q = {.id = V4L2_CTRL_FLAG_NEXT_CTRL};
    int any = 0;

    fprintf(out, "  controls (--ctrl NAME=VALUE):\n");
    while (xioctl(fd, VIDIOC_QUERYCTRL, &q) == 0) {
        char name[64];
        struct v4l2_control c = {.id = q.id};
        if ((q.flags & V4L2_CTRL_FLAG_DISABLED) || q.type == V4L2_CTRL_TYPE_CTRL_CLASS) {
            q.id |= V4L2_CTRL_FLAG_NEXT_CTRL;
            continue;
        }
        any = 1;
        control_name((const char *)q.name, name, sizeof(name));
        fprintf(out, "    %-32s %-7s", name, control_type_name(q.type));
        switch (q.type) {
        case V4L2_CTRL_TYPE_INTEGER:
        case V4L2_CTRL_TYPE_INTEGER64:
            fprintf(out, " %d..%d", q.minimum, q.maximum);
            if (q.step > 1)
                fprintf(out, " step %d", q.step);
            fprintf(out, ", default %d", q.default_value);
            break;
        case V4L2_CTRL_TYPE_BOOLEAN:
        case V4L2_CTRL_TYPE_MENU:
        case V4L2_CTRL_TYPE_INTEGER_MENU:
            fprintf(out, " default %d", q.default_value);
            break;
        default:
            break;
        }
        if (q.type != V4L2_CTRL_TYPE_BUTTON && q.type != V4L2_CTRL_TYPE_INTEGER64 &&
            q.type != V4L2_CTRL_TYPE_STRING && !(q.flags & V4L2_CTRL_FLAG_WRITE_ONLY) &&
            xioctl(fd, VIDIOC_G_CTRL, &c) == 0)
            fprintf(out, ", now %d", c.value);
        if (q.flags & V4L2_CTRL_FLAG_READ_ONLY)
            fprintf(out, " (read-only)");
        if (q.flags & V4L2_CTRL_FLAG_INACTIVE)
            fprintf(out, " (inactive)");
        fprintf(out, "\n");
        if (q.type == V4L2_CTRL_TYPE_MENU || q.type == V4L2_CTRL_TYPE_INTEGER_MENU) {
            for (int64_t i = q.minimum; i <= q.maximum; i++) {
                struct v4l2_querymenu m = {.id = q.id, .index = (uint32_t)i};
                char item[64];
                if (xioctl(fd, VIDIOC_QUERYMENU, &m) < 0)
                    continue;
                if (q.type == V4L2_CTRL_TYPE_MENU) {
                    control_name((const char *)m.name, item, sizeof(item));
                    fprintf(out, "        %" PRId64 ": %.32s (%s)\n", i, (const char *)m.name,
                            item);
                } else {
                    fprintf(out, "        %" PRId64 ": %lld\n", i, (long long)m.value);
                }
            }
        }
        q.id |= V4L2_CTRL_FLAG_NEXT_CTRL;
    }
    if (!any)
        fprintf(out, "    (none)\n");
}

/* Prints the /dev/v4l/by-* symlinks that resolve to node. */
static void list_aliases(FILE *out, const char *node)
{
    static const char *const dirs[] = {"/dev/v4l/by-id", "/dev/v4l/by-path"};
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
        DIR *dir = opendir(dirs[i]);
        struct dirent *e;
        if (!dir)
            continue;
        while ((e = readdir(dir)) != NULL) {
            char link[PATH_MAX], target[PATH_MAX];
            if (e->d_name[0] == '.')
                continue;
            snprintf(link, sizeof(link), "%s/%s", dirs[i], e->d_name);
            if (realpath(link, target) && strcmp(target, node) == 0)
                fprintf(out, "  also %s\n", link);
        }
        closedir(dir);
    }
}

int v4l2dev_list_device(FILE *out, const char *path)
{
    struct offered_format *offered;
    struct v4l2_capability cap;
    char node[PATH_MAX];
    int fd, caps, n, pick;

    resolve_node(path, node, sizeof(node));
    fd = v4l2_open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int rc = neg_errno();
        if (rc == -ENOTTY) {
            fprintf(out, "%s: not a V4L2 device\n", path);
            return -ENODEV;
        }
        fprintf(out, "%s: cannot open: %s%s\n", path, strerror(-rc), open_hint(-rc, node));
        return rc;
    }
    caps = device_caps(fd, &cap);
    if (caps < 0 || !((uint32_t)caps & V4L2_CAP_VIDEO_CAPTURE)) {
        if (caps < 0)
            fprintf(out, "%s: not a V4L2 device\n", path);
        else
            fprintf(out, "%s: %.32s (%.16s), not a video capture node\n", path,
                    (const char *)cap.card, (const char *)cap.driver);
        v4l2_close(fd);
        return 0;
    }
    fprintf(out, "%s%s%s: %.32s (driver %.16s, bus %.32s)%s\n", path,
            strcmp(node, path) ? " -> " : "", strcmp(node, path) ? node : "",
            (const char *)cap.card, (const char *)cap.driver, (const char *)cap.bus_info,
            ((uint32_t)caps & V4L2_CAP_STREAMING) ? "" : " [no streaming: capd cannot use it]");
    list_aliases(out, node);
    offered = xcalloc(MAX_OFFERED, sizeof(*offered));
    n = enum_formats(fd, offered, MAX_OFFERED);
    pick = choose_format(offered, n, V4L2DEV_AUTO);
    if (pick >= 0)
        fprintf(out, "  --format auto captures %s\n", desc_by_fourcc(offered[pick].fourcc)->name);
    else
        fprintf(out, "  --format auto: no format capd can use\n");
    free(offered);
    list_formats(out, fd);
    list_controls(out, fd);
    v4l2_close(fd);
    return 1;
}

static int video_index(const char *name)
{
    uint32_t n;
    if (strncmp(name, "video", 5) != 0 || parse_u32(name + 5, 0, 1u << 20, &n) < 0)
        return -1;
    return (int)n;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int v4l2dev_list_all(FILE *out)
{
    DIR *dir = opendir("/dev");
    struct dirent *e;
    int *nums = NULL;
    size_t count = 0, cap = 0;
    int listed = 0;

    if (!dir) {
        int rc = neg_errno();
        fprintf(out, "cannot read /dev: %s\n", strerror(-rc));
        return rc;
    }
    while ((e = readdir(dir)) != NULL) {
        int n = video_index(e->d_name);
        if (n < 0)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            nums = xrealloc(nums, cap * sizeof(*nums));
        }
        nums[count++] = n;
    }
    closedir(dir);
    if (count == 0) {
        fprintf(out, "no V4L2 devices found (no /dev/video* nodes)\n");
        free(nums);
        return 0;
    }
    qsort(nums, count, sizeof(*nums), cmp_int);
    for (size_t i = 0; i < count; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/dev/video%d", nums[i]);
        if (v4l2dev_list_device(out, path) == 1)
            listed++;
    }
    if (listed == 0)
        fprintf(out, "no V4L2 capture devices found (%zu /dev/video* node%s, none captures)\n",
                count, count == 1 ? "" : "s");
    free(nums);
    return listed;
}
