/* test_serve.c - the stream part header block, checked against snprintf of the same fields. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../fcgi/serve.h"
#include "check.h"

/* What the header block says, formatted the obvious way (as the responder did before). */
static size_t reference(char *buf, size_t len, const struct serve_part *p)
{
    int n = snprintf(buf, len,
                     "Content-Type: image/jpeg\r\nContent-Length: %zu\r\nX-Capd-Source: %s\r\n"
                     "X-Timestamp: %" PRIu64 ".%06" PRIu64 "\r\n\r\n",
                     p->len, p->source, p->capture_us / 1000000u, p->capture_us % 1000000u);
    return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

static void test_matches_snprintf(void)
{
    static const size_t lens[] = {0, 1, 9, 10, 99999, 1000000, 123456789, SIZE_MAX};
    static const uint64_t times[] = {
        0, 1, 999999, 1000000, 1000001, 1700000000123456u, 1796452776240000u, UINT64_MAX};
    static const char *sources[] = {"live", "no-signal", "offline"};
    char got[SERVE_PART_HEADER_MAX], want[SERVE_PART_HEADER_MAX];
    int checked = 0, differ = 0;

    for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
        for (size_t t = 0; t < sizeof(times) / sizeof(times[0]); t++)
            for (size_t s = 0; s < sizeof(sources) / sizeof(sources[0]); s++) {
                struct serve_part p = {
                    .len = lens[l], .capture_us = times[t], .source = sources[s]};
                size_t n = serve_part_header(got, &p), m = reference(want, sizeof(want), &p);
                checked++;
                if (n != m || memcmp(got, want, n) != 0) {
                    if (differ++ < 3)
                        fprintf(stderr, "    got  %.*s\n    want %.*s\n", (int)n, got, (int)m,
                                want);
                }
            }
    CHECKF(differ == 0, "%d of %d header blocks differ", differ, checked);
}

/* headers=1 adds the publish and send times, the frame number and the drops. */
static void test_timing_headers(void)
{
    char got[SERVE_PART_HEADER_MAX];
    struct serve_part p = {.len = 91234,
                           .capture_us = 1796452776000042u,
                           .source = "live",
                           .timing = 1,
                           .publish_us = 1796452776001000u,
                           .seq = UINT64_MAX,
                           .drops = 7};
    size_t n = serve_part_header(got, &p);
    unsigned long long sec = 0, usec = 0;
    const char *send;

    CHECK(n > 0 && n < sizeof(got));
    got[n < sizeof(got) ? n : sizeof(got) - 1] = '\0';
    CHECKF(strstr(got, "X-Timestamp: 1796452776.000042\r\n") != NULL, "%s", got);
    CHECKF(strstr(got, "X-Capd-Publish: 1796452776.001000\r\n") != NULL, "%s", got);
    CHECKF(strstr(got, "X-Capd-Frame: 18446744073709551615\r\nX-Capd-Drops: 7\r\n") != NULL, "%s",
           got);
    send = strstr(got, "X-Capd-Send: ");
    CHECKF(send && sscanf(send, "X-Capd-Send: %llu.%6llu\r\n", &sec, &usec) == 2 &&
               sec > 1700000000u && usec < 1000000u,
           "%s", got);
    /* The block ends with one blank line, and nothing else has one. */
    CHECK(n >= 4 && memcmp(got + n - 4, "\r\n\r\n", 4) == 0);
    CHECK(strstr(got, "\r\n\r\n") == got + n - 4);
}

/* A block that cannot fit gives 0, never a cut block. */
static void test_too_long(void)
{
    char source[SERVE_PART_HEADER_MAX];
    char got[SERVE_PART_HEADER_MAX];
    struct serve_part p = {.len = 1, .capture_us = 1, .source = source};

    memset(source, 'x', sizeof(source) - 1);
    source[sizeof(source) - 1] = '\0';
    CHECK_EQ_INT((int)serve_part_header(got, &p), 0);
    /* Up to the longest source that fits (a block of exactly SERVE_PART_HEADER_MAX bytes needs
     * no terminating NUL), and one byte more. */
    for (size_t len = 200; len < sizeof(source) - 1; len++) {
        char want[SERVE_PART_HEADER_MAX + 1];
        source[len] = '\0';
        size_t n = serve_part_header(got, &p), m = reference(want, sizeof(want), &p);
        source[len] = 'x';
        if (n == 0) {
            CHECKF(m == 0, "source of %zu bytes: 0, but a block of %zu bytes fits", len, m);
            CHECKF(len > 250, "gave up at a source of only %zu bytes", len);
            break;
        }
        CHECKF(n == m && memcmp(got, want, n) == 0, "source of %zu bytes", len);
    }
}

int main(void)
{
    RUN_TEST(test_matches_snprintf);
    RUN_TEST(test_timing_headers);
    RUN_TEST(test_too_long);
    return check_summary();
}
