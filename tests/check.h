/* check.h - a tiny unit-test harness: CHECK() assertions, one PASS/FAIL line per test case. */
#ifndef CAPD_TESTS_CHECK_H
#define CAPD_TESTS_CHECK_H

/*
 * Protocol shared with tests/run.sh: every test case prints exactly one line,
 * "PASS <name>" or "FAIL <name>", and failed CHECKs print "  <file>:<line>: ..."
 * lines before it. check_summary() prints "N passed, M failed" and returns the
 * process exit status. Not thread-safe: call CHECK from the test's main thread
 * (forked children report through their exit status).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_cases_passed;
static int check_cases_failed;
static int check_current_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                      \
            check_current_failed = 1;                                                              \
        }                                                                                          \
    } while (0)

/* Like CHECK, with a printf-style explanation. */
#define CHECKF(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                      \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            check_current_failed = 1;                                                              \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ != check_b_) {                                                                \
            printf("  %s:%d: check failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, #b, \
                   check_a_, check_b_);                                                            \
            check_current_failed = 1;                                                              \
        }                                                                                          \
    } while (0)

#define CHECK_STREQ(a, b)                                                                          \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                          \
            printf("  %s:%d: check failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__, __LINE__, #a, \
                   #b, check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");            \
            check_current_failed = 1;                                                              \
        }                                                                                          \
    } while (0)

#define RUN_TEST(fn)                                                                               \
    do {                                                                                           \
        check_current_failed = 0;                                                                  \
        fflush(stdout);                                                                            \
        fn();                                                                                      \
        if (check_current_failed) {                                                                \
            check_cases_failed++;                                                                  \
            printf("FAIL %s\n", #fn);                                                              \
        } else {                                                                                   \
            check_cases_passed++;                                                                  \
            printf("PASS %s\n", #fn);                                                              \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", check_cases_passed, check_cases_failed);
    return check_cases_failed ? 1 : 0;
}

#endif
