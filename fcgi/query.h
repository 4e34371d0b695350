/* query.h - request routing and strict query-string parsing for the responder. */
#ifndef CAPD_QUERY_H
#define CAPD_QUERY_H

#include <stdint.h>

#include "ring.h"

enum query_route {
    ROUTE_NONE = 0,
    ROUTE_STREAM,
    ROUTE_SNAPSHOT,
    ROUTE_STATE,
};

/* How stream parts are laid out. */
enum query_parts {
    PARTS_AUTO = 0, /* early for browsers (User-Agent "Mozilla/"), full for everything else */
    PARTS_FULL,     /* each part's headers (with Content-Length, X-Timestamp) come with its frame */
    PARTS_EARLY,    /* the next part's headers follow each frame at once (no Content-Length) */
};

#define QUERY_MAX_LENGTH 2048

struct query {
    enum query_route action;   /* ROUTE_NONE when no action= was given */
    char cam[RING_NAME_MAX + 1]; /* empty when not given */
    uint32_t fps_milli;        /* 0 = no cap */
    uint64_t frames;           /* 0 = no limit */
    uint64_t seconds;          /* 0 = no limit */
    enum query_parts parts;
    uint32_t res_width, res_height; /* resolution= (VAPIX): 0 when not given */
    int dual_final;            /* send the last frame of a burst twice (WebKit) */
    int headers;               /* extra timing headers on each part */
};

/* Parses a raw QUERY_STRING (may be NULL or empty). Known parameters: action,
 * cam (alias camera), fps (0 = no cap), frames (alias nbrofframes), seconds
 * (alias duration), parts, resolution, dual_final, headers. Unknown parameters
 * are ignored (clients add cache-busters), but every parameter must be
 * well-formed, and none may be given twice (nor with its alias). Returns 0, or
 * -EINVAL with a one-line reason for the client in err (always NUL-terminated;
 * it never echoes raw input bytes other than the parameter's known name).
 * Thread-safe (no shared state). */
int query_parse(const char *qs, struct query *q, char *err, size_t errlen);

/* Decides the endpoint from the last non-empty segment of PATH_INFO, else of
 * SCRIPT_NAME ("stream", "snapshot", "state", and VAPIX's "video.cgi" and
 * "image.cgi"), combined with action=. Returns
 * 0 and the route in *route; -ENOENT when neither names an endpoint;
 * -EINVAL when the path and action= disagree. Either string may be NULL. */
int query_route(const char *script_name, const char *path_info, enum query_route action,
                enum query_route *route, char *err, size_t errlen);

/* Percent-decodes src[0..len) into dst (dstlen bytes including the NUL). '+'
 * becomes a space. Returns the decoded length, -EINVAL for a broken escape or
 * an encoded NUL, -ENAMETOOLONG when it does not fit. */
int query_unescape(const char *src, size_t len, char *dst, size_t dstlen);

#endif
