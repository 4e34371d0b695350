/* util.h - allocation, logging, clocks and number parsing shared by capd and the responder. */
#ifndef CAPD_UTIL_H
#define CAPD_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define CAPD_VERSION "0.1.0"

/* ---- Allocation ------------------------------------------------------------
 * The one OOM policy of the project: these abort the process with a message
 * when the allocator fails, so callers never check for NULL. The caller owns
 * (and frees with free()) what they return. Thread-safe. */
void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);

/* ---- Logging ---------------------------------------------------------------
 * Lines go to stderr as "PROG: message" (lighttpd and Apache copy a backend's
 * stderr into their error log). log_init() is called once, before threads
 * start; the log_* calls are thread-safe (one write() per line). */
void log_init(const char *prog, int verbose);
int log_verbose(void);
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Printed only with -v. */
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Exit status for a bad command line, shared by capd and the responder. */
#define EXIT_USAGE 2
/* Reports a bad option as "PROG: FLAG 'VALUE': WHY" (value may be NULL) and a
 * pointer to --help on stderr, then exits with EXIT_USAGE. PROG comes from
 * log_init(), so call that first. */
__attribute__((noreturn)) void die_bad_option(const char *flag, const char *value, const char *why);

/* ---- Clocks ----------------------------------------------------------------
 * CLOCK_MONOTONIC is system-wide on Linux, so capd and responders can compare
 * monotonic stamps taken in different processes. CLOCK_REALTIME is only used
 * for timestamps shown to users (X-Timestamp). */
uint64_t time_mono_ns(void);
uint64_t time_real_us(void);
/* Sleeps until the absolute CLOCK_MONOTONIC time; returns 0, or -EINTR when a
 * signal arrived first. */
int time_sleep_until_ns(uint64_t mono_ns);

/* ---- Parsing ---------------------------------------------------------------
 * Strict decimal parsers: the whole string must be digits (no sign, no
 * spaces, no suffix), and the value must be in [min, max]. Return 0 and store
 * the value, -EINVAL for a malformed string, -ERANGE when out of range. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
/* "WxH" with both parts in [min, max]; same returns as parse_u64. */
int parse_size(const char *s, uint32_t min, uint32_t max, uint32_t *w, uint32_t *h);

/* -errno, or -EIO when errno was left at 0: a failed call never reads as success. */
static inline int neg_errno(void)
{
    return errno > 0 ? -errno : -EIO;
}

/* Rounds n up to a multiple of align (a power of two). */
static inline uint64_t round_up_pow2(uint64_t n, uint64_t align)
{
    return (n + align - 1) & ~(align - 1);
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
