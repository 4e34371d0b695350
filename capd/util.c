/* util.c - allocation, logging, clocks and number parsing shared by capd and the responder. */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "capd";
static int log_verbosity;

static void oom(size_t size)
{
    /* No allocation here: we are out of memory. */
    char msg[96];
    int n = snprintf(msg, sizeof(msg), "%s: out of memory allocating %zu bytes\n", log_prog, size);
    if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0) {
        /* Nothing more we can do. */
    }
    abort();
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        oom(size);
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(count * size);
    return p;
}

void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        oom(size);
    return p;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

void log_init(const char *prog, int verbose)
{
    log_prog = prog;
    log_verbosity = verbose;
}

int log_verbose(void)
{
    return log_verbosity;
}

static void log_line(const char *level, const char *fmt, va_list ap)
{
    /* One write() per line so that lines from threads never interleave. */
    char line[1024];
    int n = snprintf(line, sizeof(line), "%s: %s", log_prog, level);
    if (n < 0)
        return;
    size_t used = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    int m = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
    if (m < 0)
        return;
    used += (size_t)m;
    if (used > sizeof(line) - 2)
        used = sizeof(line) - 2;
    line[used++] = '\n';
    if (write(STDERR_FILENO, line, used) < 0) {
        /* stderr is gone; there is nowhere else to report it. */
    }
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line("error: ", fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line("warning: ", fmt, ap);
    va_end(ap);
}

void log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line("", fmt, ap);
    va_end(ap);
}

void log_debug(const char *fmt, ...)
{
    if (!log_verbosity)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_line("debug: ", fmt, ap);
    va_end(ap);
}

void die_bad_option(const char *flag, const char *value, const char *why)
{
    if (value)
        fprintf(stderr, "%s: %s '%s': %s\n", log_prog, flag, value, why);
    else
        fprintf(stderr, "%s: %s: %s\n", log_prog, flag, why);
    fprintf(stderr, "Try '%s --help' for more information.\n", log_prog);
    exit(EXIT_USAGE);
}

uint64_t time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t time_real_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int time_sleep_until_ns(uint64_t mono_ns)
{
    struct timespec ts = {
        .tv_sec = (time_t)(mono_ns / 1000000000u),
        .tv_nsec = (long)(mono_ns % 1000000000u),
    };
    int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    return rc == 0 ? 0 : -rc;
}

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    int overflow = 0;

    if (!s || !*s)
        return -EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        unsigned digit = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - digit) / 10)
            overflow = 1; /* keep scanning: a later non-digit is still -EINVAL */
        else
            v = v * 10 + digit;
    }
    if (overflow || v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v;
    int rc = parse_u64(s, min, max, &v);
    if (rc == 0)
        *out = (uint32_t)v;
    return rc;
}

int parse_size(const char *s, uint32_t min, uint32_t max, uint32_t *w, uint32_t *h)
{
    char buf[32];
    const char *x;
    uint32_t tw, th;
    int rc;

    if (!s || strlen(s) >= sizeof(buf))
        return -EINVAL;
    x = strchr(s, 'x');
    if (!x)
        return -EINVAL;
    memcpy(buf, s, (size_t)(x - s));
    buf[x - s] = '\0';
    rc = parse_u32(buf, min, max, &tw);
    if (rc == 0)
        rc = parse_u32(x + 1, min, max, &th);
    if (rc == 0) {
        *w = tw;
        *h = th;
    }
    return rc;
}
