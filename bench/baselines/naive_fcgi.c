/* naive_fcgi.c - baseline: the obvious libfcgi MJPEG responder (mutex-shared frame, FCGX_PutStr).
 */
/*
 * This is the design capd is measured against, written the way the libfcgi examples and most
 * tutorials suggest, without tuning:
 *   - a capture thread loops a folder of JPEGs (loaded into memory at start) at --fps and
 *     publishes the newest one under a mutex, waking every viewer with a condvar broadcast;
 *   - a pool of --threads worker threads (default stacks) each accepts one request with
 *     FCGX_Accept_r, then for every new frame copies it out under the mutex and writes the part
 *     headers, the frame and the boundary with FCGX_PutStr (libfcgi's 8 KB records), then
 *     FCGX_FFlush.
 * Run it behind lighttpd with bench/baselines/lighttpd-naive.conf (lighttpd spawns it and
 * passes the listening socket on stdin). The stream format matches capd's "full" layout:
 * a boundary line first, then per frame Content-Type, Content-Length and X-Timestamp (the
 * publish time, CLOCK_REALTIME), the JPEG, and the boundary line at once.
 * It is a stand-alone benchmark program: it links only libfcgi and libc.
 */
#include <dirent.h>
#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BOUNDARY        "naiveframe"
#define MAX_FRAME_BYTES (64u * 1024u * 1024u)

struct frame {
    uint8_t *data;
    size_t len;
};

/* The newest frame, shared by the capture thread and every worker; all fields under lock. */
struct newest {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    const struct frame *frame;
    uint64_t capture_us;
    uint64_t seq; /* 0: nothing published yet */
};

struct options {
    const char *dir;
    double fps;
    unsigned threads;
};

static struct frame *frames;
static size_t frame_count;
static size_t largest_frame;
static struct options opts = {NULL, 30.0, 400};
static struct newest newest = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0};
/* libfcgi's threaded example serialises accept(); the naive design copies it. */
static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;

static void *alloc_or_die(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p) {
        fprintf(stderr, "naive_fcgi: out of memory\n");
        abort();
    }
    return p;
}

static uint64_t realtime_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- frames from a folder ------------------------------------------------------------------ */

static int is_jpeg_name(const struct dirent *de)
{
    size_t n = strlen(de->d_name);
    return de->d_name[0] != '.' && ((n > 4 && strcasecmp(de->d_name + n - 4, ".jpg") == 0) ||
                                    (n > 5 && strcasecmp(de->d_name + n - 5, ".jpeg") == 0));
}

/* Reads path whole into a new buffer; 0, or -errno (-EINVAL: not a complete JPEG). */
static int load_jpeg(const char *path, struct frame *out)
{
    struct stat st;
    size_t used = 0;
    int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC);

    out->data = NULL;
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (st.st_size < 4 || (uint64_t)st.st_size > MAX_FRAME_BYTES) {
        rc = -EINVAL;
        goto out;
    }
    out->len = (size_t)st.st_size;
    out->data = alloc_or_die(out->len);
    while (used < out->len) {
        ssize_t n = read(fd, out->data + used, out->len - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            goto out;
        }
        used += (size_t)n;
    }
    /* SOI at the start, EOI at the end: the load client checks the same. */
    if (out->data[0] != 0xFF || out->data[1] != 0xD8 || out->data[out->len - 2] != 0xFF ||
        out->data[out->len - 1] != 0xD9)
        rc = -EINVAL;
out:
    if (rc < 0) {
        free(out->data);
        out->data = NULL;
    }
    close(fd);
    return rc;
}

/* Loads every *.jpg / *.jpeg of dir in name order; 0 or -errno (message printed). */
static int load_frames(const char *dir)
{
    struct dirent **entries = NULL;
    int n = scandir(dir, &entries, is_jpeg_name, alphasort), rc = 0;

    if (n < 0) {
        fprintf(stderr, "naive_fcgi: %s: %s\n", dir, strerror(errno));
        return -errno;
    }
    if (n == 0) {
        fprintf(stderr, "naive_fcgi: %s: no .jpg files\n", dir);
        rc = -ENOENT;
        goto out;
    }
    frames = calloc((size_t)n, sizeof(*frames));
    if (!frames)
        abort();
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, entries[i]->d_name);
        rc = load_jpeg(path, &frames[frame_count]);
        if (rc < 0) {
            fprintf(stderr, "naive_fcgi: %s: %s\n", path,
                    rc == -EINVAL ? "not a complete JPEG" : strerror(-rc));
            goto out;
        }
        if (frames[frame_count].len > largest_frame)
            largest_frame = frames[frame_count].len;
        frame_count++;
    }
out:
    for (int i = 0; i < n; i++)
        free(entries[i]);
    free(entries);
    return rc;
}

/* ---- capture thread -------------------------------------------------------------------------- */

/* Publishes the next file every 1/fps s on an absolute schedule; a late tick is not made up. */
static void *capture_main(void *arg)
{
    uint64_t period_ns = (uint64_t)(1e9 / opts.fps);
    struct timespec next;
    size_t index = 0;

    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        struct timespec now;

        pthread_mutex_lock(&newest.lock);
        newest.frame = &frames[index];
        newest.capture_us = realtime_us();
        newest.seq++;
        pthread_cond_broadcast(&newest.changed);
        pthread_mutex_unlock(&newest.lock);
        index = (index + 1) % frame_count;

        next.tv_nsec += (long)(period_ns % 1000000000u);
        next.tv_sec += (time_t)(period_ns / 1000000000u) + next.tv_nsec / 1000000000;
        next.tv_nsec %= 1000000000;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > next.tv_sec + 1)
            next = now; /* far behind (suspended): restart the schedule */
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
    }
    return NULL;
}

/* ---- workers --------------------------------------------------------------------------------- */

/* Streams to one viewer until a write fails (the viewer left). copy is this thread's buffer. */
static void stream(FCGX_Request *req, uint8_t *copy)
{
    static const char head[] = "Status: 200 OK\r\n"
                               "Content-Type: multipart/x-mixed-replace;boundary=" BOUNDARY "\r\n"
                               "Cache-Control: no-cache\r\n"
                               "\r\n"
                               "--" BOUNDARY "\r\n";
    static const char next_boundary[] = "\r\n--" BOUNDARY "\r\n";
    uint64_t seen = 0;

    if (FCGX_PutStr(head, (int)sizeof(head) - 1, req->out) < 0 || FCGX_FFlush(req->out) < 0)
        return;
    for (;;) {
        char part[160];
        size_t len;
        uint64_t capture_us;
        int h;

        pthread_mutex_lock(&newest.lock);
        while (newest.seq == seen)
            pthread_cond_wait(&newest.changed, &newest.lock);
        seen = newest.seq;
        len = newest.frame->len;
        capture_us = newest.capture_us;
        memcpy(copy, newest.frame->data, len);
        pthread_mutex_unlock(&newest.lock);

        h = snprintf(part, sizeof(part),
                     "Content-Type: image/jpeg\r\n"
                     "Content-Length: %zu\r\n"
                     "X-Timestamp: %llu.%06llu\r\n"
                     "\r\n",
                     len, (unsigned long long)(capture_us / 1000000u),
                     (unsigned long long)(capture_us % 1000000u));
        if (FCGX_PutStr(part, h, req->out) < 0 ||
            FCGX_PutStr((const char *)copy, (int)len, req->out) < 0 ||
            FCGX_PutStr(next_boundary, (int)sizeof(next_boundary) - 1, req->out) < 0 ||
            FCGX_FFlush(req->out) < 0)
            return;
    }
}

static void *worker_main(void *arg)
{
    FCGX_Request req;
    uint8_t *copy = alloc_or_die(largest_frame);

    (void)arg;
    if (FCGX_InitRequest(&req, 0, 0) != 0) {
        fprintf(stderr, "naive_fcgi: FCGX_InitRequest failed\n");
        goto out;
    }
    for (;;) {
        int rc;

        pthread_mutex_lock(&accept_lock);
        rc = FCGX_Accept_r(&req);
        pthread_mutex_unlock(&accept_lock);
        if (rc < 0)
            break;
        stream(&req, copy);
        FCGX_Finish_r(&req);
    }
out:
    free(copy);
    return NULL;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void on_stop_signal(int sig)
{
    (void)sig;
    _exit(0);
}

static void usage(FILE *to)
{
    fprintf(to, "usage: naive_fcgi --dir DIR [--fps N] [--threads N]\n"
                "  A FastCGI responder (run by lighttpd, listening socket on stdin) that loops\n"
                "  DIR/*.jpg at N fps (default 30) as an MJPEG stream, one thread per viewer\n"
                "  (default 400 threads).\n");
}

static int parse_options(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"fps", required_argument, NULL, 'f'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'd':
            opts.dir = optarg;
            break;
        case 'f':
            opts.fps = strtod(optarg, &end);
            if (*end || !(opts.fps >= 0.1 && opts.fps <= 1000)) {
                fprintf(stderr, "naive_fcgi: --fps must be 0.1..1000, not '%s'\n", optarg);
                return -EINVAL;
            }
            break;
        case 't': {
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v < 1 || v > 10000) {
                fprintf(stderr, "naive_fcgi: --threads must be 1..10000, not '%s'\n", optarg);
                return -EINVAL;
            }
            opts.threads = (unsigned)v;
            break;
        }
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -EINVAL;
        }
    }
    if (optind != argc || !opts.dir) {
        usage(stderr);
        return -EINVAL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    pthread_t capture, *workers;

    if (parse_options(argc, argv) < 0)
        return 2;
    /* Not part of the design under test, but needed between benchmark runs: libfcgi's own
     * SIGTERM handler only sets a flag that threads blocked in accept() or on the condvar
     * never see, so lighttpd's SIGTERM would leave the process behind. Installed first,
     * ours is kept (libfcgi replaces only default handlers). And if lighttpd dies without
     * a word, follow it. */
    signal(SIGTERM, on_stop_signal);
    signal(SIGINT, on_stop_signal);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1)
        return 0; /* the parent died before prctl */
    if (FCGX_Init() != 0 || FCGX_IsCGI()) {
        fprintf(stderr, "naive_fcgi: not started as a FastCGI server (stdin must be the listening "
                        "socket; run it from lighttpd-naive.conf)\n");
        return 2;
    }
    if (load_frames(opts.dir) < 0)
        return 1;
    /* A viewer that leaves must fail the write, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    if (pthread_create(&capture, NULL, capture_main, NULL) != 0) {
        fprintf(stderr, "naive_fcgi: cannot start the capture thread\n");
        return 1;
    }
    workers = alloc_or_die(opts.threads * sizeof(*workers));
    for (unsigned i = 0; i < opts.threads; i++) {
        if (pthread_create(&workers[i], NULL, worker_main, NULL) != 0) {
            fprintf(stderr, "naive_fcgi: started only %u of %u threads\n", i, opts.threads);
            opts.threads = i;
            break;
        }
    }
    fprintf(stderr, "naive_fcgi: %zu frames from %s at %g fps, %u threads\n", frame_count, opts.dir,
            opts.fps, opts.threads);
    /* Workers end only when accept fails (lighttpd closed the socket); lighttpd stops the
     * process with SIGTERM otherwise. */
    for (unsigned i = 0; i < opts.threads; i++)
        pthread_join(workers[i], NULL);
    free(workers);
    return 0;
}
