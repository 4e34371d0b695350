/* capd.c - the capture daemon: owns one camera (or test source) and publishes JPEG frames to a
 * ring. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "presence.h"
#include "ring.h"
#include "source.h"
#include "util.h"

/* How long one source step may block, so heartbeats and stats keep flowing. */
#define STEP_TIMEOUT_MS       100
#define HEARTBEAT_INTERVAL_NS (100u * 1000000u)
#define STATS_INTERVAL_NS     (1000u * 1000000u)

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
    int keep_ring;
    int verbose;
};

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: capd [--name NAME] [--source SRC] [options]\n"
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
        "                          /dev/videoN  a V4L2 camera (not supported yet in this version)\n"
        "      --size WxH        frame size of the test pattern (default: 640x480)\n"
        "      --fps N           frames per second for testpattern and file, 1-120 (default: 30)\n"
        "      --quality Q       JPEG quality when encoding, 1-100 (default: 80)\n"
        "      --slots N         frames the ring holds, 2-256 (default: 8)\n"
        "      --slot-size BYTES bytes per ring slot, with optional K or M suffix (default:\n"
        "                        the largest JPEG of --size for testpattern, 1.5x the largest\n"
        "                        file for file:, and at least 4M for stdin); frames that do not\n"
        "                        fit are dropped and counted\n"
        "      --group G         hand the ring (0640) and viewer objects (0660) to group G,\n"
        "                        e.g. the web server's group www-data\n"
        "      --keep-ring       leave the shared-memory objects in place at exit\n"
        "  -v, --verbose         log statistics every second\n"
        "  -h, --help            show this help and exit\n"
        "      --version         show the version and exit\n"
        "\n"
        "Environment:\n"
        "  CAPD_SHM_PREFIX       shared-memory name prefix (default: capd-); responders must\n"
        "                        use the same value\n"
        "\n"
        "SIGTERM or SIGINT stops capd cleanly and removes its shared-memory objects.\n"
        "Exit status: 0 after a clean stop (or the end of stdin), 2 for a bad option,\n"
        "1 for any other error.\n");
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

static void parse_options(int argc, char **argv, struct options *o)
{
    enum {
        OPT_SIZE = 256,
        OPT_FPS,
        OPT_QUALITY,
        OPT_SLOTS,
        OPT_SLOT_SIZE,
        OPT_GROUP,
        OPT_KEEP,
        OPT_VERSION
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
        {"keep-ring", no_argument, NULL, OPT_KEEP},
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
        case OPT_KEEP:
            o->keep_ring = 1;
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
    if (strncmp(o->source, "/dev/", 5) == 0)
        die_bad_option("--source", o->source,
                       "V4L2 cameras are not supported by this version yet; use testpattern, stdin "
                       "or file:PATH");
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
    uint64_t slot_size, last_beat, last_stats, frames_at_stats = 0;
    int rc, status = 1;

    log_init("capd", 0);
    parse_options(argc, argv, &o);
    log_init("capd", o.verbose);
    install_signals();

    if (create_source(&o, &src) < 0)
        goto out;
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
        .fps_milli = strcmp(src->ops->kind, "stdin") == 0 ? 0 : o.fps * 1000u,
        .group = o.group,
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
    rc = presence_create(o.prefix, o.name, o.group, ring_writer_generation(ring), &presence);
    if (rc < 0) {
        log_error("cannot create the viewer object /%s%s%s: %s", o.prefix, o.name, PRESENCE_SUFFIX,
                  strerror(-rc));
        goto out;
    }
    log_info("camera '%s': %s %ux%u, ring /%s%s with %u slots of %llu KiB", o.name, o.source,
             src->geometry.width, src->geometry.height, o.prefix, o.name, o.slots,
             (unsigned long long)(slot_size / 1024));

    last_beat = last_stats = time_mono_ns();
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
        if (now - last_stats >= STATS_INTERVAL_NS) {
            uint64_t frames = src->frames - frames_at_stats;
            uint32_t fps_milli = (uint32_t)(frames * 1000000000000ull / (now - last_stats));
            uint32_t viewers = presence_count(presence);
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
