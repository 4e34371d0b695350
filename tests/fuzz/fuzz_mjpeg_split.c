/* fuzz_mjpeg_split.c - libFuzzer target: the stdin JPEG/multipart splitter fed in random chunks. */
#include "../../capd/mjpeg_split.c"

#include <sanitizer/allocator_interface.h>

#include "fuzz_common.h"

/*
 * Input: the bytes capd would read from stdin (plain .mjpeg or multipart captures make good
 * seeds). max_frame (one of a fixed set) and the read sizes come from a PRNG seeded with a
 * hash of the input.
 * Each input is fed three times (enum reads): in the largest reads the splitter offers, in
 * random small reads, and in reads that end just before each SOI; after every read the
 * splitter is drained until -EAGAIN, as source_stdin does.
 *
 * Invariants checked (from mjpeg_split.h; the module's .c is included to see its buffer):
 *   - every frame returned lies inside the splitter's buffer, is at most max_frame bytes, is
 *     exactly one valid JPEG (jpeg_scan_check) matching mjpeg_split_frame_info(), and is a
 *     byte-for-byte copy of a stretch of the input that starts after the previous frame;
 *   - after -EAGAIN at most max(max_frame, JPEG_SCAN_MAX_RETAINED, HEADER_MAX) bytes stay
 *     buffered and mjpeg_split_space() offers at least max_frame / 2 bytes;
 *   - nothing is allocated after mjpeg_split_create() (malloc hooks count it);
 *   - the counters add up: frames match what was returned, and frame bytes plus skipped
 *     bytes never exceed the input;
 *   - all feedings return the same frames: how read() happens to cut the stream must not
 *     change which frames come out (a frame lost or gained depending on read boundaries is
 *     a frame a viewer may or may not see, at random).
 */

#define MAX_FRAMES_KEPT 4096

/* Allocations made by this thread while the splitter is being called. */
static _Thread_local int counting_allocs;
static _Thread_local uint64_t allocs_seen;

static void malloc_hook(const volatile void *ptr, size_t size)
{
    (void)ptr;
    (void)size;
    if (counting_allocs)
        allocs_seen++;
}

static void free_hook(const volatile void *ptr)
{
    (void)ptr;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    __sanitizer_install_malloc_and_free_hooks(malloc_hook, free_hook);
    return 0;
}

/* Where a returned frame was in the input. */
struct frame_pos {
    size_t offset, length;
};

struct run {
    struct frame_pos frames[MAX_FRAMES_KEPT];
    size_t count;
    struct mjpeg_split_stats stats;
    size_t left_over; /* bytes still buffered after the last read */
};

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return h;
}

static size_t max_of(size_t a, size_t b)
{
    return a > b ? a : b;
}

static void check_frame(const struct mjpeg_split *s, const uint8_t *input, size_t fed,
                        const uint8_t *frame, size_t len, struct run *run)
{
    struct jpeg_scan_info info;
    const struct jpeg_scan_info *split_info = mjpeg_split_frame_info(s);
    size_t in_buf, offset;

    FUZZ_CHECK(frame >= s->buf && len <= s->cap && (size_t)(frame - s->buf) <= s->cap - len,
               "frame of %zu bytes outside the buffer", len);
    FUZZ_CHECK(len <= s->max_frame, "frame of %zu bytes above max_frame %zu", len, s->max_frame);
    FUZZ_CHECK(jpeg_scan_check(frame, len, &info) == 0 && info.length == len,
               "frame of %zu bytes is not exactly one valid JPEG", len);
    FUZZ_CHECK(split_info->length == len && split_info->width == info.width &&
                   split_info->height == info.height && split_info->scans == info.scans,
               "frame info does not describe the frame");
    /* The buffer holds input[fed - (tail - head) .. fed) at head; the frame ends at head. */
    in_buf = (size_t)(frame - s->buf);
    FUZZ_CHECK(in_buf + len <= s->head, "frame not consumed");
    offset = fed - (s->tail - in_buf);
    FUZZ_CHECK(memcmp(frame, input + offset, len) == 0, "frame differs from input at %zu", offset);
    if (run->count > 0) {
        const struct frame_pos *prev = &run->frames[run->count - 1];
        FUZZ_CHECK(offset >= prev->offset + prev->length, "frame at %zu overlaps one at %zu",
                   offset, prev->offset);
    }
    if (run->count < MAX_FRAMES_KEPT)
        run->frames[run->count] = (struct frame_pos){offset, len};
    run->count++;
}

/*
 * Splitters are reused between inputs: creating one costs an mmap of its buffer (hundreds of
 * KiB), which would cap the target at a few hundred runs per second. A reused splitter is put
 * back into the state mjpeg_split_create() leaves, and every RESET_AUDIT_PERIOD resets the
 * result is compared with a freshly created splitter, so the reset cannot silently drift
 * from create() when the struct changes.
 */
#define RESET_AUDIT_PERIOD 4096

static const size_t max_frames[] = {1,    2,    3,     17,    100,   255,    600,   1000,
                                    4096, 8191, 20000, 65536, 65537, 100000, 200000};

/* How read() cuts the stream. */
enum reads {
    READS_LARGE,  /* as much as the splitter has room for: often the whole input at once */
    READS_RANDOM, /* mostly tiny random reads, as from a pipe under load */
    READS_AT_SOI, /* each read ends just before an SOI, as when a writer writes one frame per
                     write(): boundaries fall exactly between frames */
    READS_COUNT,
};

static const char *const reads_names[READS_COUNT] = {"large reads", "random small reads",
                                                     "reads ending before each SOI"};

static struct mjpeg_split *pool[ARRAY_SIZE(max_frames)][READS_COUNT];

static void reset_splitter(struct mjpeg_split *s)
{
    uint8_t *buf = s->buf;
    size_t cap = s->cap, max_frame = s->max_frame;

    memset(s, 0, sizeof(*s));
    s->buf = buf;
    s->cap = cap;
    s->max_frame = max_frame;
    s->phase = PHASE_SYNC;
}

static struct mjpeg_split *get_splitter(size_t which, int user)
{
    static uint64_t resets;
    struct mjpeg_split **slot = &pool[which][user];

    if (!*slot) {
        *slot = mjpeg_split_create(max_frames[which]);
        FUZZ_CHECK(*slot != NULL, "create(%zu) failed", max_frames[which]);
        return *slot;
    }
    reset_splitter(*slot);
    if (++resets % RESET_AUDIT_PERIOD == 0) {
        struct mjpeg_split *fresh = mjpeg_split_create(max_frames[which]);
        FUZZ_CHECK(fresh != NULL, "create(%zu) failed", max_frames[which]);
        uint8_t *fresh_buf = fresh->buf;
        fresh->buf = (*slot)->buf;
        FUZZ_CHECK(memcmp(fresh, *slot, sizeof(*fresh)) == 0,
                   "reset_splitter() no longer matches mjpeg_split_create(): update it");
        fresh->buf = fresh_buf;
        mjpeg_split_destroy(fresh);
    }
    return *slot;
}

/* The end of the read starting at fed: just before the next SOI after fed, else size. */
static size_t next_soi(const uint8_t *input, size_t size, size_t fed)
{
    for (size_t i = fed + 1; i + 1 < size; i++)
        if (input[i] == 0xFF && input[i + 1] == 0xD8)
            return i;
    return size;
}

/* Feeds input through a splitter in its initial state, cutting reads as `reads` says. */
static void feed(const uint8_t *input, size_t size, size_t which, struct fuzz_rng *rng,
                 enum reads reads, struct run *run)
{
    struct mjpeg_split *s = get_splitter(which, reads);
    size_t max_frame = s->max_frame;
    size_t retained = max_of(max_frame, max_of(JPEG_SCAN_MAX_RETAINED, HEADER_MAX));
    size_t fed = 0, frame_bytes = 0;

    memset(run, 0, sizeof(*run));
    allocs_seen = 0;
    while (fed < size) {
        size_t space, n;
        const uint8_t *frame;
        size_t len;
        int rc;

        counting_allocs = 1;
        uint8_t *dst = mjpeg_split_space(s, &space);
        counting_allocs = 0;
        FUZZ_CHECK(space >= 1 && space >= max_frame / 2, "space %zu for max_frame %zu", space,
                   max_frame);
        FUZZ_CHECK(dst == s->buf + s->tail && space == s->cap - s->tail, "space not at the tail");
        n = size - fed < space ? size - fed : space;
        if (reads == READS_RANDOM) {
            /* Mostly tiny reads, sometimes large ones. */
            size_t limit = (fuzz_rng_next(rng) & 3) == 0 ? n : (n < 64 ? n : 64);
            n = fuzz_rng_range(rng, 1, limit);
        } else if (reads == READS_AT_SOI) {
            size_t end = next_soi(input, size, fed);
            if (end - fed < n)
                n = end - fed;
        }
        memcpy(dst, input + fed, n);
        counting_allocs = 1;
        mjpeg_split_commit(s, n);
        counting_allocs = 0;
        fed += n;
        for (;;) {
            counting_allocs = 1;
            rc = mjpeg_split_next(s, &frame, &len);
            counting_allocs = 0;
            if (rc != 0)
                break;
            check_frame(s, input, fed, frame, len, run);
            frame_bytes += len;
        }
        FUZZ_CHECK(rc == -EAGAIN, "mjpeg_split_next returned %d", rc);
        FUZZ_CHECK(s->head <= s->tail && s->tail <= s->cap, "head %zu tail %zu cap %zu", s->head,
                   s->tail, s->cap);
        FUZZ_CHECK(s->tail - s->head <= retained, "%zu bytes buffered after -EAGAIN (limit %zu)",
                   s->tail - s->head, retained);
    }
    FUZZ_CHECK(allocs_seen == 0, "%llu allocations after create", (unsigned long long)allocs_seen);
    mjpeg_split_stats(s, &run->stats);
    FUZZ_CHECK(run->stats.frames == run->count, "stats say %llu frames, %zu returned",
               (unsigned long long)run->stats.frames, run->count);
    FUZZ_CHECK(frame_bytes + run->stats.skipped_bytes + (s->tail - s->head) <= size,
               "%zu frame bytes + %llu skipped + %zu buffered > %zu input bytes", frame_bytes,
               (unsigned long long)run->stats.skipped_bytes, s->tail - s->head, size);
    run->left_over = s->tail - s->head;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct run runs[READS_COUNT]; /* large: keep them off the stack */
    struct fuzz_rng rng = {fnv1a(data, size)};
    /* Small limits make oversize frames and the discard path common. */
    size_t which = (size_t)(fuzz_rng_next(&rng) % ARRAY_SIZE(max_frames));

    for (int reads = 0; reads < READS_COUNT; reads++)
        feed(data, size, which, &rng, (enum reads)reads, &runs[reads]);

    /* The same frames, however read() cut the stream. */
    for (int reads = 1; reads < READS_COUNT; reads++) {
        const struct run *a = &runs[READS_LARGE], *b = &runs[reads];
        FUZZ_CHECK(a->count == b->count, "max_frame %zu: %zu frames in %s, %zu in %s",
                   max_frames[which], a->count, reads_names[READS_LARGE], b->count,
                   reads_names[reads]);
        for (size_t i = 0; i < a->count && i < MAX_FRAMES_KEPT; i++)
            FUZZ_CHECK(a->frames[i].offset == b->frames[i].offset &&
                           a->frames[i].length == b->frames[i].length,
                       "max_frame %zu: frame %zu is %zu+%zu in %s, %zu+%zu in %s",
                       max_frames[which], i, a->frames[i].offset, a->frames[i].length,
                       reads_names[READS_LARGE], b->frames[i].offset, b->frames[i].length,
                       reads_names[reads]);
    }
    return 0;
}
