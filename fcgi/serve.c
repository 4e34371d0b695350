/* serve.c - one HTTP request of the responder: stream, snapshot or state, from the ring. */
#include "serve.h"

#include <errno.h>
#include <fcgiapp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fanout.h"
#include "presence.h"
#include "query.h"
#include "util.h"

/* A snapshot waits this long for a frame newer than the request. */
#define SNAPSHOT_WAIT_MS 2000
#define MAX_CAMERAS      64

struct serve_counters serve_counters;

static const char *param(char **envp, const char *name)
{
    const char *v = FCGX_GetParam(name, envp);
    return v ? v : "";
}

/* ---- plain answers ---------------------------------------------------------- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

/* A short text/plain answer; msg is one line without a newline. */
static void respond_text(struct out *out, int head_only, int status, const char *extra_headers,
                         const char *msg)
{
    if (status >= 400 && status < 500)
        atomic_fetch_add_explicit(&serve_counters.client_errors, 1, memory_order_relaxed);
    out_printf(out,
               "Status: %d %s\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n"
               "Cache-Control: no-store\r\n"
               "%s"
               "\r\n",
               status, reason_phrase(status), extra_headers ? extra_headers : "");
    if (!head_only)
        out_printf(out, "%s\n", msg);
}

/* ---- cameras ------------------------------------------------------------------ */

/* Picks the camera for a request. 0 and the name in cam, or an HTTP status
 * with the reason in err. */
static int resolve_camera(const struct serve_config *cfg, const char *requested, char *cam,
                          char *err, size_t errlen)
{
    static _Thread_local char tnames[MAX_CAMERAS][RING_NAME_MAX + 1];
    int n = ring_list_cameras(cfg->prefix, tnames, MAX_CAMERAS);

    if (n < 0)
        n = 0;
    if (requested[0]) {
        for (int i = 0; i < n; i++) {
            if (strcmp(tnames[i], requested) == 0) {
                snprintf(cam, RING_NAME_MAX + 1, "%s", requested);
                return 0;
            }
        }
        /* VAPIX's camera=N: the N-th camera in name order, when no camera
         * has that name. */
        uint64_t index;
        if (parse_u64(requested, 1, (uint64_t)n, &index) == 0) {
            snprintf(cam, RING_NAME_MAX + 1, "%s", tnames[index - 1]);
            return 0;
        }
        snprintf(err, errlen, "unknown camera '%s'", requested);
        return 404;
    }
    for (int i = 0; i < n; i++) {
        if (strcmp(tnames[i], "default") == 0) {
            snprintf(cam, RING_NAME_MAX + 1, "default");
            return 0;
        }
    }
    if (n == 1) {
        snprintf(cam, RING_NAME_MAX + 1, "%s", tnames[0]);
        return 0;
    }
    if (n == 0) {
        /* Nothing runs yet: a stream waits (offline) for the default camera. */
        snprintf(cam, RING_NAME_MAX + 1, "default");
        return 0;
    }
    size_t used = (size_t)snprintf(err, errlen, "several cameras run; choose one with ?cam=NAME (");
    for (int i = 0; i < n && used < errlen; i++)
        used += (size_t)snprintf(err + used, errlen - used, "%s%s", i ? ", " : "", tnames[i]);
    if (used < errlen)
        snprintf(err + used, errlen - used, ")");
    return 400;
}

/* VAPIX resolution=WxH: served only when the camera has that size (capd does
 * not scale). 0, or 400 with the size that is available. */
static int check_resolution(const struct serve_config *cfg, const char *cam, const struct query *q,
                            char *err, size_t errlen)
{
    struct ring_reader *reader = ring_reader_create(cfg->prefix, cam);
    struct ring_info info;
    uint32_t w, h;
    int status = 0;

    ring_reader_info(reader, &info); /* zeroes info when there is no ring */
    w = info.frame_width ? info.frame_width : info.width;
    h = info.frame_height ? info.frame_height : info.height;
    if (w != q->res_width || h != q->res_height) {
        if (w && h)
            snprintf(err, errlen,
                     "resolution %ux%u is not available for camera '%s'; available: "
                     "%ux%u",
                     q->res_width, q->res_height, cam, w, h);
        else
            snprintf(err, errlen, "resolution %ux%u: camera '%s' is offline, its size unknown",
                     q->res_width, q->res_height, cam);
        status = 400;
    }
    ring_reader_destroy(reader);
    return status;
}

/* ---- stream --------------------------------------------------------------------- */

static const char EARLY_HEADERS[] = SERVE_EARLY_HEADERS;
static const char NEXT_BOUNDARY[] = SERVE_NEXT_BOUNDARY;
static const char CLOSE_BOUNDARY[] = SERVE_CLOSE_BOUNDARY;

/* A part's header block, built with plain appends: it is formatted once per viewer per
 * frame, and snprintf's format parsing was most of the responder's own instructions
 * (bench/profile.sh: 63%). Any append that does not fit marks the block as overflowed. */
struct header_buf {
    char *buf;
    size_t used;
    int overflow;
};

static void hdr_bytes(struct header_buf *h, const char *s, size_t n)
{
    /* Keeps room for the final blank line, which serve_part_header() adds unchecked. */
    if (h->overflow || n > SERVE_PART_HEADER_MAX - 2 - h->used) {
        h->overflow = 1;
        return;
    }
    memcpy(h->buf + h->used, s, n);
    h->used += n;
}

#define HDR_LITERAL(h, lit) hdr_bytes((h), (lit), sizeof(lit) - 1)

/* Decimal, at least min_digits wide with leading zeros. */
static void hdr_u64(struct header_buf *h, uint64_t v, int min_digits)
{
    char digits[20];
    int n = 0;
    do {
        digits[sizeof(digits) - 1 - n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v > 0 || n < min_digits);
    hdr_bytes(h, digits + sizeof(digits) - n, (size_t)n);
}

/* "Name: seconds.micros\r\n" from CLOCK_REALTIME microseconds. */
static void hdr_time(struct header_buf *h, const char *name_colon, size_t name_len, uint64_t us)
{
    hdr_bytes(h, name_colon, name_len);
    hdr_u64(h, us / 1000000u, 1);
    HDR_LITERAL(h, ".");
    hdr_u64(h, us % 1000000u, 6);
    HDR_LITERAL(h, "\r\n");
}

#define HDR_TIME(h, lit, us) hdr_time((h), (lit), sizeof(lit) - 1, (us))

size_t serve_part_header(char *buf, const struct serve_part *p)
{
    struct header_buf h = {buf, 0, 0};

    HDR_LITERAL(&h, "Content-Type: image/jpeg\r\nContent-Length: ");
    hdr_u64(&h, p->len, 1);
    HDR_LITERAL(&h, "\r\nX-Capd-Source: ");
    hdr_bytes(&h, p->source, strlen(p->source));
    HDR_LITERAL(&h, "\r\n");
    HDR_TIME(&h, "X-Timestamp: ", p->capture_us);
    if (p->timing) {
        HDR_TIME(&h, "X-Capd-Publish: ", p->publish_us);
        HDR_TIME(&h, "X-Capd-Send: ", time_real_us());
        HDR_LITERAL(&h, "X-Capd-Frame: ");
        hdr_u64(&h, p->seq, 1);
        HDR_LITERAL(&h, "\r\nX-Capd-Drops: ");
        hdr_u64(&h, p->drops, 1);
        HDR_LITERAL(&h, "\r\n");
    }
    if (h.overflow)
        return 0;
    buf[h.used++] = '\r';
    buf[h.used++] = '\n';
    return h.used;
}

uint64_t serve_mono_to_real_us(uint64_t mono_ns)
{
    uint64_t now_mono = time_mono_ns(), now_real = time_real_us();
    uint64_t age_us = now_mono > mono_ns ? (now_mono - mono_ns) / 1000u : 0;
    return now_real > age_us ? now_real - age_us : 0;
}

uint64_t serve_repeat_interval_ns(uint64_t min_interval_ns)
{
    if (min_interval_ns < SERVE_REPEAT_INTERVAL_NS)
        return SERVE_REPEAT_INTERVAL_NS;
    return min_interval_ns < SERVE_REPEAT_INTERVAL_MAX_NS ? min_interval_ns
                                                          : SERVE_REPEAT_INTERVAL_MAX_NS;
}

uint64_t serve_dual_final_delay_ns(uint64_t frame_interval_ns)
{
    /* A burst has ended when no frame came for twice the usual interval. */
    uint64_t delay = 2 * frame_interval_ns;
    return delay < SERVE_DUAL_FINAL_MIN_NS ? SERVE_DUAL_FINAL_MIN_NS : delay;
}

/* Writes one part. In the early layout the next part's headers follow the
 * frame at once: Chromium shows a part only when the next part's header block
 * has arrived. The full layout carries Content-Length and the capture time,
 * which tools such as ffmpeg use. */
static int send_part(struct out *out, int early, const uint8_t *jpeg, const struct serve_part *p,
                     int last)
{
    char headers[SERVE_PART_HEADER_MAX];
    struct iovec iov[4];
    int n = 0;

    if (!early)
        iov[n++] = (struct iovec){headers, serve_part_header(headers, p)};
    iov[n++] = (struct iovec){(void *)jpeg, p->len};
    if (last) {
        iov[n++] = (struct iovec){(void *)CLOSE_BOUNDARY, sizeof(CLOSE_BOUNDARY) - 1};
    } else {
        iov[n++] = (struct iovec){(void *)NEXT_BOUNDARY, sizeof(NEXT_BOUNDARY) - 1};
        if (early)
            iov[n++] = (struct iovec){(void *)EARLY_HEADERS, sizeof(EARLY_HEADERS) - 1};
    }
    /* One writev per frame: headers, frame and the next boundary together. */
    return out_writev(out, iov, n);
}

/* Keeps this viewer's presence claim on the ring generation being watched, so
 * capd counts it (and, with on-demand capture, wakes the camera for it). */
static void presence_follow(struct presence **p, const struct serve_config *cfg, const char *cam,
                            uint64_t generation)
{
    if (*p && presence_generation(*p) != generation) {
        presence_destroy(*p, 0);
        *p = NULL;
    }
    if (!*p) {
        if (presence_open(cfg->prefix, cam, p) < 0)
            return; /* not counted; streaming works regardless */
        if (presence_generation(*p) != generation || presence_join(*p) < 0) {
            presence_destroy(*p, 0);
            *p = NULL;
            return;
        }
    }
    presence_beat(*p);
}

static int wants_early_parts(const struct query *q, char **envp)
{
    if (q->parts == PARTS_FULL || q->headers)
        return 0; /* timing headers need the full layout */
    if (q->parts == PARTS_EARLY)
        return 1;
    /* Every browser's User-Agent starts with "Mozilla/"; tools (ffmpeg, VLC,
     * curl, NVRs) do not, and they want Content-Length. */
    return strncmp(param(envp, "HTTP_USER_AGENT"), "Mozilla/", 8) == 0;
}

static void serve_stream(struct serve_worker *w, const struct serve_config *cfg, struct out *out,
                         const struct query *q, const char *cam, int head_only, int early)
{
    struct ring_reader *reader = NULL;
    struct presence *presence = NULL;
    struct ring_info info;
    struct serve_part part = {.timing = q->headers};
    uint64_t start = time_mono_ns(), last_send = 0, sent = 0, last_seq = 0, last_gen = 0;
    uint64_t min_interval = q->fps_milli ? 1000000000000ull / q->fps_milli : 0;
    uint64_t deadline = q->seconds ? start + q->seconds * 1000000000ull : 0;
    uint64_t interval_ns = 0, prev_capture_us = 0;
    uint64_t repeat_ns = serve_repeat_interval_ns(min_interval);
    uint32_t active, card_w = 0, card_h = 0;
    int offline = 0, dual_pending = 0;

    /* Relaxed: a gauge; the cap may be exceeded by a racing request for an instant. */
    active = atomic_fetch_add_explicit(&serve_counters.streams_active, 1, memory_order_relaxed) + 1;
    if (active > cfg->max_viewers) {
        char msg[96];
        atomic_fetch_sub_explicit(&serve_counters.streams_active, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&serve_counters.rejected_busy, 1, memory_order_relaxed);
        snprintf(msg, sizeof(msg), "too many viewers (the limit is %u); retry later",
                 cfg->max_viewers);
        respond_text(out, head_only, 503, "Retry-After: 5\r\n", msg);
        return;
    }
    atomic_fetch_add_explicit(&serve_counters.streams_total, 1, memory_order_relaxed);
    out_printf(out, "Status: 200 OK\r\n"
                    "Content-Type: multipart/x-mixed-replace;boundary=" SERVE_BOUNDARY "\r\n"
                    "Cache-Control: no-store, no-cache, must-revalidate, max-age=0\r\n"
                    "Pragma: no-cache\r\n"
                    "X-Accel-Buffering: no\r\n"
                    "\r\n");
    if (head_only)
        goto out;
    /* A boundary line before the first part: ffmpeg and GStreamer need it. */
    if (out_printf(out, "--" SERVE_BOUNDARY "\r\n%s", early ? EARLY_HEADERS : "") < 0)
        goto out;
    if (cfg->fanout && out->request_id) {
        struct fanout_stream fs = {
            .fd = out->fd,
            .request_id = out->request_id,
            .early = early,
            .timing = q->headers,
            .dual_final = q->dual_final,
            .min_interval_ns = min_interval,
            .frames = q->frames,
            .deadline_ns = deadline,
        };
        fanout_run(cfg, cam, &fs);
        goto out;
    }

    reader = ring_reader_create(cfg->prefix, cam);
    w->frame.size = 0;
    while (!*cfg->stop) {
        uint64_t now = time_mono_ns(), due, wait_ns;
        const uint8_t *jpeg = NULL;
        int rc, due_repeat, due_dual, last;

        if (deadline && now >= deadline)
            break;
        /* Sleep until a frame comes, or the repeat, the dual-final copy or the
         * time limit is due. */
        due = last_send + repeat_ns;
        if (dual_pending && last_send + serve_dual_final_delay_ns(interval_ns) < due)
            due = last_send + serve_dual_final_delay_ns(interval_ns);
        if (deadline && deadline < due)
            due = deadline;
        wait_ns = due > now ? due - now : 0;
        rc = ring_reader_next(reader, &w->frame, (int)(wait_ns / 1000000u) + 1, cfg->stop);
        if (rc == -EINTR)
            break;
        now = time_mono_ns();
        due_repeat = now - last_send >= repeat_ns;
        due_dual = dual_pending && now - last_send >= serve_dual_final_delay_ns(interval_ns);
        if (rc == 0 || rc == -EAGAIN) /* attached, capd alive */
            presence_follow(&presence, cfg, cam, ring_reader_generation(reader));
        if (rc == 0) {
            offline = 0;
            card_w = w->frame.width;
            card_h = w->frame.height;
            if (prev_capture_us && w->frame.capture_us > prev_capture_us)
                interval_ns = (w->frame.capture_us - prev_capture_us) * 1000u;
            prev_capture_us = w->frame.capture_us;
            /* Per-viewer fps cap: newer frames replace this one meanwhile. */
            if (min_interval && last_send && now - last_send < min_interval)
                continue;
            /* Frames of this generation the viewer never got. */
            if (w->frame.generation == last_gen && w->frame.seq > last_seq + 1)
                part.drops += w->frame.seq - last_seq - 1;
            last_seq = w->frame.seq;
            last_gen = w->frame.generation;
            dual_pending = q->dual_final;
        } else if (rc == -EAGAIN) {
            if (!due_repeat && !due_dual)
                continue;
            if (w->frame.size == 0 && ring_reader_latest(reader, &w->frame) < 0)
                continue;     /* nothing sendable yet */
            dual_pending = 0; /* sent twice now (or a keep-alive repeat) */
        } else {
            /* capd is gone: say so at once, then repeat the card. */
            if (offline && !due_repeat)
                continue;
            if (!offline) {
                offline = 1;
                presence_destroy(presence, 0);
                presence = NULL;
                if (!card_w && ring_reader_info(reader, &info) != -ENOENT) {
                    card_w = info.frame_width ? info.frame_width : info.width;
                    card_h = info.frame_height ? info.frame_height : info.height;
                }
            }
            w->frame.size = 0; /* never repeat a live frame after an offline card */
            dual_pending = 0;
            jpeg = cards_offline(&w->cards, card_w, card_h, cam, &part.len);
            if (!jpeg)
                break;
            part.capture_us = part.publish_us = time_real_us();
            part.seq = 0;
            part.source = "offline";
        }
        if (!jpeg) {
            jpeg = w->frame.data;
            part.len = w->frame.size;
            part.capture_us = w->frame.capture_us;
            part.publish_us = serve_mono_to_real_us(w->frame.publish_ns);
            part.seq = w->frame.seq;
            part.source = w->frame.flags & RING_FRAME_CARD ? "no-signal" : "live";
        }
        last = q->frames && sent + 1 >= q->frames;
        if (send_part(out, early, jpeg, &part, last) < 0) {
            atomic_fetch_add_explicit(&serve_counters.viewers_left, 1, memory_order_relaxed);
            break;
        }
        atomic_fetch_add_explicit(&serve_counters.frames_sent, 1, memory_order_relaxed);
        last_send = now;
        if (last)
            break;
        sent++;
    }
out:
    presence_destroy(presence, 0);
    ring_reader_destroy(reader);
    atomic_fetch_sub_explicit(&serve_counters.streams_active, 1, memory_order_relaxed);
}

/* ---- snapshot -------------------------------------------------------------------- */

static void serve_snapshot(struct serve_worker *w, const struct serve_config *cfg, struct out *out,
                           const char *cam, int head_only)
{
    struct ring_reader *reader = ring_reader_create(cfg->prefix, cam);
    struct presence *presence = NULL;
    struct ring_info info;
    char msg[128], stamp[32];
    struct tm tm;
    time_t secs;
    int rc;

    /* Mark the newest frame as seen, then wait for one newer than the request. */
    rc = ring_reader_latest(reader, &w->frame);
    if (rc < 0 && rc != -EAGAIN) {
        snprintf(msg, sizeof(msg), "camera '%s' is offline", cam);
        respond_text(out, head_only, 503, "Retry-After: 2\r\n", msg);
        goto out;
    }
    if (ring_reader_info(reader, &info) == 0)
        presence_follow(&presence, cfg, cam, info.generation);
    rc = ring_reader_next(reader, &w->frame, SNAPSHOT_WAIT_MS, cfg->stop);
    if (rc < 0 && rc != -EINTR)
        rc = ring_reader_latest(reader, &w->frame); /* a still source: the newest will do */
    if (rc < 0 || w->frame.size == 0) {
        snprintf(msg, sizeof(msg), "camera '%s' has no frame yet", cam);
        respond_text(out, head_only, 503, "Retry-After: 2\r\n", msg);
        goto out;
    }
    secs = (time_t)(w->frame.capture_us / 1000000u);
    gmtime_r(&secs, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
    out_printf(out,
               "Status: 200 OK\r\n"
               "Content-Type: image/jpeg\r\n"
               "Content-Length: %zu\r\n"
               "X-Timestamp: %llu.%06llu\r\n"
               "Cache-Control: no-store, no-cache, must-revalidate, max-age=0\r\n"
               "Content-Disposition: inline; filename=\"%s-%s.jpg\"\r\n"
               "\r\n",
               w->frame.size, (unsigned long long)(w->frame.capture_us / 1000000u),
               (unsigned long long)(w->frame.capture_us % 1000000u), cam, stamp);
    if (!head_only)
        out_write(out, w->frame.data, w->frame.size);
out:
    presence_destroy(presence, 0);
    ring_reader_destroy(reader);
}

/* ---- state ------------------------------------------------------------------------- */

static void json_reserve(struct serve_worker *w, size_t used, size_t more)
{
    if (used + more <= w->json_capacity)
        return;
    w->json_capacity = (used + more) * 2;
    w->json = xrealloc(w->json, w->json_capacity);
}

static size_t json_add(struct serve_worker *w, size_t used, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static size_t json_add(struct serve_worker *w, size_t used, const char *fmt, ...)
{
    va_list ap;
    int n;

    json_reserve(w, used, 512);
    va_start(ap, fmt);
    n = vsnprintf(w->json + used, w->json_capacity - used, fmt, ap);
    va_end(ap);
    if (n < 0)
        return used;
    if ((size_t)n >= w->json_capacity - used) {
        json_reserve(w, used, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(w->json + used, w->json_capacity - used, fmt, ap);
        va_end(ap);
    }
    return used + (size_t)n;
}

/* What the state report says about one camera. */
struct camera_state {
    const char *name;
    int online;
    const char *state;
    struct ring_info info;
    uint32_t width, height;
};

static void camera_state(const struct serve_config *cfg, const char *name, struct camera_state *c)
{
    struct ring_reader *reader = ring_reader_create(cfg->prefix, name);
    int rc = ring_reader_info(reader, &c->info);

    c->name = name;
    c->online = rc == 0;
    c->state = c->online ? ring_state_name(c->info.state) : rc == -EPROTO ? "invalid" : "offline";
    c->width = c->info.frame_width ? c->info.frame_width : c->info.width;
    c->height = c->info.frame_height ? c->info.frame_height : c->info.height;
    if (!c->online) { /* a dead capd's last counters are not news */
        c->info.fps_measured_milli = 0;
        c->info.viewers = 0;
        c->info.pid = 0;
    }
    ring_reader_destroy(reader);
}

static size_t json_camera(struct serve_worker *w, size_t used, const struct camera_state *c)
{
    return json_add(w, used,
                    "{\"name\":\"%s\",\"online\":%s,\"state\":\"%s\",\"source\":\"%s\","
                    "\"width\":%u,\"height\":%u,\"fps\":%.2f,\"nominal_fps\":%.2f,"
                    "\"viewers\":%u,\"frames\":%llu,\"drops\":%llu,\"pid\":%d,"
                    "\"generation\":\"%016llx\",\"heartbeat_age_ms\":%llu}",
                    c->name, c->online ? "true" : "false", c->state, c->info.source, c->width,
                    c->height, c->info.fps_measured_milli / 1000.0, c->info.fps_milli / 1000.0,
                    c->info.viewers, (unsigned long long)c->info.frames_published,
                    (unsigned long long)c->info.frames_dropped, (int)c->info.pid,
                    (unsigned long long)c->info.generation,
                    (unsigned long long)c->info.heartbeat_age_ms);
}

/* µStreamer's /state shape for one camera, so dashboards written for it keep
 * working: {"ok": true, "result": {"source": {...}, "stream": {...}}}. */
static size_t json_ustreamer(struct serve_worker *w, size_t used, const struct camera_state *c)
{
    double fps = c ? c->info.fps_measured_milli / 1000.0 : 0.0;
    return json_add(w, used,
                    "\"ok\":true,\"result\":{\"instance_id\":\"%s\","
                    "\"encoder\":{\"type\":\"CPU\",\"quality\":0},"
                    "\"source\":{\"resolution\":{\"width\":%u,\"height\":%u},\"online\":%s,"
                    "\"desired_fps\":%.0f,\"captured_fps\":%.0f},"
                    "\"stream\":{\"queued_fps\":%.0f,\"clients\":%u,\"clients_stat\":{}}},",
                    c ? c->name : "", c ? c->width : 0, c ? c->height : 0,
                    c && c->online ? "true" : "false", c ? c->info.fps_milli / 1000.0 : 0.0, fps,
                    fps, c ? c->info.viewers : 0);
}

static void serve_state(struct serve_worker *w, const struct serve_config *cfg, struct out *out,
                        const struct query *q, int head_only)
{
    static _Thread_local char names[MAX_CAMERAS][RING_NAME_MAX + 1];
    static _Thread_local struct camera_state cams[MAX_CAMERAS];
    int n = ring_list_cameras(cfg->prefix, names, MAX_CAMERAS), count = 0, main_cam = -1;
    size_t used = 0;

    if (n < 0)
        n = 0;
    for (int i = 0; i < n; i++) {
        if (q->cam[0] && strcmp(names[i], q->cam) != 0)
            continue;
        camera_state(cfg, names[i], &cams[count]);
        /* The camera a plain /stream shows: "default", else the first. */
        if (main_cam < 0 || strcmp(names[i], "default") == 0)
            main_cam = count;
        count++;
    }
    if (q->cam[0] && count == 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "unknown camera '%s'", q->cam);
        respond_text(out, head_only, 404, NULL, msg);
        return;
    }
    used = json_add(w, used, "{");
    used = json_ustreamer(w, used, main_cam >= 0 ? &cams[main_cam] : NULL);
    used = json_add(w, used, "\"cameras\":[");
    for (int i = 0; i < count; i++) {
        if (i)
            used = json_add(w, used, ",");
        used = json_camera(w, used, &cams[i]);
    }
    used = json_add(
        w, used,
        "],\"responder\":{\"version\":\"%s\",\"mode\":\"%s\",\"pid\":%d,\"streams\":%u,"
        "\"max_viewers\":%u,\"requests\":%llu,\"streams_total\":%llu,\"frames_sent\":%llu,"
        "\"client_errors\":%llu,\"rejected_busy\":%llu,\"viewers_left\":%llu}}\n",
        CAPD_VERSION, cfg->mode, (int)getpid(),
        atomic_load_explicit(&serve_counters.streams_active, memory_order_relaxed),
        cfg->max_viewers,
        (unsigned long long)atomic_load_explicit(&serve_counters.requests, memory_order_relaxed),
        (unsigned long long)atomic_load_explicit(&serve_counters.streams_total,
                                                 memory_order_relaxed),
        (unsigned long long)atomic_load_explicit(&serve_counters.frames_sent, memory_order_relaxed),
        (unsigned long long)atomic_load_explicit(&serve_counters.client_errors,
                                                 memory_order_relaxed),
        (unsigned long long)atomic_load_explicit(&serve_counters.rejected_busy,
                                                 memory_order_relaxed),
        (unsigned long long)atomic_load_explicit(&serve_counters.viewers_left,
                                                 memory_order_relaxed));
    out_printf(out,
               "Status: 200 OK\r\n"
               "Content-Type: application/json\r\n"
               "Content-Length: %zu\r\n"
               "Cache-Control: no-store\r\n"
               "\r\n",
               used);
    if (!head_only)
        out_write(out, w->json, used);
}

/* ---- dispatch ---------------------------------------------------------------------- */

void serve_request(struct serve_worker *w, const struct serve_config *cfg, char **envp,
                   struct out *out)
{
    const char *method = param(envp, "REQUEST_METHOD");
    struct query q;
    enum query_route route;
    char err[256], cam[RING_NAME_MAX + 1];
    int head_only = strcmp(method, "HEAD") == 0;
    int status;

    atomic_fetch_add_explicit(&serve_counters.requests, 1, memory_order_relaxed);
    if (strcmp(method, "OPTIONS") == 0) {
        out_printf(out, "Status: 204 No Content\r\nAllow: GET, HEAD, OPTIONS\r\n\r\n");
        return;
    }
    if (!head_only && strcmp(method, "GET") != 0) {
        respond_text(out, 0, 405, "Allow: GET, HEAD, OPTIONS\r\n",
                     "method not allowed; use GET or HEAD");
        return;
    }
    if (query_parse(param(envp, "QUERY_STRING"), &q, err, sizeof(err)) < 0) {
        respond_text(out, head_only, 400, NULL, err);
        return;
    }
    status = query_route(param(envp, "SCRIPT_NAME"), param(envp, "PATH_INFO"), q.action, &route,
                         err, sizeof(err));
    if (status < 0) {
        respond_text(out, head_only, status == -ENOENT ? 404 : 400, NULL, err);
        return;
    }
    if (route == ROUTE_STATE) {
        serve_state(w, cfg, out, &q, head_only);
        return;
    }
    if (q.headers && q.parts == PARTS_EARLY) {
        respond_text(out, head_only, 400, NULL,
                     "headers=1 needs the full part layout; drop parts=early");
        return;
    }
    status = resolve_camera(cfg, q.cam, cam, err, sizeof(err));
    if (status == 0 && q.res_width)
        status = check_resolution(cfg, cam, &q, err, sizeof(err));
    if (status != 0) {
        respond_text(out, head_only, status, NULL, err);
        return;
    }
    if (route == ROUTE_SNAPSHOT)
        serve_snapshot(w, cfg, out, cam, head_only);
    else
        serve_stream(w, cfg, out, &q, cam, head_only, wants_early_parts(&q, envp));
}

void serve_worker_free(struct serve_worker *w)
{
    ring_frame_free(&w->frame);
    cards_free(&w->cards);
    free(w->json);
    memset(w, 0, sizeof(*w));
}
