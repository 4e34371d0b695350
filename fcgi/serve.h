/* serve.h - one HTTP request of the responder: stream, snapshot or state, from the ring. */
#ifndef CAPD_SERVE_H
#define CAPD_SERVE_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cards.h"
#include "out.h"
#include "ring.h"

/* The multipart framing shared by every stream writer. */
#define SERVE_BOUNDARY       "capdframe"
#define SERVE_EARLY_HEADERS  "Content-Type: image/jpeg\r\n\r\n"
#define SERVE_NEXT_BOUNDARY  "\r\n--" SERVE_BOUNDARY "\r\n"
#define SERVE_CLOSE_BOUNDARY "\r\n--" SERVE_BOUNDARY "--\r\n"
/* The last frame is sent again after this long without a new one, so that
 * proxies and browsers never see an idle connection; a viewer with an fps cap
 * slower than that gets its repeats at the cap's pace, up to the maximum. */
#define SERVE_REPEAT_INTERVAL_NS     (3000ull * 1000000u)
#define SERVE_REPEAT_INTERVAL_MAX_NS (5000ull * 1000000u)
/* Longest part header serve_part_header() writes. */
#define SERVE_PART_HEADER_MAX 384
/* dual_final=1: the last frame of a burst is sent again after at least this long. */
#define SERVE_DUAL_FINAL_MIN_NS (150ull * 1000000u)

/* Process-wide settings, fixed before the first request. */
struct serve_config {
    const char *prefix;   /* shm name prefix */
    uint32_t max_viewers; /* concurrent streams allowed in this process */
    const char *mode;     /* "fastcgi" or "cgi", for the state report */
    int fanout;           /* stream through fanout.h (FastCGI) rather than per-thread */
    const volatile sig_atomic_t *stop; /* set when the process is shutting down */
};

/* Process-wide counters, updated with relaxed atomics (statistics only). */
struct serve_counters {
    _Atomic uint32_t streams_active;
    _Atomic uint64_t requests;
    _Atomic uint64_t streams_total;
    _Atomic uint64_t frames_sent;
    _Atomic uint64_t client_errors;  /* 4xx answers */
    _Atomic uint64_t rejected_busy;  /* 503 at the viewer cap */
    _Atomic uint64_t viewers_left;   /* streams ended by a write error */
};
extern struct serve_counters serve_counters;

/* Per-thread reusable state: buffers survive across requests so that a
 * steady stream allocates nothing per frame. Zero-initialise, then call
 * serve_worker_free() when the thread ends. */
struct serve_worker {
    struct ring_frame frame;
    struct cards cards;
    char *json;
    size_t json_capacity;
};

void serve_worker_free(struct serve_worker *w);

/* What a part's header block says about its frame. */
struct serve_part {
    size_t len;          /* JPEG bytes */
    uint64_t capture_us; /* CLOCK_REALTIME: X-Timestamp */
    const char *source;  /* "live", "no-signal" (capd's card) or "offline" (ours) */
    int timing;          /* headers=1: add X-Capd-Publish, -Send, -Frame and -Drops */
    uint64_t publish_us; /* CLOCK_REALTIME when capd published the frame */
    uint64_t seq;        /* the ring's frame number; 0 for the offline card */
    uint64_t drops;      /* frames this viewer skipped so far */
};

/* Formats the full-layout header block of a part into buf
 * (SERVE_PART_HEADER_MAX bytes). Returns its length, or 0 when it would not fit
 * (only a source name of some 200 bytes could do that). Allocates nothing. */
size_t serve_part_header(char *buf, const struct serve_part *p);
/* Converts a CLOCK_MONOTONIC time (the ring's publish_ns) to CLOCK_REALTIME us. */
uint64_t serve_mono_to_real_us(uint64_t mono_ns);
/* The keep-alive repeat interval for a viewer whose fps cap spaces new frames
 * min_interval_ns apart (0: no cap). */
uint64_t serve_repeat_interval_ns(uint64_t min_interval_ns);
/* How long dual_final=1 waits before repeating a frame, given the usual
 * interval between frames (0 when unknown). */
uint64_t serve_dual_final_delay_ns(uint64_t frame_interval_ns);

/* Serves one request. envp holds the CGI/FastCGI parameters (REQUEST_METHOD,
 * QUERY_STRING, SCRIPT_NAME, PATH_INFO, HTTP_USER_AGENT, ...). Writes the
 * whole response, including a "Status:" header, to out and returns when it is
 * done, when the viewer left, or when cfg->stop is set. Thread-safe across
 * workers. */
void serve_request(struct serve_worker *w, const struct serve_config *cfg, char **envp,
                   struct out *out);

#endif
