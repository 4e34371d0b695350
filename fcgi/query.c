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
    else
        return -ENOENT;
    return 0;
}

int query_parse(const char *qs, struct query *q, char *err, size_t errlen)
{
    enum {
        SEEN_ACTION = 1,
        SEEN_CAM = 2,
        SEEN_FPS = 4,
        SEEN_FRAMES = 8,
        SEEN_SECONDS = 16,
        SEEN_PARTS = 32
    };
    unsigned seen = 0;
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
        const char *eq;
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        char name[VALUE_MAX], value[VALUE_MAX];
        unsigned bit = 0;
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
        if (strcmp(name, "action") == 0)
            bit = SEEN_ACTION;
        else if (strcmp(name, "cam") == 0)
            bit = SEEN_CAM;
        else if (strcmp(name, "fps") == 0)
            bit = SEEN_FPS;
        else if (strcmp(name, "frames") == 0)
            bit = SEEN_FRAMES;
        else if (strcmp(name, "seconds") == 0)
            bit = SEEN_SECONDS;
        else if (strcmp(name, "parts") == 0)
            bit = SEEN_PARTS;
        if (rc < 0) {
            if (bit)
                snprintf(err, errlen, "parameter %s: %s", name,
                         rc == -ENAMETOOLONG ? "value too long" : "bad percent-escape or NUL byte");
            else
                snprintf(err, errlen, "a parameter value is %s",
                         rc == -ENAMETOOLONG ? "too long"
                                             : "malformed (bad percent-escape or NUL byte)");
            return -EINVAL;
        }
        p += plen + (end ? 1 : 0);
        if (!bit) /* unknown parameter: ignored, e.g. cache-busters */
            continue;
        if (seen & bit) {
            snprintf(err, errlen, "parameter %s given more than once", name);
            return -EINVAL;
        }
        seen |= bit;
        if (!value[0]) {
            snprintf(err, errlen, "parameter %s has no value", name);
            return -EINVAL;
        }
        switch (bit) {
        case SEEN_ACTION:
            if (route_from_word(value, strlen(value), &q->action) < 0) {
                snprintf(err, errlen, "action must be stream, snapshot or state");
                return -EINVAL;
            }
            break;
        case SEEN_CAM:
            if (!ring_name_valid(value)) {
                snprintf(err, errlen, "cam must be 1-64 characters from a-z, 0-9, '_' and '-'");
                return -EINVAL;
            }
            memcpy(q->cam, value, strlen(value) + 1);
            break;
        case SEEN_FPS:
            rc = parse_fps_milli(value, &q->fps_milli);
            if (rc < 0) {
                snprintf(err, errlen, "fps must be a number from 0.001 to 120");
                return -EINVAL;
            }
            break;
        case SEEN_FRAMES:
            if (parse_u64(value, 1, MAX_FRAMES, &q->frames) < 0) {
                snprintf(err, errlen, "frames must be a whole number from 1 to %llu",
                         (unsigned long long)MAX_FRAMES);
                return -EINVAL;
            }
            break;
        case SEEN_SECONDS:
            if (parse_u64(value, 1, MAX_SECONDS, &q->seconds) < 0) {
                snprintf(err, errlen, "seconds must be a whole number from 1 to %llu",
                         (unsigned long long)MAX_SECONDS);
                return -EINVAL;
            }
            break;
        case SEEN_PARTS:
            if (strcmp(value, "full") == 0)
                q->parts = PARTS_FULL;
            else if (strcmp(value, "early") == 0)
                q->parts = PARTS_EARLY;
            else if (strcmp(value, "auto") == 0)
                q->parts = PARTS_AUTO;
            else {
                snprintf(err, errlen, "parts must be full, early or auto");
                return -EINVAL;
            }
            break;
        default:
            break;
        }
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
