/* loadclient.c - epoll load client: N MJPEG viewers over HTTP/1.1; fps, latency, server CPU. */
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * One thread, one epoll set, N viewers. Nothing of a frame is kept: every
 * viewer runs a byte-stream parser (HTTP head -> chunked coding -> multipart)
 * over whatever each read() brought, remembering only a header line, the
 * first and last two bytes of the current part (SOI/EOI) and its size. All
 * viewers share one read buffer, so memory is a few KB per viewer whatever the
 * frame size, and reads are large.
 *
 * Time: a frame's receipt time is when the read() that brought its last byte
 * returned (CLOCK_REALTIME for latency against X-Timestamp, CLOCK_MONOTONIC
 * for rates). Only frames completed inside the measurement window count, and
 * the server's CPU is sampled at the window's two ends.
 */

#define READ_BUF_SIZE   (256 * 1024)
#define LINE_MAX_BYTES  2048 /* HTTP head lines and part header lines */
#define CHUNK_LINE_MAX  256
#define BOUNDARY_MAX    200
#define MAX_VIEWERS     20000u
#define MAX_ROOTS       16
#define MAX_ERRORS      8
#define ERROR_TEXT_MAX  120
#define MAX_PART_BYTES  (256ull << 20) /* a part without Content-Length ends by then */
#define MAX_CHUNK_BYTES (1ull << 40)
#define LAT_BUCKET_US   10u
#define LAT_BUCKETS     1000000u /* 10 us buckets up to 10 s */
#define STALL_NS        1000000000ull
#define FULL_RATE_SHARE 0.9
#define EVENTS_MAX      1024
#define FD_RESERVE      16 /* descriptors for stdio, /proc reads and epoll */

/* ---- Options ----------------------------------------------------------------------------- */

struct cpu_root {
    int pid;
    bool tree; /* with all its descendants */
};

struct options {
    const char *url;
    const char *path; /* overrides the URL's path */
    const char *user_agent;
    const char *label;
    uint32_t viewers;
    double seconds, warmup, source_fps;
    uint32_t ramp_ms;
    bool json;
    struct cpu_root roots[MAX_ROOTS];
    int root_count;
};

/* ---- Latency histogram -------------------------------------------------------------------- */

struct hist {
    uint32_t *buckets; /* LAT_BUCKETS counts of LAT_BUCKET_US each */
    uint64_t count, overflow, negative;
    int64_t max_us;
};

/* ---- Server processes ---------------------------------------------------------------------- */

struct proc_stat {
    int pid, ppid;
    unsigned long long start_time; /* with pid: tells a reused pid apart */
    unsigned long long ticks;      /* utime + stime, all threads */
    long threads;
    char comm[32];
};

struct proc_track {
    struct proc_stat first, last;
    bool at_start, at_end;
    /* Memory at the end of the window. RSS alone misleads: every mapping of a shared-memory
     * ring counts its touched pages again, so it is split into private (anon) and shmem. */
    unsigned long long anon_kb, shmem_kb;
};

struct cpu_set {
    struct proc_track *procs;
    size_t count, cap;
};

/* ---- Viewers ------------------------------------------------------------------------------- */

enum viewer_phase { VP_WAITING, VP_CONNECTING, VP_SENDING, VP_RECEIVING, VP_ENDED };
enum http_state { HTTP_STATUS, HTTP_HEADERS, HTTP_BODY };
enum body_coding { CODING_CLOSE, CODING_LENGTH, CODING_CHUNKED };
enum chunk_state { CHUNK_SIZE, CHUNK_DATA, CHUNK_DATA_END, CHUNK_TRAILER, CHUNK_DONE };
enum mp_state {
    MP_PREAMBLE,      /* before the first delimiter, or resynchronising after an error */
    MP_BOUNDARY_LINE, /* the rest of a delimiter line: "" or "--" (the close delimiter) */
    MP_HEADERS,       /* part header lines */
    MP_BODY_LENGTH,   /* a body with Content-Length */
    MP_BODY_SEARCH,   /* a body that ends at the next delimiter */
    MP_AFTER_BODY,    /* a Content-Length body must be followed by a delimiter at once */
    MP_EPILOGUE,      /* after the close delimiter */
};
enum part_source { PART_SOURCE_NONE, PART_SOURCE_LIVE, PART_SOURCE_CARD };

/* The part being received: its headers and what we keep of its body. */
struct part {
    bool has_length, has_timestamp;
    uint64_t length, timestamp_us;
    enum part_source source;
    uint64_t size;
    uint8_t head[2], tail[2];
    uint64_t last_mono_ns, last_real_us; /* when its latest body byte arrived */
};

struct viewer {
    int fd;
    enum viewer_phase phase;
    size_t request_sent;
    bool streaming;    /* got a 200 multipart response */
    bool ended_early;  /* the stream ended before the window closed */
    uint64_t start_ns; /* planned connection start */

    enum http_state http;
    unsigned status;
    bool chunked, other_coding, has_length, multipart;
    uint64_t length;
    enum body_coding coding;
    uint64_t body_left;
    enum chunk_state chunk;
    uint64_t chunk_left;
    unsigned chunk_crlf; /* bytes of the CRLF after chunk data seen */
    size_t chunk_line_len;
    char chunk_line[CHUNK_LINE_MAX];
    size_t line_len;
    char line[LINE_MAX_BYTES];

    enum mp_state mp;
    char delim[BOUNDARY_MAX + 5]; /* "\r\n--" boundary */
    size_t delim_len, delim_matched;
    uint64_t part_left;
    struct part part;

    uint64_t frames, bad, live_in_window;
    uint64_t last_timestamp_us; /* newest live X-Timestamp: older or equal ones are repeats */
    uint64_t first_live_ns, last_live_ns;
    uint64_t gap_anchor_ns, max_gap_ns; /* longest time without a live frame in the window */
    double fps;
};

struct error_count {
    char text[ERROR_TEXT_MAX];
    uint64_t count;
};

struct load {
    struct options opt;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char *request;
    size_t request_len;
    char target[512]; /* what the report calls the stream */
    int epoll_fd;
    struct viewer *viewers;
    uint8_t *buf;

    uint64_t t0_ns, window_start_ns, window_end_ns;
    uint64_t measured_start_ns, measured_end_ns; /* when the samples were really taken */
    bool window_open;
    uint64_t now_mono_ns, now_real_us; /* when the current read returned */

    struct hist lat;
    uint64_t frames_window, live_window, repeats_window, cards_window;
    uint64_t bytes_window, jpeg_bytes_window, bad_frames, protocol_errors;
    struct error_count errors[MAX_ERRORS];
    uint64_t errors_other;

    struct cpu_set cpu;
    uint64_t client_cpu_us;
    unsigned long long fd_limit;
    bool fd_limit_short;
};

static volatile sig_atomic_t stop_requested;

/* ---- Small helpers ------------------------------------------------------------------------ */

static uint64_t timeval_us(const struct timeval *tv)
{
    return (uint64_t)tv->tv_sec * 1000000u + (uint64_t)tv->tv_usec;
}

static uint64_t self_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return timeval_us(&ru.ru_utime) + timeval_us(&ru.ru_stime);
}

/* Counts an error by its text, so a report says "250 x HTTP 503" once. */
static void count_error(struct load *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void count_error(struct load *L, const char *fmt, ...)
{
    char text[ERROR_TEXT_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    for (int i = 0; i < MAX_ERRORS; i++) {
        if (L->errors[i].count == 0) {
            snprintf(L->errors[i].text, sizeof(L->errors[i].text), "%s", text);
            L->errors[i].count = 1;
            return;
        }
        if (strcmp(L->errors[i].text, text) == 0) {
            L->errors[i].count++;
            return;
        }
    }
    L->errors_other++;
}

static int parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !isfinite(v))
        return -EINVAL;
    if (v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

/* ---- Latency histogram -------------------------------------------------------------------- */

static void hist_add(struct hist *h, int64_t latency_us)
{
    uint64_t bucket;

    h->count++;
    if (latency_us > h->max_us || h->count == 1)
        h->max_us = latency_us;
    if (latency_us < 0) {
        /* Capture stamped after receipt: a clock problem; shown, and counted as 0. */
        h->negative++;
        latency_us = 0;
    }
    bucket = (uint64_t)latency_us / LAT_BUCKET_US;
    if (bucket >= LAT_BUCKETS) {
        h->overflow++;
        return;
    }
    h->buckets[bucket]++;
}

/* The latency below which `fraction` of the samples fall, in ms: the upper edge of the bucket
 * holding that rank, capped by the maximum. Negative when there are no samples. */
static double hist_quantile_ms(const struct hist *h, double fraction)
{
    uint64_t rank, seen = 0;

    if (h->count == 0)
        return -1.0;
    rank = (uint64_t)ceil(fraction * (double)h->count);
    if (rank < 1)
        rank = 1;
    for (uint32_t i = 0; i < LAT_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            double edge_us = (double)(i + 1) * LAT_BUCKET_US;
            double max_us = h->max_us > 0 ? (double)h->max_us : 0.0;
            return (edge_us < max_us ? edge_us : max_us) / 1000.0;
        }
    }
    return (double)h->max_us / 1000.0; /* the rank lies among the overflow */
}

/* ---- Server processes: /proc/PID/stat ------------------------------------------------------ */

/* Reads utime + stime (all threads of the process), ppid, start time, threads and RSS. */
static int proc_stat_read(int pid, struct proc_stat *out)
{
    char path[64], text[1024];
    const char *open_paren, *close_paren;
    size_t comm_len;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return neg_errno();
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    text[n] = '\0';
    /* comm may hold spaces and parentheses: it ends at the last ')'. */
    open_paren = strchr(text, '(');
    close_paren = strrchr(text, ')');
    if (!open_paren || !close_paren || close_paren < open_paren)
        return -EPROTO;
    comm_len = (size_t)(close_paren - open_paren - 1);
    if (comm_len >= sizeof(out->comm))
        comm_len = sizeof(out->comm) - 1;
    memcpy(out->comm, open_paren + 1, comm_len);
    out->comm[comm_len] = '\0';
    out->pid = pid;
    unsigned long long utime, stime;
    /* Fields 3.. of proc(5): state ppid pgrp session tty tpgid flags minflt cminflt majflt
     * cmajflt utime stime cutime cstime priority nice num_threads itrealvalue starttime. */
    if (sscanf(close_paren + 1,
               " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %ld %*d "
               "%llu",
               &out->ppid, &utime, &stime, &out->threads, &out->start_time) != 5)
        return -EPROTO;
    out->ticks = utime + stime;
    return 0;
}

/* RssAnon and RssShmem from /proc/PID/status; zeros when unreadable. */
static void proc_memory_read(int pid, unsigned long long *anon_kb, unsigned long long *shmem_kb)
{
    char path[64], line[256];
    FILE *f;

    *anon_kb = *shmem_kb = 0;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "re");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "RssAnon: %llu", anon_kb) == 1)
            continue;
        sscanf(line, "RssShmem: %llu", shmem_kb);
    }
    fclose(f);
}

static struct proc_track *cpu_find(struct cpu_set *set, const struct proc_stat *st)
{
    for (size_t i = 0; i < set->count; i++) {
        struct proc_track *t = &set->procs[i];
        const struct proc_stat *known = t->at_start ? &t->first : &t->last;
        if (known->pid == st->pid && known->start_time == st->start_time)
            return t;
    }
    if (set->count == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 16;
        set->procs = xrealloc(set->procs, set->cap * sizeof(*set->procs));
    }
    memset(&set->procs[set->count], 0, sizeof(set->procs[0]));
    return &set->procs[set->count++];
}

static void cpu_record(struct cpu_set *set, const struct proc_stat *st, bool at_end)
{
    struct proc_track *t = cpu_find(set, st);
    if (at_end) {
        /* A process listed twice (a --pid inside a --tree) is recorded once. */
        t->last = *st;
        t->at_end = true;
        proc_memory_read(st->pid, &t->anon_kb, &t->shmem_kb);
    } else {
        t->first = *st;
        t->at_start = true;
    }
}

/* Reads every process in /proc once. Returns how many were stored in *out (owned by the
 * caller), or -errno. */
static int proc_scan_all(struct proc_stat **out)
{
    struct proc_stat *all = NULL;
    size_t count = 0, cap = 0;
    struct dirent *de;
    DIR *dir = opendir("/proc");

    *out = NULL;
    if (!dir)
        return neg_errno();
    while ((de = readdir(dir)) != NULL) {
        uint32_t pid;
        if (parse_u32(de->d_name, 1, INT32_MAX, &pid) < 0)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 256;
            all = xrealloc(all, cap * sizeof(*all));
        }
        if (proc_stat_read((int)pid, &all[count]) == 0) /* it may have exited meanwhile */
            count++;
    }
    closedir(dir);
    *out = all;
    return (int)count;
}

/* Samples every process under test: the --pid processes and, for --tree, the whole tree
 * rescanned now. Children that appear during the window are counted from zero at its end;
 * processes that exit during it are reported without a figure. */
static void cpu_sample(struct load *L, bool at_end)
{
    struct proc_stat *all = NULL, one;
    bool any_tree = false;
    int count = 0;

    for (int r = 0; r < L->opt.root_count; r++)
        any_tree |= L->opt.roots[r].tree;
    if (any_tree) {
        count = proc_scan_all(&all);
        if (count < 0) {
            log_warn("cannot list /proc: %s", strerror(-count));
            count = 0;
        }
    }
    for (int r = 0; r < L->opt.root_count; r++) {
        const struct cpu_root *root = &L->opt.roots[r];
        if (!root->tree) {
            if (proc_stat_read(root->pid, &one) == 0)
                cpu_record(&L->cpu, &one, at_end);
            continue;
        }
        /* Mark the root, then children of marked processes until nothing changes. */
        bool *in_tree = xcalloc((size_t)count + 1, sizeof(*in_tree));
        bool changed = true;
        for (int i = 0; i < count; i++)
            in_tree[i] = all[i].pid == root->pid;
        while (changed) {
            changed = false;
            for (int i = 0; i < count; i++) {
                if (in_tree[i])
                    continue;
                for (int j = 0; j < count; j++) {
                    if (in_tree[j] && all[i].ppid == all[j].pid) {
                        in_tree[i] = changed = true;
                        break;
                    }
                }
            }
        }
        for (int i = 0; i < count; i++)
            if (in_tree[i] && all[i].pid != getpid()) /* a script may run us inside the tree */
                cpu_record(&L->cpu, &all[i], at_end);
        free(in_tree);
    }
    free(all);
}

/* ---- Parsing: HTTP head, chunked coding, multipart ---------------------------------------- */

static int protocol_error(struct load *L, const char *what)
{
    L->protocol_errors++;
    count_error(L, "protocol error: %s", what);
    return -EPROTO;
}

/* A frame's body bytes: keep the first and last two bytes and the size. */
static void part_add(struct load *L, struct viewer *v, const uint8_t *data, size_t len)
{
    struct part *p = &v->part;

    if (len == 0)
        return;
    for (size_t i = 0; i < len && p->size + i < 2; i++)
        p->head[p->size + i] = data[i];
    if (len >= 2) {
        p->tail[0] = data[len - 2];
        p->tail[1] = data[len - 1];
    } else {
        p->tail[0] = p->tail[1];
        p->tail[1] = data[0];
    }
    p->size += len;
    p->last_mono_ns = L->now_mono_ns;
    p->last_real_us = L->now_real_us;
}

/* Counts a finished part. `framing_ok` is false when its Content-Length was not followed by a
 * delimiter. */
static void part_done(struct load *L, struct viewer *v, bool framing_ok)
{
    const struct part *p = &v->part;
    bool good = framing_ok && p->size >= 4 && p->head[0] == 0xFF && p->head[1] == 0xD8 &&
                p->tail[0] == 0xFF && p->tail[1] == 0xD9;
    bool live, repeat = false;

    v->frames++;
    if (!good) {
        v->bad++;
        L->bad_frames++;
        return;
    }
    live = p->source != PART_SOURCE_CARD;
    if (live && p->has_timestamp) {
        /* The responder repeats the last frame when nothing new comes: same timestamp. */
        repeat = p->timestamp_us <= v->last_timestamp_us;
        if (!repeat)
            v->last_timestamp_us = p->timestamp_us;
        live = !repeat;
    }
    if (!L->window_open)
        return;
    L->frames_window++;
    L->jpeg_bytes_window += p->size;
    if (repeat) {
        L->repeats_window++;
        return;
    }
    if (!live) {
        L->cards_window++;
        return;
    }
    L->live_window++;
    v->live_in_window++;
    if (!v->first_live_ns)
        v->first_live_ns = p->last_mono_ns;
    v->last_live_ns = p->last_mono_ns;
    if (v->gap_anchor_ns && p->last_mono_ns > v->gap_anchor_ns &&
        p->last_mono_ns - v->gap_anchor_ns > v->max_gap_ns)
        v->max_gap_ns = p->last_mono_ns - v->gap_anchor_ns;
    v->gap_anchor_ns = p->last_mono_ns;
    if (p->has_timestamp)
        hist_add(&L->lat, (int64_t)p->last_real_us - (int64_t)p->timestamp_us);
}

/* Scans for the delimiter. Bytes that turn out not to belong to it are body bytes when `keep`
 * is set (else they are skipped). Returns the bytes consumed; *found tells whether the
 * delimiter completed with the last of them. */
static size_t delim_scan(struct load *L, struct viewer *v, const uint8_t *data, size_t len,
                         bool keep, bool *found)
{
    size_t i = 0;

    *found = false;
    while (i < len) {
        if (v->delim_matched == 0) {
            /* The delimiter's only CR is its first byte: skip to the next CR at memchr speed. */
            const uint8_t *cr = memchr(data + i, '\r', len - i);
            size_t skip = cr ? (size_t)(cr - (data + i)) : len - i;
            if (keep)
                part_add(L, v, data + i, skip);
            i += skip;
            if (!cr)
                break;
            v->delim_matched = 1;
            i++;
            continue;
        }
        if (data[i] == (uint8_t)v->delim[v->delim_matched]) {
            i++;
            if (++v->delim_matched == v->delim_len) {
                v->delim_matched = 0;
                *found = true;
                return i;
            }
            continue;
        }
        /* Mismatch: what matched so far was data, and matching restarts at this byte (it
         * cannot continue a match: no other delimiter byte is a CR). */
        if (keep)
            part_add(L, v, (const uint8_t *)v->delim, v->delim_matched);
        v->delim_matched = 0;
    }
    return i;
}

/* Collects one line into v->line. Returns the bytes consumed; *complete is set when the line
 * ended (its CR LF or LF are dropped). -EMSGSIZE when the line is too long. */
static ssize_t line_take(struct viewer *v, const uint8_t *data, size_t len, bool *complete)
{
    const uint8_t *nl = memchr(data, '\n', len);
    size_t take = nl ? (size_t)(nl - data) + 1 : len;
    size_t keep = nl ? take - 1 : take;

    *complete = false;
    if (v->line_len + keep >= sizeof(v->line))
        return -EMSGSIZE;
    memcpy(v->line + v->line_len, data, keep);
    v->line_len += keep;
    if (nl) {
        if (v->line_len && v->line[v->line_len - 1] == '\r')
            v->line_len--;
        v->line[v->line_len] = '\0';
        *complete = true;
    }
    return (ssize_t)take;
}

/* "Name: value" -> value when the name matches (case-insensitive), else NULL. */
static const char *header_value(const char *line, const char *name)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0 || line[n] != ':')
        return NULL;
    line += n + 1;
    while (*line == ' ' || *line == '\t')
        line++;
    return line;
}

/* Strict decimal with optional trailing blanks. */
static int parse_length(const char *s, uint64_t max, uint64_t *out)
{
    char digits[24];
    size_t n = 0;
    while (isdigit((unsigned char)s[n]) && n < sizeof(digits) - 1) {
        digits[n] = s[n];
        n++;
    }
    digits[n] = '\0';
    for (const char *rest = s + n; *rest; rest++)
        if (*rest != ' ' && *rest != '\t')
            return -EINVAL;
    return parse_u64(digits, 0, max, out);
}

/* "SECONDS.FRACTION" (up to 6 fraction digits kept) -> microseconds. */
static int parse_timestamp(const char *s, uint64_t *out_us)
{
    uint64_t sec = 0, frac = 0;
    int sec_digits = 0, frac_digits = 0;

    for (; isdigit((unsigned char)*s); s++) {
        if (++sec_digits > 12)
            return -ERANGE;
        sec = sec * 10 + (uint64_t)(*s - '0');
    }
    if (sec_digits == 0)
        return -EINVAL;
    if (*s == '.') {
        for (s++; isdigit((unsigned char)*s); s++) {
            if (frac_digits < 6) {
                frac = frac * 10 + (uint64_t)(*s - '0');
                frac_digits++;
            }
        }
    }
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s != '\0')
        return -EINVAL;
    while (frac_digits++ < 6)
        frac *= 10;
    *out_us = sec * 1000000u + frac;
    return 0;
}

static int part_header(struct load *L, struct viewer *v, const char *line)
{
    struct part *p = &v->part;
    const char *value;

    if ((value = header_value(line, "Content-Length")) != NULL) {
        if (parse_length(value, MAX_PART_BYTES, &p->length) < 0)
            return protocol_error(L, "bad part Content-Length");
        p->has_length = true;
    } else if ((value = header_value(line, "X-Timestamp")) != NULL) {
        if (parse_timestamp(value, &p->timestamp_us) < 0)
            return protocol_error(L, "bad X-Timestamp");
        p->has_timestamp = true;
    } else if ((value = header_value(line, "X-Capd-Source")) != NULL) {
        p->source = strncasecmp(value, "live", 4) == 0 ? PART_SOURCE_LIVE : PART_SOURCE_CARD;
    }
    return 0;
}

/* Multipart body bytes. Returns 0, or -EPROTO. */
static int mp_feed(struct load *L, struct viewer *v, const uint8_t *data, size_t len)
{
    while (len > 0) {
        size_t used = 0;
        bool found, complete;
        ssize_t took;

        switch (v->mp) {
        case MP_PREAMBLE:
            used = delim_scan(L, v, data, len, false, &found);
            if (found) {
                v->line_len = 0;
                v->mp = MP_BOUNDARY_LINE;
            }
            break;
        case MP_BODY_SEARCH:
            used = delim_scan(L, v, data, len, true, &found);
            if (v->part.size > MAX_PART_BYTES)
                return protocol_error(L, "no boundary within 256 MB");
            if (found) {
                part_done(L, v, true);
                v->line_len = 0;
                v->mp = MP_BOUNDARY_LINE;
            }
            break;
        case MP_BOUNDARY_LINE:
        case MP_HEADERS:
            took = line_take(v, data, len, &complete);
            if (took < 0)
                return protocol_error(L, "part header line too long");
            used = (size_t)took;
            if (!complete)
                break;
            v->line_len = 0;
            if (v->mp == MP_BOUNDARY_LINE) {
                const char *rest = v->line;
                if (strncmp(rest, "--", 2) == 0) {
                    v->mp = MP_EPILOGUE;
                    break;
                }
                while (*rest == ' ' || *rest == '\t')
                    rest++;
                if (*rest != '\0')
                    return protocol_error(L, "junk after a boundary");
                memset(&v->part, 0, sizeof(v->part));
                v->mp = MP_HEADERS;
            } else if (v->line[0] != '\0') {
                if (part_header(L, v, v->line) < 0)
                    return -EPROTO;
            } else if (v->part.has_length) {
                v->part_left = v->part.length;
                v->mp = v->part_left ? MP_BODY_LENGTH : MP_AFTER_BODY;
            } else {
                v->delim_matched = 0;
                v->mp = MP_BODY_SEARCH;
            }
            break;
        case MP_BODY_LENGTH:
            used = len < v->part_left ? len : (size_t)v->part_left;
            part_add(L, v, data, used);
            v->part_left -= used;
            if (v->part_left == 0) {
                v->delim_matched = 0;
                v->mp = MP_AFTER_BODY;
            }
            break;
        case MP_AFTER_BODY:
            if (data[0] != (uint8_t)v->delim[v->delim_matched]) {
                /* Content-Length lied: the part is bad; find the next delimiter. Not
                 * consumed: this byte may start it. */
                part_done(L, v, false);
                count_error(L, "part Content-Length not followed by the boundary");
                v->delim_matched = 0;
                v->mp = MP_PREAMBLE;
                break;
            }
            used = 1;
            if (++v->delim_matched == v->delim_len) {
                v->delim_matched = 0;
                part_done(L, v, true);
                v->line_len = 0;
                v->mp = MP_BOUNDARY_LINE;
            }
            break;
        case MP_EPILOGUE:
            used = len;
            break;
        }
        data += used;
        len -= used;
    }
    return 0;
}

/* Content-Type: multipart/...; boundary=X -> delim "\r\n--X". */
static int take_boundary(struct load *L, struct viewer *v, const char *value)
{
    const char *param = value;
    size_t n = 0;

    if (strncasecmp(value, "multipart/", 10) != 0)
        return 0;
    while ((param = strchr(param, ';')) != NULL) {
        param++;
        while (*param == ' ' || *param == '\t')
            param++;
        if (strncasecmp(param, "boundary=", 9) == 0)
            break;
    }
    if (!param)
        return protocol_error(L, "multipart without a boundary");
    param += 9;
    memcpy(v->delim, "\r\n--", 4);
    if (*param == '"') {
        for (param++; param[n] && param[n] != '"'; n++)
            ;
    } else {
        for (; param[n] && param[n] != ';' && param[n] != ' ' && param[n] != '\t'; n++)
            ;
    }
    if (n == 0 || n > BOUNDARY_MAX || memchr(param, '\r', n))
        return protocol_error(L, "bad multipart boundary");
    memcpy(v->delim + 4, param, n);
    v->delim_len = 4 + n;
    v->multipart = true;
    return 0;
}

static int head_line(struct load *L, struct viewer *v, const char *line)
{
    const char *value;

    if (v->http == HTTP_STATUS) {
        unsigned major, minor, status;
        if (sscanf(line, "HTTP/%u.%u %3u", &major, &minor, &status) != 3)
            return protocol_error(L, "bad status line");
        v->status = status;
        v->http = HTTP_HEADERS;
        return 0;
    }
    if ((value = header_value(line, "Transfer-Encoding")) != NULL) {
        /* Only "chunked" (last) is decoded; any other coding would need a decoder. */
        if (strcasecmp(value, "chunked") == 0)
            v->chunked = true;
        else
            v->other_coding = true;
    } else if ((value = header_value(line, "Content-Length")) != NULL) {
        if (parse_length(value, UINT64_MAX / 2, &v->length) < 0)
            return protocol_error(L, "bad Content-Length");
        v->has_length = true;
    } else if ((value = header_value(line, "Content-Type")) != NULL) {
        return take_boundary(L, v, value);
    }
    return 0;
}

/* The head is complete: decide whether this is a stream we can read. Returns 0 or -EPROTO. */
static int head_done(struct load *L, struct viewer *v)
{
    if (v->status != 200) {
        count_error(L, "HTTP %u", v->status);
        return -EPROTO;
    }
    if (!v->multipart) {
        count_error(L, "response is not multipart");
        return -EPROTO;
    }
    if (v->other_coding) {
        count_error(L, "unsupported Transfer-Encoding");
        return -EPROTO;
    }
    v->coding = v->chunked ? CODING_CHUNKED : v->has_length ? CODING_LENGTH : CODING_CLOSE;
    v->body_left = v->length;
    v->chunk = CHUNK_SIZE;
    v->http = HTTP_BODY;
    v->streaming = true;
    /* RFC 2046: the CRLF before a delimiter belongs to it; the first delimiter has none, so
     * the body starts as if it had just been seen. */
    v->delim_matched = 2;
    v->mp = MP_PREAMBLE;
    if (L->window_open)
        v->gap_anchor_ns = L->now_mono_ns;
    return 0;
}

/* Chunked transfer coding around mp_feed(). Returns 0, 1 at the end of the body, or -EPROTO. */
static int chunked_feed(struct load *L, struct viewer *v, const uint8_t *data, size_t len)
{
    while (len > 0) {
        size_t used = 0;
        int rc;

        switch (v->chunk) {
        case CHUNK_SIZE:
        case CHUNK_TRAILER: {
            const uint8_t *nl = memchr(data, '\n', len);
            size_t take = nl ? (size_t)(nl - data) + 1 : len;
            if (v->chunk_line_len + take >= sizeof(v->chunk_line))
                return protocol_error(L, "chunk line too long");
            memcpy(v->chunk_line + v->chunk_line_len, data, take);
            v->chunk_line_len += take;
            used = take;
            if (!nl)
                break;
            v->chunk_line[v->chunk_line_len] = '\0';
            v->chunk_line_len = 0;
            if (v->chunk == CHUNK_TRAILER) {
                if (v->chunk_line[0] == '\r' || v->chunk_line[0] == '\n')
                    v->chunk = CHUNK_DONE;
                break;
            }
            uint64_t size = 0;
            const char *p = v->chunk_line;
            if (!isxdigit((unsigned char)*p))
                return protocol_error(L, "bad chunk size");
            for (; isxdigit((unsigned char)*p); p++) {
                size = size * 16 +
                       (uint64_t)(isdigit((unsigned char)*p) ? *p - '0' : (tolower(*p) - 'a' + 10));
                if (size > MAX_CHUNK_BYTES)
                    return protocol_error(L, "chunk too large");
            }
            if (*p != ';' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
                return protocol_error(L, "bad chunk size");
            v->chunk_left = size;
            v->chunk = size ? CHUNK_DATA : CHUNK_TRAILER;
            break;
        }
        case CHUNK_DATA:
            used = len < v->chunk_left ? len : (size_t)v->chunk_left;
            rc = mp_feed(L, v, data, used);
            if (rc < 0)
                return rc;
            v->chunk_left -= used;
            if (v->chunk_left == 0) {
                v->chunk = CHUNK_DATA_END;
                v->chunk_crlf = 0;
            }
            break;
        case CHUNK_DATA_END:
            if (data[0] != "\r\n"[v->chunk_crlf])
                return protocol_error(L, "chunk data not followed by CRLF");
            used = 1;
            if (++v->chunk_crlf == 2)
                v->chunk = CHUNK_SIZE;
            break;
        case CHUNK_DONE:
            return 1;
        }
        data += used;
        len -= used;
    }
    return v->chunk == CHUNK_DONE ? 1 : 0;
}

/* Everything one read() brought. Returns 0, 1 when the response ended, or -EPROTO. */
static int viewer_feed(struct load *L, struct viewer *v, const uint8_t *data, size_t len)
{
    while (len > 0 && v->http != HTTP_BODY) {
        bool complete;
        ssize_t took = line_take(v, data, len, &complete);
        int rc;

        if (took < 0)
            return protocol_error(L, "HTTP head line too long");
        data += took;
        len -= (size_t)took;
        if (!complete)
            continue;
        v->line_len = 0;
        if (v->http == HTTP_HEADERS && v->line[0] == '\0')
            rc = head_done(L, v);
        else
            rc = head_line(L, v, v->line);
        if (rc < 0)
            return rc;
    }
    if (len == 0)
        return 0;
    switch (v->coding) {
    case CODING_CHUNKED:
        return chunked_feed(L, v, data, len);
    case CODING_LENGTH: {
        size_t used = len < v->body_left ? len : (size_t)v->body_left;
        int rc = mp_feed(L, v, data, used);
        if (rc < 0)
            return rc;
        v->body_left -= used;
        return v->body_left == 0 ? 1 : 0;
    }
    case CODING_CLOSE:
        return mp_feed(L, v, data, len);
    }
    return 0;
}

/* ---- Connections --------------------------------------------------------------------------- */

static void viewer_close(struct load *L, struct viewer *v)
{
    if (v->fd >= 0) {
        epoll_ctl(L->epoll_fd, EPOLL_CTL_DEL, v->fd, NULL);
        close(v->fd);
        v->fd = -1;
    }
    if (v->phase == VP_RECEIVING && v->streaming)
        v->ended_early = true;
    v->phase = VP_ENDED;
}

/* Sends what is left of the request; switches to receiving when it is all out. */
static void viewer_send(struct load *L, struct viewer *v)
{
    while (v->request_sent < L->request_len) {
        ssize_t n = send(v->fd, L->request + v->request_sent, L->request_len - v->request_sent,
                         MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) {
            count_error(L, "send: %s", strerror(errno));
            viewer_close(L, v);
            return;
        }
        v->request_sent += (size_t)n;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = v};
    epoll_ctl(L->epoll_fd, EPOLL_CTL_MOD, v->fd, &ev);
    v->phase = VP_RECEIVING;
}

static void viewer_start(struct load *L, struct viewer *v)
{
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = v};
    int fd = socket(L->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        count_error(L, "socket: %s", strerror(errno));
        v->phase = VP_ENDED;
        return;
    }
    v->fd = fd;
    if (epoll_ctl(L->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        count_error(L, "epoll_ctl: %s", strerror(errno));
        viewer_close(L, v);
        return;
    }
    if (connect(fd, (const struct sockaddr *)&L->addr, L->addr_len) == 0) {
        v->phase = VP_SENDING;
        viewer_send(L, v);
    } else if (errno == EINPROGRESS) {
        v->phase = VP_CONNECTING;
    } else {
        count_error(L, "connect: %s", strerror(errno));
        viewer_close(L, v);
    }
}

static void stamp_now(struct load *L)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    L->now_mono_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    clock_gettime(CLOCK_REALTIME, &ts);
    L->now_real_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* One large read per readiness event; level-triggered epoll brings us back for the rest, after
 * the other ready viewers had their turn. */
static void viewer_readable(struct load *L, struct viewer *v)
{
    ssize_t n = recv(v->fd, L->buf, READ_BUF_SIZE, 0);
    int rc;

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    stamp_now(L);
    if (n <= 0) {
        if (n < 0)
            count_error(L, "recv: %s", strerror(errno));
        else if (v->streaming)
            count_error(L, "server closed the stream");
        else
            count_error(L, "server closed the connection before the response head");
        viewer_close(L, v);
        return;
    }
    if (L->window_open)
        L->bytes_window += (uint64_t)n;
    rc = viewer_feed(L, v, L->buf, (size_t)n);
    if (rc > 0)
        count_error(L, "server ended the stream");
    if (rc != 0)
        viewer_close(L, v);
}

static void viewer_event(struct load *L, struct viewer *v, uint32_t events)
{
    if (v->phase == VP_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(v->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            count_error(L, "connect: %s", strerror(err));
            viewer_close(L, v);
            return;
        }
        v->phase = VP_SENDING;
    }
    if (v->phase == VP_SENDING) {
        viewer_send(L, v);
        return;
    }
    if (v->phase == VP_RECEIVING && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        viewer_readable(L, v);
}

/* ---- Setup --------------------------------------------------------------------------------- */

/* http://HOST[:PORT][/PATH] -> address, Host header and request. */
static int load_resolve(struct load *L)
{
    const char *url = L->opt.url, *host_start, *host_end, *port_start = NULL, *path;
    char host[256], port[8] = "80";
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    size_t host_len;
    int rc;

    if (strncmp(url, "http://", 7) != 0)
        return -EINVAL;
    host_start = url + 7;
    path = strchr(host_start, '/');
    if (!path)
        path = host_start + strlen(host_start);
    if (*host_start == '[') {
        host_end = memchr(host_start, ']', (size_t)(path - host_start));
        if (!host_end)
            return -EINVAL;
        host_start++;
        if (host_end + 1 < path && host_end[1] == ':')
            port_start = host_end + 2;
    } else {
        host_end = memchr(host_start, ':', (size_t)(path - host_start));
        if (host_end)
            port_start = host_end + 1;
        else
            host_end = path;
    }
    host_len = (size_t)(host_end - host_start);
    if (host_len == 0 || host_len >= sizeof(host))
        return -EINVAL;
    memcpy(host, host_start, host_len);
    host[host_len] = '\0';
    if (port_start) {
        size_t port_len = (size_t)(path - port_start);
        uint32_t value;
        if (port_len == 0 || port_len >= sizeof(port))
            return -EINVAL;
        memcpy(port, port_start, port_len);
        port[port_len] = '\0';
        if (parse_u32(port, 1, 65535, &value) < 0)
            return -EINVAL;
    }
    if (L->opt.path)
        path = L->opt.path;
    if (*path == '\0')
        path = "/";
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        log_error("cannot resolve %s: %s", host, gai_strerror(rc));
        return -EHOSTUNREACH;
    }
    memcpy(&L->addr, res->ai_addr, res->ai_addrlen);
    L->addr_len = res->ai_addrlen;
    freeaddrinfo(res);

    size_t cap = strlen(path) + strlen(host) + strlen(L->opt.user_agent) + 128;
    L->request = xmalloc(cap);
    L->request_len = (size_t)snprintf(L->request, cap,
                                      "GET %s HTTP/1.1\r\nHost: %s%s%s\r\nUser-Agent: %s\r\n"
                                      "Accept: */*\r\nConnection: close\r\n\r\n",
                                      path, host, port_start ? ":" : "", port_start ? port : "",
                                      L->opt.user_agent);
    snprintf(L->target, sizeof(L->target), "http://%s%s%s%s", host, port_start ? ":" : "",
             port_start ? port : "", path);
    return 0;
}

/* Raises the descriptor limit to the hard limit; says so when that is still too few. */
static void raise_fd_limit(struct load *L)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t wanted = rl.rlim_max;
        rl.rlim_cur = wanted;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            log_warn("cannot raise the descriptor limit: %s", strerror(errno));
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    L->fd_limit = (unsigned long long)rl.rlim_cur;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)L->opt.viewers + FD_RESERVE) {
        L->fd_limit_short = true;
        log_warn("only %llu file descriptors (the hard limit) for %u viewers: some will fail",
                 L->fd_limit, L->opt.viewers);
    }
}

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* ---- The run ------------------------------------------------------------------------------- */

static void window_open(struct load *L)
{
    cpu_sample(L, false);
    L->client_cpu_us = self_cpu_us();
    L->measured_start_ns = time_mono_ns();
    L->window_open = true;
    for (uint32_t i = 0; i < L->opt.viewers; i++) {
        struct viewer *v = &L->viewers[i];
        if (v->phase == VP_RECEIVING && v->streaming)
            v->gap_anchor_ns = L->measured_start_ns;
    }
}

static void window_close(struct load *L)
{
    L->measured_end_ns = time_mono_ns();
    L->client_cpu_us = self_cpu_us() - L->client_cpu_us;
    cpu_sample(L, true);
    L->window_open = false;
    for (uint32_t i = 0; i < L->opt.viewers; i++) {
        struct viewer *v = &L->viewers[i];
        if (v->gap_anchor_ns && v->phase != VP_ENDED &&
            L->measured_end_ns - v->gap_anchor_ns > v->max_gap_ns)
            v->max_gap_ns = L->measured_end_ns - v->gap_anchor_ns;
    }
}

static int load_run(struct load *L)
{
    struct epoll_event *events = xcalloc(EVENTS_MAX, sizeof(*events));
    uint32_t next_start = 0;
    int rc = 0;

    L->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (L->epoll_fd < 0) {
        rc = neg_errno();
        goto out;
    }
    L->t0_ns = time_mono_ns();
    L->window_start_ns = L->t0_ns + (uint64_t)(L->opt.warmup * 1e9);
    L->window_end_ns = L->window_start_ns + (uint64_t)(L->opt.seconds * 1e9);
    for (uint32_t i = 0; i < L->opt.viewers; i++)
        L->viewers[i].start_ns =
            L->t0_ns + (uint64_t)L->opt.ramp_ms * 1000000u * i / L->opt.viewers;

    for (;;) {
        uint64_t now = time_mono_ns(), wake;
        int n;

        while (next_start < L->opt.viewers && L->viewers[next_start].start_ns <= now)
            viewer_start(L, &L->viewers[next_start++]);
        if (!L->window_open && now >= L->window_start_ns && !L->measured_start_ns)
            window_open(L);
        if (stop_requested || (L->window_open && now >= L->window_end_ns)) {
            if (L->window_open)
                window_close(L);
            break;
        }
        wake = L->window_open ? L->window_end_ns : L->window_start_ns;
        if (next_start < L->opt.viewers && L->viewers[next_start].start_ns < wake)
            wake = L->viewers[next_start].start_ns;
        n = epoll_wait(L->epoll_fd, events, EVENTS_MAX,
                       wake > now ? (int)((wake - now + 999999u) / 1000000u) : 0);
        if (n < 0 && errno != EINTR) {
            rc = neg_errno();
            goto out;
        }
        for (int i = 0; i < n; i++)
            viewer_event(L, events[i].data.ptr, events[i].events);
    }
out:
    /* Still streaming at the end of the window: not an early end. */
    for (uint32_t i = 0; i < L->opt.viewers; i++) {
        struct viewer *v = &L->viewers[i];
        if (v->phase == VP_WAITING)
            continue;
        if (v->phase == VP_CONNECTING || v->phase == VP_SENDING ||
            (v->phase == VP_RECEIVING && !v->streaming))
            count_error(L, "no response head before the end");
        if (v->phase == VP_RECEIVING)
            v->phase = VP_ENDED; /* so that viewer_close() does not call it early */
        viewer_close(L, v);
    }
    if (L->epoll_fd >= 0)
        close(L->epoll_fd);
    free(events);
    return rc;
}

/* ---- Report -------------------------------------------------------------------------------- */

struct summary {
    uint32_t connected, failed, disconnected, stalled, full_rate;
    double fps_min, fps_median, fps_max, max_gap_ms, window_s;
    double lat_p50, lat_p99, lat_max;
    double full_rate_fps;
};

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summarize(struct load *L, struct summary *s)
{
    double *fps = xcalloc(L->opt.viewers + 1u, sizeof(*fps));
    uint32_t n = 0;
    uint64_t max_gap = 0, stall_ns = STALL_NS;

    memset(s, 0, sizeof(*s));
    /* A slow source is no stall: allow three of its frame intervals. */
    if (L->opt.source_fps > 0 && 3e9 / L->opt.source_fps > (double)stall_ns)
        stall_ns = (uint64_t)(3e9 / L->opt.source_fps);
    s->window_s = L->measured_end_ns > L->measured_start_ns
                      ? (double)(L->measured_end_ns - L->measured_start_ns) / 1e9
                      : 0.0;
    s->full_rate_fps = L->opt.source_fps * FULL_RATE_SHARE;
    for (uint32_t i = 0; i < L->opt.viewers; i++) {
        struct viewer *v = &L->viewers[i];
        bool stalled;
        if (!v->streaming) {
            s->failed++;
            continue;
        }
        s->connected++;
        if (v->ended_early)
            s->disconnected++;
        v->fps = v->live_in_window >= 2 && v->last_live_ns > v->first_live_ns
                     ? (double)(v->live_in_window - 1) * 1e9 /
                           (double)(v->last_live_ns - v->first_live_ns)
                     : 0.0;
        fps[n++] = v->fps;
        if (v->max_gap_ns > max_gap)
            max_gap = v->max_gap_ns;
        stalled = v->max_gap_ns > stall_ns;
        if (stalled && !v->ended_early)
            s->stalled++;
        if (L->opt.source_fps > 0 && !v->ended_early && !stalled && v->fps >= s->full_rate_fps)
            s->full_rate++;
    }
    if (n) {
        qsort(fps, n, sizeof(*fps), compare_double);
        s->fps_min = fps[0];
        s->fps_median = n % 2 ? fps[n / 2] : (fps[n / 2 - 1] + fps[n / 2]) / 2;
        s->fps_max = fps[n - 1];
    }
    s->max_gap_ms = (double)max_gap / 1e6;
    s->lat_p50 = hist_quantile_ms(&L->lat, 0.50);
    s->lat_p99 = hist_quantile_ms(&L->lat, 0.99);
    s->lat_max = L->lat.count ? (double)L->lat.max_us / 1000.0 : -1.0;
    free(fps);
}

/* CPU of one tracked process in the window, in microseconds; false when unknown (it exited). */
static bool proc_cpu_us(const struct proc_track *t, double tick_us, double *us)
{
    if (!t->at_end)
        return false;
    *us = (double)(t->last.ticks - (t->at_start ? t->first.ticks : 0)) * tick_us;
    return true;
}

static double per_frame(double us, uint64_t frames)
{
    return frames ? us / (double)frames : 0.0;
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* A number, or null when negative (not measured). */
static void json_number(const char *name, double value, int decimals)
{
    if (value < 0)
        printf(",\"%s\":null", name);
    else
        printf(",\"%s\":%.*f", name, decimals, value);
}

static void report_json(const struct load *L, const struct summary *s, double tick_us)
{
    double total_us = 0;
    bool first = true;

    printf("{\"label\":");
    json_string(L->opt.label ? L->opt.label : "");
    printf(",\"url\":");
    json_string(L->target);
    printf(",\"viewers\":%u,\"seconds\":%.3f,\"warmup\":%.3f,\"ramp_ms\":%u", L->opt.viewers,
           s->window_s, L->opt.warmup, L->opt.ramp_ms);
    json_number("source_fps", L->opt.source_fps > 0 ? L->opt.source_fps : -1, 3);
    printf(",\"connected\":%u,\"failed\":%u,\"disconnected\":%u,\"stalled\":%u", s->connected,
           s->failed, s->disconnected, s->stalled);
    if (L->opt.source_fps > 0)
        printf(",\"full_rate\":%u", s->full_rate);
    else
        printf(",\"full_rate\":null");
    printf(",\"frames\":%llu,\"live_frames\":%llu,\"repeats\":%llu,\"cards\":%llu,"
           "\"bad_frames\":%llu,\"protocol_errors\":%llu,\"bytes\":%llu,\"jpeg_bytes\":%llu",
           (unsigned long long)L->frames_window, (unsigned long long)L->live_window,
           (unsigned long long)L->repeats_window, (unsigned long long)L->cards_window,
           (unsigned long long)L->bad_frames, (unsigned long long)L->protocol_errors,
           (unsigned long long)L->bytes_window, (unsigned long long)L->jpeg_bytes_window);
    printf(",\"fps_min\":%.2f,\"fps_median\":%.2f,\"fps_max\":%.2f,\"max_gap_ms\":%.1f", s->fps_min,
           s->fps_median, s->fps_max, s->max_gap_ms);
    printf(",\"latency_frames\":%llu", (unsigned long long)L->lat.count);
    json_number("lat_p50_ms", s->lat_p50, 2);
    json_number("lat_p99_ms", s->lat_p99, 2);
    if (L->lat.count)
        printf(",\"lat_max_ms\":%.2f", s->lat_max);
    else
        printf(",\"lat_max_ms\":null");
    printf(",\"lat_negative\":%llu,\"cpu\":[", (unsigned long long)L->lat.negative);
    for (size_t i = 0; i < L->cpu.count; i++) {
        const struct proc_track *t = &L->cpu.procs[i];
        const struct proc_stat *st = t->at_end ? &t->last : &t->first;
        double us;
        printf("%s{\"pid\":%d,\"comm\":", first ? "" : ",", st->pid);
        json_string(st->comm);
        first = false;
        if (proc_cpu_us(t, tick_us, &us)) {
            total_us += us;
            printf(",\"cpu_ms\":%.1f,\"us_per_frame\":%.2f,\"threads\":%ld,"
                   "\"rss_anon_kb\":%llu,\"rss_shmem_kb\":%llu",
                   us / 1000.0, per_frame(us, L->frames_window), st->threads, t->anon_kb,
                   t->shmem_kb);
        } else {
            printf(",\"exited\":true");
        }
        printf("}");
    }
    printf("],\"cpu_total_ms\":%.1f,\"cpu_total_us_per_frame\":%.2f", total_us / 1000.0,
           per_frame(total_us, L->frames_window));
    printf(",\"client_cpu_ms\":%.1f,\"client_us_per_frame\":%.2f,\"client_cpu_pct\":%.1f",
           (double)L->client_cpu_us / 1000.0, per_frame((double)L->client_cpu_us, L->frames_window),
           s->window_s > 0 ? (double)L->client_cpu_us / 1e4 / s->window_s : 0.0);
    printf(",\"fd_limit\":%llu,\"fd_limit_short\":%s,\"errors\":[", L->fd_limit,
           L->fd_limit_short ? "true" : "false");
    for (int i = 0; i < MAX_ERRORS && L->errors[i].count; i++) {
        printf("%s{\"count\":%llu,\"text\":", i ? "," : "", (unsigned long long)L->errors[i].count);
        json_string(L->errors[i].text);
        printf("}");
    }
    printf("],\"errors_other\":%llu}\n", (unsigned long long)L->errors_other);
}

static void print_ms(const char *name, double ms)
{
    if (ms < 0)
        printf("%s n/a", name);
    else
        printf("%s %.2f ms", name, ms);
}

static void report_text(const struct load *L, const struct summary *s, double tick_us)
{
    double total_us = 0;

    printf("%s%s%s%u viewers of %s for %.2f s (warm-up %.1f s, ramp %u ms)\n",
           L->opt.label ? "[" : "", L->opt.label ? L->opt.label : "", L->opt.label ? "] " : "",
           L->opt.viewers, L->target, s->window_s, L->opt.warmup, L->opt.ramp_ms);
    printf("viewers: %u connected, %u failed, %u disconnected early, %u stalled (> 1 s without "
           "a frame)",
           s->connected, s->failed, s->disconnected, s->stalled);
    if (L->opt.source_fps > 0)
        printf("; %u at full rate (>= %.1f fps)", s->full_rate, s->full_rate_fps);
    printf("\nframes: %llu delivered (%llu live, %llu repeats, %llu cards), %llu bad; "
           "%.1f KB each; %.1f MB/s\n",
           (unsigned long long)L->frames_window, (unsigned long long)L->live_window,
           (unsigned long long)L->repeats_window, (unsigned long long)L->cards_window,
           (unsigned long long)L->bad_frames,
           L->frames_window ? (double)L->jpeg_bytes_window / 1e3 / (double)L->frames_window : 0.0,
           s->window_s > 0 ? (double)L->bytes_window / 1e6 / s->window_s : 0.0);
    printf("fps per viewer: min %.2f, median %.2f, max %.2f; longest gap %.1f ms\n", s->fps_min,
           s->fps_median, s->fps_max, s->max_gap_ms);
    printf("latency (receipt - X-Timestamp, %llu frames): ", (unsigned long long)L->lat.count);
    print_ms("p50", s->lat_p50);
    print_ms(", p99", s->lat_p99);
    print_ms(", max", s->lat_max);
    if (L->lat.negative)
        printf(" (%llu negative!)", (unsigned long long)L->lat.negative);
    printf("\n");
    if (L->cpu.count) {
        printf("server CPU in the window (/proc/PID/stat, %.0f ms ticks):\n", tick_us / 1000.0);
        printf("  %8s  %-16s %10s %10s %8s %8s %8s %8s\n", "pid", "process", "CPU ms", "us/frame",
               "% core", "threads", "anon MB", "shm MB");
        for (size_t i = 0; i < L->cpu.count; i++) {
            const struct proc_track *t = &L->cpu.procs[i];
            const struct proc_stat *st = t->at_end ? &t->last : &t->first;
            double us;
            if (!proc_cpu_us(t, tick_us, &us)) {
                printf("  %8d  %-16s %10s (exited during the window)\n", st->pid, st->comm, "-");
                continue;
            }
            total_us += us;
            printf("  %8d  %-16s %10.1f %10.2f %8.1f %8ld %8.1f %8.1f\n", st->pid, st->comm,
                   us / 1000.0, per_frame(us, L->frames_window),
                   s->window_s > 0 ? us / 1e4 / s->window_s : 0.0, st->threads,
                   (double)t->anon_kb / 1024.0, (double)t->shmem_kb / 1024.0);
        }
        printf("  %8s  %-16s %10.1f %10.2f %8.1f\n", "", "total", total_us / 1000.0,
               per_frame(total_us, L->frames_window),
               s->window_s > 0 ? total_us / 1e4 / s->window_s : 0.0);
    }
    printf("client CPU: %.1f ms, %.2f us/frame, %.1f %% of a core\n",
           (double)L->client_cpu_us / 1000.0, per_frame((double)L->client_cpu_us, L->frames_window),
           s->window_s > 0 ? (double)L->client_cpu_us / 1e4 / s->window_s : 0.0);
    if (L->fd_limit_short)
        printf("descriptor limit %llu is below viewers + %d\n", L->fd_limit, FD_RESERVE);
    for (int i = 0; i < MAX_ERRORS && L->errors[i].count; i++)
        printf("error: %llu x %s\n", (unsigned long long)L->errors[i].count, L->errors[i].text);
    if (L->errors_other)
        printf("error: %llu others\n", (unsigned long long)L->errors_other);
}

/* ---- Self-test: the parser against synthetic streams, split at every kind of place -------- */

/* Builds a response: a head, then `frames` parts in the chosen layout, optionally chunked
 * with chunks of `chunk` bytes. Part i has timestamp base + i and a JPEG-like body whose size
 * varies; when `corrupt` is set, part 3 loses its EOI. Returns the length (buf is xmalloc'd). */
static size_t selftest_stream(uint8_t **out, bool with_length, bool chunked, size_t chunk,
                              int frames, bool corrupt, bool repeat_last, uint64_t *good_bytes)
{
    size_t cap = 4u << 20, body_len = 0, len = 0;
    uint8_t *body = xmalloc(cap), *buf = xmalloc(cap + (cap / (chunk ? chunk : cap) + 2) * 16);
    unsigned seed = 12345;

    body_len += (size_t)sprintf((char *)body, "--capdframe\r\n");
    for (int i = 0; i < frames + (repeat_last ? 1 : 0); i++) {
        int frame = i < frames ? i : frames - 1;
        size_t size = 1000 + (size_t)frame * 977;
        uint8_t *jpeg;
        if (with_length)
            body_len += (size_t)sprintf((char *)body + body_len,
                                        "Content-Type: image/jpeg\r\nContent-Length: %zu\r\n"
                                        "X-Timestamp: %d.%06d\r\nX-Capd-Source: live\r\n\r\n",
                                        size, 1000 + frame, 5);
        else
            body_len +=
                (size_t)sprintf((char *)body + body_len, "Content-Type: image/jpeg\r\n\r\n");
        jpeg = body + body_len;
        for (size_t k = 0; k < size; k++) {
            seed = seed * 1103515245u + 12345u;
            jpeg[k] = (uint8_t)(seed >> 16);
        }
        /* Bytes that start a delimiter without finishing it, inside the data. */
        memcpy(jpeg + size / 2, "\r\n--capdframX", 13);
        memcpy(jpeg + size / 3, "\r\r\n-", 4);
        jpeg[0] = 0xFF;
        jpeg[1] = 0xD8;
        jpeg[size - 2] = 0xFF;
        jpeg[size - 1] = (corrupt && i == 3) ? 0x00 : 0xD9;
        body_len += size;
        body_len += (size_t)sprintf((char *)body + body_len, "\r\n--capdframe\r\n");
        if (!(corrupt && i == 3))
            *good_bytes += size;
    }
    len = (size_t)sprintf((char *)buf,
                          "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace;"
                          "boundary=capdframe\r\n%s\r\n",
                          chunked ? "Transfer-Encoding: chunked\r\n" : "");
    if (!chunked) {
        memcpy(buf + len, body, body_len);
        len += body_len;
    } else {
        for (size_t off = 0; off < body_len; off += chunk) {
            size_t n = body_len - off < chunk ? body_len - off : chunk;
            len += (size_t)sprintf((char *)buf + len, "%zx;ext=1\r\n", n);
            memcpy(buf + len, body + off, n);
            len += n;
            memcpy(buf + len, "\r\n", 2);
            len += 2;
        }
    }
    free(body);
    *out = buf;
    return len;
}

static int selftest_case(const char *name, bool with_length, bool chunked, size_t chunk,
                         size_t split, bool corrupt, bool repeat_last)
{
    struct load L;
    struct viewer v;
    uint8_t *stream;
    const int frames = 12;
    uint64_t good_bytes = 0;
    size_t len = selftest_stream(&stream, with_length, chunked, chunk, frames, corrupt, repeat_last,
                                 &good_bytes);
    int rc = 0;
    bool ok;

    memset(&L, 0, sizeof(L));
    memset(&v, 0, sizeof(v));
    L.lat.buckets = xcalloc(LAT_BUCKETS, sizeof(*L.lat.buckets));
    L.window_open = true;
    v.fd = -1;
    for (size_t off = 0; off < len && rc == 0; off += split) {
        size_t n = len - off < split ? len - off : split;
        L.now_mono_ns = 1000000000ull + off;
        L.now_real_us = 1000000000ull + 10000; /* 10 ms after frame 0's timestamp */
        rc = viewer_feed(&L, &v, stream + off, n);
    }
    uint64_t expect_bad = corrupt ? 1 : 0;
    uint64_t expect_live = (uint64_t)frames - expect_bad;
    ok = rc == 0 && v.streaming && v.frames == (uint64_t)frames + (repeat_last ? 1 : 0) &&
         L.bad_frames == expect_bad && L.live_window == expect_live &&
         L.repeats_window == (repeat_last ? 1u : 0u) &&
         L.lat.count == (with_length ? expect_live : 0) && L.protocol_errors == 0 &&
         L.jpeg_bytes_window == good_bytes;
    if (ok && with_length)
        ok = L.lat.max_us == 10000 - 5 - 0; /* frame 0: received at +10 ms, stamped +5 us */
    printf("%s %s\n", ok ? "PASS" : "FAIL", name);
    if (!ok)
        printf("  rc=%d frames=%llu bad=%llu live=%llu repeats=%llu lat=%llu max=%lld err=%llu "
               "%s\n",
               rc, (unsigned long long)v.frames, (unsigned long long)L.bad_frames,
               (unsigned long long)L.live_window, (unsigned long long)L.repeats_window,
               (unsigned long long)L.lat.count, (long long)L.lat.max_us,
               (unsigned long long)L.protocol_errors, L.errors[0].text);
    free(L.lat.buckets);
    free(stream);
    return ok ? 0 : 1;
}

static int selftest_lying_length(void)
{
    /* A part whose Content-Length is 10 bytes short: bad, then the next part is good. */
    static const char text[] = "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; "
                               "boundary=\"b\"\r\n\r\n--b\r\nContent-Length: 6\r\n\r\n"
                               "\xff\xd8xxxx\xff\xd9\r\n--b\r\nContent-Length: 6\r\n\r\n"
                               "\xff\xd8yy\xff\xd9\r\n--b--\r\n";
    struct load L;
    struct viewer v;
    int rc;
    bool ok;

    memset(&L, 0, sizeof(L));
    memset(&v, 0, sizeof(v));
    L.lat.buckets = xcalloc(LAT_BUCKETS, sizeof(*L.lat.buckets));
    L.window_open = true;
    rc = viewer_feed(&L, &v, (const uint8_t *)text, sizeof(text) - 1);
    ok = rc == 0 && v.frames == 2 && L.bad_frames == 1 && L.live_window == 1 && v.mp == MP_EPILOGUE;
    printf("%s lying Content-Length resynchronises\n", ok ? "PASS" : "FAIL");
    free(L.lat.buckets);
    return ok ? 0 : 1;
}

static int selftest_errors(void)
{
    static const char *const bad[] = {
        "HTTP/1.1 503 Busy\r\nContent-Type: text/plain\r\n\r\nbusy",
        "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: multipart/x-mixed-replace;"
        "boundary=b\r\n\r\nzz\r\n",
    };
    int failed = 0;

    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct load L;
        struct viewer v;
        memset(&L, 0, sizeof(L));
        memset(&v, 0, sizeof(v));
        int rc = viewer_feed(&L, &v, (const uint8_t *)bad[i], strlen(bad[i]));
        bool ok = rc < 0 && L.errors[0].count == 1;
        printf("%s bad response %zu is refused (%s)\n", ok ? "PASS" : "FAIL", i, L.errors[0].text);
        failed += !ok;
    }
    return failed;
}

/* The same streams through a real loopback TCP connection, written in uneven pieces by a
 * child process and read by viewer_readable(), which stamps and classifies the reads. */
static int selftest_tcp(const char *name, bool with_length, bool chunked)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t addr_len = sizeof(addr);
    struct load L;
    struct viewer v;
    uint8_t *stream;
    uint64_t good_bytes = 0;
    size_t len =
        selftest_stream(&stream, with_length, chunked, 30000, 12, false, false, &good_bytes);
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), server = -1;
    bool ok = false;
    pid_t child = -1;

    memset(&L, 0, sizeof(L));
    memset(&v, 0, sizeof(v));
    L.epoll_fd = -1;
    L.window_open = true;
    L.buf = xmalloc(READ_BUF_SIZE);
    L.lat.buckets = xcalloc(LAT_BUCKETS, sizeof(*L.lat.buckets));
    v.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0 || v.fd < 0 || bind(listener, (struct sockaddr *)&addr, addr_len) < 0 ||
        listen(listener, 1) < 0 || getsockname(listener, (struct sockaddr *)&addr, &addr_len) < 0 ||
        connect(v.fd, (struct sockaddr *)&addr, addr_len) < 0 ||
        (server = accept(listener, NULL, NULL)) < 0 || (child = fork()) < 0)
        goto out;
    if (child == 0) {
        /* Uneven pieces with pauses, so that reads end anywhere. */
        unsigned seed = 7;
        for (size_t off = 0; off < len;) {
            seed = seed * 1103515245u + 12345u;
            size_t piece = 1 + (seed >> 8) % 9000;
            ssize_t n = write(server, stream + off, piece < len - off ? piece : len - off);
            if (n <= 0)
                _exit(1);
            off += (size_t)n;
            if (seed % 4 == 0)
                usleep(200);
        }
        _exit(0);
    }
    close(server);
    server = -1;
    fcntl(v.fd, F_SETFL, O_NONBLOCK);
    v.phase = VP_RECEIVING;
    while (v.phase != VP_ENDED) {
        struct pollfd pfd = {.fd = v.fd, .events = POLLIN};
        if (poll(&pfd, 1, 5000) <= 0)
            break;
        viewer_readable(&L, &v);
    }
    ok = v.phase == VP_ENDED && v.frames == 12 && L.bad_frames == 0 && L.live_window == 12 &&
         L.jpeg_bytes_window == good_bytes && L.protocol_errors == 0 &&
         (with_length ? L.lat.count == 12 && L.lat.overflow == 12 : L.lat.count == 0);
out:
    printf("%s %s\n", ok ? "PASS" : "FAIL", name);
    if (!ok)
        printf("  frames=%llu bad=%llu bytes=%llu/%llu %s\n", (unsigned long long)v.frames,
               (unsigned long long)L.bad_frames, (unsigned long long)L.jpeg_bytes_window,
               (unsigned long long)good_bytes, L.errors[0].text);
    if (child > 0)
        waitpid(child, NULL, 0);
    if (server >= 0)
        close(server);
    if (listener >= 0)
        close(listener);
    if (v.fd >= 0)
        close(v.fd);
    free(L.lat.buckets);
    free(L.buf);
    free(stream);
    return ok ? 0 : 1;
}

static int selftest(void)
{
    static const size_t splits[] = {1, 2, 3, 7, 13, 100, 4096, 65536, 1u << 22};
    int failed = 0, cases = 0;

    for (size_t i = 0; i < ARRAY_SIZE(splits); i++) {
        char name[160];
        size_t split = splits[i];
        snprintf(name, sizeof(name), "full layout, identity, reads of %zu", split);
        failed += selftest_case(name, true, false, 0, split, false, false);
        snprintf(name, sizeof(name), "full layout, chunks of 5000, reads of %zu", split);
        failed += selftest_case(name, true, true, 5000, split, false, false);
        snprintf(name, sizeof(name), "early layout, chunks of 7, reads of %zu", split);
        failed += selftest_case(name, false, true, 7, split, false, false);
        snprintf(name, sizeof(name), "early layout, identity, reads of %zu", split);
        failed += selftest_case(name, false, false, 0, split, false, false);
        snprintf(name, sizeof(name), "full layout, a bad JPEG and a repeat, reads of %zu", split);
        failed += selftest_case(name, true, true, 65536, split, true, true);
        snprintf(name, sizeof(name), "early layout, a bad JPEG, reads of %zu", split);
        failed += selftest_case(name, false, true, 3000, split, true, false);
        cases += 6;
    }
    failed += selftest_lying_length() + selftest_errors();
    cases += 4;
    failed += selftest_tcp("TCP, full layout, chunked", true, true);
    failed += selftest_tcp("TCP, full layout, identity", true, false);
    failed += selftest_tcp("TCP, early layout, chunked", false, true);
    cases += 3;
    printf("%d passed, %d failed\n", cases - failed, failed);
    return failed ? 1 : 0;
}

/* ---- main ---------------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: loadclient [options] http://HOST[:PORT][/PATH]\n"
        "  N concurrent MJPEG viewers (one thread, epoll); reports fps, latency (receipt\n"
        "  time of a frame's last byte minus its X-Timestamp) and server CPU per frame.\n"
        "  --viewers N        concurrent viewers (default 1)\n"
        "  --seconds S        length of the measurement window (default 10)\n"
        "  --warmup S         connect, then wait S seconds before measuring (default 2)\n"
        "  --ramp MS          spread the connection starts over MS ms (default 0)\n"
        "  --path PATH        request PATH instead of the URL's path (e.g. /stream?parts=early)\n"
        "  --user-agent UA    User-Agent (default loadclient/" CAPD_VERSION "; a browser's\n"
        "                     \"Mozilla/...\" gets capd's early part layout)\n"
        "  --source-fps F     the source's frame rate: count viewers at >= 0.9 F\n"
        "  --pid PID          a server process to charge CPU to (repeatable)\n"
        "  --tree PID         PID and all its descendants, rescanned at both ends (repeatable)\n"
        "  --label NAME       name of this run in the report\n"
        "  --json             one JSON object on stdout instead of the text report\n"

        "  --self-test        check the stream parser on synthetic streams and exit\n");
}

static void parse_options(int argc, char **argv, struct options *opt)
{
    static const struct option longopts[] = {
        {"viewers", required_argument, NULL, 'n'},
        {"seconds", required_argument, NULL, 's'},
        {"warmup", required_argument, NULL, 'w'},
        {"ramp", required_argument, NULL, 'r'},
        {"path", required_argument, NULL, 'p'},
        {"user-agent", required_argument, NULL, 'u'},
        {"label", required_argument, NULL, 'l'},
        {"json", no_argument, NULL, 'j'},
        {"pid", required_argument, NULL, 'P'},
        {"tree", required_argument, NULL, 'T'},
        {"source-fps", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    opt->viewers = 1;
    opt->seconds = 10;
    opt->warmup = 2;
    opt->user_agent = "loadclient/" CAPD_VERSION;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        uint32_t value;
        switch (c) {
        case 'n':
            if (parse_u32(optarg, 1, MAX_VIEWERS, &opt->viewers) < 0)
                die_bad_option("--viewers", optarg, "want 1..20000");
            break;
        case 's':
            if (parse_double(optarg, 0.1, 86400, &opt->seconds) < 0)
                die_bad_option("--seconds", optarg, "want 0.1..86400");
            break;
        case 'w':
            if (parse_double(optarg, 0, 3600, &opt->warmup) < 0)
                die_bad_option("--warmup", optarg, "want 0..3600");
            break;
        case 'r':
            if (parse_u32(optarg, 0, 3600000, &opt->ramp_ms) < 0)
                die_bad_option("--ramp", optarg, "want 0..3600000 ms");
            break;
        case 'p':
            if (optarg[0] != '/' || strpbrk(optarg, " \r\n"))
                die_bad_option("--path", optarg, "want /path without spaces");
            opt->path = optarg;
            break;
        case 'u':
            if (strpbrk(optarg, "\r\n"))
                die_bad_option("--user-agent", optarg, "no line breaks");
            opt->user_agent = optarg;
            break;
        case 'l':
            opt->label = optarg;
            break;
        case 'j':
            opt->json = true;
            break;
        case 'P':
        case 'T':
            if (parse_u32(optarg, 1, INT32_MAX, &value) < 0)
                die_bad_option(c == 'P' ? "--pid" : "--tree", optarg, "want a process id");
            if (opt->root_count == MAX_ROOTS)
                die_bad_option(c == 'P' ? "--pid" : "--tree", optarg, "at most 16 of them");
            if (kill((pid_t)value, 0) < 0 && errno == ESRCH)
                die_bad_option(c == 'P' ? "--pid" : "--tree", optarg, "no such process");
            opt->roots[opt->root_count++] = (struct cpu_root){(int)value, c == 'T'};
            break;
        case 'f':
            if (parse_double(optarg, 0.001, 1000, &opt->source_fps) < 0)
                die_bad_option("--source-fps", optarg, "want 0.001..1000");
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(EXIT_USAGE);
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        exit(EXIT_USAGE);
    }
    opt->url = argv[optind];
}

int main(int argc, char **argv)
{
    struct load L;
    struct summary s;
    struct sigaction sa;
    double tick_us;
    int rc;

    log_init("loadclient", 0);
    if (argc == 2 && strcmp(argv[1], "--self-test") == 0)
        return selftest();
    memset(&L, 0, sizeof(L));
    L.epoll_fd = -1;
    parse_options(argc, argv, &L.opt);
    if (load_resolve(&L) < 0)
        die_bad_option("URL", L.opt.url, "want http://HOST[:PORT][/PATH]");
    if (L.opt.ramp_ms > L.opt.warmup * 1000)
        log_warn("the ramp (%u ms) ends after the warm-up: late viewers start inside the window",
                 L.opt.ramp_ms);
    raise_fd_limit(&L);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    L.viewers = xcalloc(L.opt.viewers, sizeof(*L.viewers));
    for (uint32_t i = 0; i < L.opt.viewers; i++)
        L.viewers[i].fd = -1;
    L.buf = xmalloc(READ_BUF_SIZE);
    L.lat.buckets = xcalloc(LAT_BUCKETS, sizeof(*L.lat.buckets));

    rc = load_run(&L);
    if (rc < 0)
        log_error("event loop: %s", strerror(-rc));
    tick_us = 1e6 / (double)sysconf(_SC_CLK_TCK);
    summarize(&L, &s);
    if (L.opt.json)
        report_json(&L, &s, tick_us);
    else
        report_text(&L, &s, tick_us);

    free(L.cpu.procs);
    free(L.lat.buckets);
    free(L.buf);
    free(L.viewers);
    free(L.request);
    /* Nothing measured is a failure for scripts; a run with some failed viewers is a result. */
    return rc < 0 || s.connected == 0 ? 1 : 0;
}
