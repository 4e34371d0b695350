/* test_query.c - query parsing, routing and percent-decoding: valid, hostile and fuzzed input. */
#include "../../fcgi/query.c"

#include <errno.h>
#include <stdint.h>

#include "check.h"

#define ERRLEN 256
/* Bytes after err that must stay untouched. */
#define CANARY_LEN 16
#define CANARY     0x5a

/* s made safe to print in a failure message: NULL shown as (null), bytes outside printable ASCII
 * as \xNN, cut after 80 bytes, and never beyond a NUL-less buffer of n bytes. Four rotating
 * buffers, so one message may show several strings (the tests are single-threaded). */
static const char *esc_n(const char *s, size_t n)
{
    static char bufs[4][80 * 4 + 8];
    static unsigned next;
    char *out = bufs[next++ % 4];
    size_t used = 0;

    if (!s)
        return "(null)";
    for (size_t i = 0; i < n && s[i] && i < 80; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[used++] = (char)c;
        else
            used += (size_t)sprintf(out + used, "\\x%02x", c);
    }
    out[used] = '\0';
    return out;
}

static const char *esc(const char *s)
{
    return esc_n(s, SIZE_MAX);
}

/* 1 if err holds a NUL within errlen and only printable ASCII before it. */
static int err_clean(const char *err, size_t errlen)
{
    const char *nul = memchr(err, '\0', errlen);
    if (!nul)
        return 0;
    for (const char *c = err; c < nul; c++)
        if (*c < 0x20 || *c > 0x7e)
            return 0;
    return 1;
}

static int canary_intact(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)buf[i] != CANARY)
            return 0;
    return 1;
}

/* Parses qs, checks the err contract for either outcome and returns query_parse's result. */
static int parse(const char *qs, struct query *q, char *err)
{
    char buf[ERRLEN + CANARY_LEN];
    int rc;

    memset(buf, CANARY, sizeof(buf));
    rc = query_parse(qs, q, buf, ERRLEN);
    CHECKF(err_clean(buf, ERRLEN), "err for \"%s\" is not clean: \"%s\"", esc(qs),
           esc_n(buf, ERRLEN));
    CHECKF(canary_intact(buf + ERRLEN, CANARY_LEN), "err overflow for \"%s\"", esc(qs));
    CHECKF(rc != 0 || buf[0] == '\0', "success with err \"%s\" for \"%s\"", esc_n(buf, ERRLEN),
           esc(qs));
    CHECKF(rc == 0 || buf[0] != '\0', "failure without a reason for \"%s\"", esc(qs));
    memcpy(err, buf, ERRLEN);
    err[ERRLEN - 1] = '\0';
    return rc;
}

static void expect_ok(const char *qs, struct query *q)
{
    char err[ERRLEN];
    int rc = parse(qs, q, err);
    CHECKF(rc == 0, "\"%s\" -> %d (%s), expected 0", esc(qs), rc, esc(err));
}

/* qs must fail with -EINVAL; the reason must mention `about` and must not contain `raw` (a piece
 * of the hostile input that should never be echoed; NULL to skip). */
static void expect_invalid(const char *qs, const char *about, const char *raw)
{
    struct query q;
    char err[ERRLEN];
    int rc = parse(qs, &q, err);

    CHECKF(rc == -EINVAL, "\"%s\" -> %d, expected -EINVAL", esc(qs), rc);
    if (about)
        CHECKF(strstr(err, about) != NULL, "\"%s\": reason \"%s\" does not mention \"%s\"", esc(qs),
               esc(err), about);
    if (raw)
        CHECKF(strstr(err, raw) == NULL, "\"%s\": reason \"%s\" echoes \"%s\"", esc(qs), esc(err),
               esc(raw));
}

/* ---- valid input ---------------------------------------------------------------------- */

static void test_parse_empty_gives_defaults(void)
{
    const char *inputs[] = {NULL, "", "&", "&&&", "_=123", "_=123&&"};
    for (size_t i = 0; i < ARRAY_SIZE(inputs); i++) {
        struct query q;
        memset(&q, 0xA5, sizeof(q)); /* every field must be reset */
        expect_ok(inputs[i], &q);
        CHECK_EQ_INT(q.action, ROUTE_NONE);
        CHECK_STREQ(q.cam, "");
        CHECK_EQ_INT(q.fps_milli, 0);
        CHECK_EQ_INT(q.frames, 0);
        CHECK_EQ_INT(q.seconds, 0);
        CHECK_EQ_INT(q.parts, PARTS_AUTO);
    }
}

static void test_parse_action(void)
{
    static const struct {
        const char *qs;
        enum query_route want;
    } cases[] = {
        {"action=stream", ROUTE_STREAM}, {"action=snapshot", ROUTE_SNAPSHOT},
        {"action=state", ROUTE_STATE},   {"action=str%65am", ROUTE_STREAM},
        {"%61ction=state", ROUTE_STATE},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct query q;
        expect_ok(cases[i].qs, &q);
        CHECKF(q.action == cases[i].want, "%s -> action %d", cases[i].qs, (int)q.action);
    }
}

static void test_parse_cam(void)
{
    static const struct {
        const char *qs, *want;
    } cases[] = {
        {"cam=a-b_c", "a-b_c"}, {"cam=front-door_2", "front-door_2"},
        {"cam=a%2Db", "a-b"},   {"cam=a%2db", "a-b"},
        {"c%61m=x", "x"},       {"cam=0", "0"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct query q;
        expect_ok(cases[i].qs, &q);
        CHECK_STREQ(q.cam, cases[i].want);
    }
}

static void test_parse_cam_64_chars(void)
{
    char qs[128], name[RING_NAME_MAX + 1];
    struct query q;

    memset(name, 'k', RING_NAME_MAX);
    name[RING_NAME_MAX] = '\0';
    snprintf(qs, sizeof(qs), "cam=%s", name);
    expect_ok(qs, &q);
    CHECK_STREQ(q.cam, name);
}

static void test_parse_fps_valid(void)
{
    static const struct {
        const char *value;
        uint32_t want;
    } cases[] = {
        {"1", 1000},   {"15", 15000},   {"120", 120000}, {"120.0", 120000},   {"120.000", 120000},
        {"0.5", 500},  {"0.001", 1},    {"0.05", 50},    {"7.25", 7250},      {"29.97", 29970},
        {"1.5", 1500}, {"1%2E5", 1500}, {"05", 5000},    {"119.999", 119999},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char qs[64];
        struct query q;
        snprintf(qs, sizeof(qs), "fps=%s", cases[i].value);
        expect_ok(qs, &q);
        CHECKF(q.fps_milli == cases[i].want, "%s -> %u, expected %u", qs, q.fps_milli,
               cases[i].want);
    }
}

static void test_parse_frames_seconds_parts(void)
{
    struct query q;

    expect_ok("frames=1", &q);
    CHECK_EQ_INT(q.frames, 1);
    expect_ok("frames=1000000000", &q);
    CHECK_EQ_INT(q.frames, 1000000000);
    expect_ok("seconds=1", &q);
    CHECK_EQ_INT(q.seconds, 1);
    expect_ok("seconds=31536000", &q);
    CHECK_EQ_INT(q.seconds, 31536000);
    expect_ok("parts=full", &q);
    CHECK_EQ_INT(q.parts, PARTS_FULL);
    expect_ok("parts=early", &q);
    CHECK_EQ_INT(q.parts, PARTS_EARLY);
    expect_ok("parts=auto", &q);
    CHECK_EQ_INT(q.parts, PARTS_AUTO);
}

static void test_parse_all_together(void)
{
    struct query q;

    expect_ok("action=stream&cam=a-b_c&fps=2.5&frames=10&seconds=60&parts=early&_=1700000000", &q);
    CHECK_EQ_INT(q.action, ROUTE_STREAM);
    CHECK_STREQ(q.cam, "a-b_c");
    CHECK_EQ_INT(q.fps_milli, 2500);
    CHECK_EQ_INT(q.frames, 10);
    CHECK_EQ_INT(q.seconds, 60);
    CHECK_EQ_INT(q.parts, PARTS_EARLY);
}

static void test_parse_unknown_ignored(void)
{
    struct query q;

    /* Cache-busters, valueless flags, empty names and odd-but-valid bytes are ignored. */
    expect_ok("_=123&cam=x&foo=bar&debug&=5&%2B=%2B&x+y=a+b&CAM=Bad/Name&Fps=abc", &q);
    CHECK_STREQ(q.cam, "x");
    CHECK_EQ_INT(q.fps_milli, 0);
    CHECK_EQ_INT(q.action, ROUTE_NONE);
    expect_ok("_=1&_=2&_=3", &q); /* only known parameters must be unique */
}

static void test_parse_plus_decodes_to_space(void)
{
    /* '+' is a space: "cam=a+b" names the camera "a b", which is not a valid name. */
    expect_invalid("cam=a+b", "cam", NULL);
    expect_invalid("fps=+5", "fps", NULL);
    expect_invalid("action=stream+", "action", NULL);
}

static void test_parse_max_length_boundary(void)
{
    char qs[QUERY_MAX_LENGTH + 8];
    struct query q;

    /* Exactly QUERY_MAX_LENGTH bytes of short, valid parameters is accepted... */
    for (size_t i = 0; i < QUERY_MAX_LENGTH; i++)
        qs[i] = "a=1&"[i % 4];
    qs[QUERY_MAX_LENGTH] = '\0';
    CHECK_EQ_INT(strlen(qs), QUERY_MAX_LENGTH);
    expect_ok(qs, &q);
    /* ...one byte more is not. */
    qs[QUERY_MAX_LENGTH] = '&';
    qs[QUERY_MAX_LENGTH + 1] = '\0';
    expect_invalid(qs, "longer", "a=1");
}

/* ---- hostile input ------------------------------------------------------------------- */

static void test_parse_very_long_query(void)
{
    static char qs[64 * 1024];

    memset(qs, 'z', sizeof(qs) - 1);
    qs[sizeof(qs) - 1] = '\0';
    expect_invalid(qs, "longer", "zzz");
    memcpy(qs, "cam=", 4);
    expect_invalid(qs, "longer", "zzz");
}

static void test_parse_bad_escapes(void)
{
    static const char *cases[] = {
        "%00",
        "%",
        "%4",
        "%zz",
        "%g0",
        "%0g",
        "a%",
        "cam=%00",
        "cam=%",
        "cam=%4",
        "cam=%zz",
        "cam=a%00b",
        "cam=a%",
        "fps=1%0",
        "_=%zz",
        "_=%",
        "x%00=1",
        "%00=1",
        "action=%00stream",
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        expect_invalid(cases[i], "escape", "%");
}

static void test_parse_repeated(void)
{
    expect_invalid("cam=a&cam=b", "more than once", NULL);
    expect_invalid("cam=a&cam=a", "more than once", NULL);
    expect_invalid("fps=1&fps=2", "more than once", NULL);
    expect_invalid("action=stream&_=1&action=stream", "more than once", NULL);
    expect_invalid("frames=1&frames=1", "more than once", NULL);
    expect_invalid("seconds=1&seconds=1", "more than once", NULL);
    expect_invalid("parts=full&parts=full", "more than once", NULL);
    expect_invalid("cam=a&c%61m=b", "more than once", NULL);
}

static void test_parse_empty_value(void)
{
    const char *names[] = {"action", "cam", "fps", "frames", "seconds", "parts"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        char qs[32];
        snprintf(qs, sizeof(qs), "%s=", names[i]);
        expect_invalid(qs, names[i], NULL);
        snprintf(qs, sizeof(qs), "%s", names[i]); /* no '=' at all */
        expect_invalid(qs, names[i], NULL);
    }
}

static void test_parse_fps_invalid(void)
{
    static const char *values[] = {
        "-1",
        "00",
        "0.0",
        "0.000",
        "0.0001",
        "1e99",
        "1E2",
        "121",
        "120.001",
        "1000",
        "1001",
        "99999999999",
        "99999999999999999999",
        "1.2345",
        ".5",
        "5.",
        "1.5.5",
        "abc",
        "0x10",
        "1,5",
        "%201",
        "1%20",
        "inf",
        "nan",
        "1.-5",
        "+5",
        "1..5",
        "12345678901234567890.5",
    };
    for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
        char qs[64];
        snprintf(qs, sizeof(qs), "fps=%s", values[i]);
        /* Values that happen to occur in the reason itself ("0.0" in "0.001") cannot be checked. */
        int echo_checkable =
            strlen(values[i]) > 1 && !strstr("fps must be a number from 0.001 to 120", values[i]);
        expect_invalid(qs, "fps", echo_checkable ? values[i] : NULL);
    }
}

static void test_parse_frames_seconds_invalid(void)
{
    expect_invalid("frames=0", "frames", NULL);
    expect_invalid("frames=99999999999999999999", "frames", "99999999999999999999");
    expect_invalid("frames=1000000001", "frames", "1000000001");
    expect_invalid("frames=-1", "frames", NULL);
    expect_invalid("frames=1.5", "frames", "1.5");
    expect_invalid("frames=abc", "frames", "abc");
    expect_invalid("seconds=abc", "seconds", "abc");
    expect_invalid("seconds=0", "seconds", NULL);
    expect_invalid("seconds=31536001", "seconds", "31536001");
    expect_invalid("seconds=1e3", "seconds", "1e3");
}

static void test_parse_cam_invalid(void)
{
    static const char *values[] = {
        "a/b",    "%2Fetc",    "..",    "../etc", "a..b",  "a.b", "Front", "FRONT",
        "%C3%A9", "caf%C3%A9", "a%20b", "a b",    "a%0Ab", "%7F", "a\\b",  "<script>",
    };
    char qs[128], name[RING_NAME_MAX + 2];

    for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
        snprintf(qs, sizeof(qs), "cam=%s", values[i]);
        expect_invalid(qs, "cam", values[i]);
    }
    memset(name, 'k', RING_NAME_MAX + 1); /* 65 characters */
    name[RING_NAME_MAX + 1] = '\0';
    snprintf(qs, sizeof(qs), "cam=%s", name);
    expect_invalid(qs, "cam", "kkkk");
}

static void test_parse_raw_bytes_never_echoed(void)
{
    /* Raw control and high bytes (not percent-encoded) in known values. */
    expect_invalid("cam=\x01\x1b[31m\x7f\xff", "cam", "\x1b");
    expect_invalid("action=\xc3\xa9", "action", "\xc3");
    expect_invalid("parts=\r\nX-Evil: 1", "parts", "Evil");
    expect_invalid("fps=1\r\n", "fps", "\r");
}

static void test_parse_action_parts_invalid(void)
{
    expect_invalid("action=bogus", "action", "bogus");
    expect_invalid("action=STREAM", "action", "STREAM");
    expect_invalid("action=streams", "action", "streams");
    expect_invalid("action=none", "action", "none");
    expect_invalid("parts=xyz", "parts", "xyz");
    expect_invalid("parts=FULL", "parts", "FULL");
}

static void test_parse_long_name_and_value(void)
{
    char qs[1024];

    memset(qs, 'q', 600); /* a 600-byte parameter name */
    strcpy(qs + 600, "=1");
    expect_invalid(qs, "too long", "qqqq");
    strcpy(qs, "cam=");
    memset(qs + 4, 'v', 600); /* a 600-byte known value */
    qs[604] = '\0';
    expect_invalid(qs, "cam", "vvvv");
    strcpy(qs, "_=");
    memset(qs + 2, 'v', 600); /* a 600-byte unknown value: still must be well-formed */
    qs[602] = '\0';
    expect_invalid(qs, "too long", "vvvv");
}

static void test_parse_small_err_buffer(void)
{
    char buf[16];
    struct query q;
    static const size_t lens[] = {1, 2, 8};

    for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
        int rc;
        memset(buf, CANARY, sizeof(buf));
        rc = query_parse("fps=abc", &q, buf, lens[i]);
        CHECK_EQ_INT(rc, -EINVAL);
        CHECKF(err_clean(buf, lens[i]), "errlen %zu: not terminated", lens[i]);
        CHECKF(canary_intact(buf + lens[i], sizeof(buf) - lens[i]), "errlen %zu: overflow",
               lens[i]);
    }
}

/* ---- routing ----------------------------------------------------------------------- */

static int route(const char *script, const char *path, enum query_route action,
                 enum query_route *out)
{
    char err[ERRLEN + CANARY_LEN];
    int rc;

    memset(err, CANARY, sizeof(err));
    *out = (enum query_route) - 1;
    rc = query_route(script, path, action, out, err, ERRLEN);
    CHECKF(err_clean(err, ERRLEN), "route %s %s: err not clean", esc(script), esc(path));
    CHECKF(canary_intact(err + ERRLEN, CANARY_LEN), "route %s %s: err overflow", esc(script),
           esc(path));
    CHECKF(rc != 0 || err[0] == '\0', "route success with err \"%s\"", esc_n(err, ERRLEN));
    CHECKF(rc == 0 || err[0] != '\0', "route %s %s: failure without a reason", esc(script),
           esc(path));
    if (rc != 0) {
        CHECKF(!path || !strstr(path, "evil") || !strstr(err, "evil"), "route echoes \"%s\"",
               esc(err));
    }
    return rc;
}

static void test_route_valid(void)
{
    static const struct {
        const char *script, *path;
        enum query_route action, want;
    } cases[] = {
        {"/stream", NULL, ROUTE_NONE, ROUTE_STREAM},
        {"/snapshot", "", ROUTE_NONE, ROUTE_SNAPSHOT},
        {"/state", NULL, ROUTE_NONE, ROUTE_STATE},
        {"/stream", NULL, ROUTE_STREAM, ROUTE_STREAM},
        {"", "/stream", ROUTE_NONE, ROUTE_STREAM},
        {NULL, "/state", ROUTE_NONE, ROUTE_STATE},
        {"/cgi-bin/capd.cgi", "/snapshot", ROUTE_NONE, ROUTE_SNAPSHOT},
        {"/cgi-bin/capd.cgi", "/snapshot", ROUTE_SNAPSHOT, ROUTE_SNAPSHOT},
        {"/cgi-bin/capd.cgi", "/stream/", ROUTE_NONE, ROUTE_STREAM},
        {"/cgi-bin/capd.cgi", "/state///", ROUTE_NONE, ROUTE_STATE},
        {"/cgi-bin/capd.cgi", "//stream", ROUTE_NONE, ROUTE_STREAM},
        {"/stream/", NULL, ROUTE_NONE, ROUTE_STREAM},
        {"/cam/snapshot//", "", ROUTE_NONE, ROUTE_SNAPSHOT},
        {"/cgi-bin/capd.cgi", "/", ROUTE_STATE, ROUTE_STATE}, /* "/" names nothing */
        {"/cgi-bin/capd.cgi", NULL, ROUTE_STREAM, ROUTE_STREAM},
        {"/cgi-bin/capd.cgi", "", ROUTE_SNAPSHOT, ROUTE_SNAPSHOT},
        {NULL, NULL, ROUTE_STATE, ROUTE_STATE},
        {"", "", ROUTE_STREAM, ROUTE_STREAM},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        enum query_route r;
        int rc = route(cases[i].script, cases[i].path, cases[i].action, &r);
        CHECKF(rc == 0 && r == cases[i].want, "case %zu (%s, %s, %d): rc %d route %d", i,
               cases[i].script ? cases[i].script : "NULL", cases[i].path ? cases[i].path : "NULL",
               (int)cases[i].action, rc, (int)r);
    }
}

static void test_route_unknown_endpoint(void)
{
    static const struct {
        const char *script, *path;
        enum query_route action;
    } cases[] = {
        {"/cgi-bin/capd.cgi", "/bogus", ROUTE_NONE},
        {"/cgi-bin/capd.cgi", "/bogus", ROUTE_STREAM}, /* action= cannot rescue a bad path */
        {"/cgi-bin/capd.cgi", "/Stream", ROUTE_NONE},
        {"/cgi-bin/capd.cgi", "/streams", ROUTE_NONE},
        {"/cgi-bin/capd.cgi", "/stream/evil", ROUTE_NONE},
        {"/cgi-bin/capd.cgi", "/../../evil<script>", ROUTE_NONE},
        {"/cgi-bin/capd.cgi", NULL, ROUTE_NONE}, /* nothing names an endpoint */
        {"/cgi-bin/capd.cgi", "", ROUTE_NONE},
        {"/cgi-bin/capd.cgi", "/", ROUTE_NONE},
        {NULL, NULL, ROUTE_NONE},
        {"", "", ROUTE_NONE},
        {"/", "///", ROUTE_NONE},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        enum query_route r;
        int rc = route(cases[i].script, cases[i].path, cases[i].action, &r);
        CHECKF(rc == -ENOENT, "case %zu (%s, %s): rc %d, expected -ENOENT", i,
               cases[i].script ? cases[i].script : "NULL", cases[i].path ? cases[i].path : "NULL",
               rc);
    }
}

static void test_route_conflict(void)
{
    static const struct {
        const char *script, *path;
        enum query_route action;
    } cases[] = {
        {"/stream", NULL, ROUTE_SNAPSHOT},
        {"/snapshot", "", ROUTE_STATE},
        {"/cgi-bin/capd.cgi", "/state", ROUTE_STREAM},
        {"/cgi-bin/capd.cgi", "/stream/", ROUTE_SNAPSHOT},
        {"/state", "/stream", ROUTE_STATE}, /* PATH_INFO wins over SCRIPT_NAME */
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        enum query_route r;
        char err[ERRLEN];
        int rc = route(cases[i].script, cases[i].path, cases[i].action, &r);
        CHECKF(rc == -EINVAL, "case %zu: rc %d, expected -EINVAL", i, rc);
        query_route(cases[i].script, cases[i].path, cases[i].action, &r, err, sizeof(err));
        CHECKF(strstr(err, "action") != NULL, "case %zu: reason \"%s\"", i, err);
    }
}

/* ---- percent-decoding ---------------------------------------------------------------- */

/* Runs query_unescape on src[0..len) into a dstlen buffer followed by a canary. */
static int unescape(const char *src, size_t len, size_t dstlen, char *out)
{
    char buf[64 + CANARY_LEN];
    int rc;

    memset(buf, CANARY, sizeof(buf));
    rc = query_unescape(src, len, buf, dstlen);
    CHECKF(canary_intact(buf + dstlen, CANARY_LEN), "unescape \"%s\" dstlen %zu overflows",
           esc(src), dstlen);
    if (rc >= 0) {
        CHECKF((size_t)rc < dstlen && buf[rc] == '\0', "unescape \"%s\": no NUL at %d", esc(src),
               rc);
        memcpy(out, buf, (size_t)rc + 1);
    }
    return rc;
}

static void test_unescape_decoding(void)
{
    static const struct {
        const char *src, *want;
    } cases[] = {
        {"abc", "abc"},   {"a+b", "a b"},   {"%2B", "+"},           {"%25", "%"},
        {"%2d%2D", "--"}, {"%41%42", "AB"}, {"%C3%A9", "\xc3\xa9"}, {"", ""},
        {"+++", "   "},   {"%7e", "~"},     {"%26%3D", "&="},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char out[64];
        int rc = unescape(cases[i].src, strlen(cases[i].src), 32, out);
        CHECKF(rc == (int)strlen(cases[i].want), "\"%s\" -> %d", cases[i].src, rc);
        if (rc >= 0)
            CHECK_STREQ(out, cases[i].want);
    }
}

static void test_unescape_broken(void)
{
    static const char *cases[] = {"%",   "%4",  "a%",    "a%4",  "%zz", "%g0",
                                  "%0g", "%00", "a%00b", "%%41", "%-1", "% 1"};
    char out[64];

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        CHECKF(unescape(cases[i], strlen(cases[i]), 32, out) == -EINVAL, "\"%s\"", cases[i]);
    /* A raw NUL inside the given length. */
    CHECK_EQ_INT(unescape("a\0b", 3, 32, out), -EINVAL);
}

static void test_unescape_respects_len(void)
{
    char out[64];

    /* Only src[0..len) is read: "%41" cut to "%4" is broken, "abcdef" cut to 3 is "abc". */
    CHECK_EQ_INT(unescape("%41", 2, 32, out), -EINVAL);
    CHECK_EQ_INT(unescape("%41", 1, 32, out), -EINVAL);
    CHECK_EQ_INT(unescape("abcdef", 3, 32, out), 3);
    CHECK_STREQ(out, "abc");
    CHECK_EQ_INT(unescape("x%41yz", 4, 32, out), 2);
    CHECK_STREQ(out, "xA");
    CHECK_EQ_INT(unescape("x%41yz", 5, 32, out), 3);
    CHECK_STREQ(out, "xAy");
    CHECK_EQ_INT(unescape("abc", 0, 32, out), 0);
    CHECK_STREQ(out, "");
}

static void test_unescape_bounds(void)
{
    char out[64];

    /* Exactly full: n decoded bytes plus the NUL in n + 1. One short: -ENAMETOOLONG. */
    CHECK_EQ_INT(unescape("abc", 3, 4, out), 3);
    CHECK_STREQ(out, "abc");
    CHECK_EQ_INT(unescape("abc", 3, 3, out), -ENAMETOOLONG);
    CHECK_EQ_INT(unescape("%41%42%43", 9, 4, out), 3);
    CHECK_STREQ(out, "ABC");
    CHECK_EQ_INT(unescape("%41%42%43", 9, 3, out), -ENAMETOOLONG);
    CHECK_EQ_INT(unescape("a+b", 3, 4, out), 3);
    CHECK_EQ_INT(unescape("a+b", 3, 3, out), -ENAMETOOLONG);
    CHECK_EQ_INT(unescape("", 0, 1, out), 0);
    CHECK_EQ_INT(unescape("x", 1, 1, out), -ENAMETOOLONG);
    CHECK_EQ_INT(unescape("x", 1, 2, out), 1);
}

static void test_unescape_zero_dstlen(void)
{
    /* dstlen counts the NUL, so 0 bytes cannot hold even the empty string: nothing may be
     * written. */
    char out[64];
    CHECK_EQ_INT(unescape("", 0, 0, out), -ENAMETOOLONG);
    CHECK_EQ_INT(unescape("a", 1, 0, out), -ENAMETOOLONG);
}

/* ---- fuzz ------------------------------------------------------------------------------ */

#define FUZZ_ITERATIONS 200000
#define FUZZ_MAX_LEN    (QUERY_MAX_LENGTH + 64)

static uint64_t fuzz_state = 0x9e3779b97f4a7c15ull; /* fixed seed: reproducible runs */

static uint32_t fuzz_rand(void)
{
    /* xorshift64* */
    fuzz_state ^= fuzz_state >> 12;
    fuzz_state ^= fuzz_state << 25;
    fuzz_state ^= fuzz_state >> 27;
    return (uint32_t)((fuzz_state * 0x2545f4914f6cdd1dull) >> 32);
}

static const char *const fuzz_seeds[] = {
    "action=stream&cam=a-b_c&fps=0.5&frames=10&seconds=60&parts=early",
    "cam=front&fps=120&_=1700000000123",
    "action=snapshot&cam=%61%2Db",
    "action=state",
    "fps=29.97&parts=full&frames=1000000000",
    "seconds=31536000&cam=kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
    "x+y=a+b&&cam=q&",
};

/* Bytes that matter to the parser, mixed with arbitrary ones. */
static char fuzz_byte(void)
{
    static const char interesting[] = "=&%+.-_0123456789abcdefABCDEFxz/";
    uint32_t r = fuzz_rand();
    if (r % 4 == 0)
        return (char)(1 + (r >> 8) % 255); /* any byte but NUL */
    return interesting[(r >> 8) % (sizeof(interesting) - 1)];
}

static size_t fuzz_random_bytes(char *buf)
{
    size_t len = fuzz_rand() % 16 == 0 ? fuzz_rand() % FUZZ_MAX_LEN : fuzz_rand() % 96;
    for (size_t i = 0; i < len; i++)
        buf[i] = fuzz_byte();
    buf[len] = '\0';
    return len;
}

static size_t fuzz_mutation(char *buf)
{
    static const char *const words[] = {"cam=",
                                        "fps=",
                                        "action=",
                                        "frames=",
                                        "seconds=",
                                        "parts=",
                                        "%",
                                        "%0",
                                        "%00",
                                        "&",
                                        "=",
                                        "+",
                                        "..",
                                        "/",
                                        "%C3%A9",
                                        "stream",
                                        "120",
                                        "0.001",
                                        "99999999999999999999"};
    const char *seed = fuzz_seeds[fuzz_rand() % ARRAY_SIZE(fuzz_seeds)];
    size_t len = strlen(seed);
    int edits = 1 + (int)(fuzz_rand() % 4);

    memcpy(buf, seed, len + 1);
    for (int e = 0; e < edits; e++) {
        size_t at = len ? fuzz_rand() % (len + 1) : 0;
        switch (fuzz_rand() % 5) {
        case 0: /* replace a byte */
            if (at < len)
                buf[at] = fuzz_byte();
            break;
        case 1: /* delete a run */
            if (at < len) {
                size_t n = 1 + fuzz_rand() % 8;
                if (n > len - at)
                    n = len - at;
                memmove(buf + at, buf + at + n, len - at - n + 1);
                len -= n;
            }
            break;
        case 2: { /* insert a word */
            const char *w = words[fuzz_rand() % ARRAY_SIZE(words)];
            size_t n = strlen(w);
            if (len + n < FUZZ_MAX_LEN) {
                memmove(buf + at + n, buf + at, len - at + 1);
                memcpy(buf + at, w, n);
                len += n;
            }
            break;
        }
        case 3: /* duplicate the query (repeated parameters, long input) */
            if (2 * len + 1 < FUZZ_MAX_LEN) {
                buf[len] = '&';
                memcpy(buf + len + 1, buf, len);
                len = 2 * len + 1;
                buf[len] = '\0';
            }
            break;
        default: /* truncate */
            buf[at] = '\0';
            len = at;
            break;
        }
    }
    return len;
}

/* The invariants every successful parse must hold. */
static int query_sane(const struct query *q)
{
    return (int)q->action >= ROUTE_NONE && (int)q->action <= ROUTE_STATE &&
           (q->cam[0] == '\0' || ring_name_valid(q->cam)) && q->fps_milli <= 120000 &&
           q->frames <= MAX_FRAMES && q->seconds <= MAX_SECONDS && (int)q->parts >= PARTS_AUTO &&
           (int)q->parts <= PARTS_EARLY;
}

static void test_fuzz(void)
{
    static char input[FUZZ_MAX_LEN + 1];
    char err[ERRLEN + CANARY_LEN];
    unsigned bad = 0, accepted = 0;

    for (int i = 0; i < FUZZ_ITERATIONS; i++) {
        struct query q;
        enum query_route r;
        size_t len = i % 2 ? fuzz_random_bytes(input) : fuzz_mutation(input);
        size_t errlen = fuzz_rand() % 8 == 0 ? 1 + fuzz_rand() % 24 : ERRLEN;
        int rc;

        memset(err, CANARY, sizeof(err));
        rc = query_parse(input, &q, err, errlen);
        if ((rc != 0 && rc != -EINVAL) || !err_clean(err, errlen) ||
            !canary_intact(err + errlen, sizeof(err) - errlen) || (rc == 0 && !query_sane(&q)) ||
            (rc == 0 && err[0]) || (rc != 0 && errlen > 1 && !err[0])) {
            if (bad++ == 0)
                CHECKF(0, "iteration %d: rc %d for \"%s\" (len %zu), err \"%s\"", i, rc, esc(input),
                       len, esc_n(err, errlen));
        }
        accepted += rc == 0;

        /* The same bytes as SCRIPT_NAME and PATH_INFO. */
        memset(err, CANARY, sizeof(err));
        rc = query_route(i % 3 ? "/cgi-bin/capd.cgi" : input, i % 3 ? input : NULL,
                         (enum query_route)(fuzz_rand() % 4), &r, err, errlen);
        if ((rc != 0 && rc != -EINVAL && rc != -ENOENT) || !err_clean(err, errlen) ||
            !canary_intact(err + errlen, sizeof(err) - errlen) ||
            (rc == 0 && ((int)r < ROUTE_STREAM || (int)r > ROUTE_STATE))) {
            if (bad++ == 0)
                CHECKF(0, "iteration %d: route rc %d for \"%s\"", i, rc, esc(input));
        }

        /* And as an escape sequence into a small buffer. */
        {
            char dst[48 + CANARY_LEN];
            size_t dstlen = 1 + fuzz_rand() % 48;
            size_t srclen = len < 96 ? len : 96;
            memset(dst, CANARY, sizeof(dst));
            rc = query_unescape(input, srclen, dst, dstlen);
            if ((rc < 0 && rc != -EINVAL && rc != -ENAMETOOLONG) ||
                (rc >= 0 && ((size_t)rc >= dstlen || dst[rc] != '\0' || (size_t)rc > srclen)) ||
                !canary_intact(dst + dstlen, sizeof(dst) - dstlen)) {
                if (bad++ == 0)
                    CHECKF(0, "iteration %d: unescape rc %d for \"%s\"", i, rc, esc(input));
            }
        }
    }
    CHECKF(bad == 0, "%u of %d iterations broke an invariant", bad, FUZZ_ITERATIONS);
    /* The mutations must exercise the success path too, or the loop tests little. */
    CHECKF(accepted > FUZZ_ITERATIONS / 100, "only %u inputs accepted", accepted);
}

/* VAPIX names: aliases of capd's own, plus resolution; and the per-viewer flags. */
static void test_parse_vapix_and_flags(void)
{
    struct query q;
    expect_ok("camera=2&nbrofframes=10&duration=5&resolution=640x480&fps=0", &q);
    CHECK_STREQ(q.cam, "2");
    CHECK_EQ_INT(q.frames, 10);
    CHECK_EQ_INT(q.seconds, 5);
    CHECK_EQ_INT(q.res_width, 640);
    CHECK_EQ_INT(q.res_height, 480);
    CHECK_EQ_INT(q.fps_milli, 0);
    expect_ok("dual_final=1&headers=1&compression=30&clock=1", &q);
    CHECK_EQ_INT(q.dual_final, 1);
    CHECK_EQ_INT(q.headers, 1);
    expect_ok("dual_final=0&headers=0", &q);
    CHECK_EQ_INT(q.dual_final, 0);
    CHECK_EQ_INT(q.headers, 0);
    expect_invalid("cam=a&camera=b", "cam", NULL);
    expect_invalid("frames=1&nbrofframes=2", "nbrofframes", NULL);
    expect_invalid("duration=1&seconds=2", "seconds", NULL);
    expect_invalid("resolution=640", "resolution", NULL);
    expect_invalid("resolution=0x480", "resolution", NULL);
    expect_invalid("resolution=640x480x2", "resolution", NULL);
    expect_invalid("resolution=99999x1", "resolution", NULL);
    expect_invalid("dual_final=2", "dual_final", NULL);
    expect_invalid("headers=yes", "headers", NULL);
    expect_invalid("nbrofframes=0", "nbrofframes", NULL);
    expect_invalid("duration=-5", "duration", NULL);
}

static void test_route_vapix(void)
{
    enum query_route r = ROUTE_NONE;
    char err[ERRLEN];
    CHECK_EQ_INT(query_route("/axis-cgi/mjpg/video.cgi", "", ROUTE_NONE, &r, err, sizeof(err)), 0);
    CHECK_EQ_INT(r, ROUTE_STREAM);
    CHECK_EQ_INT(query_route("/axis-cgi/jpg/image.cgi", NULL, ROUTE_NONE, &r, err, sizeof(err)), 0);
    CHECK_EQ_INT(r, ROUTE_SNAPSHOT);
    CHECK_EQ_INT(query_route("/cgi-bin/capd.cgi", "/axis-cgi/mjpg/video.cgi", ROUTE_NONE, &r, err,
                             sizeof(err)),
                 0);
    CHECK_EQ_INT(r, ROUTE_STREAM);
    CHECK_EQ_INT(query_route("/axis-cgi/jpg/image.cgi", NULL, ROUTE_STREAM, &r, err, sizeof(err)),
                 -EINVAL);
}

int main(void)
{
    RUN_TEST(test_parse_empty_gives_defaults);
    RUN_TEST(test_parse_action);
    RUN_TEST(test_parse_cam);
    RUN_TEST(test_parse_cam_64_chars);
    RUN_TEST(test_parse_fps_valid);
    RUN_TEST(test_parse_frames_seconds_parts);
    RUN_TEST(test_parse_all_together);
    RUN_TEST(test_parse_unknown_ignored);
    RUN_TEST(test_parse_plus_decodes_to_space);
    RUN_TEST(test_parse_max_length_boundary);
    RUN_TEST(test_parse_very_long_query);
    RUN_TEST(test_parse_bad_escapes);
    RUN_TEST(test_parse_repeated);
    RUN_TEST(test_parse_empty_value);
    RUN_TEST(test_parse_fps_invalid);
    RUN_TEST(test_parse_vapix_and_flags);
    RUN_TEST(test_route_vapix);
    RUN_TEST(test_parse_frames_seconds_invalid);
    RUN_TEST(test_parse_cam_invalid);
    RUN_TEST(test_parse_raw_bytes_never_echoed);
    RUN_TEST(test_parse_action_parts_invalid);
    RUN_TEST(test_parse_long_name_and_value);
    RUN_TEST(test_parse_small_err_buffer);
    RUN_TEST(test_route_valid);
    RUN_TEST(test_route_unknown_endpoint);
    RUN_TEST(test_route_conflict);
    RUN_TEST(test_unescape_decoding);
    RUN_TEST(test_unescape_broken);
    RUN_TEST(test_unescape_respects_len);
    RUN_TEST(test_unescape_bounds);
    RUN_TEST(test_unescape_zero_dstlen);
    RUN_TEST(test_fuzz);
    return check_summary();
}
