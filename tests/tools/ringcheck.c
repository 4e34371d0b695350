/* ringcheck.c - reads a capd ring directly, validates and decodes every frame, prints a summary. */
#include "jpeg_scan.h"
#include "jpeg_strip.h"
#include "presence.h"
#include "ring.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

/*
 * ringcheck --name NAME [--frames N] [--live N] [--cards N] [--timeout S] [--expect-size WxH]
 *           [--save DIR] [--luma] [--viewer] [--wait-state STATE]
 *           [--expect-file F] [--expect-dht-inserted F]
 *
 * The test harness's view of a ring without a web server in between (used inside the vivid
 * VM). Only frames published after ringcheck started count: the ring still holds older ones.
 * Every counted frame must be one complete, structurally valid JPEG (jpeg_scan) that decodes
 * without warnings (TurboJPEG, to greyscale) at the geometry the slot announces. It stops when
 * every requested count is reached (and the ring is in --wait-state, if given), then prints
 *   frames= live= cards= bad= torn= sizes= states= fps= luma_mean= first_live_ms=
 * on stdout. Exit status: 0 success, 1 bad frames, 2 usage, 3 timeout, 4 ring never found.
 *
 * --viewer claims a slot in the presence object like a responder does, so an on-demand capd
 * opens its camera; first_live_ms is then the time from the claim to the first live frame.
 */

enum {
    EXIT_BAD = 1,
    EXIT_TIMEOUT = 3,
    EXIT_NO_RING = 4,
};

#define SLICE_MS           100 /* longest wait between presence beats and deadline checks */
#define MAX_SIZES          8
#define MAX_REPORTED_BADS  5
#define DEFAULT_FRAMES     10
#define DEFAULT_TIMEOUT_S  10
#define MAX_DECODED_PIXELS (64u * 1024 * 1024)

struct options {
    const char *name;
    uint64_t frames, live, cards; /* counts to reach; 0 = no requirement */
    uint32_t timeout_s;
    bool has_expect_size;
    uint32_t expect_w, expect_h;
    const char *save_dir;
    bool luma;
    bool viewer;
    int wait_state; /* enum ring_state, -1 = none */
    const char *expect_file;
    const char *expect_dht_file;
};

/* A whole file read into memory; owned by the struct. */
struct blob {
    uint8_t *data;
    size_t size;
};

struct tally {
    uint64_t frames, live, cards, bad, torn;
    uint32_t sizes[MAX_SIZES][2];
    int size_count;
    uint32_t states_seen;   /* bit per enum ring_state */
    uint8_t state_order[8]; /* in order of first sighting */
    int state_count;
    uint64_t first_live_ns, last_live_ns, live_for_fps;
    double luma_sum;
    uint64_t luma_frames;
    uint64_t start_ns; /* frames published before this do not count */
    uint64_t join_ns;  /* when the viewer claim was made (start_ns without --viewer) */
};

static volatile int stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *f)
{
    fputs("usage: ringcheck --name NAME [--frames N] [--live N] [--cards N] [--timeout S]\n"
          "                 [--expect-size WxH] [--save DIR] [--luma] [--viewer]\n"
          "                 [--wait-state starting|running|idle|no-signal]\n"
          "                 [--expect-file F] [--expect-dht-inserted F]\n"
          "Reads the ring NAME (CAPD_SHM_PREFIX honoured); counts only frames published after\n"
          "the start. --frames/--live/--cards: stop once that many frames / live frames /\n"
          "cards arrived (default --frames 10). --viewer: join the presence object like a\n"
          "responder. --expect-file: every live frame must equal F byte for byte.\n"
          "--expect-dht-inserted: every live frame must have a DHT and equal F (a JPEG\n"
          "without DHT) once its DHT segments are removed.\n"
          "Exit: 0 ok, 1 bad frames, 2 usage, 3 timeout, 4 ring never found.\n",
          f);
}

static int state_from_name(const char *s)
{
    for (int st = RING_STATE_STARTING; st <= RING_STATE_STOPPED; st++) {
        if (strcmp(s, ring_state_name((uint32_t)st)) == 0)
            return st;
    }
    return -1;
}

static void parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"name", required_argument, NULL, 'n'},
        {"frames", required_argument, NULL, 'f'},
        {"live", required_argument, NULL, 'l'},
        {"cards", required_argument, NULL, 'c'},
        {"timeout", required_argument, NULL, 't'},
        {"expect-size", required_argument, NULL, 'S'},
        {"save", required_argument, NULL, 's'},
        {"luma", no_argument, NULL, 'L'},
        {"viewer", no_argument, NULL, 'V'},
        {"wait-state", required_argument, NULL, 'w'},
        {"expect-file", required_argument, NULL, 'e'},
        {"expect-dht-inserted", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    *o = (struct options){.timeout_s = DEFAULT_TIMEOUT_S, .wait_state = -1};
    bool any_count = false;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!ring_name_valid(optarg))
                die_bad_option("--name", optarg, "not a valid camera name");
            o->name = optarg;
            break;
        case 'f':
        case 'l':
        case 'c': {
            uint64_t *dst = c == 'f' ? &o->frames : c == 'l' ? &o->live : &o->cards;
            if (parse_u64(optarg, 0, UINT32_MAX, dst) < 0)
                die_bad_option(argv[optind - 1], optarg, "expected a count");
            any_count = true;
            break;
        }
        case 't':
            if (parse_u32(optarg, 1, 3600, &o->timeout_s) < 0)
                die_bad_option("--timeout", optarg, "expected seconds in [1, 3600]");
            break;
        case 'S':
            if (parse_size(optarg, 1, RING_MAX_DIMENSION, &o->expect_w, &o->expect_h) < 0)
                die_bad_option("--expect-size", optarg, "expected WxH");
            o->has_expect_size = true;
            break;
        case 's':
            o->save_dir = optarg;
            break;
        case 'L':
            o->luma = true;
            break;
        case 'V':
            o->viewer = true;
            break;
        case 'w':
            o->wait_state = state_from_name(optarg);
            if (o->wait_state < 0)
                die_bad_option("--wait-state", optarg, "not a ring state name");
            break;
        case 'e':
            o->expect_file = optarg;
            break;
        case 'd':
            o->expect_dht_file = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(EXIT_USAGE);
        }
    }
    if (optind < argc)
        die_bad_option(argv[optind], NULL, "unexpected argument");
    if (!o->name)
        die_bad_option("--name", NULL, "is required");
    if (!any_count && o->wait_state < 0)
        o->frames = DEFAULT_FRAMES;
}

/* Reads a whole regular file. Returns 0 or -errno. */
static int blob_read(const char *path, struct blob *b)
{
    FILE *f = fopen(path, "rb");
    int rc = 0;
    long len;

    *b = (struct blob){0};
    if (!f)
        return neg_errno();
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        rc = neg_errno();
        goto out;
    }
    b->data = xmalloc(len > 0 ? (size_t)len : 1);
    b->size = (size_t)len;
    if (fread(b->data, 1, b->size, f) != b->size)
        rc = -EIO;
out:
    fclose(f);
    return rc;
}

static void note_state(struct tally *t, uint32_t state)
{
    if (state > RING_STATE_STOPPED || (t->states_seen & (1u << state)))
        return;
    t->states_seen |= 1u << state;
    if (t->state_count < (int)ARRAY_SIZE(t->state_order))
        t->state_order[t->state_count++] = (uint8_t)state;
}

static void note_size(struct tally *t, uint32_t w, uint32_t h)
{
    for (int i = 0; i < t->size_count; i++) {
        if (t->sizes[i][0] == w && t->sizes[i][1] == h)
            return;
    }
    if (t->size_count < MAX_SIZES) {
        t->sizes[t->size_count][0] = w;
        t->sizes[t->size_count][1] = h;
        t->size_count++;
    }
}

/* State for checking frames; buffers grow to the largest frame seen and are reused. */
struct checker {
    const struct options *opt;
    tjhandle tj;
    uint8_t *gray;
    size_t gray_cap;
    uint8_t *stripped;
    size_t stripped_cap;
    struct blob expect;     /* --expect-file */
    struct blob expect_dht; /* --expect-dht-inserted, itself stripped of any DHT */
    char why[160];          /* reason of the last rejection */
};

static void grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (*cap < need) {
        *buf = xrealloc(*buf, need);
        *cap = need;
    }
}

/* Decodes the frame to greyscale; returns 0 and its mean luma, or -EBADMSG with c->why set. */
static int decode_gray(struct checker *c, const struct ring_frame *f, double *mean)
{
    int w, h, subsamp, colorspace;

    if (tjDecompressHeader3(c->tj, f->data, f->size, &w, &h, &subsamp, &colorspace) != 0) {
        snprintf(c->why, sizeof(c->why), "header: %s", tjGetErrorStr2(c->tj));
        return -EBADMSG;
    }
    if ((uint32_t)w != f->width || (uint32_t)h != f->height) {
        snprintf(c->why, sizeof(c->why), "JPEG is %dx%d, slot says %ux%u", w, h, f->width,
                 f->height);
        return -EBADMSG;
    }
    if ((uint64_t)w * (uint64_t)h > MAX_DECODED_PIXELS) {
        snprintf(c->why, sizeof(c->why), "%dx%d is too large to decode", w, h);
        return -EBADMSG;
    }
    grow(&c->gray, &c->gray_cap, (size_t)w * (size_t)h);
    /* STOPONWARNING: corrupt entropy data is a warning in libjpeg, and a bad frame here. */
    if (tjDecompress2(c->tj, f->data, f->size, c->gray, w, 0, h, TJPF_GRAY, TJFLAG_STOPONWARNING) !=
        0) {
        snprintf(c->why, sizeof(c->why), "decode: %s", tjGetErrorStr2(c->tj));
        return -EBADMSG;
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++)
        sum += c->gray[i];
    *mean = (double)sum / ((double)w * (double)h);
    return 0;
}

/* Validates one frame. Returns 0, or -EBADMSG with c->why set. */
static int check_frame(struct checker *c, const struct ring_frame *f, double *mean)
{
    struct jpeg_scan_info info;
    int live = !(f->flags & RING_FRAME_CARD);

    if (jpeg_scan_check(f->data, f->size, &info) != 0) {
        snprintf(c->why, sizeof(c->why), "not one complete JPEG (%zu bytes)", f->size);
        return -EBADMSG;
    }
    if (info.length != f->size) {
        snprintf(c->why, sizeof(c->why), "%zu bytes after EOI", f->size - info.length);
        return -EBADMSG;
    }
    if (decode_gray(c, f, mean) < 0)
        return -EBADMSG;
    if (!live)
        return 0;
    if (c->opt->has_expect_size &&
        (f->width != c->opt->expect_w || f->height != c->opt->expect_h)) {
        snprintf(c->why, sizeof(c->why), "%ux%u, expected %ux%u", f->width, f->height,
                 c->opt->expect_w, c->opt->expect_h);
        return -EBADMSG;
    }
    if (c->expect.data &&
        (f->size != c->expect.size || memcmp(f->data, c->expect.data, f->size) != 0)) {
        snprintf(c->why, sizeof(c->why), "differs from %s (%zu vs %zu bytes)", c->opt->expect_file,
                 f->size, c->expect.size);
        return -EBADMSG;
    }
    if (c->expect_dht.data) {
        if (!info.has_dht) {
            snprintf(c->why, sizeof(c->why), "no DHT before SOS");
            return -EBADMSG;
        }
        grow(&c->stripped, &c->stripped_cap, f->size);
        size_t n = jpeg_strip_dht(f->data, f->size, c->stripped);
        if (n != c->expect_dht.size || memcmp(c->stripped, c->expect_dht.data, n) != 0) {
            snprintf(c->why, sizeof(c->why),
                     "without its DHT it differs from %s (%zu vs %zu bytes)",
                     c->opt->expect_dht_file, n, c->expect_dht.size);
            return -EBADMSG;
        }
    }
    return 0;
}

static void save_frame(const char *dir, const struct ring_frame *f, int bad)
{
    char path[4096];
    const char *kind = bad ? "bad" : (f->flags & RING_FRAME_CARD) ? "card" : "frame";
    FILE *out;

    snprintf(path, sizeof(path), "%s/%s-%06llu.jpg", dir, kind, (unsigned long long)f->seq);
    out = fopen(path, "wb");
    if (!out || fwrite(f->data, 1, f->size, out) != f->size)
        fprintf(stderr, "ringcheck: cannot save %s: %s\n", path, strerror(errno));
    if (out)
        fclose(out);
}

static void account(struct checker *c, struct tally *t, const struct ring_frame *f)
{
    double mean = 0;
    int live = !(f->flags & RING_FRAME_CARD);
    int rc = check_frame(c, f, &mean);

    t->frames++;
    note_size(t, f->width, f->height);
    if (c->opt->save_dir)
        save_frame(c->opt->save_dir, f, rc < 0);
    if (rc < 0) {
        if (t->bad < MAX_REPORTED_BADS)
            fprintf(stderr, "ringcheck: bad frame %llu (%s): %s\n", (unsigned long long)f->seq,
                    live ? "live" : "card", c->why);
        t->bad++;
        return;
    }
    if (!live) {
        t->cards++;
        return;
    }
    t->live++;
    if (!t->first_live_ns)
        t->first_live_ns = f->publish_ns;
    t->last_live_ns = f->publish_ns;
    t->live_for_fps++;
    t->luma_sum += mean;
    t->luma_frames++;
}

static bool counts_reached(const struct options *o, const struct tally *t)
{
    return t->frames >= o->frames && t->live >= o->live && t->cards >= o->cards;
}

static void print_summary(const struct options *o, const struct tally *t)
{
    printf("frames=%llu live=%llu cards=%llu bad=%llu torn=%llu sizes=",
           (unsigned long long)t->frames, (unsigned long long)t->live, (unsigned long long)t->cards,
           (unsigned long long)t->bad, (unsigned long long)t->torn);
    for (int i = 0; i < t->size_count; i++)
        printf("%s%ux%u", i ? "," : "", t->sizes[i][0], t->sizes[i][1]);
    if (!t->size_count)
        printf("-");
    printf(" states=");
    for (int i = 0; i < t->state_count; i++)
        printf("%s%s", i ? "," : "", ring_state_name(t->state_order[i]));
    if (!t->state_count)
        printf("-");
    double span = (double)(t->last_live_ns - t->first_live_ns) / 1e9;
    printf(" fps=%.1f",
           t->live_for_fps >= 2 && span > 0 ? (double)(t->live_for_fps - 1) / span : 0.0);
    if (o->luma && t->luma_frames)
        printf(" luma_mean=%.1f", t->luma_sum / (double)t->luma_frames);
    else
        printf(" luma_mean=-");
    if (t->first_live_ns)
        printf(" first_live_ms=%.0f", (double)(t->first_live_ns - t->join_ns) / 1e6);
    else
        printf(" first_live_ms=-");
    printf("\n");
    fflush(stdout);
}

/* Keeps this process counted as a viewer of the ring generation it reads. */
static void presence_follow(struct presence **p, const struct options *o, const char *prefix,
                            uint64_t generation, struct tally *t)
{
    if (*p && presence_generation(*p) != generation) {
        presence_destroy(*p, 0);
        *p = NULL;
    }
    if (!*p) {
        if (presence_open(prefix, o->name, p) < 0)
            return;
        if (presence_generation(*p) != generation || presence_join(*p) < 0) {
            presence_destroy(*p, 0);
            *p = NULL;
            return;
        }
        if (!t->join_ns)
            t->join_ns = time_mono_ns();
    }
    presence_beat(*p);
}

static int load_expectations(struct checker *c, const struct options *o)
{
    int rc;

    if (o->expect_file && (rc = blob_read(o->expect_file, &c->expect)) < 0) {
        fprintf(stderr, "ringcheck: %s: %s\n", o->expect_file, strerror(-rc));
        return rc;
    }
    if (o->expect_dht_file) {
        struct blob raw;
        rc = blob_read(o->expect_dht_file, &raw);
        if (rc < 0) {
            fprintf(stderr, "ringcheck: %s: %s\n", o->expect_dht_file, strerror(-rc));
            free(raw.data);
            return rc;
        }
        c->expect_dht.data = xmalloc(raw.size ? raw.size : 1);
        c->expect_dht.size = jpeg_strip_dht(raw.data, raw.size, c->expect_dht.data);
        free(raw.data);
        if (!c->expect_dht.size) {
            fprintf(stderr, "ringcheck: %s: not a JPEG\n", o->expect_dht_file);
            return -EINVAL;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    struct checker c = {0};
    struct tally t = {0};
    struct ring_reader *reader = NULL;
    struct presence *presence = NULL;
    struct ring_frame frame = {0};
    struct ring_info info;
    const char *prefix;
    bool attached = false, done = false;
    int status = 0;

    log_init("ringcheck", 0);
    parse_options(argc, argv, &o);
    if (ring_prefix_from_env(&prefix) < 0)
        die_bad_option("CAPD_SHM_PREFIX", getenv("CAPD_SHM_PREFIX"), "not a valid prefix");
    if (o.save_dir && mkdir(o.save_dir, 0755) < 0 && errno != EEXIST)
        die_bad_option("--save", o.save_dir, strerror(errno));
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    c.opt = &o;
    c.tj = tjInitDecompress();
    if (!c.tj) {
        fprintf(stderr, "ringcheck: tjInitDecompress: %s\n", tjGetErrorStr2(NULL));
        return EXIT_BAD;
    }
    if (load_expectations(&c, &o) < 0) {
        status = EXIT_USAGE;
        goto out;
    }

    reader = ring_reader_create(prefix, o.name);
    t.start_ns = time_mono_ns();
    t.join_ns = o.viewer ? 0 : t.start_ns;
    uint64_t deadline = t.start_ns + (uint64_t)o.timeout_s * 1000000000u;
    while (!done && !stop_requested && time_mono_ns() < deadline) {
        int rc = ring_reader_next(reader, &frame, SLICE_MS, &stop_requested);
        if (ring_reader_info(reader, &info) == 0) {
            attached = true;
            note_state(&t, info.state);
            if (o.viewer)
                presence_follow(&presence, &o, prefix, info.generation, &t);
        }
        /* A viewer counts frames from its claim on, anyone else from the start. */
        uint64_t since = o.viewer ? t.join_ns : t.start_ns;
        if (rc == 0 && since && frame.publish_ns >= since) {
            if (frame.size == 0)
                t.torn++;
            else
                account(&c, &t, &frame);
        }
        done = counts_reached(&o, &t) &&
               (o.wait_state < 0 || (attached && info.state == (uint32_t)o.wait_state));
    }
    if (!attached) {
        fprintf(stderr, "ringcheck: ring '%s%s' never became available\n", prefix, o.name);
        status = EXIT_NO_RING;
    } else if (t.bad) {
        status = EXIT_BAD;
    } else if (!done) {
        fprintf(stderr, "ringcheck: timed out after %u s\n", o.timeout_s);
        status = EXIT_TIMEOUT;
    }
    print_summary(&o, &t);
out:
    if (presence)
        presence_leave(presence);
    presence_destroy(presence, 0);
    ring_frame_free(&frame);
    ring_reader_destroy(reader);
    tjDestroy(c.tj);
    free(c.gray);
    free(c.stripped);
    free(c.expect.data);
    free(c.expect_dht.data);
    return status;
}
