/* mjpeg_split.c - splits a byte stream of concatenated JPEGs or multipart MJPEG into frames. */
#include "mjpeg_split.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* Longest part/HTTP header block we parse; anything longer is junk. After junk, a header
   must be under HEADER_MAX / 2 bytes to be found (see step_header). */
#define HEADER_MAX 16384
/* Longest delimiter line we remember for resynchronisation (RFC 2046 allows 70 + "--"). */
#define DELIM_MAX 128
/* Shortest delimiter line worth searching for; shorter ones are too likely in binary data. */
#define DELIM_MIN 3
/* Returned by the step functions: state changed, run the loop again. */
#define STEP_CONTINUE 1

enum {
    PHASE_SYNC,    /* between parts: whitespace, then an SOI or a header block */
    PHASE_HEADER,  /* collecting a text header block up to its blank line */
    PHASE_JPEG,    /* walking a JPEG that starts at head */
    PHASE_BODY,    /* waiting for a Content-Length body that starts at head */
    PHASE_DISCARD, /* walking an oversize JPEG while dropping it */
    PHASE_JUNK,    /* searching for the next SOI or delimiter line */
};

struct mjpeg_split {
    uint8_t *buf;
    size_t cap;  /* bytes allocated */
    size_t head; /* first unconsumed byte; every parse position below is relative to it */
    size_t tail; /* end of the committed input */
    size_t max_frame;
    int phase;
    struct jpeg_scan_state scan; /* PHASE_JPEG, PHASE_DISCARD */
    size_t body_len;             /* PHASE_BODY: the announced Content-Length */
    bool announced_oversize;     /* the last header announced a body above max_frame */
    size_t header_scan;          /* PHASE_HEADER: next byte to examine */
    size_t header_line;          /* PHASE_HEADER: start of the current line */
    char delim[DELIM_MAX];       /* last delimiter line seen, without its line end */
    size_t delim_len;
    struct jpeg_scan_info frame_info;
    struct mjpeg_split_stats stats;
};

static const uint8_t soi_prefix[3] = {0xFF, 0xD8, 0xFF};

static bool is_space(uint8_t c)
{
    return c == '\r' || c == '\n' || c == ' ' || c == '\t';
}

/* Bytes allowed inside a header line. */
static bool is_text(uint8_t c)
{
    return (c >= 0x20 && c < 0x7F) || c == '\t' || c == '\r';
}

static size_t max_size(size_t a, size_t b)
{
    return a > b ? a : b;
}

static void drop(struct mjpeg_split *s, size_t n)
{
    assert(n <= s->tail - s->head);
    s->head += n;
    s->stats.skipped_bytes += n;
}

/* Drops n bytes known to hold no part start and searches for the next one from there. */
static int skip_to_junk(struct mjpeg_split *s, size_t n)
{
    drop(s, n);
    s->announced_oversize = false;
    s->phase = PHASE_JUNK;
    return STEP_CONTINUE;
}

/* Gives up on whatever starts at head: the search for the next part starts one byte later. */
static int enter_junk(struct mjpeg_split *s)
{
    return skip_to_junk(s, s->head < s->tail ? 1 : 0);
}

static bool starts_with_nocase(const uint8_t *p, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && strncasecmp((const char *)p, prefix, k) == 0;
}

static void trim(const uint8_t **p, size_t *n)
{
    while (*n > 0 && is_space((*p)[0])) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && is_space((*p)[*n - 1]))
        (*n)--;
}

/* Parses a decimal Content-Length value; false if it is not one. */
static bool parse_length(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t value = 0;
    if (n == 0 || n > 19)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        value = value * 10 + (uint64_t)(p[i] - '0');
    }
    *out = value;
    return true;
}

/* What a header block says about the part that follows it. */
struct part_header {
    bool valid;           /* it looks like HTTP or MIME headers, not text junk */
    bool has_length;      /* a usable Content-Length for a non-multipart body */
    uint64_t length;      /* its value */
    const uint8_t *delim; /* the delimiter line, if the block starts with one */
    size_t delim_len;
};

/* Interprets one complete header block p[0..n) (lines ending in LF, the last one blank). */
static void parse_header_block(const uint8_t *p, size_t n, struct part_header *out)
{
    bool http = false, multipart = false, has_length = false;
    unsigned fields = 0;
    uint64_t length = 0;
    memset(out, 0, sizeof(*out));
    for (size_t start = 0, line_no = 0; start < n; line_no++) {
        const uint8_t *nl = memchr(p + start, '\n', n - start);
        size_t end = nl ? (size_t)(nl - p) : n;
        const uint8_t *line = p + start;
        size_t line_len = end - start;
        start = end + 1;
        trim(&line, &line_len);
        if (line_len == 0)
            continue;
        const uint8_t *colon = memchr(line, ':', line_len);
        if (line_no == 0) {
            if (starts_with_nocase(line, line_len, "HTTP/")) {
                http = true;
                continue;
            }
            /* "--boundary", or a bare boundary from servers that drop the dashes. */
            if (!colon || (line_len >= 2 && line[0] == '-' && line[1] == '-')) {
                out->delim = line;
                out->delim_len = line_len;
                continue;
            }
        }
        if (!colon || colon == line)
            continue;
        size_t name_len = (size_t)(colon - line);
        const uint8_t *value = colon + 1;
        size_t value_len = line_len - name_len - 1;
        trim(&value, &value_len);
        fields++;
        if (name_len == 14 && starts_with_nocase(line, name_len, "Content-Length"))
            has_length = parse_length(value, value_len, &length);
        else if (name_len == 12 && starts_with_nocase(line, name_len, "Content-Type"))
            multipart = starts_with_nocase(value, value_len, "multipart/");
    }
    bool dashed = out->delim_len >= 2 && out->delim[0] == '-' && out->delim[1] == '-';
    out->valid = http || fields > 0 || dashed;
    /* A multipart response's own length (rare) covers all parts, not the next JPEG. */
    out->has_length = has_length && !multipart;
    out->length = length;
}

static int step_sync(struct mjpeg_split *s, const uint8_t *p, size_t avail)
{
    size_t spaces = 0;
    while (spaces < avail && is_space(p[spaces]))
        spaces++;
    s->head += spaces;
    p += spaces;
    avail -= spaces;
    if (avail == 0)
        return -EAGAIN;
    if (p[0] == 0xFF) {
        size_t n = avail < sizeof(soi_prefix) ? avail : sizeof(soi_prefix);
        if (memcmp(p, soi_prefix, n) != 0)
            return enter_junk(s);
        if (n < sizeof(soi_prefix))
            return -EAGAIN;
        jpeg_scan_init(&s->scan);
        s->phase = PHASE_JPEG;
        if (s->announced_oversize) {
            s->announced_oversize = false;
            s->stats.oversize++;
            s->phase = PHASE_DISCARD;
        }
        return STEP_CONTINUE;
    }
    if (!is_text(p[0]))
        return enter_junk(s);
    s->header_scan = 0;
    s->header_line = 0;
    s->phase = PHASE_HEADER;
    return STEP_CONTINUE;
}

static int finish_header(struct mjpeg_split *s, const uint8_t *p, size_t block_len)
{
    struct part_header header;
    parse_header_block(p, block_len, &header);
    if (!header.valid)
        return enter_junk(s);
    if (header.delim_len >= DELIM_MIN && header.delim_len <= DELIM_MAX) {
        memcpy(s->delim, header.delim, header.delim_len);
        s->delim_len = header.delim_len;
    }
    s->head += block_len;
    s->announced_oversize = false;
    s->phase = PHASE_SYNC;
    if (header.has_length) {
        if (header.length > s->max_frame) {
            /* Skip it by structure rather than trust a length we cannot check. */
            s->announced_oversize = true;
        } else {
            s->body_len = (size_t)header.length;
            s->phase = PHASE_BODY;
        }
    }
    return STEP_CONTINUE;
}

static int step_header(struct mjpeg_split *s, const uint8_t *p, size_t avail)
{
    size_t limit = avail < HEADER_MAX ? avail : HEADER_MAX;
    size_t i = s->header_scan, line = s->header_line;
    for (; i < limit; i++) {
        if (p[i] == '\n') {
            size_t end = i;
            if (end > line && p[end - 1] == '\r')
                end--;
            if (end == line)
                return finish_header(s, p, i + 1);
            line = i + 1;
        } else if (!is_text(p[i])) {
            /* No header can start before i either (it would contain this byte), but p[i]
               itself may begin the next part. */
            return skip_to_junk(s, i);
        }
    }
    if (i >= HEADER_MAX) {
        /* No blank line in HEADER_MAX bytes. A header starting in the first half would be
           over HEADER_MAX / 2 long; skipping that half keeps text junk full of "--" lines
           linear instead of rescanning HEADER_MAX bytes per candidate. */
        return skip_to_junk(s, HEADER_MAX / 2);
    }
    s->header_scan = i;
    s->header_line = line;
    return -EAGAIN;
}

/*
 * Returns the offset of the first place in p[0..n) where a part may start: an SOI followed by
 * a marker, or the delimiter line (any line starting with "--" while none is known); n if
 * there is none. Candidates cut off by the end of p are left for the next search.
 */
static size_t find_resync(const struct mjpeg_split *s, const uint8_t *p, size_t n)
{
    size_t limit = n;
    if (s->delim_len) {
        const uint8_t *hit = memmem(p, n, s->delim, s->delim_len);
        if (hit)
            limit = (size_t)(hit - p);
    } else {
        const uint8_t *hit = memmem(p, n, "\n--", 3);
        if (hit)
            limit = (size_t)(hit - p) + 1;
    }
    for (size_t i = 0; i < limit;) {
        const uint8_t *ff = memchr(p + i, 0xFF, limit - i);
        if (!ff)
            break;
        size_t at = (size_t)(ff - p);
        if (n - at >= sizeof(soi_prefix) && memcmp(ff, soi_prefix, sizeof(soi_prefix)) == 0)
            return at;
        i = at + 1;
    }
    return limit;
}

static int step_junk(struct mjpeg_split *s, const uint8_t *p, size_t avail)
{
    size_t found = find_resync(s, p, avail);
    if (found < avail) {
        drop(s, found);
        s->phase = PHASE_SYNC;
        return STEP_CONTINUE;
    }
    /* Keep what could be the start of a candidate split by the end of the input. */
    size_t keep = max_size(sizeof(soi_prefix), s->delim_len) - 1;
    if (avail > keep)
        drop(s, avail - keep);
    return -EAGAIN;
}

static int step_jpeg(struct mjpeg_split *s, const uint8_t *p, size_t avail, const uint8_t **frame,
                     size_t *len)
{
    int ret = jpeg_scan_resume(&s->scan, p, avail > s->max_frame ? s->max_frame + 1 : avail);
    if (ret == -EBADMSG) {
        s->stats.bad++;
        return enter_junk(s);
    }
    if (ret == -EAGAIN) {
        if (avail <= s->max_frame)
            return -EAGAIN;
        s->stats.oversize++;
        s->phase = PHASE_DISCARD;
        return STEP_CONTINUE;
    }
    size_t n = s->scan.info.length;
    s->phase = PHASE_SYNC;
    if (n > s->max_frame) {
        s->stats.oversize++;
        drop(s, n);
        return STEP_CONTINUE;
    }
    s->frame_info = s->scan.info;
    s->stats.frames++;
    s->head += n;
    *frame = p;
    *len = n;
    return 0;
}

static int step_discard(struct mjpeg_split *s, const uint8_t *p, size_t avail)
{
    int ret = jpeg_scan_resume(&s->scan, p, avail);
    if (ret == 0) {
        drop(s, s->scan.info.length - s->scan.dropped);
        s->phase = PHASE_SYNC;
        return STEP_CONTINUE;
    }
    size_t released = jpeg_scan_release(&s->scan);
    drop(s, released);
    if (ret == -EAGAIN)
        return -EAGAIN;
    /* The error sits at or after the release point, possibly on the next part's SOI. */
    return skip_to_junk(s, 0);
}

static int step_body(struct mjpeg_split *s, const uint8_t *p, size_t avail, const uint8_t **frame,
                     size_t *len)
{
    if (avail < s->body_len)
        return -EAGAIN;
    struct jpeg_scan_info info;
    if (jpeg_scan_check(p, s->body_len, &info) != 0) {
        s->stats.bad++;
        /* An empty body has no first byte to skip: the byte at head is the next part's. */
        return s->body_len > 0 ? enter_junk(s) : skip_to_junk(s, 0);
    }
    for (size_t i = info.length; i < s->body_len; i++) {
        if (!is_space(p[i])) {
            s->stats.bad++;
            return enter_junk(s);
        }
    }
    s->frame_info = info;
    s->stats.frames++;
    s->head += s->body_len;
    s->phase = PHASE_SYNC;
    *frame = p;
    *len = info.length;
    return 0;
}

struct mjpeg_split *mjpeg_split_create(size_t max_frame)
{
    /* After mjpeg_split_next() returns -EAGAIN at most this much input stays buffered. */
    size_t retained = max_size(max_frame, max_size(JPEG_SCAN_MAX_RETAINED, HEADER_MAX));
    if (max_frame == 0 || retained > (SIZE_MAX - HEADER_MAX) / 2)
        return NULL;
    struct mjpeg_split *s = xcalloc(1, sizeof(*s));
    s->max_frame = max_frame;
    s->cap = 2 * retained + HEADER_MAX;
    s->buf = xmalloc(s->cap);
    s->phase = PHASE_SYNC;
    return s;
}

void mjpeg_split_destroy(struct mjpeg_split *s)
{
    if (!s)
        return;
    free(s->buf);
    free(s);
}

uint8_t *mjpeg_split_space(struct mjpeg_split *s, size_t *space)
{
    if (s->head == s->tail) {
        s->head = s->tail = 0;
    } else if (s->head > 0 && s->cap - s->tail < s->cap / 4) {
        /* Moves at most one partial frame per quarter buffer of input: amortized O(1). */
        memmove(s->buf, s->buf + s->head, s->tail - s->head);
        s->tail -= s->head;
        s->head = 0;
    }
    if (s->tail == s->cap) {
        /* The caller kept reading without draining mjpeg_split_next(): make room anyway. */
        drop(s, s->tail - s->head);
        s->head = s->tail = 0;
        s->announced_oversize = false;
        s->phase = PHASE_SYNC;
    }
    *space = s->cap - s->tail;
    return s->buf + s->tail;
}

void mjpeg_split_commit(struct mjpeg_split *s, size_t n)
{
    assert(n <= s->cap - s->tail);
    s->tail += n;
}

int mjpeg_split_next(struct mjpeg_split *s, const uint8_t **frame, size_t *len)
{
    for (;;) {
        const uint8_t *p = s->buf + s->head;
        size_t avail = s->tail - s->head;
        int ret;
        switch (s->phase) {
        case PHASE_SYNC:
            ret = step_sync(s, p, avail);
            break;
        case PHASE_HEADER:
            ret = step_header(s, p, avail);
            break;
        case PHASE_JPEG:
            ret = step_jpeg(s, p, avail, frame, len);
            break;
        case PHASE_BODY:
            ret = step_body(s, p, avail, frame, len);
            break;
        case PHASE_DISCARD:
            ret = step_discard(s, p, avail);
            break;
        default:
            ret = step_junk(s, p, avail);
            break;
        }
        if (ret != STEP_CONTINUE)
            return ret;
    }
}

const struct jpeg_scan_info *mjpeg_split_frame_info(const struct mjpeg_split *s)
{
    return &s->frame_info;
}

void mjpeg_split_stats(const struct mjpeg_split *s, struct mjpeg_split_stats *out)
{
    *out = s->stats;
}
