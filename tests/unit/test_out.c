/* test_out.c - the response writer: FastCGI record framing, short writes, sticky errors. */
#include "../../fcgi/out.c"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "check.h"

struct sink {
    int fd;
    int slow;             /* read in small pieces with pauses: forces short writes */
    uint8_t *data;        /* everything read */
    size_t len, cap;
};

static void *sink_main(void *arg)
{
    struct sink *s = arg;
    uint8_t buf[70000];
    for (;;) {
        size_t want = s->slow ? 777 : sizeof(buf);
        ssize_t n = read(s->fd, buf, want);
        if (n <= 0)
            break;
        if (s->len + (size_t)n > s->cap) {
            s->cap = (s->len + (size_t)n) * 2;
            s->data = realloc(s->data, s->cap);
        }
        memcpy(s->data + s->len, buf, (size_t)n);
        s->len += (size_t)n;
        if (s->slow)
            usleep(50);
    }
    return NULL;
}

/* Parses FastCGI records out of raw and reassembles their STDOUT content.
 * Returns the number of records, or -1 on a framing error. */
static int parse_records(const uint8_t *raw, size_t len, int request_id, uint8_t *content,
                         size_t *content_len)
{
    size_t pos = 0, out = 0;
    int records = 0;
    while (pos < len) {
        if (len - pos < 8)
            return -1;
        const uint8_t *h = raw + pos;
        size_t clen = (size_t)h[4] << 8 | h[5];
        if (h[0] != 1 || h[1] != 6 || ((h[2] << 8) | h[3]) != request_id || h[6] != 0 ||
            clen == 0 || clen > OUT_RECORD_MAX || len - pos - 8 < clen)
            return -1;
        memcpy(content + out, h + 8, clen);
        out += clen;
        pos += 8 + clen;
        records++;
    }
    *content_len = out;
    return records;
}

/* Writes `total` bytes as `pieces` iovecs through a FastCGI (or CGI) out and
 * checks what arrives on the other end. */
static void roundtrip(size_t total, int pieces, int fcgi, int slow)
{
    int sv[2];
    struct sink s = {0};
    pthread_t tid;
    struct out o;
    uint8_t *input = malloc(total + 1), *content = malloc(total + 1);
    struct iovec *iov = calloc((size_t)pieces, sizeof(*iov));
    size_t content_len = 0, at = 0;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    if (slow) {
        int small = 4096;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    }
    for (size_t i = 0; i < total; i++)
        input[i] = (uint8_t)(i * 2654435761u >> 13);
    for (int i = 0; i < pieces; i++) {
        size_t piece = i == pieces - 1 ? total - at : total / (size_t)pieces;
        iov[i] = (struct iovec){input + at, piece};
        at += piece;
    }
    s.fd = sv[1];
    s.slow = slow;
    pthread_create(&tid, NULL, sink_main, &s);
    if (fcgi)
        out_init_fcgi(&o, sv[0], 258, NULL);
    else
        out_init_fd(&o, sv[0], NULL);
    CHECK_EQ_INT(out_writev(&o, iov, pieces), 0);
    CHECK_EQ_INT(o.bytes, total);
    close(sv[0]);
    pthread_join(tid, NULL);
    close(sv[1]);

    if (fcgi) {
        int records = parse_records(s.data, s.len, 258, content, &content_len);
        size_t expect = (total + OUT_RECORD_MAX - 1) / OUT_RECORD_MAX;
        CHECKF(records >= 0 && (size_t)records == expect, "%zu bytes: %d records, want %zu",
               total, records, expect);
        CHECK_EQ_INT(content_len, total);
        CHECK(content_len == total && memcmp(content, input, total) == 0);
    } else {
        CHECK_EQ_INT(s.len, total);
        CHECK(s.len == total && memcmp(s.data, input, total) == 0);
    }
    free(s.data);
    free(input);
    free(content);
    free(iov);
}

static void test_record_boundaries(void)
{
    size_t sizes[] = {1, 100, OUT_RECORD_MAX - 1, OUT_RECORD_MAX, OUT_RECORD_MAX + 1,
                      3 * OUT_RECORD_MAX, 250000};
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        roundtrip(sizes[i], 1, 1, 0);
        roundtrip(sizes[i], 3, 1, 0);
    }
}

/* More pieces than one writev batch holds, crossing record boundaries anywhere. */
static void test_many_pieces(void)
{
    roundtrip(300000, 200, 1, 0);
    roundtrip(7000, 7000, 1, 0); /* one byte per iovec */
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* A slow reader and a timer signal without SA_RESTART: writev returns short
 * counts (or EINTR before any byte), and the writer must resume exactly. */
static void test_short_writes(void)
{
    struct sigaction sa = {.sa_handler = on_alarm};
    struct itimerval every_ms = {{0, 1000}, {0, 1000}}, off = {{0, 0}, {0, 0}};

    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &every_ms, NULL);
    roundtrip(400000, 5, 1, 1);
    roundtrip(400000, 5, 0, 1);
    setitimer(ITIMER_REAL, &off, NULL);
    signal(SIGALRM, SIG_IGN);
    CHECKF(alarms > 10, "only %d interruptions", (int)alarms);
}

static void test_cgi_raw(void)
{
    roundtrip(100000, 4, 0, 0);
}

/* No bytes, no record: an empty STDOUT record would end the response. */
static void test_empty_write_sends_nothing(void)
{
    int sv[2];
    struct out o;
    char c;
    struct iovec v[2] = {{NULL, 0}, {NULL, 0}};

    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    out_init_fcgi(&o, sv[0], 1, NULL);
    CHECK_EQ_INT(out_writev(&o, v, 2), 0);
    CHECK_EQ_INT(out_write(&o, "", 0), 0);
    CHECK(read(sv[1], &c, 1) < 0 && errno == EAGAIN);
    close(sv[0]);
    close(sv[1]);
}

/* A viewer that left: the first write fails with EPIPE, later ones fail at once. */
static void test_sticky_error(void)
{
    int sv[2];
    struct out o;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    close(sv[1]);
    out_init_fcgi(&o, sv[0], 1, NULL);
    CHECK_EQ_INT(out_write(&o, "hello", 5), -EPIPE);
    close(sv[0]);
    /* The descriptor is closed now: a real write would give EBADF, not EPIPE. */
    CHECK_EQ_INT(out_printf(&o, "%d", 42), -EPIPE);
    CHECK_EQ_INT(o.error, -EPIPE);
    out_init_fcgi(&o, -1, 1, NULL);
    CHECK_EQ_INT(out_write(&o, "x", 1), -EBADF);
}

/* The planner used by the fan-out frames the same bytes the writer does. */
static void test_plan_records(void)
{
    size_t total = 3 * OUT_RECORD_MAX + 17;
    uint8_t *data = malloc(total), *content = malloc(total), *raw;
    struct iovec src[3] = {{data, 100}, {data + 100, total - 150}, {data + total - 50, 50}};
    struct iovec dst[16];
    uint8_t hdrs[8][8];
    int need_iov, need_hdr, n;
    size_t raw_len = 0, content_len = 0;

    for (size_t i = 0; i < total; i++)
        data[i] = (uint8_t)(i * 7);
    out_plan_size(total, 3, &need_iov, &need_hdr);
    CHECK(need_iov <= 16 && need_hdr <= 8);
    n = out_plan_records(77, src, 3, dst, need_iov, hdrs, need_hdr);
    CHECK(n > 0 && n <= need_iov);
    CHECK_EQ_INT(out_plan_records(77, src, 3, dst, 3, hdrs, need_hdr), -ENOSPC);
    CHECK_EQ_INT(out_plan_records(77, src, 3, dst, need_iov, hdrs, 1), -ENOSPC);
    raw = malloc(total + 8 * 8);
    for (int i = 0; i < n; i++) {
        memcpy(raw + raw_len, dst[i].iov_base, dst[i].iov_len);
        raw_len += dst[i].iov_len;
    }
    CHECK_EQ_INT(parse_records(raw, raw_len, 77, content, &content_len), 4);
    CHECK(content_len == total && memcmp(content, data, total) == 0);
    free(data);
    free(content);
    free(raw);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    RUN_TEST(test_record_boundaries);
    RUN_TEST(test_many_pieces);
    RUN_TEST(test_short_writes);
    RUN_TEST(test_cgi_raw);
    RUN_TEST(test_empty_write_sends_nothing);
    RUN_TEST(test_sticky_error);
    RUN_TEST(test_plan_records);
    return check_summary();
}
