/* query.c - request routing and strict query-string parsing for the responder. */
#include "query.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

#define VALUE_MAX   256
#define MAX_FRAMES  UINT64_C(1000000000)
#define MAX_SECONDS UINT64_C(31536000) /* a year */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int query_unescape(const char *src, size_t len, char *dst, size_t dstlen)
{
    size_t out = 0;

    if (dstlen == 0)
        return -ENAMETOOLONG;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)src[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len) /* needs two hex digits inside the input */
                return -EINVAL;
            hi = hexval(src[i + 1]);
            lo = hexval(src[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            c = hi * 16 + lo;
            if (c == 0)
                return -EINVAL;
            i += 2;
        } else if (c == '+') {
            c = ' ';
        } else if (c == 0) {
            return -EINVAL;
        }
        if (out + 1 >= dstlen)
            return -ENAMETOOLONG;
        dst[out++] = (char)c;
    }
    dst[out] = '\0';
    return (int)out;
}

/* fps as a decimal with up to three fraction digits, 0.001..120 -> milli. */
static int parse_fps_milli(const char *s, uint32_t *out)
{
    const char *dot = strchr(s, '.');
    char whole[16];
    uint32_t w, frac = 0;
    size_t wlen = dot ? (size_t)(dot - s) : strlen(s);

    if (wlen == 0 || wlen >= sizeof(whole))
        return -EINVAL;
    memcpy(whole, s, wlen);
    whole[wlen] = '\0';
    int rc = parse_u32(whole, 0, 1000, &w);
    if (rc < 0)
        return rc;
    if (dot) {
        size_t flen = strlen(dot + 1);
        uint32_t scale = 100;
        if (flen == 0 || flen > 3)
            return -EINVAL;
        for (const char *p = dot + 1; *p; p++) {
            if (*p < '0' || *p > '9')
                return -EINVAL;
            frac += (uint32_t)(*p - '0') * scale;
            scale /= 10;
        }
    }
    if (w > 120 || (w == 120 && frac > 0) || (w == 0 && frac == 0))
        return -ERANGE;
    *out = w * 1000 + frac;
    return 0;
}

static int route_from_word(const char *w, size_t len, enum query_route *route)
{
    if (len == 6 && memcmp(w, "stream", 6) == 0)
        *route = ROUTE_STREAM;
    else if (len == 8 && memcmp(w, "snapshot", 8) == 0)
        *route = ROUTE_SNAPSHOT;
    else if (len == 5 && memcmp(w, "state", 5) == 0)
        *route = ROUTE_STATE;
    else if (len == 9 && memcmp(w, "video.cgi", 9) == 0) /* VAPIX /axis-cgi/mjpg/video.cgi */
        *route = ROUTE_STREAM;
    else if (len == 9 && memcmp(w, "image.cgi", 9) == 0) /* VAPIX /axis-cgi/jpg/image.cgi */
        *route = ROUTE_SNAPSHOT;
    else
        return -ENOENT;
    return 0;
}

/* Known parameters. Aliases share a slot: giving both is as wrong as giving
 * one twice. VAPIX names (camera, nbrofframes, duration, resolution) alias or
 * extend capd's own. */
enum param_slot { SLOT_ACTION, SLOT_CAM, SLOT_FPS, SLOT_FRAMES, SLOT_SECONDS, SLOT_PARTS,
                  SLOT_RESOLUTION, SLOT_DUAL_FINAL, SLOT_HEADERS };
static const struct {
    const char *name;
    enum param_slot slot;
} known_params[] = {
    {"action", SLOT_ACTION},         {"cam", SLOT_CAM},         {"camera", SLOT_CAM},
    {"fps", SLOT_FPS},               {"frames", SLOT_FRAMES},   {"nbrofframes", SLOT_FRAMES},
    {"seconds", SLOT_SECONDS},       {"duration", SLOT_SECONDS}, {"parts", SLOT_PARTS},
    {"resolution", SLOT_RESOLUTION}, {"dual_final", SLOT_DUAL_FINAL},
    {"headers", SLOT_HEADERS},
};

/* "0" or "1". */
static int parse_flag(const char *v, int *out)
{
    if ((v[0] != '0' && v[0] != '1') || v[1])
        return -EINVAL;
    *out = v[0] == '1';
    return 0;
}

/* Applies one known parameter. 0, or -EINVAL with the reason in err. */
static int apply_param(struct query *q, enum param_slot slot, const char *name, const char *value,
                       char *err, size_t errlen)
{
    switch (slot) {
    case SLOT_ACTION:
        if (route_from_word(value, strlen(value), &q->action) < 0)
            goto bad;
        return 0;
    case SLOT_CAM:
        /* A name, or (VAPIX) a 1-based index: digits are valid names too. */
        if (!ring_name_valid(value))
            goto bad;
        memcpy(q->cam, value, strlen(value) + 1);
        return 0;
    case SLOT_FPS:
        /* 0 means no cap, as in VAPIX. */
        if (strcmp(value, "0") == 0) {
            q->fps_milli = 0;
            return 0;
        }
        if (parse_fps_milli(value, &q->fps_milli) < 0)
            goto bad;
        return 0;
    case SLOT_FRAMES:
        if (parse_u64(value, 1, MAX_FRAMES, &q->frames) < 0)
            goto bad;
        return 0;
    case SLOT_SECONDS:
        if (parse_u64(value, 1, MAX_SECONDS, &q->seconds) < 0)
            goto bad;
        return 0;
    case SLOT_PARTS:
        if (strcmp(value, "full") == 0)
            q->parts = PARTS_FULL;
        else if (strcmp(value, "early") == 0)
            q->parts = PARTS_EARLY;
        else if (strcmp(value, "auto") == 0)
            q->parts = PARTS_AUTO;
        else
            goto bad;
        return 0;
    case SLOT_RESOLUTION:
        if (parse_size(value, 1, RING_MAX_DIMENSION, &q->res_width, &q->res_height) < 0)
            goto bad;
        return 0;
    case SLOT_DUAL_FINAL:
        if (parse_flag(value, &q->dual_final) < 0)
            goto bad;
        return 0;
    case SLOT_HEADERS:
        if (parse_flag(value, &q->headers) < 0)
            goto bad;
        return 0;
    }
bad:
    switch (slot) {
    case SLOT_ACTION:
        snprintf(err, errlen, "action must be stream, snapshot or state");
        break;
    case SLOT_CAM:
        snprintf(err, errlen, "%s must be a camera name (1-64 characters from a-z, 0-9, '_' and "
                              "'-') or a camera's 1-based number", name);
        break;
    case SLOT_FPS:
        snprintf(err, errlen, "fps must be 0 (no cap) or a number from 0.001 to 120");
        break;
    case SLOT_FRAMES:
        snprintf(err, errlen, "%s must be a whole number from 1 to %llu", name,
                 (unsigned long long)MAX_FRAMES);
        break;
    case SLOT_SECONDS:
        snprintf(err, errlen, "%s must be a whole number from 1 to %llu", name,
                 (unsigned long long)MAX_SECONDS);
        break;
    case SLOT_PARTS:
        snprintf(err, errlen, "parts must be full, early or auto");
        break;
    case SLOT_RESOLUTION:
        snprintf(err, errlen, "resolution must be WIDTHxHEIGHT, e.g. 640x480");
        break;
    case SLOT_DUAL_FINAL:
    case SLOT_HEADERS:
        snprintf(err, errlen, "%s must be 0 or 1", name);
        break;
    }
    return -EINVAL;
}

int query_parse(const char *qs, struct query *q, char *err, size_t errlen)
{
    const char *seen_as[SLOT_HEADERS + 1] = {NULL};
    const char *p;
    size_t qlen;

    memset(q, 0, sizeof(*q));
    if (errlen)
        err[0] = '\0';
    if (!qs)
        return 0;
    qlen = strlen(qs);
    if (qlen > QUERY_MAX_LENGTH) {
        snprintf(err, errlen, "query string longer than %d bytes", QUERY_MAX_LENGTH);
        return -EINVAL;
    }
    p = qs;
    while (*p) {
        const char *end = strchr(p, '&');
        const char *eq, *known = NULL;
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        char name[VALUE_MAX], value[VALUE_MAX];
        enum param_slot slot = SLOT_ACTION;
        int rc;

        if (plen == 0) { /* "a=1&&b=2" or a trailing '&': harmless */
            p += end ? 1 : 0;
            continue;
        }
        eq = memchr(p, '=', plen);
        rc = query_unescape(p, eq ? (size_t)(eq - p) : plen, name, sizeof(name));
        if (rc < 0) {
            snprintf(err, errlen, "%s in a parameter name",
                     rc == -ENAMETOOLONG ? "too long" : "bad percent-escape or NUL byte");
            return -EINVAL;
        }
        rc = eq ? query_unescape(eq + 1, plen - (size_t)(eq + 1 - p), value, sizeof(value)) : 0;
        if (!eq)
            value[0] = '\0';
        for (size_t i = 0; i < ARRAY_SIZE(known_params); i++) {
            if (strcmp(name, known_params[i].name) == 0) {
                known = known_params[i].name; /* a constant: safe to echo */
                slot = known_params[i].slot;
            }
        }
        if (rc < 0) {
            if (known)
                snprintf(err, errlen, "parameter %s: %s", known,
                         rc == -ENAMETOOLONG ? "value too long" : "bad percent-escape or NUL byte");
            else
                snprintf(err, errlen, "a parameter value is %s",
                         rc == -ENAMETOOLONG ? "too long"
                                             : "malformed (bad percent-escape or NUL byte)");
            return -EINVAL;
        }
        p += plen + (end ? 1 : 0);
        if (!known) /* unknown parameter: ignored, e.g. cache-busters */
            continue;
        if (seen_as[slot]) {
            if (strcmp(seen_as[slot], known) == 0)
                snprintf(err, errlen, "parameter %s given more than once", known);
            else
                snprintf(err, errlen, "parameters %s and %s mean the same; give one",
                         seen_as[slot], known);
            return -EINVAL;
        }
        seen_as[slot] = known;
        if (!value[0]) {
            snprintf(err, errlen, "parameter %s has no value", known);
            return -EINVAL;
        }
        if (apply_param(q, slot, known, value, err, errlen) < 0)
            return -EINVAL;
    }
    return 0;
}

/* The last non-empty '/'-separated segment of s, or NULL. */
static const char *last_segment(const char *s, size_t *len)
{
    const char *end, *start;
    if (!s)
        return NULL;
    end = s + strlen(s);
    while (end > s && end[-1] == '/')
        end--;
    if (end == s)
        return NULL;
    start = end;
    while (start > s && start[-1] != '/')
        start--;
    *len = (size_t)(end - start);
    return start;
}

int query_route(const char *script_name, const char *path_info, enum query_route action,
                enum query_route *route, char *err, size_t errlen)
{
    enum query_route from_path = ROUTE_NONE;
    size_t len = 0;
    const char *seg = last_segment(path_info, &len);

    if (errlen)
        err[0] = '\0';
    if (seg) {
        /* A PATH_INFO names the endpoint and nothing else. */
        if (route_from_word(seg, len, &from_path) < 0) {
            snprintf(err, errlen, "no such endpoint; use stream, snapshot or state");
            return -ENOENT;
        }
    } else {
        seg = last_segment(script_name, &len);
        if (seg)
            route_from_word(seg, len, &from_path); /* "/cgi-bin/capd.cgi" names none */
    }
    if (from_path != ROUTE_NONE && action != ROUTE_NONE && from_path != action) {
        snprintf(err, errlen, "the path and action= name different endpoints");
        return -EINVAL;
    }
    *route = from_path != ROUTE_NONE ? from_path : action;
    if (*route == ROUTE_NONE) {
        snprintf(err, errlen,
                 "no endpoint given; use /stream, /snapshot or /state, or ?action=stream");
        return -ENOENT;
    }
    return 0;
}
