/* capd.c - the capture daemon: owns one camera (or test source) and publishes JPEG frames to a
 * ring. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "presence.h"
#include "ring.h"
#include "source.h"
#include "util.h"
#include "v4l2dev.h"

/* How long one source step may block, so heartbeats and stats keep flowing. */
#define STEP_TIMEOUT_MS       100
#define HEARTBEAT_INTERVAL_NS (100u * 1000000u)
/* How often the viewer count is read: on-demand capture wakes within this of a viewer. */
#define VIEWERS_INTERVAL_NS (100u * 1000000u)
#define STATS_INTERVAL_NS   (1000u * 1000000u)
#define DEFAULT_IDLE_STOP_S 10u
#define MAX_IDLE_STOP_S     86400u
#define MAX_DROP_SAME       1000000u
#define MAX_ENCODERS        16u
#define MAX_CONTROLS        64

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct options {
    const char *name;
    const char *source;
    const char *prefix;
    uint32_t width, height;
    uint32_t fps;
    uint32_t quality;
    uint32_t slots;
    uint64_t slot_size; /* 0: derived from the source */
    gid_t group;
    const char *user; /* --user: drop root for this user after the setup */
    uid_t user_uid;
    gid_t user_gid;
    int keep_ring;
    int verbose;
    /* V4L2 */
    enum v4l2dev_format format;
    const char *controls[MAX_CONTROLS]; /* "name=value", pointing into argv */
    size_t control_count;
    uint32_t idle_stop_s;
    uint32_t drop_same;
    uint32_t encoders; /* 0: automatic */
    int wait_device;
    int list;
};

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: capd [--name NAME] [--source SRC] [options]\n"
        "       capd --list [--source /dev/videoN]\n"
        "\n"
        "capd owns one camera (or a test source) and publishes its frames as JPEG into the\n"
        "shared-memory ring /capd-NAME, where capd.fcgi responders read them.\n"
        "\n"
        "Options:\n"
        "  -n, --name NAME       camera name, [a-z0-9_-]{1,64} (default: default)\n"
        "  -s, --source SRC      where frames come from (default: testpattern):\n"
        "                          testpattern  a moving pattern with frame counter and clock\n"
        "                          stdin        concatenated JPEGs or multipart MJPEG on stdin,\n"
        "                                       republished untouched (e.g. from ffmpeg or curl)\n"
        "                          file:PATH    one JPEG file, or a folder of *.jpg looped at "
        "--fps\n"
        "                          /dev/videoN  a V4L2 camera; prefer the stable names in\n"
        "                                       /dev/v4l/by-id/ (they survive replugging)\n"
        "      --size WxH        frame size of the test pattern, or the size to ask a camera for\n"
        "                        (it gets the nearest it supports) (default: 640x480)\n"
        "      --fps N           frames per second, 1-120: the test pattern's and file's rate,\n"
        "                        or the nearest rate the camera supports (default: 30)\n"
        "      --quality Q       JPEG quality when encoding, 1-100 (default: 80)\n"
        "      --slots N         frames the ring holds, 2-256 (default: 8)\n"
        "      --slot-size BYTES bytes per ring slot, with optional K or M suffix (default:\n"
        "                        the largest JPEG of the frame size for testpattern and raw\n"
        "                        camera formats, the driver's frame size for MJPEG cameras,\n"
        "                        1.5x the largest file for file:, and at least 4M for stdin);\n"
        "                        frames that do not fit are dropped and counted\n"
        "      --group G         hand the ring (0640) and viewer objects (0660) to group G,\n"
        "                        e.g. the web server's group www-data\n"
        "      --user U          started as root: open the camera and the shared memory, then\n"
        "                        run as user U (its groups, e.g. video, to reopen the camera;\n"
        "                        the shared memory is handed to U and --group)\n"
        "      --keep-ring       leave the shared-memory objects in place at exit\n"
        "  -v, --verbose         log statistics every second\n"
        "  -h, --help            show this help and exit\n"
        "      --version         show the version and exit\n"
        "\n"
        "V4L2 cameras (--source /dev/...; capd needs the 'video' group, the web server does not):\n"
        "      --list            list the cameras (or only --source's) with their formats, sizes,\n"
        "                        frame rates and controls, then exit\n"
        "      --format F        " V4L2DEV_FORMAT_CHOICES "\n"
        "                        (default: auto = MJPEG passed through untouched, else YUYV,\n"
        "                        UYVY, NV12, YU12 or GREY encoded from planar YUV, else RGB24\n"
        "                        or BGR24 converted by libv4l2); the choice is logged\n"
        "      --ctrl NAME=VALUE set a camera control at every open, NAME as --list prints it\n"
        "                        (e.g. brightness=140, power_line_frequency=50_hz); repeatable\n"
        "      --idle-stop S     close the camera after S s without viewers; the ring shows\n"
        "                        'idle' and the camera reopens when a viewer arrives (0: keep it\n"
        "                        open; default: 10)\n"
        "      --drop-same N     skip up to N identical consecutive frames (default: 0)\n"
        "      --encoders N      JPEG encode threads for raw formats, 1-16; frames stay in order\n"
        "                        and are dropped, not queued, when all are busy (default: 1, or\n"
        "                        up to 4 above 20 megapixels per second on a multi-core machine)\n"
        "      --wait-device     a camera missing at start is waited for (NO SIGNAL frames)\n"
        "                        instead of an error\n"
        "      An unplugged camera (or one silent for 2 s) gives NO SIGNAL frames about once a\n"
        "      second while capd retries every second; capture resumes on replug.\n"
        "\n"
        "Environment:\n"
        "  CAPD_SHM_PREFIX       shared-memory name prefix (default: capd-); responders must\n"
        "                        use the same value\n"
        "\n"
        "SIGTERM or SIGINT stops capd cleanly and removes its shared-memory objects.\n"
        "Exit status: 0 after a clean stop (or the end of stdin) or a listing, 2 for a bad\n"
        "option (including a control or format the camera does not have), 1 for any other\n"
        "error (such as a camera that does not exist).\n");
}

static uint32_t option_u32(const char *flag, const char *value, uint32_t min, uint32_t max)
{
    uint32_t v;
    char why[96];
    int rc = parse_u32(value, min, max, &v);
    if (rc == -EINVAL) {
        snprintf(why, sizeof(why), "not a whole number (expected %u-%u)", min, max);
        die_bad_option(flag, value, why);
    } else if (rc < 0) {
        snprintf(why, sizeof(why), "out of range (expected %u-%u)", min, max);
        die_bad_option(flag, value, why);
    }
    return v;
}

static uint64_t option_bytes(const char *flag, const char *value)
{
    char digits[32];
    size_t len = strlen(value);
    uint64_t mult = 1, v = 0;
    char why[96];
    int rc;

    if (len == 0 || len >= sizeof(digits))
        die_bad_option(flag, value, "expected a byte count such as 262144, 256K or 4M");
    memcpy(digits, value, len + 1);
    if (digits[len - 1] == 'K' || digits[len - 1] == 'k') {
        mult = 1024;
        digits[--len] = '\0';
    } else if (digits[len - 1] == 'M' || digits[len - 1] == 'm') {
        mult = 1024 * 1024;
        digits[--len] = '\0';
    }
    /* v <= 64 Mi and mult <= 1 Mi, so v * mult cannot overflow. */
    rc = parse_u64(digits, 1, RING_MAX_SLOT_SIZE, &v);
    if (rc == -EINVAL)
        die_bad_option(flag, value, "expected a byte count such as 262144, 256K or 4M");
    if (rc < 0 || v * mult < RING_MIN_SLOT_SIZE || v * mult > RING_MAX_SLOT_SIZE) {
        snprintf(why, sizeof(why), "out of range (expected %u to %u bytes)", RING_MIN_SLOT_SIZE,
                 RING_MAX_SLOT_SIZE);
        die_bad_option(flag, value, why);
    }
    return v * mult;
}

static gid_t option_group(const char *value)
{
    struct group *gr = getgrnam(value);
    uint32_t gid;
    if (gr)
        return gr->gr_gid;
    if (parse_u32(value, 0, 0x7fffffffu, &gid) == 0)
        return (gid_t)gid;
    die_bad_option("--group", value, "no such group");
    return (gid_t)-1;
}

static void option_user(const char *value, struct options *o)
{
    struct passwd *pw = getpwnam(value);
    if (!pw)
        die_bad_option("--user", value, "no such user");
    if (geteuid() != 0)
        die_bad_option("--user", value, "capd must start as root to change its user");
    o->user = value;
    o->user_uid = pw->pw_uid;
    o->user_gid = pw->pw_gid;
}

/* Started as root with --user: becomes that user, with its supplementary groups
 * (video, to reopen a camera after an unplug) and --group or its own primary
 * group. The camera and the shared memory are already open. Returns 0 or -1
 * after logging why. */
static int drop_privileges(const struct options *o)
{
    gid_t gid = o->group != (gid_t)-1 ? o->group : o->user_gid;

    if (!o->user) {
        if (geteuid() == 0)
            log_warn("running as root; --user would drop that after the setup");
        return 0;
    }
    if (initgroups(o->user, o->user_gid) < 0 || setgid(gid) < 0 || setuid(o->user_uid) < 0) {
        log_error("--user %s: cannot switch to it: %s", o->user, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0) { /* an invariant of setuid() as root: there is no way back */
        log_error("--user %s: still able to become root", o->user);
        return -1;
    }
    log_info("running as user %s (uid %u, gid %u)", o->user, (unsigned)o->user_uid,
             (unsigned)gid);
    return 0;
}

static void parse_options(int argc, char **argv, struct options *o)
{
    enum {
        OPT_SIZE = 256,
        OPT_FPS,
        OPT_QUALITY,
        OPT_SLOTS,
        OPT_SLOT_SIZE,
        OPT_GROUP,
        OPT_USER,
        OPT_KEEP,
        OPT_VERSION,
        OPT_LIST,
        OPT_FORMAT,
        OPT_CTRL,
        OPT_IDLE_STOP,
        OPT_DROP_SAME,
        OPT_ENCODERS,
        OPT_WAIT_DEVICE
    };
    static const struct option longopts[] = {
        {"name", required_argument, NULL, 'n'},
        {"source", required_argument, NULL, 's'},
        {"size", required_argument, NULL, OPT_SIZE},
        {"fps", required_argument, NULL, OPT_FPS},
        {"quality", required_argument, NULL, OPT_QUALITY},
        {"slots", required_argument, NULL, OPT_SLOTS},
        {"slot-size", required_argument, NULL, OPT_SLOT_SIZE},
        {"group", required_argument, NULL, OPT_GROUP},
        {"user", required_argument, NULL, OPT_USER},
        {"keep-ring", no_argument, NULL, OPT_KEEP},
        {"list", no_argument, NULL, OPT_LIST},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"ctrl", required_argument, NULL, OPT_CTRL},
        {"idle-stop", required_argument, NULL, OPT_IDLE_STOP},
        {"drop-same", required_argument, NULL, OPT_DROP_SAME},
        {"encoders", required_argument, NULL, OPT_ENCODERS},
        {"wait-device", no_argument, NULL, OPT_WAIT_DEVICE},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof(*o));
    o->name = "default";
    o->source = "testpattern";
    o->width = 640;
    o->height = 480;
    o->fps = 30;
    o->quality = 80;
    o->slots = RING_DEFAULT_SLOTS;
    o->group = (gid_t)-1;
    o->format = V4L2DEV_AUTO;
    o->idle_stop_s = DEFAULT_IDLE_STOP_S;

    opterr = 0; /* we name the bad flag ourselves */
    while ((c = getopt_long(argc, argv, ":n:s:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!ring_name_valid(optarg))
                die_bad_option("--name", optarg, "use 1-64 characters from a-z, 0-9, '_' and '-'");
            o->name = optarg;
            break;
        case 's':
            o->source = optarg;
            break;
        case OPT_SIZE:
            if (parse_size(optarg, 16, 8192, &o->width, &o->height) < 0)
                die_bad_option("--size", optarg,
                               "expected WIDTHxHEIGHT, each 16-8192, e.g. 1280x720");
            break;
        case OPT_FPS:
            o->fps = option_u32("--fps", optarg, 1, 120);
            break;
        case OPT_QUALITY:
            o->quality = option_u32("--quality", optarg, 1, 100);
            break;
        case OPT_SLOTS:
            o->slots = option_u32("--slots", optarg, RING_MIN_SLOTS, RING_MAX_SLOTS);
            break;
        case OPT_SLOT_SIZE:
            o->slot_size = option_bytes("--slot-size", optarg);
            break;
        case OPT_GROUP:
            o->group = option_group(optarg);
            break;
        case OPT_USER:
            option_user(optarg, o);
            break;
        case OPT_KEEP:
            o->keep_ring = 1;
            break;
        case OPT_LIST:
            o->list = 1;
            break;
        case OPT_FORMAT:
            if (v4l2dev_format_parse(optarg, &o->format) < 0)
                die_bad_option("--format", optarg, "expected one of " V4L2DEV_FORMAT_CHOICES);
            break;
        case OPT_CTRL: {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || !eq[1])
                die_bad_option("--ctrl", optarg, "expected NAME=VALUE, e.g. brightness=140");
            if (o->control_count == MAX_CONTROLS)
                die_bad_option("--ctrl", optarg, "too many controls");
            o->controls[o->control_count++] = optarg;
            break;
        }
        case OPT_IDLE_STOP:
            o->idle_stop_s = option_u32("--idle-stop", optarg, 0, MAX_IDLE_STOP_S);
            break;
        case OPT_DROP_SAME:
            o->drop_same = option_u32("--drop-same", optarg, 0, MAX_DROP_SAME);
            break;
        case OPT_ENCODERS:
            o->encoders = option_u32("--encoders", optarg, 1, MAX_ENCODERS);
            break;
        case OPT_WAIT_DEVICE:
            o->wait_device = 1;
            break;
        case 'v':
            o->verbose = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case OPT_VERSION:
            printf("capd %s\n", CAPD_VERSION);
            exit(0);
        case ':':
            die_bad_option(argv[optind - 1], NULL, "this option needs a value");
            break;
        default:
            die_bad_option(argv[optind - 1], NULL, "unknown option");
        }
    }
    if (optind < argc)
        die_bad_option(argv[optind], NULL, "unexpected argument (options start with --)");
    if (ring_prefix_from_env(&o->prefix) < 0)
        die_bad_option("CAPD_SHM_PREFIX", getenv("CAPD_SHM_PREFIX"),
                       "use 1-32 characters from a-z, 0-9, '_' and '-'");
}

/* Returns 0, or -errno after a message; -EINVAL means a bad option (exit 2). */
static int create_source(const struct options *o, struct source **src)
{
    struct source_params p = {
        .width = o->width,
        .height = o->height,
        .fps_milli = o->fps * 1000u,
        .quality = (int)o->quality,
    };

    if (strcmp(o->source, "testpattern") == 0)
        return source_testpattern_create(&p, src);
    if (strcmp(o->source, "stdin") == 0 || strcmp(o->source, "-") == 0)
        return source_stdin_create(&p, src);
    if (strncmp(o->source, "file:", 5) == 0 && o->source[5])
        return source_file_create(&p, o->source + 5, src);
    if (strncmp(o->source, "/dev/", 5) == 0 && o->source[5]) {
        struct source_v4l2_params v = {
            .path = o->source,
            .format = o->format,
            .controls = o->controls,
            .control_count = o->control_count,
            .idle_stop_s = o->idle_stop_s,
            .drop_same = o->drop_same,
            .encoders = o->encoders,
            .wait_device = o->wait_device,
        };
        return source_v4l2_create(&p, &v, src);
    }
    die_bad_option("--source", o->source, "expected testpattern, stdin, file:PATH or /dev/videoN");
    return -EINVAL;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a blocking read or sleep must return EINTR so that the
     * main loop sees the stop request at once. */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
    struct options o;
    struct source *src = NULL;
    struct ring_writer *ring = NULL;
    struct presence *presence = NULL;
    struct ring_writer_params rp;
    uint64_t slot_size, last_beat, last_stats, last_viewers, frames_at_stats = 0;
    int rc, status = 1;

    log_init("capd", 0);
    parse_options(argc, argv, &o);
    log_init("capd", o.verbose);
    if (o.list) {
        /* --list with a camera path lists that one; otherwise every /dev/video*. */
        if (strncmp(o.source, "/dev/", 5) == 0)
            return v4l2dev_list_device(stdout, o.source) < 0 ? 1 : 0;
        return v4l2dev_list_all(stdout) < 0 ? 1 : 0;
    }
    install_signals();

    rc = create_source(&o, &src);
    if (rc < 0) {
        if (rc == -EINVAL)
            status = EXIT_USAGE;
        goto out;
    }
    slot_size = o.slot_size ? o.slot_size : src->geometry.default_slot_size;
    slot_size = round_up_pow2(slot_size, 4096);
    if (slot_size < RING_MIN_SLOT_SIZE)
        slot_size = RING_MIN_SLOT_SIZE;
    if (slot_size < src->geometry.min_slot_size) {
        fprintf(stderr,
                "capd: --slot-size %llu is too small to encode %ux%u frames (needs %zu bytes)\n",
                (unsigned long long)slot_size, src->geometry.width, src->geometry.height,
                src->geometry.min_slot_size);
        status = EXIT_USAGE;
        goto out;
    }
    if (slot_size > RING_MAX_SLOT_SIZE) {
        log_error("frames of %ux%u need %llu-byte slots, above the %u MiB limit",
                  src->geometry.width, src->geometry.height, (unsigned long long)slot_size,
                  RING_MAX_SLOT_SIZE >> 20);
        goto out;
    }

    rp = (struct ring_writer_params){
        .prefix = o.prefix,
        .name = o.name,
        .source = o.source,
        .slot_count = o.slots,
        .slot_size = (uint32_t)slot_size,
        .width = src->geometry.width,
        .height = src->geometry.height,
        .fps_milli = src->geometry.fps_milli                ? src->geometry.fps_milli
                     : strcmp(src->ops->kind, "stdin") == 0 ? 0
                                                            : o.fps * 1000u,
        .group = o.group,
        .owner = o.user ? o.user_uid : (uid_t)-1,
    };
    rc = ring_writer_create(&rp, &ring);
    if (rc < 0) {
        if (rc == -EBUSY)
            log_error("camera '%s' is already served by another capd; stop it or pick another "
                      "--name",
                      o.name);
        else
            log_error("cannot create the ring /%s%s: %s%s", o.prefix, o.name, strerror(-rc),
                      rc == -EPERM && o.group != (gid_t)-1
                          ? " (capd must be root or a member of --group)"
                          : "");
        goto out;
    }
    rc = presence_create(o.prefix, o.name, o.user ? o.user_uid : (uid_t)-1, o.group,
                         ring_writer_generation(ring), &presence);
    if (rc < 0) {
        log_error("cannot create the viewer object /%s%s%s: %s", o.prefix, o.name, PRESENCE_SUFFIX,
                  strerror(-rc));
        goto out;
    }
    if (drop_privileges(&o) < 0)
        goto out;
    log_info("camera '%s': %s %ux%u, ring /%s%s with %u slots of %llu KiB", o.name, o.source,
             src->geometry.width, src->geometry.height, o.prefix, o.name, o.slots,
             (unsigned long long)(slot_size / 1024));

    last_beat = last_stats = last_viewers = time_mono_ns();
    src->viewers = presence_count(presence);
    while (!stop_requested) {
        uint64_t now;
        rc = src->ops->step(src, ring, STEP_TIMEOUT_MS);
        if (rc == -ENODATA) {
            log_info("source ended after %llu frames", (unsigned long long)src->frames);
            break;
        }
        if (rc < 0 && rc != -EINTR)
            goto out;
        now = time_mono_ns();
        if (now - last_beat >= HEARTBEAT_INTERVAL_NS) {
            ring_writer_heartbeat(ring);
            last_beat = now;
        }
        if (now - last_viewers >= VIEWERS_INTERVAL_NS) {
            src->viewers = presence_count(presence);
            last_viewers = now;
        }
        if (now - last_stats >= STATS_INTERVAL_NS) {
            uint64_t frames = src->frames - frames_at_stats;
            uint32_t fps_milli = (uint32_t)(frames * 1000000000000ull / (now - last_stats));
            uint32_t viewers = src->viewers;
            ring_writer_set_stats(ring, fps_milli, viewers);
            log_debug("%.2f fps, %u viewer%s, %llu frames, %llu dropped", fps_milli / 1000.0,
                      viewers, viewers == 1 ? "" : "s", (unsigned long long)src->frames,
                      (unsigned long long)src->dropped);
            frames_at_stats = src->frames;
            last_stats = now;
        }
    }
    if (stop_requested)
        log_info("stopping on signal after %llu frames", (unsigned long long)src->frames);
    status = 0;
out:
    presence_destroy(presence, o.keep_ring);
    ring_writer_destroy(ring, o.keep_ring);
    if (src)
        src->ops->destroy(src);
    return status;
}
