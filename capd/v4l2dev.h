/* v4l2dev.h - one V4L2 capture device through libv4l2: format choice, MMAP streaming, controls. */
#ifndef CAPD_V4L2DEV_H
#define CAPD_V4L2DEV_H

/*
 * Every device access goes through libv4l2 (v4l2_open, v4l2_ioctl, v4l2_mmap, v4l2_munmap,
 * v4l2_close), so the formats libv4lconvert emulates for odd cameras work like native ones.
 *
 * Life of a device: v4l2dev_open() opens the node, chooses format, size and rate, and maps the
 * buffers; v4l2dev_start() queues them and starts streaming; v4l2dev_wait() and
 * v4l2dev_dequeue() hand out filled buffers, which stay valid (and owned by the caller) until
 * v4l2dev_requeue() gives them back; v4l2dev_close() stops and frees everything.
 *
 * Thread-safety: a struct v4l2dev is driven by one thread; every ioctl happens on that thread.
 * The frame data of a dequeued buffer may be read by other threads until the owning thread
 * requeues it (the caller orders that, e.g. with a mutex).
 *
 * Errors are -errno. A device that vanished (unplugged, driver unloaded) shows up as -ENODEV
 * or -EIO (or another -errno) from v4l2dev_dequeue(), v4l2dev_requeue() or v4l2dev_wait();
 * the caller closes it and opens the path again later. Functions that can fail for reasons a
 * user must read take a `why` buffer and write one line into it (no trailing newline); they do
 * not log, so a caller retrying every second decides what to log.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Pixel formats capd captures, in the order --format auto prefers them. */
enum v4l2dev_format {
    V4L2DEV_AUTO = 0,
    V4L2DEV_MJPEG, /* MJPG or JPEG from the camera, passed through */
    V4L2DEV_YUYV,
    V4L2DEV_UYVY,
    V4L2DEV_NV12,
    V4L2DEV_YU12, /* YUV420 / I420 */
    V4L2DEV_GREY,
    V4L2DEV_RGB24, /* usually emulated by libv4lconvert */
    V4L2DEV_BGR24,
    V4L2DEV_FORMAT_COUNT
};

/* Parses a --format value ("auto", "mjpeg", "yuyv", "uyvy", "nv12", "yu12" (also "yuv420",
   "i420"), "grey" (also "gray"), "rgb24", "bgr24"; case-insensitive). Returns 0 or -EINVAL. */
int v4l2dev_format_parse(const char *name, enum v4l2dev_format *out);

/* Upper-case name for logs ("YUYV"); "auto" for V4L2DEV_AUTO. Never NULL. */
const char *v4l2dev_format_name(enum v4l2dev_format format);

/* The --format value of a format ("yuyv", "auto"). Never NULL. */
const char *v4l2dev_format_option(enum v4l2dev_format format);

/* The comma-separated list of --format values, for help texts. */
#define V4L2DEV_FORMAT_CHOICES "auto|mjpeg|yuyv|uyvy|nv12|yu12|grey|rgb24|bgr24"

/* What to open and what to ask for. */
struct v4l2dev_request {
    const char *path;           /* /dev/videoN or a symlink such as /dev/v4l/by-id/... */
    enum v4l2dev_format format; /* V4L2DEV_AUTO: MJPEG, YUYV, UYVY, NV12, YU12, GREY native,
                                   then RGB24, BGR24 (emulated or native) */
    uint32_t width, height;     /* wanted; the nearest supported size is chosen */
    uint32_t fps_milli;         /* wanted frames per second x 1000; the nearest supported */
    uint32_t buffers;           /* MMAP buffers to request for raw formats, which encode
                                   workers may hold a while; >= V4L2DEV_MIN_BUFFERS */
    uint32_t buffers_mjpeg;     /* the same for MJPEG, which is copied out at once (large
                                   buffers, often megabytes each); 0: as buffers */
};

/* capd always asks for at least V4L2DEV_MIN_BUFFERS. A driver that grants fewer (v4l2loopback
 * allows 2 unless loaded with max_buffers=N) still works, with a warning: frames then arrive
 * only while capd is not holding one. Below V4L2DEV_MIN_GRANTED streaming cannot work. */
#define V4L2DEV_MIN_BUFFERS 3u
#define V4L2DEV_MIN_GRANTED 2u
#define V4L2DEV_MAX_BUFFERS 32u

/* What was negotiated. */
struct v4l2dev_mode {
    enum v4l2dev_format format;
    uint32_t fourcc; /* V4L2_PIX_FMT_* actually set */
    uint32_t width, height;
    uint32_t bytesperline; /* of the first (or only) plane */
    uint32_t sizeimage;    /* the largest frame the driver delivers */
    uint32_t fps_milli;    /* 0 when the driver does not say */
    uint32_t buffers;      /* MMAP buffers granted */
    int emulated;          /* 1 when libv4lconvert converts into this format */
};

struct v4l2dev;

/* Opens req->path, checks it is a streaming video capture device, chooses format, size and
 * rate (v4l2dev_describe() says what it chose), and maps the buffers. Does not start streaming.
 * Returns 0 and the device in *out, or -errno with a reason in why: -ENOENT (no such node),
 * -EACCES/-EPERM (no permission: the video group), -ENODEV (not a V4L2 capture device, or gone),
 * -ENOTSUP (the forced format is not offered, or no usable format), -EBUSY (another program
 * streams), -ENOMEM (fewer than V4L2DEV_MIN_GRANTED buffers), other -errno from the driver. *out is
 * NULL on error. */
int v4l2dev_open(const struct v4l2dev_request *req, struct v4l2dev **out, char *why,
                 size_t why_len);

/* Stops streaming, unmaps the buffers and closes the node. Frames handed out are invalid
 * afterwards. Accepts NULL and half-built devices. */
void v4l2dev_close(struct v4l2dev *d);

/* The negotiated mode; valid until v4l2dev_close(). */
const struct v4l2dev_mode *v4l2dev_mode(const struct v4l2dev *d);

/* The node actually opened, with symlinks resolved ("/dev/video2"); valid until close. */
const char *v4l2dev_node(const struct v4l2dev *d);

/* One line for the log saying what was chosen and what was asked for:
 * "640x480 YUYV @ 25 fps (native, YUYV, asked for 640x480 @ 30; /dev/video0, 4 buffers)". */
void v4l2dev_describe(const struct v4l2dev *d, char *buf, size_t len);

/* Sets a control by its --list name (lowercase, '_' for spaces: "brightness",
 * "power_line_frequency"). value is a decimal integer (range and step checked), for booleans
 * also true/false/on/off/yes/no, for menus the item's index or its --list name; buttons are
 * pressed whatever the value. Returns 0; -ENOENT when the device has no such control;
 * -EINVAL for a bad value; -EACCES for a read-only control; other -errno from the driver.
 * why says what went wrong and what would be accepted. */
int v4l2dev_set_control(struct v4l2dev *d, const char *name, const char *value, char *why,
                        size_t why_len);

/* Queues every buffer and starts streaming. Returns 0 or -errno (why filled). */
int v4l2dev_start(struct v4l2dev *d, char *why, size_t why_len);

/* Waits up to timeout_ms (poll) until the device has a frame or fails, or until other_fd
 * (when >= 0) is readable. Returns a mask of V4L2DEV_WAIT_DEVICE (try v4l2dev_dequeue: it
 * has a frame or an error) and V4L2DEV_WAIT_OTHER, 0 on timeout, -EINTR on a signal. */
#define V4L2DEV_WAIT_DEVICE 1
#define V4L2DEV_WAIT_OTHER  2
int v4l2dev_wait(struct v4l2dev *d, int other_fd, int timeout_ms);

/* A filled buffer, owned by the caller until v4l2dev_requeue(). */
struct v4l2dev_frame {
    const uint8_t *data;
    size_t bytes;        /* bytes used (clamped to the buffer) */
    uint32_t index;      /* buffer index, for v4l2dev_requeue() */
    uint32_t sequence;   /* the driver's frame counter */
    uint64_t capture_us; /* CLOCK_REALTIME capture time from the buffer timestamp */
    int corrupt;         /* the driver flagged the data as damaged (V4L2_BUF_FLAG_ERROR) */
};

/* Takes the next filled buffer without blocking. Returns 0 with f filled, -EAGAIN when none
 * is ready, -EINTR, or another -errno when the device failed (gone: close and reopen). */
int v4l2dev_dequeue(struct v4l2dev *d, struct v4l2dev_frame *f);

/* Gives a dequeued buffer back to the driver. Returns 0 or -errno (the device failed). */
int v4l2dev_requeue(struct v4l2dev *d, uint32_t index);

/* How many bytes a raw frame of the mode needs (bytesperline x rows over all planes); 0 for
 * MJPEG. Frames with fewer bytes are incomplete. */
size_t v4l2dev_frame_bytes(const struct v4l2dev_mode *m);

/* Converts a V4L2 buffer timestamp to CLOCK_REALTIME microseconds. monotonic: the buffer's
 * timestamp is CLOCK_MONOTONIC (V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC). now_mono_us/now_real_us:
 * both clocks read at about the same instant. Falls back to now_real_us when the stamp is not
 * monotonic, zero, in the future or more than 10 s old. Pure function. */
uint64_t v4l2dev_timestamp_to_real_us(int monotonic, uint64_t stamp_us, uint64_t now_mono_us,
                                      uint64_t now_real_us);

/* Prints, for each /dev/videoN (sorted by N; with its /dev/v4l/by-id and by-path aliases):
 * driver and card, the formats with sizes and frame rates, what --format auto picks, and the
 * controls with their --ctrl names, types, ranges, defaults, current values and menu items.
 * Nodes that are not video capture devices get one line. With no /dev/video* it prints that
 * there are none. Returns the number of capture devices listed (>= 0) or -errno when
 * /dev cannot be read. */
int v4l2dev_list_all(FILE *out);

/* The same for one node (or symlink). Returns 1 when it is a capture device, 0 when not, or
 * -errno when it cannot be opened (a line saying why is printed). */
int v4l2dev_list_device(FILE *out, const char *path);

#endif
