/* test_v4l2dev.c - unit tests for the V4L2 device layer's choices (no device needed). */
#include <errno.h>
#include <linux/videodev2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
/* The statics (format order, size and rate choice, control names) are what is tested here;
 * the ioctl paths run against the real vivid driver in tests/integration/test_vivid.sh. */
#include "../../capd/v4l2dev.c"

static void test_format_parse(void)
{
    enum v4l2dev_format f = V4L2DEV_AUTO;
    static const struct {
        const char *name;
        enum v4l2dev_format want;
    } ok[] = {
        {"auto", V4L2DEV_AUTO},   {"mjpeg", V4L2DEV_MJPEG}, {"MJPEG", V4L2DEV_MJPEG},
        {"yuyv", V4L2DEV_YUYV},   {"uyvy", V4L2DEV_UYVY},   {"nv12", V4L2DEV_NV12},
        {"yu12", V4L2DEV_YU12},   {"yuv420", V4L2DEV_YU12}, {"i420", V4L2DEV_YU12},
        {"grey", V4L2DEV_GREY},   {"gray", V4L2DEV_GREY},   {"rgb24", V4L2DEV_RGB24},
        {"bgr24", V4L2DEV_BGR24},
    };
    for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
        f = V4L2DEV_FORMAT_COUNT;
        CHECKF(v4l2dev_format_parse(ok[i].name, &f) == 0 && f == ok[i].want, "%s", ok[i].name);
    }
    CHECK_EQ_INT(v4l2dev_format_parse("", &f), -EINVAL);
    CHECK_EQ_INT(v4l2dev_format_parse("h264", &f), -EINVAL);
    CHECK_EQ_INT(v4l2dev_format_parse("yuyv ", &f), -EINVAL);
    CHECK_STREQ(v4l2dev_format_name(V4L2DEV_YUYV), "YUYV");
    CHECK_STREQ(v4l2dev_format_name(V4L2DEV_MJPEG), "MJPEG");
    CHECK_STREQ(v4l2dev_format_name(V4L2DEV_AUTO), "auto");
    /* Every format the help text offers parses. */
    {
        char choices[] = V4L2DEV_FORMAT_CHOICES;
        for (char *tok = strtok(choices, "|"); tok; tok = strtok(NULL, "|"))
            CHECKF(v4l2dev_format_parse(tok, &f) == 0, "%s", tok);
    }
}

static void test_control_names(void)
{
    char out[64];
    static const struct {
        const char *label, *want;
    } cases[] = {
        {"Brightness", "brightness"},
        {"White Balance Temperature, Auto", "white_balance_temperature_auto"},
        {"Power Line Frequency", "power_line_frequency"},
        {"  Gain  ", "gain"},
        {"50 Hz", "50_hz"},
        {"Exposure (Absolute)", "exposure_absolute"},
        {"8-bit Menu", "8_bit_menu"},
        {"", ""},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        control_name(cases[i].label, out, sizeof(out));
        CHECK_STREQ(out, cases[i].want);
    }
    /* Truncation keeps a terminated string. */
    control_name("Very Long Control Name", out, 6);
    CHECK_STREQ(out, "very_");
}

static int pick(const struct offered_format *o, int n, enum v4l2dev_format forced)
{
    int i = choose_format(o, n, forced);
    return i < 0 ? -1 : (int)o[i].fourcc;
}

static void test_format_order(void)
{
    /* A typical UVC webcam through libv4l2: MJPEG and YUYV native, emulated extras. */
    const struct offered_format webcam[] = {
        {V4L2_PIX_FMT_YUYV, 0},  {V4L2_PIX_FMT_MJPEG, 0},  {V4L2_PIX_FMT_RGB24, 1},
        {V4L2_PIX_FMT_BGR24, 1}, {V4L2_PIX_FMT_YUV420, 1}, {V4L2_PIX_FMT_YVU420, 1},
    };
    /* vivid-like: raw only, NV12 listed before YUYV. */
    const struct offered_format raw[] = {
        {V4L2_PIX_FMT_NV12, 0},
        {V4L2_PIX_FMT_GREY, 0},
        {V4L2_PIX_FMT_YUYV, 0},
    };
    /* A Bayer camera: only emulated formats are usable, and of those auto takes RGB24 first. */
    const struct offered_format bayer[] = {
        {V4L2_PIX_FMT_SGRBG8, 0},
        {V4L2_PIX_FMT_YUV420, 1},
        {V4L2_PIX_FMT_BGR24, 1},
        {V4L2_PIX_FMT_RGB24, 1},
    };
    const struct offered_format jpeg[] = {{V4L2_PIX_FMT_JPEG, 0}, {V4L2_PIX_FMT_YUYV, 0}};
    const struct offered_format nothing[] = {{V4L2_PIX_FMT_SGRBG8, 0}};

    CHECK_EQ_INT(pick(webcam, 6, V4L2DEV_AUTO), V4L2_PIX_FMT_MJPEG);
    CHECK_EQ_INT(pick(webcam, 6, V4L2DEV_YUYV), V4L2_PIX_FMT_YUYV);
    CHECK_EQ_INT(pick(webcam, 6, V4L2DEV_YU12), V4L2_PIX_FMT_YUV420); /* forced: emulated ok */
    CHECK_EQ_INT(pick(webcam, 6, V4L2DEV_NV12), -1);
    CHECK_EQ_INT(pick(raw, 3, V4L2DEV_AUTO), V4L2_PIX_FMT_YUYV);
    CHECK_EQ_INT(pick(raw, 3, V4L2DEV_GREY), V4L2_PIX_FMT_GREY);
    CHECK_EQ_INT(pick(raw, 2, V4L2DEV_AUTO), V4L2_PIX_FMT_NV12);
    CHECK_EQ_INT(pick(bayer, 4, V4L2DEV_AUTO), V4L2_PIX_FMT_RGB24);
    CHECK_EQ_INT(pick(bayer, 3, V4L2DEV_AUTO), V4L2_PIX_FMT_BGR24);
    CHECK_EQ_INT(pick(jpeg, 2, V4L2DEV_AUTO), V4L2_PIX_FMT_JPEG);
    CHECK_EQ_INT(pick(jpeg, 2, V4L2DEV_MJPEG), V4L2_PIX_FMT_JPEG);
    CHECK_EQ_INT(pick(nothing, 1, V4L2DEV_AUTO), -1);
    CHECK_EQ_INT(pick(nothing, 0, V4L2DEV_AUTO), -1);
}

static void test_nearest(void)
{
    /* Stepwise sizes clamp and round to the step. */
    CHECK_EQ_INT(clamp_step(641, 16, 1920, 16), 640);
    CHECK_EQ_INT(clamp_step(650, 16, 1920, 16), 656);
    CHECK_EQ_INT(clamp_step(8, 16, 1920, 16), 16);
    CHECK_EQ_INT(clamp_step(4000, 16, 1920, 16), 1920);
    CHECK_EQ_INT(clamp_step(333, 1, 1920, 0), 333);
    /* Discrete sizes: the sum of differences decides; 800x600 is nearer 640x480 than 1280x720. */
    CHECK(size_distance(640, 480, 800, 600) < size_distance(1280, 720, 800, 600));
    CHECK_EQ_INT(size_distance(640, 480, 640, 480), 0);
    CHECK_EQ_INT(size_distance(320, 180, 640, 480), 320 + 300);
    /* Intervals to rates. */
    CHECK_EQ_INT(interval_to_fps_milli(1, 25), 25000);
    CHECK_EQ_INT(interval_to_fps_milli(2, 25), 12500);
    CHECK_EQ_INT(interval_to_fps_milli(1001, 30000), 29970);
    CHECK_EQ_INT(interval_to_fps_milli(0, 25), 0);
    CHECK_EQ_INT(interval_to_fps_milli(1, 0), 0);
    {
        char buf[16];
        CHECK_STREQ(fps_str(25000, buf, sizeof(buf)), "25");
        CHECK_STREQ(fps_str(12500, buf, sizeof(buf)), "12.5");
        CHECK_STREQ(fps_str(29970, buf, sizeof(buf)), "29.97");
    }
}

static void test_timestamps(void)
{
    const uint64_t mono = 5000000000ull, real = 1700000000000000ull;
    /* A monotonic stamp 20 ms old is 20 ms before now on the wall clock. */
    CHECK_EQ_INT(v4l2dev_timestamp_to_real_us(1, mono - 20000, mono, real), real - 20000);
    CHECK_EQ_INT(v4l2dev_timestamp_to_real_us(1, mono, mono, real), real);
    /* Not monotonic, zero, from the future, or absurdly old: now. */
    CHECK_EQ_INT(v4l2dev_timestamp_to_real_us(0, mono - 20000, mono, real), real);
    CHECK_EQ_INT(v4l2dev_timestamp_to_real_us(1, 0, mono, real), real);
    CHECK_EQ_INT(v4l2dev_timestamp_to_real_us(1, mono + 1, mono, real), real);
    CHECK_EQ_INT(v4l2dev_timestamp_to_real_us(1, mono - 11000000ull, mono, real), real);
    CHECK_EQ_INT(v4l2dev_timestamp_to_real_us(1, mono - 9000000ull, mono, real), real - 9000000ull);
}

static void test_frame_bytes(void)
{
    struct v4l2dev_mode m = {
        .format = V4L2DEV_YUYV, .width = 640, .height = 480, .bytesperline = 1280};
    CHECK_EQ_INT(v4l2dev_frame_bytes(&m), 1280 * 480);
    m.format = V4L2DEV_NV12;
    m.bytesperline = 640;
    CHECK_EQ_INT(v4l2dev_frame_bytes(&m), 640 * 720);
    m.height = 481;
    CHECK_EQ_INT(v4l2dev_frame_bytes(&m), 640 * (481 + 241));
    m.format = V4L2DEV_MJPEG;
    CHECK_EQ_INT(v4l2dev_frame_bytes(&m), 0);
}

static void test_missing_device(void)
{
    struct v4l2dev_request req = {.path = "/dev/video-capd-test-missing",
                                  .width = 640,
                                  .height = 480,
                                  .fps_milli = 30000,
                                  .buffers = 4};
    struct v4l2dev *d = (struct v4l2dev *)1;
    char why[256];
    int rc = v4l2dev_open(&req, &d, why, sizeof(why));

    CHECK_EQ_INT(rc, -ENOENT);
    CHECK(d == NULL);
    CHECKF(strstr(why, "/dev/video-capd-test-missing") != NULL, "%s", why);
    /* Not a V4L2 device: /dev/null opens but answers no VIDIOC_QUERYCAP. */
    req.path = "/dev/null";
    rc = v4l2dev_open(&req, &d, why, sizeof(why));
    CHECKF(rc == -ENODEV && d == NULL, "rc %d: %s", rc, why);
    /* Bad requests are refused before anything is opened. */
    req.buffers = 2;
    CHECK_EQ_INT(v4l2dev_open(&req, &d, why, sizeof(why)), -EINVAL);
    v4l2dev_close(NULL);
}

/* The permission hint blames the group only when the node's mode says the group is the cause. */
static void test_open_hint(void)
{
    char path[] = "/tmp/capd-test-hint-XXXXXX";
    int fd = mkstemp(path);

    CHECKF(fd >= 0, "mkstemp: %s", strerror(errno));
    /* /dev/null is rw for everyone: a refusal comes from elsewhere (systemd, a container). */
    CHECKF(strstr(open_hint(EACCES, "/dev/null"), "something else refuses") != NULL, "%s",
           open_hint(EACCES, "/dev/null"));
    CHECKF(strstr(open_hint(EPERM, "/dev/null"), "DeviceAllow=") != NULL, "%s",
           open_hint(EPERM, "/dev/null"));
    /* A node it cannot look at: the usual advice. */
    CHECKF(strstr(open_hint(EACCES, "/dev/video-capd-test-missing"), "device's group") != NULL,
           "%s", open_hint(EACCES, "/dev/video-capd-test-missing"));
    CHECK(strstr(open_hint(EACCES, NULL), "device's group") != NULL);
    if (fd >= 0) {
        /* Ours with rw: allowed by mode. Mode 0: only root may open it anyway. */
        CHECK(fchmod(fd, 0600) == 0);
        CHECK(strstr(open_hint(EACCES, path), "something else refuses") != NULL);
        CHECK(fchmod(fd, 0) == 0);
        const char *want = geteuid() == 0 ? "something else" : "device's group";
        CHECKF(strstr(open_hint(EACCES, path), want) != NULL, "euid %u: %s", (unsigned)geteuid(),
               open_hint(EACCES, path));
        close(fd);
        unlink(path);
    }
    CHECK(strstr(open_hint(ENOENT, "/dev/video9"), "plugged in") != NULL);
    CHECK_STREQ(open_hint(EIO, "/dev/null"), "");
}

int main(void)
{
    log_init("test_v4l2dev", 0);
    RUN_TEST(test_format_parse);
    RUN_TEST(test_control_names);
    RUN_TEST(test_format_order);
    RUN_TEST(test_nearest);
    RUN_TEST(test_timestamps);
    RUN_TEST(test_frame_bytes);
    RUN_TEST(test_missing_device);
    RUN_TEST(test_open_hint);
    return check_summary();
}
