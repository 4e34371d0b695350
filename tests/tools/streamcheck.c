/* streamcheck.c - strict HTTP MJPEG/snapshot client that validates, times and counts frames. */
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <turbojpeg.h>
#include <unistd.h>

/* Exit codes; tests/integration relies on them, so they never change meaning. */
enum {
    SC_OK = 0,
    SC_USAGE = 1,
    SC_IO = 2,
    SC_STATUS = 3,
    SC_EOF = 4,
    SC_TIMEOUT = 5,
    SC_FPS = 6,
    SC_BAD = 7,
};

#define HEAD_LIMIT       (16 * 1024) /* HTTP head, and each part's header block */
#define CHUNK_LINE_LIMIT 1024
#define RAW_BUF_SIZE     (64 * 1024)
#define MIN_READ_ROOM    (16 * 1024)
#define FIRST_BUF_SIZE   (256 * 1024)
#define BOUNDARY_MAX     200
#define CONTENT_TYPE_MAX 256
#define URL_HOST_MAX     256
#define URL_PATH_MAX     4096
#define USER_AGENT_MAX   256
#define MAX_SIZES        16
#define MAX_DECODED_PIXELS                                                                         \
    (64ull * 1024 * 1024) /* a hostile header must not make us allocate GBs */
#define SNIPPET_MAX         160
#define FUTURE_TOLERANCE_US 1000 /* same host, same clock: more than this is a server bug */
#define DEFAULT_MAX_FRAME   (64ull * 1024 * 1024)
#define MAX_TIMESTAMP_SEC   100000000000ull

/* ---- Options ---------------------------------------------------------------------------- */

struct options {
    const char *url;
    const char *user_agent;
    uint32_t expect_status;
    const char *save_path;
    const char *save_frames_dir;
    uint64_t max_frames; /* 0: no limit */
    double seconds;      /* 0: no limit */
    double timeout;
    bool allow_eof;
    bool has_expect_size;
    uint32_t expect_width, expect_height;
    bool has_min_fps;
    double min_fps;
    uint64_t max_bad;
    uint64_t max_frame;
    bool quiet;
    bool events;
};

struct url {
    char host[URL_HOST_MAX];
    char host_header[URL_HOST_MAX + 8];
    char path[URL_PATH_MAX];
    uint16_t port;
    struct in_addr addr;
};

/* ---- Connection: socket reads with timeouts, then HTTP body framing --------------------- */

enum body_mode { BODY_NONE, BODY_UNTIL_CLOSE, BODY_LENGTH, BODY_CHUNKED };
enum chunk_state { CHUNK_SIZE, CHUNK_DATA, CHUNK_DATA_END, CHUNK_TRAILER, CHUNK_DONE };

struct conn {
    int fd;
    unsigned char raw[RAW_BUF_SIZE];
    size_t raw_pos, raw_len; /* unconsumed bytes are raw[raw_pos, raw_len) */
    bool eof;
    uint64_t idle_timeout_ns;
    uint64_t deadline_ns; /* --seconds; 0 while connecting and reading the head */
    uint64_t progress_ns; /* when the last byte arrived (or the current wait began) */
    /* Every socket read is numbered and stamped. Body bytes in raw[] always come from the
     * latest read (we only read when no body byte is left), so they share its stamps. */
    uint64_t read_seq;
    uint64_t read_real_us, read_mono_ns;
    enum body_mode mode;
    uint64_t remaining; /* BODY_LENGTH: body bytes left; BODY_CHUNKED: bytes left in chunk */
    enum chunk_state chunk;
    size_t trailer_bytes;
    char why[256]; /* detail of the last protocol error */
};

/* Headers we look at, for both the HTTP head and each multipart part. */
enum frame_source { SOURCE_NONE, SOURCE_LIVE, SOURCE_OFFLINE, SOURCE_UNKNOWN };

struct headers {
    bool has_content_type;
    char content_type[CONTENT_TYPE_MAX];
    bool has_length;
    uint64_t length;
    bool chunked;
    bool other_coding;
    bool has_timestamp;
    bool timestamp_bad;
    uint64_t timestamp_us;
    enum frame_source source;
};

/* ---- Multipart buffer: body bytes with the arrival time of each read --------------------- */

struct read_mark {
    size_t offset; /* first byte of that read in data[] */
    uint64_t seq;
    uint64_t real_us, mono_ns;
};

struct mp {
    struct conn *conn;
    unsigned char *data;
    size_t cap, limit;
    size_t start, len;        /* unconsumed bytes are data[start, len) */
    struct read_mark mark[2]; /* [1] newest read, [0] the one before */
};

/* ---- Run statistics ---------------------------------------------------------------------- */

/* Latency histogram: 1 us buckets below 1024 us, then 512 buckets per octave (0.2 %). */
#define LAT_LINEAR  1024u
#define LAT_PER_OCT 512u
#define LAT_OCTAVES 32u
#define LAT_BUCKETS (LAT_LINEAR + LAT_OCTAVES * LAT_PER_OCT)

enum end_reason { END_NONE, END_FRAMES, END_SECONDS, END_EOF };

struct frame_size {
    uint32_t width, height;
};

struct run {
    const struct options *opt;
    uint64_t start_ns, end_ns, deadline_ns;
    tjhandle tj;
    unsigned char *pixels;
    size_t pixels_cap;

    bool have_status;
    unsigned status;
    char media_type[CONTENT_TYPE_MAX];

    uint64_t frames, live, offline, bad, frame_bytes;
    uint64_t first_live_ns, last_live_ns;
    uint32_t latency_hist[LAT_BUCKETS];
    uint64_t latency_count;
    int64_t latency_max_us;

    struct frame_size sizes[MAX_SIZES];
    size_t size_count;
    bool sizes_overflow;
    bool have_prev_size;
    struct frame_size prev_size;
    bool in_offline;

    bool have_first_line;
    char first_line[SNIPPET_MAX + 1];

    enum end_reason end;
    int exit_code;
    char message[512];
};

static int set_why(struct conn *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_why(struct conn *c, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
    return err;
}

/* Records the first failure only: later ones are consequences of it. */
static void fail(struct run *run, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct run *run, int code, const char *fmt, ...)
{
    va_list ap;
    if (run->exit_code != SC_OK)
        return;
    run->exit_code = code;
    va_start(ap, fmt);
    vsnprintf(run->message, sizeof(run->message), fmt, ap);
    va_end(ap);
}

static void fail_rc(struct run *run, const struct conn *c, int rc, const char *during)
{
    switch (rc) {
    case -ETIMEDOUT:
        fail(run, SC_TIMEOUT, "timeout: nothing received for %g s while %s", run->opt->timeout,
             during);
        break;
    case -EPIPE:
    case -ENODATA:
        fail(run, SC_EOF, "server closed the connection while %s", during);
        break;
    case -EPROTO:
    case -EMSGSIZE:
    case -EFBIG:
    case -ENOBUFS:
        fail(run, SC_IO, "protocol error while %s: %s", during, c->why[0] ? c->why : strerror(-rc));
        break;
    default:
        fail(run, SC_IO, "%s: %s", during, strerror(-rc));
        break;
    }
}

/* Writes `len` bytes of `in` as printable ASCII: quotes, backslashes and control bytes escaped. */
static void escape_text(const unsigned char *in, size_t len, char *out, size_t out_size)
{
    size_t used = 0;
    for (size_t i = 0; i < len && used + 5 < out_size; i++) {
        unsigned char ch = in[i];
        if (ch == '"' || ch == '\\') {
            out[used++] = '\\';
            out[used++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            used += (size_t)snprintf(out + used, out_size - used, "\\x%02x", ch);
        } else {
            out[used++] = (char)ch;
        }
    }
    out[used] = '\0';
}

/* Escaped copy of at most 60 bytes of server text, for error details. */
static const char *snippet(const char *text, size_t len, char *buf, size_t buf_size)
{
    escape_text((const unsigned char *)text, len < 60 ? len : 60, buf, buf_size);
    return buf;
}

/* ---- Events and frame checks -------------------------------------------------------------- */

static void emit_event(const struct run *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void emit_event(const struct run *run, const char *fmt, ...)
{
    va_list ap;
    if (!run->opt->events)
        return;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    /* Flushed per line so that a test can follow events while the stream runs. */
    fflush(stdout);
}

static double run_seconds_at(const struct run *run, uint64_t mono_ns)
{
    return mono_ns > run->start_ns ? (double)(mono_ns - run->start_ns) / 1e9 : 0.0;
}

static size_t latency_bucket(uint64_t us)
{
    if (us < LAT_LINEAR)
        return (size_t)us;
    if (us >= 1ull << (LAT_OCTAVES + 10))
        us = (1ull << (LAT_OCTAVES + 10)) - 1;
    unsigned top_bit = 63u - (unsigned)__builtin_clzll(us);
    unsigned shift = top_bit - 9u; /* leaves 10 significant bits: 512..1023 */
    return LAT_LINEAR + (shift - 1u) * LAT_PER_OCT + (size_t)((us >> shift) - LAT_PER_OCT);
}

static double latency_bucket_mid_us(size_t bucket)
{
    if (bucket < LAT_LINEAR)
        return (double)bucket;
    size_t shift = (bucket - LAT_LINEAR) / LAT_PER_OCT + 1;
    uint64_t mantissa = (bucket - LAT_LINEAR) % LAT_PER_OCT + LAT_PER_OCT;
    return (double)(mantissa << shift) + (double)((1ull << shift) - 1) / 2.0;
}

static double latency_percentile_ms(const struct run *run, double fraction)
{
    uint64_t rank = (uint64_t)ceil(fraction * (double)run->latency_count);
    uint64_t seen = 0;
    if (rank < 1)
        rank = 1;
    for (size_t i = 0; i < LAT_BUCKETS; i++) {
        seen += run->latency_hist[i];
        if (seen >= rank)
            return latency_bucket_mid_us(i) / 1000.0;
    }
    return latency_bucket_mid_us(LAT_BUCKETS - 1) / 1000.0;
}

static void record_size(struct run *run, uint32_t width, uint32_t height, uint64_t frame_no)
{
    struct frame_size size = {width, height};
    size_t i;

    if (run->have_prev_size && (run->prev_size.width != width || run->prev_size.height != height))
        emit_event(run, "event=size_change from=%ux%u to=%ux%u frame=%llu", run->prev_size.width,
                   run->prev_size.height, width, height, (unsigned long long)frame_no);
    run->have_prev_size = true;
    run->prev_size = size;

    for (i = 0; i < run->size_count; i++)
        if (run->sizes[i].width == width && run->sizes[i].height == height)
            return;
    if (run->size_count < MAX_SIZES)
        run->sizes[run->size_count++] = size;
    else
        run->sizes_overflow = true;
}

/* Checks that one JPEG is complete and decodes cleanly. Returns NULL when it is good, with its
 * size stored, or a reason token with a human-readable detail. */
static const char *jpeg_check(struct run *run, const unsigned char *data, size_t len,
                              uint32_t *width_out, uint32_t *height_out, char *detail,
                              size_t detail_size)
{
    int width, height, subsamp, colorspace, pixel_format;

    if (len < 4 || data[0] != 0xFF || data[1] != 0xD8) {
        snprintf(detail, detail_size, "does not start with FFD8 (%zu bytes)", len);
        return "no_soi";
    }
    if (data[len - 2] != 0xFF || data[len - 1] != 0xD9) {
        for (size_t i = len - 2; i-- > 2;) {
            if (data[i] == 0xFF && data[i + 1] == 0xD9) {
                snprintf(detail, detail_size, "%zu bytes after the last FFD9", len - i - 2);
                return "trailing_bytes";
            }
        }
        snprintf(detail, detail_size, "no FFD9 end marker (%zu bytes)", len);
        return "no_eoi";
    }
    if (len > ULONG_MAX) {
        snprintf(detail, detail_size, "%zu bytes is too large for TurboJPEG", len);
        return "too_large";
    }
    if (tjDecompressHeader3(run->tj, data, (unsigned long)len, &width, &height, &subsamp,
                            &colorspace) != 0) {
        snprintf(detail, detail_size, "header: %s", tjGetErrorStr2(run->tj));
        return "decode_error";
    }
    if (width <= 0 || height <= 0 || (uint64_t)width * (uint64_t)height > MAX_DECODED_PIXELS) {
        snprintf(detail, detail_size, "%dx%d exceeds the decoder limit", width, height);
        return "too_large";
    }
    pixel_format = TJPF_RGB;
    if (colorspace == TJCS_GRAY)
        pixel_format = TJPF_GRAY;
    else if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK)
        pixel_format = TJPF_CMYK; /* TurboJPEG cannot convert these to RGB */
    size_t need = (size_t)width * (size_t)height * (size_t)tjPixelSize[pixel_format];
    if (need > run->pixels_cap) {
        free(run->pixels);
        run->pixels = xmalloc(need);
        run->pixels_cap = need;
    }
    /* tjDecompress2 also fails on warnings (e.g. premature end of data): a bad frame too. */
    if (tjDecompress2(run->tj, data, (unsigned long)len, run->pixels, width, 0, height,
                      pixel_format, TJFLAG_FASTDCT | TJFLAG_LIMITSCANS) != 0) {
        bool warning = tjGetErrorCode(run->tj) == TJERR_WARNING;
        snprintf(detail, detail_size, "%s", tjGetErrorStr2(run->tj));
        return warning ? "decode_warning" : "decode_error";
    }
    *width_out = (uint32_t)width;
    *height_out = (uint32_t)height;
    return NULL;
}

/* True when the header value names `type`, parameters aside. */
static bool media_type_is(const char *value, const char *type)
{
    size_t n = strlen(type);
    if (strncasecmp(value, type, n) != 0)
        return false;
    return value[n] == '\0' || value[n] == ';' || value[n] == ' ' || value[n] == '\t';
}

static int write_file(const char *path, const unsigned char *data, size_t len)
{
    int rc = 0;
    FILE *file = fopen(path, "wb");
    if (!file)
        return -errno;
    if (len && fwrite(data, 1, len, file) != len)
        rc = -EIO;
    if (fclose(file) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* Counts and checks one frame (a multipart part or a snapshot body). `truncated` frames were cut
 * off by EOF and are only counted as bad. Returns 0, or -1 after fail() when saving failed. */
static int frame_process(struct run *run, const unsigned char *data, size_t len,
                         const struct headers *h, bool truncated, uint64_t recv_real_us,
                         uint64_t recv_mono_ns)
{
    const struct options *opt = run->opt;
    uint64_t frame_no = ++run->frames;
    double t = run_seconds_at(run, recv_mono_ns);
    bool offline = h->source == SOURCE_OFFLINE;
    const char *reason = NULL;
    char detail[320] = "";
    uint32_t width = 0, height = 0;

    run->frame_bytes += len;
    if (frame_no == 1)
        emit_event(run, "event=first_frame t=%.3f", t);
    if (offline) {
        run->offline++;
        if (!run->in_offline)
            emit_event(run, "event=offline_start t=%.3f frame=%llu", t,
                       (unsigned long long)frame_no);
        run->in_offline = true;
    } else {
        run->live++;
        if (run->in_offline)
            emit_event(run, "event=offline_end t=%.3f frame=%llu", t, (unsigned long long)frame_no);
        run->in_offline = false;
        if (run->live == 1)
            run->first_live_ns = recv_mono_ns;
        run->last_live_ns = recv_mono_ns;
    }

    if (opt->save_frames_dir) {
        char path[PATH_MAX];
        int n = snprintf(path, sizeof(path), "%s/frame_%06llu.jpg", opt->save_frames_dir,
                         (unsigned long long)frame_no);
        int rc = n > 0 && (size_t)n < sizeof(path) ? write_file(path, data, len) : -ENAMETOOLONG;
        if (rc < 0) {
            fail(run, SC_IO, "cannot write %s/frame_%06llu.jpg: %s", opt->save_frames_dir,
                 (unsigned long long)frame_no, strerror(-rc));
            return -1;
        }
    }

    if (truncated) {
        reason = "truncated";
        snprintf(detail, sizeof(detail), "connection ended after %zu bytes of the frame", len);
    } else {
        reason = jpeg_check(run, data, len, &width, &height, detail, sizeof(detail));
        if (!reason)
            record_size(run, width, height, frame_no);
    }

    if (!reason && !(h->has_content_type && media_type_is(h->content_type, "image/jpeg"))) {
        reason = "content_type";
        char text[256];
        snprintf(detail, sizeof(detail), "Content-Type is \"%s\", not image/jpeg",
                 h->has_content_type
                     ? snippet(h->content_type, strlen(h->content_type), text, sizeof(text))
                     : "(missing)");
    }
    if (!reason && h->timestamp_bad) {
        reason = "timestamp";
        snprintf(detail, sizeof(detail), "malformed X-Timestamp");
    }
    if (!reason && h->source == SOURCE_UNKNOWN) {
        reason = "source";
        snprintf(detail, sizeof(detail), "X-Capd-Source is not live, offline or no-signal");
    }
    if (!reason && !offline && opt->has_expect_size &&
        (width != opt->expect_width || height != opt->expect_height)) {
        reason = "size";
        snprintf(detail, sizeof(detail), "%ux%u, expected %ux%u", width, height, opt->expect_width,
                 opt->expect_height);
    }
    if (!reason && h->has_timestamp) {
        int64_t latency_us = (int64_t)recv_real_us - (int64_t)h->timestamp_us;
        if (latency_us < -FUTURE_TOLERANCE_US) {
            reason = "timestamp";
            snprintf(detail, sizeof(detail), "X-Timestamp is %.3f ms in the future",
                     (double)-latency_us / 1000.0);
        } else if (!offline) {
            if (run->latency_count == 0 || latency_us > run->latency_max_us)
                run->latency_max_us = latency_us;
            run->latency_hist[latency_bucket(latency_us > 0 ? (uint64_t)latency_us : 0)]++;
            run->latency_count++;
        }
    }

    if (reason) {
        char escaped[SNIPPET_MAX * 4 + 8];
        run->bad++;
        escape_text((const unsigned char *)detail, strlen(detail), escaped, sizeof(escaped));
        emit_event(run, "event=bad frame=%llu reason=%s detail=\"%s\"",
                   (unsigned long long)frame_no, reason, escaped);
        if (!opt->quiet)
            log_warn("bad frame %llu: %s: %s", (unsigned long long)frame_no, reason, detail);
    }
    return 0;
}

/* ---- Socket layer ----------------------------------------------------------------------- */

static int ns_to_poll_ms(uint64_t ns)
{
    uint64_t ms = (ns + 999999u) / 1000000u;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Waits until the socket is ready for `events`. Returns 0, -ETIMEDOUT when nothing happened for
 * the idle timeout, -ECANCELED at the --seconds deadline, or another -errno. */
static int conn_wait(struct conn *c, short events)
{
    for (;;) {
        uint64_t now = time_mono_ns();
        uint64_t idle_end = c->progress_ns + c->idle_timeout_ns;
        if (c->deadline_ns && now >= c->deadline_ns)
            return -ECANCELED;
        if (now >= idle_end)
            return -ETIMEDOUT;
        uint64_t wait_ns = idle_end - now;
        if (c->deadline_ns && c->deadline_ns - now < wait_ns)
            wait_ns = c->deadline_ns - now;
        struct pollfd pfd = {.fd = c->fd, .events = events};
        int rc = poll(&pfd, 1, ns_to_poll_ms(wait_ns));
        if (rc > 0)
            return 0; /* also on POLLERR/POLLHUP: the next read or write reports it */
        if (rc < 0 && errno != EINTR)
            return -errno;
    }
}

/* Reads more bytes after the unconsumed ones (compacting first). Returns the byte count, 0 at
 * EOF, -ENOBUFS when the buffer is full, or conn_wait()'s errors. */
static ssize_t conn_fill(struct conn *c)
{
    if (c->raw_pos > 0) {
        memmove(c->raw, c->raw + c->raw_pos, c->raw_len - c->raw_pos);
        c->raw_len -= c->raw_pos;
        c->raw_pos = 0;
    }
    if (c->raw_len == sizeof(c->raw))
        return set_why(c, -ENOBUFS, "receive buffer full");
    if (c->eof)
        return 0;
    for (;;) {
        int rc = conn_wait(c, POLLIN);
        if (rc < 0)
            return rc;
        ssize_t n = read(c->fd, c->raw + c->raw_len, sizeof(c->raw) - c->raw_len);
        if (n > 0) {
            c->raw_len += (size_t)n;
            c->progress_ns = time_mono_ns();
            c->read_mono_ns = c->progress_ns;
            c->read_real_us = time_real_us();
            c->read_seq++;
            return n;
        }
        if (n == 0) {
            c->eof = true;
            return 0;
        }
        if (errno != EINTR && errno != EAGAIN)
            return -errno;
    }
}

/* Returns the next line (NUL-terminated in place, CR/LF stripped, valid until the next read)
 * and the number of bytes it consumed, -EMSGSIZE when it would exceed `limit` bytes, -ENODATA
 * at EOF, or conn_fill()'s errors. */
static int conn_read_line(struct conn *c, size_t limit, char **line, size_t *len, bool *had_cr)
{
    size_t scanned = 0;
    for (;;) {
        unsigned char *base = c->raw + c->raw_pos;
        size_t avail = c->raw_len - c->raw_pos;
        unsigned char *nl = memchr(base + scanned, '\n', avail - scanned);
        if (nl) {
            size_t consumed = (size_t)(nl - base) + 1;
            size_t n = consumed - 1;
            if (consumed > limit)
                return set_why(c, -EMSGSIZE, "line longer than %zu bytes", limit);
            *had_cr = n > 0 && base[n - 1] == '\r';
            if (*had_cr)
                n--;
            base[n] = '\0';
            c->raw_pos += consumed;
            *line = (char *)base;
            *len = n;
            return (int)consumed;
        }
        if (avail >= limit)
            return set_why(c, -EMSGSIZE, "line longer than %zu bytes", limit);
        scanned = avail;
        ssize_t rc = conn_fill(c);
        if (rc == 0)
            return -ENODATA;
        if (rc < 0)
            return (int)rc;
    }
}

static size_t conn_take(struct conn *c, unsigned char *dst, size_t cap, uint64_t max)
{
    size_t n = c->raw_len - c->raw_pos;
    if (n > cap)
        n = cap;
    if (n > max)
        n = (size_t)max;
    memcpy(dst, c->raw + c->raw_pos, n);
    c->raw_pos += n;
    return n;
}

static int parse_chunk_size(struct conn *c, const char *line, size_t len, uint64_t *size)
{
    char text[256];
    uint64_t value = 0;
    size_t i = 0;

    while (i < len && isxdigit((unsigned char)line[i])) {
        if (i >= 15)
            return set_why(c, -EPROTO, "chunk size \"%s\" too large",
                           snippet(line, len, text, sizeof(text)));
        int ch = tolower((unsigned char)line[i]);
        value = value * 16 + (uint64_t)(ch <= '9' ? ch - '0' : ch - 'a' + 10);
        i++;
    }
    if (i == 0)
        return set_why(c, -EPROTO, "bad chunk size line \"%s\"",
                       snippet(line, len, text, sizeof(text)));
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i < len && line[i] != ';')
        return set_why(c, -EPROTO, "bad chunk size line \"%s\"",
                       snippet(line, len, text, sizeof(text)));
    *size = value;
    return 0;
}

/* Body bytes of a chunked response: returns the count, 0 after the last chunk and trailers,
 * -EPIPE at EOF before that, -EPROTO on bad chunk syntax, or conn_fill()'s errors. */
static ssize_t conn_read_chunked(struct conn *c, unsigned char *dst, size_t cap)
{
    char *line;
    size_t len;
    bool had_cr;
    ssize_t rc;

    for (;;) {
        switch (c->chunk) {
        case CHUNK_SIZE:
            rc = conn_read_line(c, CHUNK_LINE_LIMIT, &line, &len, &had_cr);
            if (rc == -ENODATA)
                return -EPIPE;
            if (rc == -EMSGSIZE)
                return set_why(c, -EPROTO, "chunk size line longer than %d bytes",
                               CHUNK_LINE_LIMIT);
            if (rc < 0)
                return rc;
            if (!had_cr)
                return set_why(c, -EPROTO, "chunk size line not ended by CRLF");
            rc = parse_chunk_size(c, line, len, &c->remaining);
            if (rc < 0)
                return rc;
            c->chunk = c->remaining ? CHUNK_DATA : CHUNK_TRAILER;
            break;
        case CHUNK_DATA:
            if (c->raw_len > c->raw_pos) {
                size_t n = conn_take(c, dst, cap, c->remaining);
                c->remaining -= n;
                if (c->remaining == 0)
                    c->chunk = CHUNK_DATA_END;
                return (ssize_t)n;
            }
            rc = conn_fill(c);
            if (rc == 0)
                return -EPIPE;
            if (rc < 0)
                return rc;
            break;
        case CHUNK_DATA_END:
            if (c->raw_len - c->raw_pos < 2) {
                rc = conn_fill(c);
                if (rc == 0)
                    return -EPIPE;
                if (rc < 0)
                    return rc;
                break;
            }
            if (memcmp(c->raw + c->raw_pos, "\r\n", 2) != 0)
                return set_why(c, -EPROTO, "chunk data not followed by CRLF");
            c->raw_pos += 2;
            c->chunk = CHUNK_SIZE;
            break;
        case CHUNK_TRAILER:
            if (c->trailer_bytes >= HEAD_LIMIT)
                return set_why(c, -EPROTO, "chunked trailer longer than %d bytes", HEAD_LIMIT);
            rc = conn_read_line(c, HEAD_LIMIT - c->trailer_bytes, &line, &len, &had_cr);
            if (rc == -ENODATA)
                return -EPIPE;
            if (rc < 0)
                return rc == -EMSGSIZE ? -EPROTO : rc;
            if (!had_cr)
                return set_why(c, -EPROTO, "chunked trailer line not ended by CRLF");
            c->trailer_bytes += (size_t)rc;
            if (len == 0)
                c->chunk = CHUNK_DONE;
            break;
        case CHUNK_DONE:
            return 0;
        }
    }
}

/* Decoded body bytes: returns the count (at most `cap`, cap > 0), 0 at the end of the body,
 * -EPIPE when the connection closed before the body was complete, -EPROTO on bad framing,
 * -ETIMEDOUT, -ECANCELED, or another -errno. */
static ssize_t conn_body_read(struct conn *c, unsigned char *dst, size_t cap)
{
    for (;;) {
        bool have = c->raw_len > c->raw_pos;
        switch (c->mode) {
        case BODY_NONE:
            return 0;
        case BODY_CHUNKED:
            return conn_read_chunked(c, dst, cap);
        case BODY_UNTIL_CLOSE:
            if (have)
                return (ssize_t)conn_take(c, dst, cap, UINT64_MAX);
            break;
        case BODY_LENGTH:
            if (c->remaining == 0)
                return 0;
            if (have) {
                size_t n = conn_take(c, dst, cap, c->remaining);
                c->remaining -= n;
                return (ssize_t)n;
            }
            break;
        }
        ssize_t rc = conn_fill(c);
        if (rc == 0)
            return c->mode == BODY_UNTIL_CLOSE ? 0 : -EPIPE;
        if (rc < 0)
            return rc;
    }
}

static int conn_connect(struct conn *c, const struct url *u)
{
    struct sockaddr_in addr = {
        .sin_family = AF_INET, .sin_port = htons(u->port), .sin_addr = u->addr};
    int err = 0;
    socklen_t err_len = sizeof(err);

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    c->progress_ns = time_mono_ns();
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return -errno;
    int rc = conn_wait(c, POLLOUT);
    if (rc < 0)
        return rc;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &err_len) < 0)
        return -errno;
    return err ? -err : 0;
}

static int conn_send_all(struct conn *c, const char *data, size_t len)
{
    c->progress_ns = time_mono_ns();
    while (len > 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
            c->progress_ns = time_mono_ns();
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -errno;
        int rc = conn_wait(c, POLLOUT);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- Header parsing --------------------------------------------------------------------- */

static bool is_token_char(unsigned char ch)
{
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* "<sec>[.<1 to 6 fraction digits>]" to microseconds. */
static int parse_timestamp(const char *s, uint64_t *us)
{
    char secs_text[24];
    const char *dot = strchr(s, '.');
    size_t secs_len = dot ? (size_t)(dot - s) : strlen(s);
    uint64_t secs, fraction = 0;

    if (secs_len == 0 || secs_len >= sizeof(secs_text))
        return -EINVAL;
    memcpy(secs_text, s, secs_len);
    secs_text[secs_len] = '\0';
    if (parse_u64(secs_text, 0, MAX_TIMESTAMP_SEC, &secs) < 0)
        return -EINVAL;
    if (dot) {
        size_t digits = strlen(dot + 1);
        if (digits == 0 || digits > 6)
            return -EINVAL;
        for (size_t i = 0; i < 6; i++) {
            char ch = i < digits ? dot[1 + i] : '0';
            if (ch < '0' || ch > '9')
                return -EINVAL;
            fraction = fraction * 10 + (uint64_t)(ch - '0');
        }
    }
    *us = secs * 1000000u + fraction;
    return 0;
}

/* Applies one "Name: value" line (NUL-terminated at line[len]) to `h`. Returns 0 or -EPROTO. */
static int headers_apply(struct conn *c, struct headers *h, char *line, size_t len)
{
    char *colon = memchr(line, ':', len);
    char *value, *end;
    char text[256];

    if (memchr(line, '\0', len))
        return set_why(c, -EPROTO, "NUL byte in a header line");
    if (!colon || colon == line)
        return set_why(c, -EPROTO, "malformed header line \"%s\"",
                       snippet(line, len, text, sizeof(text)));
    for (char *p = line; p < colon; p++)
        if (!is_token_char((unsigned char)*p))
            return set_why(c, -EPROTO, "bad header name in \"%s\"",
                           snippet(line, len, text, sizeof(text)));
    *colon = '\0';
    value = colon + 1;
    while (*value == ' ' || *value == '\t')
        value++;
    end = line + len;
    while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';

    if (strcasecmp(line, "Content-Type") == 0) {
        if (h->has_content_type)
            return set_why(c, -EPROTO, "duplicate Content-Type");
        if (strlen(value) >= sizeof(h->content_type))
            return set_why(c, -EPROTO, "Content-Type longer than %d bytes", CONTENT_TYPE_MAX - 1);
        strcpy(h->content_type, value);
        h->has_content_type = true;
    } else if (strcasecmp(line, "Content-Length") == 0) {
        uint64_t length;
        if (parse_u64(value, 0, UINT64_MAX, &length) < 0)
            return set_why(c, -EPROTO, "bad Content-Length \"%s\"",
                           snippet(value, strlen(value), text, sizeof(text)));
        if (h->has_length && h->length != length)
            return set_why(c, -EPROTO, "conflicting Content-Length headers");
        h->has_length = true;
        h->length = length;
    } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
        if (strcasecmp(value, "chunked") == 0 && !h->chunked && !h->other_coding)
            h->chunked = true;
        else
            h->other_coding = true;
    } else if (strcasecmp(line, "X-Timestamp") == 0) {
        h->has_timestamp = true;
        h->timestamp_bad = parse_timestamp(value, &h->timestamp_us) < 0;
    } else if (strcasecmp(line, "X-Capd-Source") == 0) {
        if (strcasecmp(value, "live") == 0)
            h->source = SOURCE_LIVE;
        else if (strcasecmp(value, "offline") == 0 || strcasecmp(value, "no-signal") == 0)
            h->source = SOURCE_OFFLINE; /* a status card: responder's or capd's */
        else
            h->source = SOURCE_UNKNOWN;
    }
    return 0;
}

/* Extracts the boundary parameter (quoted or not). Returns 0, -ENOENT or -EINVAL. */
static int boundary_from_content_type(const char *content_type, char *out, size_t out_size)
{
    const char *p = strchr(content_type, ';');
    while (p) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, "boundary=", 9) == 0) {
            const char *value = p + 9;
            size_t len;
            if (*value == '"') {
                const char *close = strchr(value + 1, '"');
                if (!close)
                    return -EINVAL;
                value++;
                len = (size_t)(close - value);
            } else {
                len = strcspn(value, "; \t");
            }
            if (len == 0 || len > BOUNDARY_MAX || len >= out_size)
                return -EINVAL;
            for (size_t i = 0; i < len; i++)
                if ((unsigned char)value[i] < 0x20 || (unsigned char)value[i] >= 0x7f)
                    return -EINVAL;
            memcpy(out, value, len);
            out[len] = '\0';
            return 0;
        }
        p = strchr(p, ';');
    }
    return -ENOENT;
}

/* Reads the status line and headers, skipping interim 1xx answers. Returns 0 or an -errno. */
static int read_response_head(struct conn *c, unsigned *status, struct headers *h)
{
    size_t used = 0;
    char *line;
    size_t len;
    bool had_cr;
    char text[256];
    int rc;

    for (;;) {
        if (used >= HEAD_LIMIT)
            return set_why(c, -EMSGSIZE, "response head longer than %d bytes", HEAD_LIMIT);
        rc = conn_read_line(c, HEAD_LIMIT - used, &line, &len, &had_cr);
        if (rc < 0)
            return rc == -EMSGSIZE
                       ? set_why(c, rc, "response head longer than %d bytes", HEAD_LIMIT)
                       : rc;
        used += (size_t)rc;
        if (len < 12 || strncmp(line, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)line[7]) ||
            line[8] != ' ' || !isdigit((unsigned char)line[9]) ||
            !isdigit((unsigned char)line[10]) || !isdigit((unsigned char)line[11]) ||
            (len > 12 && line[12] != ' '))
            return set_why(c, -EPROTO, "bad status line \"%s\"",
                           snippet(line, len, text, sizeof(text)));
        *status = (unsigned)((line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0'));
        if (*status < 100)
            return set_why(c, -EPROTO, "bad status line \"%s\"",
                           snippet(line, len, text, sizeof(text)));

        memset(h, 0, sizeof(*h));
        for (;;) {
            if (used >= HEAD_LIMIT)
                return set_why(c, -EMSGSIZE, "response head longer than %d bytes", HEAD_LIMIT);
            rc = conn_read_line(c, HEAD_LIMIT - used, &line, &len, &had_cr);
            if (rc < 0)
                return rc == -EMSGSIZE
                           ? set_why(c, rc, "response head longer than %d bytes", HEAD_LIMIT)
                           : rc;
            used += (size_t)rc;
            if (len == 0)
                break;
            rc = headers_apply(c, h, line, len);
            if (rc < 0)
                return rc;
        }
        if (*status >= 200 || *status == 101)
            return 0;
    }
}

/* ---- Multipart buffer ------------------------------------------------------------------- */

static void mp_compact(struct mp *mp)
{
    size_t shift = mp->start;
    if (shift == 0)
        return;
    memmove(mp->data, mp->data + shift, mp->len - shift);
    mp->len -= shift;
    mp->start = 0;
    for (size_t i = 0; i < ARRAY_SIZE(mp->mark); i++)
        mp->mark[i].offset = mp->mark[i].offset > shift ? mp->mark[i].offset - shift : 0;
}

/* Makes room for `want` more bytes after data[len], or as many as the limit allows. */
static int mp_make_room(struct mp *mp, size_t want)
{
    if (mp->cap - mp->len >= want)
        return 0;
    mp_compact(mp);
    if (mp->cap - mp->len >= want)
        return 0;
    size_t new_cap = mp->cap * 2;
    if (new_cap < mp->len + want)
        new_cap = mp->len + want;
    if (new_cap > mp->limit)
        new_cap = mp->limit;
    if (new_cap <= mp->len)
        return set_why(mp->conn, -ENOBUFS, "more than %zu bytes buffered", mp->limit);
    if (new_cap > mp->cap) {
        mp->data = xrealloc(mp->data, new_cap);
        mp->cap = new_cap;
    }
    return 0;
}

/* Appends body bytes. Returns the count, -ENODATA at the clean end of the body, -EPIPE when the
 * connection closed early, or conn_body_read()'s errors. */
static ssize_t mp_fill(struct mp *mp)
{
    struct conn *c = mp->conn;
    int rc = mp_make_room(mp, MIN_READ_ROOM);
    if (rc < 0)
        return rc;
    ssize_t n = conn_body_read(c, mp->data + mp->len, mp->cap - mp->len);
    if (n == 0)
        return -ENODATA;
    if (n < 0)
        return n;
    if (c->read_seq != mp->mark[1].seq) {
        mp->mark[0] = mp->mark[1];
        mp->mark[1] = (struct read_mark){
            .offset = mp->len,
            .seq = c->read_seq,
            .real_us = c->read_real_us,
            .mono_ns = c->read_mono_ns,
        };
    }
    mp->len += (size_t)n;
    return n;
}

/* When the byte at data[offset] arrived. Exact unless a delimiter straddled 3+ tiny reads. */
static void mp_arrival(const struct mp *mp, size_t offset, uint64_t *real_us, uint64_t *mono_ns)
{
    const struct read_mark *mark = offset >= mp->mark[1].offset ? &mp->mark[1] : &mp->mark[0];
    *real_us = mark->real_us;
    *mono_ns = mark->mono_ns;
}

/* Like conn_read_line(), over body bytes; -ENODATA/-EPIPE at the end of the body. */
static int mp_read_line(struct mp *mp, size_t limit, char **line, size_t *len)
{
    size_t scanned = 0;
    for (;;) {
        unsigned char *base = mp->data + mp->start;
        size_t avail = mp->len - mp->start;
        unsigned char *nl = avail > scanned ? memchr(base + scanned, '\n', avail - scanned) : NULL;
        if (nl) {
            size_t consumed = (size_t)(nl - base) + 1;
            size_t n = consumed - 1;
            if (consumed > limit)
                return set_why(mp->conn, -EMSGSIZE, "multipart line longer than %zu bytes", limit);
            if (n > 0 && base[n - 1] == '\r')
                n--;
            base[n] = '\0';
            mp->start += consumed;
            *line = (char *)base;
            *len = n;
            return (int)consumed;
        }
        if (avail >= limit)
            return set_why(mp->conn, -EMSGSIZE, "multipart line longer than %zu bytes", limit);
        scanned = avail;
        ssize_t rc = mp_fill(mp);
        if (rc < 0)
            return (int)rc;
    }
}

/* 1 for "--B" (optionally followed by blanks), 2 for "--B--", 0 for anything else. */
static int boundary_line_kind(const char *line, size_t len, const char *boundary)
{
    size_t blen = strlen(boundary);
    int kind = 1;

    if (len < 2 + blen || line[0] != '-' || line[1] != '-' || memcmp(line + 2, boundary, blen))
        return 0;
    line += 2 + blen;
    len -= 2 + blen;
    if (len >= 2 && line[0] == '-' && line[1] == '-') {
        kind = 2;
        line += 2;
        len -= 2;
    }
    for (size_t i = 0; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t')
            return 0;
    return kind;
}

/* Reads up to and including the next boundary line. Before the first part a preamble is skipped;
 * after a part only blank lines may come first. Sets *closing for "--B--". */
static int mp_read_boundary(struct mp *mp, const char *boundary, bool preamble, bool *closing)
{
    size_t used = 0;
    char *line;
    size_t len;
    char text[256];

    for (;;) {
        if (used >= HEAD_LIMIT)
            return set_why(mp->conn, -EPROTO, "no boundary line within %d bytes", HEAD_LIMIT);
        int rc = mp_read_line(mp, HEAD_LIMIT - used, &line, &len);
        if (rc < 0)
            return rc;
        used += (size_t)rc;
        int kind = boundary_line_kind(line, len, boundary);
        if (kind) {
            *closing = kind == 2;
            return 0;
        }
        if (!preamble && len != 0)
            return set_why(mp->conn, -EPROTO, "expected boundary line, got \"%s\"",
                           snippet(line, len, text, sizeof(text)));
    }
}

static int mp_read_part_headers(struct mp *mp, struct headers *h)
{
    size_t used = 0;
    char *line;
    size_t len;

    memset(h, 0, sizeof(*h));
    for (;;) {
        if (used >= HEAD_LIMIT)
            return set_why(mp->conn, -EPROTO, "part headers longer than %d bytes", HEAD_LIMIT);
        int rc = mp_read_line(mp, HEAD_LIMIT - used, &line, &len);
        if (rc == -EMSGSIZE)
            return set_why(mp->conn, -EPROTO, "part headers longer than %d bytes", HEAD_LIMIT);
        if (rc < 0)
            return rc;
        used += (size_t)rc;
        if (len == 0)
            return 0;
        rc = headers_apply(mp->conn, h, line, len);
        if (rc < 0)
            return rc;
    }
}

/* Waits until `count` bytes are buffered from data[start]. */
static int mp_read_exact(struct mp *mp, size_t count)
{
    size_t avail = mp->len - mp->start;
    if (avail < count) {
        int rc = mp_make_room(mp, count - avail);
        if (rc < 0)
            return rc;
    }
    while (mp->len - mp->start < count) {
        ssize_t rc = mp_fill(mp);
        if (rc < 0)
            return (int)rc;
    }
    return 0;
}

/* Finds the delimiter "\r\n--B" after data[start]; the frame is the bytes before it. */
static int mp_read_until_delimiter(struct mp *mp, const unsigned char *delim, size_t delim_len,
                                   uint64_t max_frame, size_t *frame_len)
{
    size_t scan_from = 0; /* relative to start, which compaction may move */
    for (;;) {
        size_t avail = mp->len - mp->start;
        if (avail >= delim_len) {
            const unsigned char *base = mp->data + mp->start;
            const unsigned char *hit =
                memmem(base + scan_from, avail - scan_from, delim, delim_len);
            if (hit) {
                *frame_len = (size_t)(hit - base);
                if (*frame_len > max_frame)
                    break;
                return 0;
            }
            scan_from = avail - (delim_len - 1);
        }
        if (avail > max_frame + delim_len)
            break;
        ssize_t rc = mp_fill(mp);
        if (rc < 0)
            return (int)rc;
    }
    return set_why(mp->conn, -EFBIG, "frame larger than --max-frame (%llu bytes)",
                   (unsigned long long)max_frame);
}

/* ---- The two kinds of answer ------------------------------------------------------------ */

static bool stop_after_frame(struct run *run)
{
    if (run->opt->max_frames && run->frames >= run->opt->max_frames) {
        run->end = END_FRAMES;
        return true;
    }
    if (run->deadline_ns && time_mono_ns() >= run->deadline_ns) {
        run->end = END_SECONDS;
        return true;
    }
    return false;
}

/* Reads parts until a stop condition, EOF or an error (recorded with fail()). */
static void stream_run(struct run *run, struct mp *mp, const char *boundary)
{
    unsigned char delim[BOUNDARY_MAX + 8];
    size_t delim_len = (size_t)snprintf((char *)delim, sizeof(delim), "\r\n--%s", boundary);
    const char *during = "looking for the first boundary";
    bool closing = false, in_frame = false;
    uint64_t real_us, mono_ns;
    struct headers h;
    int rc;

    rc = mp_read_boundary(mp, boundary, true, &closing);
    while (rc == 0 && !closing) {
        during = "reading part headers";
        rc = mp_read_part_headers(mp, &h);
        if (rc < 0)
            break;
        during = "reading a frame";
        in_frame = true;
        if (h.has_length) {
            if (h.length > run->opt->max_frame) {
                rc = set_why(mp->conn, -EFBIG, "part Content-Length %llu exceeds --max-frame",
                             (unsigned long long)h.length);
                break;
            }
            size_t frame_len = (size_t)h.length;
            rc = mp_read_exact(mp, frame_len);
            if (rc < 0)
                break;
            mp_arrival(mp, mp->start + (frame_len ? frame_len - 1 : 0), &real_us, &mono_ns);
            if (frame_process(run, mp->data + mp->start, frame_len, &h, false, real_us, mono_ns) <
                0)
                return;
            mp->start += frame_len;
            in_frame = false;
            if (stop_after_frame(run))
                return;
            during = "looking for the boundary after a frame";
            rc = mp_read_boundary(mp, boundary, false, &closing);
        } else {
            size_t frame_len = 0;
            rc = mp_read_until_delimiter(mp, delim, delim_len, run->opt->max_frame, &frame_len);
            if (rc < 0)
                break;
            mp_arrival(mp, mp->start + (frame_len ? frame_len - 1 : 0), &real_us, &mono_ns);
            if (frame_process(run, mp->data + mp->start, frame_len, &h, false, real_us, mono_ns) <
                0)
                return;
            mp->start += frame_len + 2; /* the boundary line itself is read next */
            in_frame = false;
            if (stop_after_frame(run))
                return;
            during = "reading the boundary line";
            rc = mp_read_boundary(mp, boundary, false, &closing);
        }
    }

    if (rc == 0 || rc == -ENODATA || rc == -EPIPE) {
        /* A frame cut off by EOF is counted as a bad frame. */
        if (rc != 0 && in_frame && mp->len > mp->start) {
            mp_arrival(mp, mp->len - 1, &real_us, &mono_ns);
            frame_process(run, mp->data + mp->start, mp->len - mp->start, &h, true, real_us,
                          mono_ns);
        }
        run->end = END_EOF;
    } else if (rc == -ECANCELED) {
        run->end = END_SECONDS;
    } else {
        fail_rc(run, mp->conn, rc, during);
    }
}

/* Reads a whole non-multipart body into data[0, *len). Returns 0 or an -errno. */
static int document_read(struct run *run, struct mp *mp)
{
    struct conn *c = mp->conn;
    if (c->mode == BODY_LENGTH && c->remaining > run->opt->max_frame)
        return set_why(c, -EFBIG, "Content-Length %llu exceeds --max-frame",
                       (unsigned long long)c->remaining);
    for (;;) {
        if (mp->len - mp->start > run->opt->max_frame)
            return set_why(c, -EFBIG, "body larger than --max-frame (%llu bytes)",
                           (unsigned long long)run->opt->max_frame);
        ssize_t rc = mp_fill(mp);
        if (rc == -ENODATA)
            return 0;
        if (rc < 0)
            return (int)rc;
    }
}

static void remember_first_line(struct run *run, const unsigned char *body, size_t len)
{
    const unsigned char *nl = memchr(body, '\n', len);
    size_t n = nl ? (size_t)(nl - body) : len;
    if (n > 0 && body[n - 1] == '\r')
        n--;
    if (n > SNIPPET_MAX)
        n = SNIPPET_MAX;
    memcpy(run->first_line, body, n);
    run->first_line[n] = '\0';
    run->have_first_line = true;
}

static void remember_media_type(struct run *run, const struct headers *h)
{
    size_t n = 0;
    if (h->has_content_type) {
        for (; h->content_type[n] && h->content_type[n] != ';' && n + 1 < CONTENT_TYPE_MAX; n++) {
            unsigned char ch = (unsigned char)h->content_type[n];
            /* The summary is whitespace-separated key=value pairs. */
            run->media_type[n] = is_token_char(ch) || ch == '/' ? (char)tolower(ch) : '_';
        }
        while (n > 0 && run->media_type[n - 1] == '_')
            n--;
    }
    run->media_type[n] = '\0';
}

static const char *end_name(const struct options *opt)
{
    if (opt->max_frames && opt->seconds > 0)
        return "--frames or --seconds was reached";
    if (opt->max_frames)
        return "--frames was reached";
    if (opt->seconds > 0)
        return "--seconds was reached";
    return "any --frames or --seconds limit";
}

/* Non-multipart answer: checks the status, saves the body, and treats a JPEG as one frame. */
static void document_run(struct run *run, struct mp *mp, const struct headers *h, bool status_ok)
{
    const struct options *opt = run->opt;
    uint64_t real_us = mp->conn->read_real_us, mono_ns = mp->conn->read_mono_ns;
    bool is_jpeg = h->has_content_type && media_type_is(h->content_type, "image/jpeg");
    int rc = document_read(run, mp);
    size_t len = mp->len - mp->start;
    const unsigned char *body = mp->data + mp->start;

    if (len > 0)
        mp_arrival(mp, mp->len - 1, &real_us, &mono_ns);
    if (!is_jpeg || !status_ok)
        remember_first_line(run, body, len);
    if (!status_ok) {
        char escaped[SNIPPET_MAX * 4 + 8];
        escape_text((const unsigned char *)run->first_line, strlen(run->first_line), escaped,
                    sizeof(escaped));
        fail(run, SC_STATUS, "HTTP status %u, expected %u: %s", run->status, opt->expect_status,
             escaped);
        return;
    }
    if (rc < 0) {
        fail_rc(run, mp->conn, rc, "reading the body");
        return;
    }
    if (opt->save_path) {
        rc = write_file(opt->save_path, body, len);
        if (rc < 0) {
            fail(run, SC_IO, "cannot write %s: %s", opt->save_path, strerror(-rc));
            return;
        }
    }
    if (is_jpeg && run->status >= 200 && run->status < 300)
        frame_process(run, body, len, h, false, real_us, mono_ns);
}

static int build_request(const struct options *opt, const struct url *u, char *out, size_t out_size)
{
    int n = snprintf(out, out_size,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: */*\r\n"
                     "Connection: close\r\n\r\n",
                     u->path, u->host_header, opt->user_agent);
    return n > 0 && (size_t)n < out_size ? n : -ENAMETOOLONG;
}

/* The whole exchange. Failures are recorded in run->exit_code/message. */
static void run_request(struct run *run, struct conn *c, struct mp *mp, const struct url *u)
{
    const struct options *opt = run->opt;
    char request[URL_PATH_MAX + URL_HOST_MAX + USER_AGENT_MAX + 256];
    char boundary[BOUNDARY_MAX + 1];
    struct headers h;
    int rc;

    rc = conn_connect(c, u);
    if (rc < 0) {
        char during[URL_HOST_MAX + 32];
        snprintf(during, sizeof(during), "connecting to %s:%u", u->host, u->port);
        fail_rc(run, c, rc, during);
        return;
    }
    rc = build_request(opt, u, request, sizeof(request));
    if (rc > 0)
        rc = conn_send_all(c, request, (size_t)rc);
    if (rc < 0) {
        fail_rc(run, c, rc, "sending the request");
        return;
    }
    rc = read_response_head(c, &run->status, &h);
    if (rc < 0) {
        fail_rc(run, c, rc, "reading the response head");
        return;
    }
    run->have_status = true;
    remember_media_type(run, &h);

    if (run->status < 200 || run->status == 204 || run->status == 304) {
        c->mode = BODY_NONE;
    } else if (h.other_coding) {
        fail(run, SC_IO, "protocol error: unsupported Transfer-Encoding");
        return;
    } else if (h.chunked) {
        c->mode = BODY_CHUNKED;
        c->chunk = CHUNK_SIZE;
    } else if (h.has_length) {
        c->mode = BODY_LENGTH;
        c->remaining = h.length;
    } else {
        c->mode = BODY_UNTIL_CLOSE;
    }

    bool status_ok = run->status == opt->expect_status;
    bool multipart =
        h.has_content_type && media_type_is(h.content_type, "multipart/x-mixed-replace");
    if (!multipart) {
        document_run(run, mp, &h, status_ok);
        return;
    }
    if (!status_ok) {
        fail(run, SC_STATUS, "HTTP status %u, expected %u (multipart body not read)", run->status,
             opt->expect_status);
        return;
    }
    if (boundary_from_content_type(h.content_type, boundary, sizeof(boundary)) < 0) {
        fail(run, SC_IO, "protocol error: missing or bad boundary in \"%s\"", h.content_type);
        return;
    }
    if (opt->seconds > 0) {
        run->deadline_ns = run->start_ns + (uint64_t)(opt->seconds * 1e9);
        c->deadline_ns = run->deadline_ns;
    }
    stream_run(run, mp, boundary);
    if (run->exit_code != SC_OK)
        return;
    if (run->end == END_EOF && !opt->allow_eof)
        fail(run, SC_EOF,
             "server closed the stream after %llu frames, before %s (--allow-eof "
             "accepts that)",
             (unsigned long long)run->frames, end_name(opt));
}

/* ---- Summary ------------------------------------------------------------------------------ */

static bool run_fps(const struct run *run, double *fps)
{
    if (run->live < 2 || run->last_live_ns <= run->first_live_ns)
        return false;
    *fps = (double)(run->live - 1) / ((double)(run->last_live_ns - run->first_live_ns) / 1e9);
    return true;
}

static void print_summary(const struct run *run)
{
    char status[16] = "-", fps[32] = "-", p50[32] = "-", p99[32] = "-", max[32] = "-";
    char sizes[MAX_SIZES * 24 + 8] = "-";
    double fps_value;
    size_t used = 0;

    if (run->have_status)
        snprintf(status, sizeof(status), "%u", run->status);
    if (run_fps(run, &fps_value))
        snprintf(fps, sizeof(fps), "%.2f", fps_value);
    if (run->latency_count) {
        /* A bucket's midpoint can lie above the largest sample in it. */
        double max_ms = (double)run->latency_max_us / 1000.0;
        snprintf(p50, sizeof(p50), "%.2f", fmin(latency_percentile_ms(run, 0.50), max_ms));
        snprintf(p99, sizeof(p99), "%.2f", fmin(latency_percentile_ms(run, 0.99), max_ms));
        snprintf(max, sizeof(max), "%.2f", (double)run->latency_max_us / 1000.0);
    }
    for (size_t i = 0; i < run->size_count; i++)
        used += (size_t)snprintf(sizes + used, sizeof(sizes) - used, "%s%ux%u", i ? "," : "",
                                 run->sizes[i].width, run->sizes[i].height);
    if (run->sizes_overflow)
        snprintf(sizes + used, sizeof(sizes) - used, ",more");

    printf("status=%s content_type=%s frames=%llu live=%llu offline=%llu bad=%llu fps=%s "
           "lat_p50_ms=%s lat_p99_ms=%s lat_max_ms=%s sizes=%s bytes=%llu seconds=%.2f",
           status, run->media_type[0] ? run->media_type : "-", (unsigned long long)run->frames,
           (unsigned long long)run->live, (unsigned long long)run->offline,
           (unsigned long long)run->bad, fps, p50, p99, max, sizes,
           (unsigned long long)run->frame_bytes, run_seconds_at(run, run->end_ns));
    if (run->have_first_line) {
        char escaped[SNIPPET_MAX * 4 + 8];
        escape_text((const unsigned char *)run->first_line, strlen(run->first_line), escaped,
                    sizeof(escaped));
        printf(" first_line=\"%s\"", escaped);
    }
    putchar('\n');
    fflush(stdout);
}

/* ---- Command line ------------------------------------------------------------------------ */

static void usage(FILE *out)
{
    fputs("Usage: streamcheck [options] URL\n"
          "Fetches URL (http://HOST[:PORT][/path][?query], HOST an IPv4 address or localhost)\n"
          "with one HTTP/1.1 GET and checks the answer strictly. A multipart/x-mixed-replace\n"
          "answer is read as an MJPEG stream: every part must be image/jpeg, start with FFD8, end\n"
          "with FFD9 and decode fully with TurboJPEG. Any other answer is read whole; an\n"
          "image/jpeg body (a snapshot) is checked like one frame.\n"
          "\n"
          "Options:\n"
          "  --expect-status N  expected HTTP status (default 200); exit 3 when it differs\n"
          "  --frames N         stop after N frames\n"
          "  --seconds S        stop S seconds after the start (whichever of the two comes first)\n"
          "  --allow-eof        the server closing the stream first is not an error\n"
          "  --timeout S        fail when connecting takes, or nothing arrives for, S seconds\n"
          "                     (default 10)\n"
          "  --expect-size WxH  every live frame must be W x H\n"
          "  --min-fps F        live frames per second, first to last frame, must be >= F\n"
          "  --max-bad N        bad frames tolerated (default 0)\n"
          "  --max-frame BYTES  largest frame or body accepted (default 67108864)\n"
          "  --save FILE        write a non-multipart body to FILE\n"
          "  --save-frames DIR  write every frame to DIR/frame_NNNNNN.jpg, numbered from 1\n"
          "  --user-agent UA    User-Agent header (default capd-streamcheck/1)\n"
          "  --events           print event lines as things happen, before the summary\n"
          "  -q, --quiet        no per-frame warnings on stderr (failure reasons still print)\n"
          "  -h, --help         this text\n"
          "\n"
          "Output: exactly one summary line on stdout, for example\n"
          "  status=200 content_type=multipart/x-mixed-replace frames=300 live=298 offline=2\n"
          "  bad=0 fps=29.97 lat_p50_ms=1.80 lat_p99_ms=4.10 lat_max_ms=6.00 sizes=640x480\n"
          "  bytes=5123456 seconds=10.01\n"
          "- frames counts every part or snapshot; it is offline when it carries\n"
          "  X-Capd-Source: offline or no-signal (a status card), live otherwise\n"
          "  (live + offline = frames).\n"
          "- bad counts frames failing a check (one reason each, see below).\n"
          "- fps is over live frames, first to last; \"-\" with fewer than two.\n"
          "- lat_*: receive time of a live frame's last byte minus its X-Timestamp\n"
          "  (CLOCK_REALTIME <sec>.<usec>); \"-\" when no live frame had one.\n"
          "- sizes: distinct decoded sizes in order of first appearance (\"-\" if none).\n"
          "- bytes: sum of frame sizes. seconds: from start to exit.\n"
          "- content_type: the response media type without parameters.\n"
          "- first_line=\"...\": added for non-JPEG bodies and status mismatches (escaped).\n"
          "\n"
          "Events (--events), one per line:\n"
          "  event=first_frame t=S\n"
          "  event=offline_start t=S frame=N      event=offline_end t=S frame=N\n"
          "  event=size_change from=WxH to=WxH frame=N\n"
          "  event=bad frame=N reason=R detail=\"...\"\n"
          "  t is seconds since the start; frames are numbered from 1. Reasons: truncated,\n"
          "  no_soi, no_eoi, trailing_bytes, decode_error, decode_warning, too_large,\n"
          "  content_type, timestamp (malformed, or in the future), source, size.\n"
          "\n"
          "Exit status: 0 success, 1 usage, 2 connect/I/O/protocol error, 3 status mismatch,\n"
          "4 premature EOF (see --allow-eof), 5 timeout, 6 fps below --min-fps, 7 more than\n"
          "--max-bad bad frames. Every non-zero exit prints a one-line reason on stderr.\n",
          out);
}

static int parse_double(const char *s, double min, double *out)
{
    char *end;
    if (!s || !(isdigit((unsigned char)s[0]) || s[0] == '.'))
        return -EINVAL;
    errno = 0;
    double value = strtod(s, &end);
    if (*end || errno || !isfinite(value) || value < min)
        return -EINVAL;
    *out = value;
    return 0;
}

static int url_parse(const char *text, struct url *u)
{
    const char *host = text + 7, *p;
    size_t host_len, path_len;

    if (strncasecmp(text, "http://", 7) != 0)
        return -EINVAL;
    host_len = strcspn(host, ":/?#");
    if (host_len == 0 || host_len >= sizeof(u->host))
        return -EINVAL;
    memcpy(u->host, host, host_len);
    u->host[host_len] = '\0';
    p = host + host_len;
    u->port = 80;
    if (*p == ':') {
        char port_text[8];
        uint32_t port;
        size_t n = strcspn(p + 1, "/?#");
        if (n == 0 || n >= sizeof(port_text))
            return -EINVAL;
        memcpy(port_text, p + 1, n);
        port_text[n] = '\0';
        if (parse_u32(port_text, 1, 65535, &port) < 0)
            return -EINVAL;
        u->port = (uint16_t)port;
        p += 1 + n;
    }
    path_len = strcspn(p, "#"); /* a fragment is never sent */
    if (path_len + 2 > sizeof(u->path))
        return -EINVAL;
    snprintf(u->path, sizeof(u->path), "%s%.*s", *p == '/' ? "" : "/", (int)path_len, p);
    for (const char *q = u->path; *q; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
            return -EINVAL; /* no request splitting through the URL */
    if (strcasecmp(u->host, "localhost") == 0)
        u->addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, u->host, &u->addr) != 1)
        return -EINVAL;
    if (u->port == 80)
        snprintf(u->host_header, sizeof(u->host_header), "%s", u->host);
    else
        snprintf(u->host_header, sizeof(u->host_header), "%s:%u", u->host, u->port);
    return 0;
}

enum {
    OPT_USER_AGENT = 256,
    OPT_EXPECT_STATUS,
    OPT_SAVE,
    OPT_FRAMES,
    OPT_SECONDS,
    OPT_ALLOW_EOF,
    OPT_TIMEOUT,
    OPT_EXPECT_SIZE,
    OPT_MIN_FPS,
    OPT_MAX_BAD,
    OPT_SAVE_FRAMES,
    OPT_EVENTS,
    OPT_MAX_FRAME,
};

/* Returns 0, or -EINVAL after printing the problem (exit 1). -ECANCELED for --help. */
static int options_parse(int argc, char **argv, struct options *opt)
{
    static const struct option long_options[] = {
        {"user-agent", required_argument, NULL, OPT_USER_AGENT},
        {"expect-status", required_argument, NULL, OPT_EXPECT_STATUS},
        {"save", required_argument, NULL, OPT_SAVE},
        {"frames", required_argument, NULL, OPT_FRAMES},
        {"seconds", required_argument, NULL, OPT_SECONDS},
        {"allow-eof", no_argument, NULL, OPT_ALLOW_EOF},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"expect-size", required_argument, NULL, OPT_EXPECT_SIZE},
        {"min-fps", required_argument, NULL, OPT_MIN_FPS},
        {"max-bad", required_argument, NULL, OPT_MAX_BAD},
        {"save-frames", required_argument, NULL, OPT_SAVE_FRAMES},
        {"events", no_argument, NULL, OPT_EVENTS},
        {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *bad = NULL;
    int ch;

    *opt = (struct options){
        .user_agent = "capd-streamcheck/1",
        .expect_status = 200,
        .timeout = 10.0,
        .max_frame = DEFAULT_MAX_FRAME,
    };
    while (!bad && (ch = getopt_long(argc, argv, "qh", long_options, NULL)) != -1) {
        switch (ch) {
        case OPT_USER_AGENT:
            opt->user_agent = optarg;
            for (const char *p = optarg; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
                    bad = "--user-agent must not contain control characters";
            if (strlen(optarg) >= USER_AGENT_MAX)
                bad = "--user-agent is too long";
            break;
        case OPT_EXPECT_STATUS:
            if (parse_u32(optarg, 100, 599, &opt->expect_status) < 0)
                bad = "--expect-status needs a status code 100..599";
            break;
        case OPT_SAVE:
            opt->save_path = optarg;
            break;
        case OPT_FRAMES:
            if (parse_u64(optarg, 1, UINT64_MAX, &opt->max_frames) < 0)
                bad = "--frames needs a positive integer";
            break;
        case OPT_SECONDS:
            if (parse_double(optarg, 0.0, &opt->seconds) < 0 || opt->seconds <= 0 ||
                opt->seconds > 1e9)
                bad = "--seconds needs a positive number";
            break;
        case OPT_ALLOW_EOF:
            opt->allow_eof = true;
            break;
        case OPT_TIMEOUT:
            if (parse_double(optarg, 0.0, &opt->timeout) < 0 || opt->timeout <= 0 ||
                opt->timeout > 1e9)
                bad = "--timeout needs a positive number";
            break;
        case OPT_EXPECT_SIZE:
            if (parse_size(optarg, 1, 65535, &opt->expect_width, &opt->expect_height) < 0)
                bad = "--expect-size needs WxH";
            opt->has_expect_size = true;
            break;
        case OPT_MIN_FPS:
            if (parse_double(optarg, 0.0, &opt->min_fps) < 0)
                bad = "--min-fps needs a number >= 0";
            opt->has_min_fps = true;
            break;
        case OPT_MAX_BAD:
            if (parse_u64(optarg, 0, UINT64_MAX, &opt->max_bad) < 0)
                bad = "--max-bad needs an integer >= 0";
            break;
        case OPT_SAVE_FRAMES:
            opt->save_frames_dir = optarg;
            break;
        case OPT_EVENTS:
            opt->events = true;
            break;
        case OPT_MAX_FRAME:
            if (parse_u64(optarg, 4, SIZE_MAX / 4, &opt->max_frame) < 0)
                bad = "--max-frame needs a byte count >= 4";
            break;
        case 'q':
            opt->quiet = true;
            break;
        case 'h':
            usage(stdout);
            return -ECANCELED;
        default:
            bad = "unknown option (see --help)";
            break;
        }
    }
    if (!bad && optind != argc - 1)
        bad = "exactly one URL is needed (see --help)";
    if (bad) {
        log_error("%s", bad);
        return -EINVAL;
    }
    opt->url = argv[optind];
    return 0;
}

int main(int argc, char **argv)
{
    struct options opt;
    struct url u;
    struct run *run = NULL;
    struct conn *c = NULL;
    struct mp mp = {0};
    int exit_code = SC_USAGE;
    int rc;

    log_init("streamcheck", 0);
    rc = options_parse(argc, argv, &opt);
    if (rc == -ECANCELED)
        return SC_OK;
    if (rc < 0)
        return SC_USAGE;
    if (url_parse(opt.url, &u) < 0) {
        log_error("bad URL \"%s\": need http://IPV4-OR-LOCALHOST[:PORT][/path][?query]", opt.url);
        return SC_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);

    run = xcalloc(1, sizeof(*run));
    run->opt = &opt;
    run->start_ns = time_mono_ns();
    c = xcalloc(1, sizeof(*c));
    c->fd = -1;
    c->idle_timeout_ns = (uint64_t)(opt.timeout * 1e9);
    mp.conn = c;
    mp.limit = (size_t)opt.max_frame + 2 * HEAD_LIMIT + RAW_BUF_SIZE;
    mp.cap = FIRST_BUF_SIZE < mp.limit ? FIRST_BUF_SIZE : mp.limit;
    mp.data = xmalloc(mp.cap);

    run->tj = tjInitDecompress();
    if (!run->tj) {
        fail(run, SC_IO, "tjInitDecompress: %s", tjGetErrorStr2(NULL));
        goto out;
    }
    if (opt.save_frames_dir && mkdir(opt.save_frames_dir, 0755) < 0 && errno != EEXIST) {
        fail(run, SC_IO, "cannot create %s: %s", opt.save_frames_dir, strerror(errno));
        goto out;
    }
    run_request(run, c, &mp, &u);
    if (run->exit_code == SC_OK && run->bad > opt.max_bad)
        fail(run, SC_BAD, "%llu bad frames (--max-bad %llu)", (unsigned long long)run->bad,
             (unsigned long long)opt.max_bad);
    if (run->exit_code == SC_OK && opt.has_min_fps) {
        double fps;
        if (!run_fps(run, &fps))
            fail(run, SC_FPS, "fewer than two live frames (--min-fps %g)", opt.min_fps);
        else if (fps < opt.min_fps)
            fail(run, SC_FPS, "live fps %.2f below --min-fps %g", fps, opt.min_fps);
    }

out:
    run->end_ns = time_mono_ns();
    print_summary(run);
    exit_code = run->exit_code;
    if (exit_code != SC_OK)
        log_error("%s", run->message);
    if (c && c->fd >= 0)
        close(c->fd);
    if (run->tj)
        tjDestroy(run->tj);
    free(run->pixels);
    free(mp.data);
    free(c);
    free(run);
    return exit_code;
}
