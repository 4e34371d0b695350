/* ring_bench.c - ring microbenchmark: publish-to-wake-up latency with 1..N reader processes. */
#include "ring.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * One writer (this process) publishes frames into a private ring; R forked
 * readers sit in ring_reader_next() like responder threads do. Each reader
 * stamps CLOCK_MONOTONIC when ring_reader_next() returns and subtracts the
 * frame's publish_ns, which ring_writer_commit() stored just before its
 * FUTEX_WAKE. The latency therefore covers the wake-up, the scheduling of the
 * reader and its copy of the frame out of the ring (the seqlock read). The
 * samples go back through a shared anonymous mapping.
 *
 * Two modes: paced (FPS frames a second, as a camera does) and burst (frames
 * back to back: readers fall behind and skip to the newest frame, as slow
 * responders do).
 */

#define MAX_READERS        1000u
#define MAX_CONFIGS        16
#define SAMPLES_PER_READER 8192u
#define READER_TIMEOUT_MS  50
#define READY_TIMEOUT_NS   (10ull * 1000000000u)
#define SETTLE_NS          (200ull * 1000000u) /* for readers to reach FUTEX_WAIT */

struct sample {
    uint64_t seq;
    uint64_t latency_ns;
};

struct reader_slot {
    _Atomic uint32_t count;   /* samples stored */
    _Atomic uint32_t dropped; /* samples beyond SAMPLES_PER_READER */
    struct sample samples[SAMPLES_PER_READER];
};

/* Shared by the writer and its readers (MAP_SHARED | MAP_ANONYMOUS, set up before fork). */
struct shared {
    _Atomic uint32_t ready;
    volatile int stop;
    struct reader_slot readers[];
};

struct options {
    uint32_t reader_counts[MAX_CONFIGS];
    int config_count;
    uint32_t frame_size, slots, burst;
    double fps, seconds;
};

struct result {
    uint64_t published, delivered, samples, dropped;
    uint64_t min_delivered;
    uint64_t p50, p99, max;          /* wake-up latency, ns */
    uint64_t commit_p50, commit_p99; /* ring_writer_commit() duration, ns */
};

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The value at quantile q of n sorted values (nearest rank). */
static uint64_t quantile(const uint64_t *sorted, size_t n, double q)
{
    size_t rank;
    if (n == 0)
        return 0;
    rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    return sorted[(rank > n ? n : rank) - 1];
}

/* A reader process: attach, say ready, then record every frame until told to stop. */
static void reader_main(struct shared *sh, uint32_t index, const char *prefix)
{
    struct ring_reader *reader = ring_reader_create(prefix, "bench");
    struct reader_slot *slot = &sh->readers[index];
    struct ring_frame frame;
    int rc;

    memset(&frame, 0, sizeof(frame));
    /* Dies with the writer, so a crashed run leaves no readers behind. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    while ((rc = ring_reader_check(reader)) < 0 && !sh->stop)
        usleep(1000);
    atomic_fetch_add(&sh->ready, 1);
    while (!sh->stop) {
        rc = ring_reader_next(reader, &frame, READER_TIMEOUT_MS, &sh->stop);
        if (rc != 0)
            continue;
        uint64_t now = time_mono_ns();
        uint32_t n = atomic_load_explicit(&slot->count, memory_order_relaxed);
        if (n == SAMPLES_PER_READER) {
            atomic_fetch_add_explicit(&slot->dropped, 1, memory_order_relaxed);
            continue;
        }
        slot->samples[n] = (struct sample){frame.seq, now - frame.publish_ns};
        /* Release: the parent reads the sample after seeing the count (after waitpid, too). */
        atomic_store_explicit(&slot->count, n + 1, memory_order_release);
    }
    ring_frame_free(&frame);
    ring_reader_destroy(reader);
    _exit(0);
}

/* Publishes one frame; returns the time ring_writer_commit() took, in ns. */
static uint64_t publish_one(struct ring_writer *w, const uint8_t *jpeg, uint32_t size)
{
    struct ring_frame_meta meta = {.width = 1280, .height = 720, .capture_us = time_real_us()};
    size_t capacity;
    uint8_t *dst = ring_writer_begin(w, &capacity);
    uint64_t t0, t1;

    memcpy(dst, jpeg, size);
    t0 = time_mono_ns();
    ring_writer_commit(w, size, &meta);
    t1 = time_mono_ns();
    return t1 - t0;
}

/* One configuration: R readers, paced or burst. Returns 0 or -errno. */
static int run_config(const struct options *opt, struct shared *sh, const char *prefix,
                      uint32_t readers, bool burst, const uint8_t *jpeg, struct result *res)
{
    struct ring_writer_params params = {
        .prefix = prefix,
        .name = "bench",
        .source = "ring_bench",
        .slot_count = opt->slots,
        .slot_size = (uint32_t)round_up_pow2(opt->frame_size, 4096),
        .width = 1280,
        .height = 720,
        .fps_milli = (uint32_t)(opt->fps * 1000),
        .group = (gid_t)-1,
    };
    uint64_t frames = burst ? opt->burst : (uint64_t)(opt->fps * opt->seconds + 0.5);
    uint64_t *commit_ns = xcalloc(frames + 1, sizeof(*commit_ns));
    uint64_t *lat = NULL;
    pid_t *pids = xcalloc(readers, sizeof(*pids));
    struct ring_writer *w = NULL;
    uint32_t started = 0;
    uint64_t deadline, t0;
    size_t n = 0;
    int rc;

    memset(res, 0, sizeof(*res));
    sh->stop = 0;
    atomic_store(&sh->ready, 0);
    for (uint32_t i = 0; i < readers; i++) {
        atomic_store(&sh->readers[i].count, 0);
        atomic_store(&sh->readers[i].dropped, 0);
    }
    rc = ring_writer_create(&params, &w);
    if (rc < 0)
        goto out;
    for (; started < readers; started++) {
        pid_t pid = fork();
        if (pid < 0) {
            rc = neg_errno();
            goto out;
        }
        if (pid == 0)
            reader_main(sh, started, prefix);
        pids[started] = pid;
    }
    deadline = time_mono_ns() + READY_TIMEOUT_NS;
    while (atomic_load(&sh->ready) < readers) {
        if (time_mono_ns() > deadline) {
            rc = -ETIMEDOUT;
            goto out;
        }
        ring_writer_heartbeat(w);
        usleep(1000);
    }
    time_sleep_until_ns(time_mono_ns() + SETTLE_NS);

    t0 = time_mono_ns();
    for (uint64_t i = 0; i < frames; i++) {
        if (!burst)
            time_sleep_until_ns(t0 + (uint64_t)((double)i * 1e9 / opt->fps));
        commit_ns[i] = publish_one(w, jpeg, opt->frame_size);
    }
    res->published = frames;
    /* Let the last frames reach every reader before stopping them. */
    time_sleep_until_ns(time_mono_ns() + SETTLE_NS);
    rc = 0;
out:
    sh->stop = 1;
    for (uint32_t i = 0; i < started; i++)
        waitpid(pids[i], NULL, 0);
    ring_writer_destroy(w, 0);
    if (rc == 0) {
        for (uint32_t i = 0; i < readers; i++)
            n += atomic_load_explicit(&sh->readers[i].count, memory_order_acquire);
        lat = xcalloc(n + 1, sizeof(*lat));
        n = 0;
        res->min_delivered = UINT64_MAX;
        for (uint32_t i = 0; i < readers; i++) {
            const struct reader_slot *slot = &sh->readers[i];
            uint32_t count = atomic_load_explicit(&slot->count, memory_order_acquire);
            uint32_t dropped = atomic_load_explicit(&slot->dropped, memory_order_relaxed);
            for (uint32_t k = 0; k < count; k++)
                lat[n++] = slot->samples[k].latency_ns;
            res->delivered += count + dropped;
            res->dropped += dropped;
            if (count + dropped < res->min_delivered)
                res->min_delivered = count + dropped;
        }
        res->samples = n;
        qsort(lat, n, sizeof(*lat), compare_u64);
        res->p50 = quantile(lat, n, 0.50);
        res->p99 = quantile(lat, n, 0.99);
        res->max = n ? lat[n - 1] : 0;
        qsort(commit_ns, frames, sizeof(*commit_ns), compare_u64);
        res->commit_p50 = quantile(commit_ns, frames, 0.50);
        res->commit_p99 = quantile(commit_ns, frames, 0.99);
    }
    free(lat);
    free(pids);
    free(commit_ns);
    return rc;
}

static void parse_reader_counts(const char *arg, struct options *opt)
{
    char copy[256], *save = NULL;

    if (strlen(arg) >= sizeof(copy))
        die_bad_option("--readers", arg, "too long");
    snprintf(copy, sizeof(copy), "%s", arg);
    opt->config_count = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (opt->config_count == MAX_CONFIGS)
            die_bad_option("--readers", arg, "at most 16 counts");
        if (parse_u32(tok, 1, MAX_READERS, &opt->reader_counts[opt->config_count++]) < 0)
            die_bad_option("--readers", arg, "want a comma-separated list of 1..1000");
    }
    if (opt->config_count == 0)
        die_bad_option("--readers", arg, "want a comma-separated list of 1..1000");
}

static void usage(FILE *out)
{
    fprintf(out, "usage: ring_bench [options]\n"
                 "  Latency from ring_writer_commit() (publish_ns) to the return of\n"
                 "  ring_reader_next() in R forked reader processes, paced and in bursts.\n"
                 "  --readers LIST    reader process counts (default 1,100)\n"
                 "  --frame-kb N      frame size in KB (default 100)\n"
                 "  --fps F           paced mode rate (default 30)\n"
                 "  --seconds S       paced mode length (default 5)\n"
                 "  --burst N         frames published back to back in burst mode (default 300;\n"
                 "                    0 skips it)\n"
                 "  --slots N         ring slots (default 8)\n");
}

static void parse_options(int argc, char **argv, struct options *opt)
{
    static const struct option longopts[] = {
        {"readers", required_argument, NULL, 'r'}, {"frame-kb", required_argument, NULL, 'k'},
        {"fps", required_argument, NULL, 'f'},     {"seconds", required_argument, NULL, 's'},
        {"burst", required_argument, NULL, 'b'},   {"slots", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    uint32_t value;
    int c;

    opt->reader_counts[0] = 1;
    opt->reader_counts[1] = 100;
    opt->config_count = 2;
    opt->frame_size = 100 * 1024;
    opt->slots = RING_DEFAULT_SLOTS;
    opt->burst = 300;
    opt->fps = 30;
    opt->seconds = 5;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            parse_reader_counts(optarg, opt);
            break;
        case 'k':
            if (parse_u32(optarg, 1, 16384, &value) < 0)
                die_bad_option("--frame-kb", optarg, "want 1..16384");
            opt->frame_size = value * 1024;
            break;
        case 'f':
            if (parse_u32(optarg, 1, 1000, &value) < 0)
                die_bad_option("--fps", optarg, "want 1..1000");
            opt->fps = value;
            break;
        case 's':
            if (parse_u32(optarg, 1, 3600, &value) < 0)
                die_bad_option("--seconds", optarg, "want 1..3600");
            opt->seconds = value;
            break;
        case 'b':
            if (parse_u32(optarg, 0, 100000, &opt->burst) < 0)
                die_bad_option("--burst", optarg, "want 0..100000");
            break;
        case 'S':
            if (parse_u32(optarg, RING_MIN_SLOTS, RING_MAX_SLOTS, &opt->slots) < 0)
                die_bad_option("--slots", optarg, "want 2..256");
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(EXIT_USAGE);
        }
    }
    if (optind != argc) {
        usage(stderr);
        exit(EXIT_USAGE);
    }
}

int main(int argc, char **argv)
{
    struct options opt;
    struct shared *sh;
    uint32_t max_readers = 0;
    size_t shared_size;
    uint8_t *jpeg;
    char prefix[RING_PREFIX_MAX + 1];
    int failed = 0;

    log_init("ring_bench", 0);
    memset(&opt, 0, sizeof(opt));
    parse_options(argc, argv, &opt);
    for (int i = 0; i < opt.config_count; i++)
        if (opt.reader_counts[i] > max_readers)
            max_readers = opt.reader_counts[i];

    /* A private prefix: never a real camera's ring, and no clash between parallel runs. */
    snprintf(prefix, sizeof(prefix), "rb%ld-", (long)getpid());
    shared_size = sizeof(struct shared) + (size_t)max_readers * sizeof(struct reader_slot);
    sh = mmap(NULL, shared_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        log_error("mmap %zu bytes: %s", shared_size, strerror(errno));
        return 1;
    }
    /* Something JPEG-shaped (the reader checks SOI/EOI), with bytes that do not compress. */
    jpeg = xmalloc(opt.frame_size);
    for (uint32_t i = 0; i < opt.frame_size; i++)
        jpeg[i] = (uint8_t)(i * 2654435761u >> 24);
    jpeg[0] = 0xFF;
    jpeg[1] = 0xD8;
    jpeg[opt.frame_size - 2] = 0xFF;
    jpeg[opt.frame_size - 1] = 0xD9;

    printf("ring_bench: %ld cores; %u KB frames, %u slots; latency = return of "
           "ring_reader_next() - publish_ns\n",
           sysconf(_SC_NPROCESSORS_ONLN), opt.frame_size / 1024, opt.slots);
    printf("%7s  %-14s %9s %9s %9s %9s %9s %9s %10s %10s\n", "readers", "mode", "published",
           "mean/rdr", "min/rdr", "p50 us", "p99 us", "max us", "commit p50", "commit p99");
    for (int i = 0; i < opt.config_count; i++) {
        for (int mode = 0; mode < 2; mode++) {
            bool burst = mode == 1;
            char name[48];
            struct result res;
            int rc;

            if (burst && opt.burst == 0)
                continue;
            if (burst)
                snprintf(name, sizeof(name), "burst");
            else
                snprintf(name, sizeof(name), "%g fps, %g s", opt.fps, opt.seconds);
            rc = run_config(&opt, sh, prefix, opt.reader_counts[i], burst, jpeg, &res);
            if (rc < 0) {
                printf("%7u  %-14s failed: %s\n", opt.reader_counts[i], name, strerror(-rc));
                failed = 1;
                continue;
            }
            printf("%7u  %-14s %9llu %9.1f %9llu %9.1f %9.1f %9.1f %10.1f %10.1f\n",
                   opt.reader_counts[i], name, (unsigned long long)res.published,
                   (double)res.delivered / opt.reader_counts[i],
                   (unsigned long long)res.min_delivered, (double)res.p50 / 1e3,
                   (double)res.p99 / 1e3, (double)res.max / 1e3, (double)res.commit_p50 / 1e3,
                   (double)res.commit_p99 / 1e3);
            if (res.dropped)
                printf("         (%llu samples beyond %u per reader not kept)\n",
                       (unsigned long long)res.dropped, SAMPLES_PER_READER);
            fflush(stdout);
        }
    }
    free(jpeg);
    munmap(sh, shared_size);
    return failed;
}
