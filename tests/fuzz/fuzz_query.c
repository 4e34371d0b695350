/* fuzz_query.c - libFuzzer target: query_parse, query_route and query_unescape on hostile input. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "query.h"
#include "ring.h"

/*
 * Input: one flag byte, then up to three strings separated by NUL bytes: QUERY_STRING,
 * SCRIPT_NAME and PATH_INFO (a missing string is passed as NULL, as when the web server does
 * not set the variable; nothing after the flag byte means no QUERY_STRING either). The flag byte
 * picks the size of the err buffers and of the query_unescape destination, which are heap blocks of
 * exactly that size so that ASan sees any write past them.
 *
 * Invariants checked (from query.h):
 *   - query_parse returns 0 or -EINVAL; err is always NUL-terminated printable ASCII, empty on
 *     success and a reason on failure; a short err buffer gets a prefix of the long reason;
 *   - a parsed query holds only values the contract allows, and writing it back as a
 *     canonical query string parses to the same struct;
 *   - query_route returns 0 with a real route, or -ENOENT / -EINVAL with a reason;
 *   - query_unescape agrees with itself across destination sizes, never writes a NUL byte
 *     into the output, and shrinks each escape to one byte.
 */

#define BIG_ERR 512

struct input {
    char *qs, *script_name, *path_info; /* NULL when not present */
};

/* Splits data after the flag byte into the three strings (heap copies the caller frees). */
static void split_input(const uint8_t *data, size_t size, struct input *in)
{
    char **fields[3] = {&in->qs, &in->script_name, &in->path_info};
    size_t start = 0;

    memset(in, 0, sizeof(*in));
    if (size == 0)
        return; /* no QUERY_STRING at all */
    for (int f = 0; f < 3 && start <= size; f++) {
        const uint8_t *nul = memchr(data + start, 0, size - start);
        size_t end = nul ? (size_t)(nul - data) : size;
        if (start == size && f > 0)
            break; /* nothing after the last separator: leave the rest NULL */
        char *s = malloc(end - start + 1);
        FUZZ_CHECK(s != NULL, "out of memory");
        memcpy(s, data + start, end - start);
        s[end - start] = '\0';
        *fields[f] = s;
        start = end + 1;
    }
}

static void check_err_text(const char *err, size_t errlen, int rc, const char *what)
{
    const char *nul = memchr(err, '\0', errlen);
    FUZZ_CHECK(nul != NULL, "%s: err not NUL-terminated within %zu bytes", what, errlen);
    for (const char *c = err; c < nul; c++)
        FUZZ_CHECK(*c >= 0x20 && *c < 0x7f, "%s: err holds byte 0x%02x", what, (unsigned char)*c);
    if (errlen > 1) {
        FUZZ_CHECK((rc == 0) == (err[0] == '\0'), "%s: rc %d with err \"%s\"", what, rc, err);
    }
}

static void check_query_values(const struct query *q)
{
    FUZZ_CHECK(q->action >= ROUTE_NONE && q->action <= ROUTE_STATE, "action %d", (int)q->action);
    FUZZ_CHECK(q->parts >= PARTS_AUTO && q->parts <= PARTS_EARLY, "parts %d", (int)q->parts);
    FUZZ_CHECK(memchr(q->cam, '\0', sizeof(q->cam)) != NULL, "cam not terminated");
    FUZZ_CHECK(q->cam[0] == '\0' || ring_name_valid(q->cam), "cam \"%s\" invalid", q->cam);
    FUZZ_CHECK(q->fps_milli <= 120000, "fps_milli %u above 120 fps", q->fps_milli);
    FUZZ_CHECK((q->res_width == 0) == (q->res_height == 0), "resolution %ux%u", q->res_width,
               q->res_height);
    FUZZ_CHECK(q->res_width <= RING_MAX_DIMENSION && q->res_height <= RING_MAX_DIMENSION,
               "resolution %ux%u", q->res_width, q->res_height);
    FUZZ_CHECK(q->dual_final == 0 || q->dual_final == 1, "dual_final %d", q->dual_final);
    FUZZ_CHECK(q->headers == 0 || q->headers == 1, "headers %d", q->headers);
}

static bool query_equal(const struct query *a, const struct query *b)
{
    return a->action == b->action && strcmp(a->cam, b->cam) == 0 && a->fps_milli == b->fps_milli &&
           a->frames == b->frames && a->seconds == b->seconds && a->parts == b->parts &&
           a->res_width == b->res_width && a->res_height == b->res_height &&
           a->dual_final == b->dual_final && a->headers == b->headers;
}

/* Writes q back as the query string a careful client would send for it. */
static void canonical_query(const struct query *q, char *out, size_t len)
{
    static const char *const actions[] = {"", "stream", "snapshot", "state"};
    static const char *const parts[] = {"auto", "full", "early"};
    size_t n = 0;

#define APPEND(...)                                                                                \
    (n += (size_t)snprintf(n < len ? out + n : NULL, n < len ? len - n : 0, __VA_ARGS__))
    out[0] = '\0';
    if (q->action != ROUTE_NONE)
        APPEND("&action=%s", actions[q->action]);
    if (q->cam[0])
        APPEND("&cam=%s", q->cam);
    if (q->fps_milli)
        APPEND("&fps=%u.%03u", q->fps_milli / 1000, q->fps_milli % 1000);
    if (q->frames)
        APPEND("&frames=%llu", (unsigned long long)q->frames);
    if (q->seconds)
        APPEND("&seconds=%llu", (unsigned long long)q->seconds);
    if (q->parts != PARTS_AUTO)
        APPEND("&parts=%s", parts[q->parts]);
    if (q->res_width)
        APPEND("&resolution=%ux%u", q->res_width, q->res_height);
    if (q->dual_final)
        APPEND("&dual_final=1");
    if (q->headers)
        APPEND("&headers=1");
#undef APPEND
    FUZZ_CHECK(n < len, "canonical query too long (%zu bytes)", n);
}

static void fuzz_parse(const char *qs, size_t errlen)
{
    struct query q, q_small, q_again;
    char big_err[BIG_ERR], canon[1024], canon_err[BIG_ERR];
    char *small_err = malloc(errlen); /* exact size: ASan flags any overflow */
    int rc, rc_small;

    FUZZ_CHECK(small_err != NULL, "out of memory");
    rc = query_parse(qs, &q, big_err, sizeof(big_err));
    FUZZ_CHECK(rc == 0 || rc == -EINVAL, "query_parse returned %d", rc);
    check_err_text(big_err, sizeof(big_err), rc, "query_parse");
    if (qs && strlen(qs) > QUERY_MAX_LENGTH)
        FUZZ_CHECK(rc == -EINVAL, "query of %zu bytes accepted", strlen(qs));

    rc_small = query_parse(qs, &q_small, small_err, errlen);
    FUZZ_CHECK(rc_small == rc, "rc %d with a %zu-byte err, %d with a big one", rc_small, errlen,
               rc);
    check_err_text(small_err, errlen, rc, "query_parse (small err)");
    FUZZ_CHECK(strncmp(small_err, big_err, strlen(small_err)) == 0 &&
                   strlen(small_err) == (strlen(big_err) < errlen ? strlen(big_err) : errlen - 1),
               "short reason \"%s\" is not the prefix of \"%s\"", small_err, big_err);
    free(small_err);
    if (rc != 0)
        return;
    FUZZ_CHECK(query_equal(&q, &q_small), "parse differs by err size");
    check_query_values(&q);

    canonical_query(&q, canon, sizeof(canon));
    rc = query_parse(canon, &q_again, canon_err, sizeof(canon_err));
    FUZZ_CHECK(rc == 0, "canonical form \"%s\" rejected: %s", canon, canon_err);
    FUZZ_CHECK(query_equal(&q, &q_again), "canonical form \"%s\" parses differently", canon);
}

static void fuzz_route(const struct input *in, enum query_route action, size_t errlen)
{
    enum query_route route = ROUTE_NONE;
    char *err = malloc(errlen);
    int rc;

    FUZZ_CHECK(err != NULL, "out of memory");
    rc = query_route(in->script_name, in->path_info, action, &route, err, errlen);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL, "query_route returned %d", rc);
    check_err_text(err, errlen, rc, "query_route");
    if (rc == 0) {
        FUZZ_CHECK(route >= ROUTE_STREAM && route <= ROUTE_STATE, "route %d", (int)route);
        FUZZ_CHECK(action == ROUTE_NONE || route == action, "route %d for action %d", (int)route,
                   (int)action);
    }
    free(err);
}

/* Checks query_unescape over src[0..len) (which may hold NUL bytes) with a dstlen-byte output. */
static void fuzz_unescape(const char *src, size_t len, size_t dstlen)
{
    char *big = malloc(len + 1);
    char *small = malloc(dstlen ? dstlen : 1);
    size_t percents = 0;
    int rc_big, rc_small;

    FUZZ_CHECK(big && small, "out of memory");
    for (size_t i = 0; i < len; i++)
        percents += src[i] == '%';
    rc_big = query_unescape(src, len, big, len + 1);
    FUZZ_CHECK(rc_big == -EINVAL || rc_big >= 0, "query_unescape returned %d with room", rc_big);
    if (rc_big >= 0) {
        FUZZ_CHECK((size_t)rc_big == len - 2 * percents, "%zu bytes with %zu escapes -> %d", len,
                   percents, rc_big);
        FUZZ_CHECK(big[rc_big] == '\0', "output not terminated");
        FUZZ_CHECK(memchr(big, '\0', (size_t)rc_big) == NULL, "NUL byte in the output");
        if (percents == 0) {
            for (size_t i = 0; i < len; i++)
                FUZZ_CHECK(big[i] == (src[i] == '+' ? ' ' : src[i]), "byte %zu changed", i);
        }
    }
    rc_small = query_unescape(src, len, small, dstlen);
    if (rc_big >= 0 && (size_t)rc_big < dstlen) {
        FUZZ_CHECK(rc_small == rc_big && memcmp(small, big, (size_t)rc_big + 1) == 0,
                   "dstlen %zu: %d, with room: %d", dstlen, rc_small, rc_big);
    } else if (rc_big >= 0) {
        FUZZ_CHECK(rc_small == -ENAMETOOLONG, "dstlen %zu for %d bytes: %d", dstlen, rc_big,
                   rc_small);
    } else {
        /* Which error comes first depends on where the bad escape sits. */
        FUZZ_CHECK(rc_small == -EINVAL || rc_small == -ENAMETOOLONG, "dstlen %zu: %d", dstlen,
                   rc_small);
    }
    free(big);
    free(small);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in;
    struct query q;
    char err[BIG_ERR];
    uint8_t flags;
    size_t errlen, dstlen;

    if (size < 1)
        return 0;
    flags = data[0];
    data++;
    size--;
    /* 1..64 bytes: reasons are cut at every length, including mid-word and a lone NUL. */
    errlen = 1 + (flags & 63);
    dstlen = (size_t)(flags >> 2); /* 0..63: covers the no-room and exact-fit cases */

    split_input(data, size, &in);
    fuzz_parse(in.qs, errlen);
    if (query_parse(in.qs, &q, err, sizeof(err)) == 0)
        fuzz_route(&in, q.action, errlen);
    fuzz_route(&in, (enum query_route)(flags & 3), errlen);
    fuzz_unescape((const char *)data, size, dstlen);
    free(in.qs);
    free(in.script_name);
    free(in.path_info);
    return 0;
}
