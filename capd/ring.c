/* ring.c - the shared-memory JPEG frame ring: seqlock slots, futex wake-ups, re-attaching readers.
 */
#include "ring.h"

#include <assert.h>
#include <setjmp.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "busguard.h"
#include "util.h"

/* The layout is a cross-process ABI: pin every offset. */
_Static_assert(sizeof(_Atomic uint64_t) == 8 && sizeof(_Atomic uint32_t) == 4,
               "atomics must have plain sizes in shared memory");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
               "shared-memory atomics must be lock-free");
_Static_assert(sizeof(struct ring_header) == 512, "ring_header is 512 bytes");
_Static_assert(offsetof(struct ring_header, version) == 8, "layout");
_Static_assert(offsetof(struct ring_header, total_size) == 16, "layout");
_Static_assert(offsetof(struct ring_header, generation) == 24, "layout");
_Static_assert(offsetof(struct ring_header, slot_count) == 32, "layout");
_Static_assert(offsetof(struct ring_header, pid) == 48, "layout");
_Static_assert(offsetof(struct ring_header, name) == 64, "layout");
_Static_assert(offsetof(struct ring_header, source) == 129, "layout");
_Static_assert(offsetof(struct ring_header, heartbeat_ns) == 256, "layout");
_Static_assert(offsetof(struct ring_header, head) == 264, "layout");
_Static_assert(offsetof(struct ring_header, futex_word) == 272, "layout");
_Static_assert(offsetof(struct ring_header, state) == 276, "layout");
_Static_assert(offsetof(struct ring_header, viewers) == 300, "layout");
_Static_assert(sizeof(struct ring_slot) == 64, "ring_slot is one cache line");
_Static_assert(offsetof(struct ring_slot, size) == 24, "layout");
_Static_assert(offsetof(struct ring_slot, flags) == 36, "layout");

#define PAGE_SIZE_ASSUMED 4096u
/* How long a reader sleeps between attempts to find capd again while it is gone. */
#define REATTACH_POLL_MS 200u
/* A reader re-checks liveness at least this often while waiting for frames. */
#define LIVENESS_CHECK_MS 1000u
/* Attempts at copying the newest frame before giving up for this wake-up. */
#define COPY_ATTEMPTS 4

/* ---- futex ------------------------------------------------------------------ */

/* A shared (not FUTEX_PRIVATE) futex: the waiters are in other processes, and
 * the kernel keys the word by the shm object's inode and offset. */
static int futex_wait_shared(const _Atomic uint32_t *word, uint32_t expected, uint64_t timeout_ns)
{
    struct timespec ts = {
        .tv_sec = (time_t)(timeout_ns / 1000000000u),
        .tv_nsec = (long)(timeout_ns % 1000000000u),
    };
    long rc = syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, NULL, 0);
    return rc == 0 ? 0 : -errno;
}

static void futex_wake_all(_Atomic uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* ---- names --------------------------------------------------------------------- */

static int charset_valid(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= max)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}

int ring_name_valid(const char *name)
{
    return name && charset_valid(name, RING_NAME_MAX);
}

int ring_prefix_valid(const char *prefix)
{
    return prefix && charset_valid(prefix, RING_PREFIX_MAX);
}

int ring_prefix_from_env(const char **out)
{
    const char *env = getenv("CAPD_SHM_PREFIX");
    *out = RING_DEFAULT_PREFIX;
    if (!env || !*env)
        return 0;
    if (!ring_prefix_valid(env))
        return -EINVAL;
    *out = env;
    return 0;
}

int ring_object_name(char *buf, size_t len, const char *prefix, const char *name,
                     const char *suffix)
{
    int n = snprintf(buf, len, "/%s%s%s", prefix, name, suffix ? suffix : "");
    if (n < 0 || (size_t)n >= len)
        return -ENAMETOOLONG;
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

int ring_list_cameras(const char *prefix, char (*names)[RING_NAME_MAX + 1], int max)
{
    size_t plen = strlen(prefix);
    int count = 0;
    DIR *dir = opendir("/dev/shm");
    struct dirent *de;

    if (!dir)
        return -errno;
    while ((de = readdir(dir)) != NULL && count < max) {
        const char *rest;
        if (strncmp(de->d_name, prefix, plen) != 0)
            continue;
        rest = de->d_name + plen;
        /* ring_name_valid rejects the '.' of "NAME.viewers". */
        if (!ring_name_valid(rest))
            continue;
        memcpy(names[count], rest, strlen(rest) + 1);
        count++;
    }
    closedir(dir);
    qsort(names, (size_t)count, sizeof(names[0]), compare_names);
    return count;
}

const char *ring_state_name(uint32_t state)
{
    switch (state) {
    case RING_STATE_STARTING:
        return "starting";
    case RING_STATE_RUNNING:
        return "running";
    case RING_STATE_IDLE:
        return "idle";
    case RING_STATE_NO_SIGNAL:
        return "no-signal";
    case RING_STATE_STOPPED:
        return "stopped";
    default:
        return "unknown";
    }
}

/* ---- layout validation (shared by writer's stale check and readers) ------------- */

struct ring_layout {
    uint64_t generation;
    uint64_t total_size;
    uint32_t slot_count;
    uint32_t slot_size;
    uint32_t data_offset;
    int32_t pid;
};

/* Validates the static header fields of a mapping of map_len bytes. Every value
 * is untrusted. Returns 0 and the layout, -EAGAIN while the magic is not yet set,
 * -EPROTO when anything is out of bounds. */
static int layout_validate(const struct ring_header *h, size_t map_len, struct ring_layout *out)
{
    uint64_t magic, slots_end, data_end;

    if (map_len < sizeof(*h))
        return -EPROTO;
    /* Acquire: the creator stores the magic last (release), so every static
     * field below is initialised once we see it. */
    magic = atomic_load_explicit(&h->magic, memory_order_acquire);
    if (magic == 0)
        return -EAGAIN;
    if (magic != RING_MAGIC || h->version != RING_VERSION || h->header_size != sizeof(*h) ||
        h->slot_desc_size != sizeof(struct ring_slot))
        return -EPROTO;
    if (h->total_size != map_len || h->generation == 0)
        return -EPROTO;
    if (h->slot_count < RING_MIN_SLOTS || h->slot_count > RING_MAX_SLOTS)
        return -EPROTO;
    if (h->slot_size < RING_MIN_SLOT_SIZE || h->slot_size > RING_MAX_SLOT_SIZE)
        return -EPROTO;
    slots_end = sizeof(*h) + (uint64_t)h->slot_count * sizeof(struct ring_slot);
    if (h->data_offset < slots_end || h->data_offset % PAGE_SIZE_ASSUMED != 0)
        return -EPROTO;
    /* Both factors are bounded above, so this cannot overflow 64 bits. */
    data_end = (uint64_t)h->data_offset + (uint64_t)h->slot_count * h->slot_size;
    if (data_end > map_len)
        return -EPROTO;
    out->generation = h->generation;
    out->total_size = h->total_size;
    out->slot_count = h->slot_count;
    out->slot_size = h->slot_size;
    out->data_offset = h->data_offset;
    out->pid = h->pid;
    return 0;
}

/* Is the capd behind this header alive? 0 if so, -ESTALE if not. */
static int header_alive(const struct ring_header *h, int32_t pid)
{
    /* Relaxed: a single word read; staleness is judged in seconds. */
    uint32_t state = atomic_load_explicit(&h->state, memory_order_relaxed);
    uint64_t beat = atomic_load_explicit(&h->heartbeat_ns, memory_order_relaxed);
    uint64_t now = time_mono_ns();

    if (state == RING_STATE_STOPPED)
        return -ESTALE;
    if (now > beat && now - beat > (uint64_t)RING_STALE_MS * 1000000u)
        return -ESTALE;
    if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
        return -ESTALE;
    return 0;
}

/* Maps an existing object read-only. Returns 0 with the mapping, or -errno. */
static int map_readonly(const char *objname, const uint8_t **map, size_t *len)
{
    struct stat st;
    void *p;
    int rc = 0;
    int fd = shm_open(objname, O_RDONLY | O_CLOEXEC, 0);

    if (fd < 0)
        return neg_errno();
    if (fstat(fd, &st) < 0) {
        rc = neg_errno();
        goto out;
    }
    if (st.st_size < (off_t)sizeof(struct ring_header) ||
        (uint64_t)st.st_size > (uint64_t)RING_MAX_SLOTS * RING_MAX_SLOT_SIZE + (1u << 20)) {
        rc = -EPROTO;
        goto out;
    }
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        rc = neg_errno();
        goto out;
    }
    *map = p;
    *len = (size_t)st.st_size;
out:
    close(fd);
    return rc;
}

/* ---- writer ------------------------------------------------------------------------ */

struct ring_writer {
    char objname[RING_PREFIX_MAX + RING_NAME_MAX + 16];
    int created; /* the object exists and is ours to unlink */
    uint8_t *map;
    size_t map_len;
    struct ring_header *hdr;
    struct ring_slot *slots;
    uint8_t *data;
    uint32_t slot_count;
    uint32_t slot_size;
    uint64_t next_seq; /* frame number of the next frame */
    int in_progress;   /* begin() called, commit/abort pending */
};

int ring_chown_fd(int fd, uid_t owner, gid_t group)
{
    /* 0 and -1 both mean "keep": a zero-initialised parameter block changes nothing. */
    uid_t u = owner == 0 ? (uid_t)-1 : owner;
    gid_t g = group == 0 ? (gid_t)-1 : group;
    if (u == (uid_t)-1 && g == (gid_t)-1)
        return 0;
    return fchown(fd, u, g) < 0 ? neg_errno() : 0;
}

static uint64_t new_generation(void)
{
    uint64_t g = 0;
    if (getrandom(&g, sizeof(g), GRND_NONBLOCK) != (ssize_t)sizeof(g))
        g = time_mono_ns() ^ ((uint64_t)getpid() << 32) ^ time_real_us();
    return g ? g : 1;
}

/* -EBUSY if a live capd owns the existing object, else 0 (absent, stale or junk). */
static int check_existing(const char *objname)
{
    const uint8_t *map = NULL;
    size_t len = 0;
    struct ring_layout layout;
    int rc = map_readonly(objname, &map, &len);

    if (rc < 0)
        return 0; /* absent or unreadable junk: we replace it */
    rc = 0;
    if (layout_validate((const struct ring_header *)map, len, &layout) == 0 &&
        layout.pid != getpid() && header_alive((const struct ring_header *)map, layout.pid) == 0) {
        log_error("%s is served by a running capd (pid %d)", objname, (int)layout.pid);
        rc = -EBUSY;
    }
    munmap((void *)map, len);
    return rc;
}

int ring_writer_create(const struct ring_writer_params *p, struct ring_writer **out)
{
    struct ring_writer *w = NULL;
    struct ring_header *h;
    uint64_t slots_end, total;
    int fd = -1;
    int rc;

    *out = NULL;
    if (!ring_prefix_valid(p->prefix) || !ring_name_valid(p->name) ||
        p->slot_count < RING_MIN_SLOTS || p->slot_count > RING_MAX_SLOTS ||
        p->slot_size < RING_MIN_SLOT_SIZE || p->slot_size > RING_MAX_SLOT_SIZE || p->width == 0 ||
        p->height == 0 || p->width > RING_MAX_DIMENSION || p->height > RING_MAX_DIMENSION)
        return -EINVAL;

    w = xcalloc(1, sizeof(*w));
    rc = ring_object_name(w->objname, sizeof(w->objname), p->prefix, p->name, NULL);
    if (rc < 0)
        goto out;
    rc = check_existing(w->objname);
    if (rc < 0)
        goto out;

    w->slot_count = p->slot_count;
    w->slot_size = (uint32_t)round_up_pow2(p->slot_size, PAGE_SIZE_ASSUMED);
    slots_end = sizeof(struct ring_header) + (uint64_t)w->slot_count * sizeof(struct ring_slot);
    total = round_up_pow2(slots_end, PAGE_SIZE_ASSUMED) + (uint64_t)w->slot_count * w->slot_size;

    /* A stale object (dead capd) is replaced by a fresh one, never reused:
     * readers still mapping the old one see it die and re-open the name. */
    if (shm_unlink(w->objname) < 0 && errno != ENOENT) {
        rc = -errno;
        goto out;
    }
    fd = shm_open(w->objname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    w->created = 1;
    /* The umask may have narrowed the mode; the contract is exactly 0640. */
    if (fchmod(fd, 0640) < 0 || ring_chown_fd(fd, p->owner, p->group) < 0) {
        rc = -errno;
        goto out;
    }
    if (ftruncate(fd, (off_t)total) < 0) {
        rc = -errno;
        goto out;
    }
    w->map = mmap(NULL, (size_t)total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (w->map == MAP_FAILED) {
        w->map = NULL;
        rc = -errno;
        goto out;
    }
    w->map_len = (size_t)total;
    w->hdr = h = (struct ring_header *)w->map;
    w->slots = (struct ring_slot *)(w->map + sizeof(*h));
    h->version = RING_VERSION;
    h->header_size = sizeof(*h);
    h->total_size = total;
    h->generation = new_generation();
    h->slot_count = w->slot_count;
    h->slot_size = w->slot_size;
    h->slot_desc_size = sizeof(struct ring_slot);
    h->data_offset = (uint32_t)round_up_pow2(slots_end, PAGE_SIZE_ASSUMED);
    h->pid = (int32_t)getpid();
    h->width = p->width;
    h->height = p->height;
    h->fps_milli = p->fps_milli;
    snprintf(h->name, sizeof(h->name), "%s", p->name);
    snprintf(h->source, sizeof(h->source), "%s", p->source ? p->source : "");
    w->data = w->map + h->data_offset;
    w->next_seq = 1;
    atomic_store_explicit(&h->heartbeat_ns, time_mono_ns(), memory_order_relaxed);
    atomic_store_explicit(&h->state, RING_STATE_STARTING, memory_order_relaxed);
    /* Release: publishes every field above to readers that acquire the magic. */
    atomic_store_explicit(&h->magic, RING_MAGIC, memory_order_release);
    *out = w;
    w = NULL;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    ring_writer_destroy(w, 0);
    return rc;
}

uint8_t *ring_writer_begin(struct ring_writer *w, size_t *capacity)
{
    uint32_t index = (uint32_t)(w->next_seq % w->slot_count);
    struct ring_slot *slot = &w->slots[index];

    if (w->in_progress)
        ring_writer_abort(w);
    /* Mark busy first. The release fence orders this store before the data
     * stores that follow, so a reader that copies while we write sees seq
     * change and drops its copy (the seqlock writer's half). */
    atomic_store_explicit(&slot->seq, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    w->in_progress = 1;
    *capacity = w->slot_size;
    return w->data + (size_t)index * w->slot_size;
}

uint64_t ring_writer_commit(struct ring_writer *w, size_t size, const struct ring_frame_meta *meta)
{
    uint64_t seq = w->next_seq;
    struct ring_slot *slot = &w->slots[seq % w->slot_count];
    struct ring_header *h = w->hdr;

    /* Invariants: commit pairs with begin, and the frame was written inside the slot. */
    assert(w->in_progress);
    assert(size <= w->slot_size);
    w->in_progress = 0;
    /* Relaxed: these are covered by the release store of seq below. */
    atomic_store_explicit(&slot->size, (uint32_t)size, memory_order_relaxed);
    atomic_store_explicit(&slot->width, meta->width, memory_order_relaxed);
    atomic_store_explicit(&slot->height, meta->height, memory_order_relaxed);
    atomic_store_explicit(&slot->capture_us, meta->capture_us, memory_order_relaxed);
    atomic_store_explicit(&slot->flags, meta->flags, memory_order_relaxed);
    atomic_store_explicit(&slot->publish_ns, time_mono_ns(), memory_order_relaxed);
    /* Release: a reader that acquires seq == n sees the data and fields above. */
    atomic_store_explicit(&slot->seq, seq, memory_order_release);
    /* Release: a reader that acquires head == n finds slot n complete. */
    atomic_store_explicit(&h->head, seq, memory_order_release);
    w->next_seq = seq + 1;
    /* Relaxed counters: statistics only. */
    atomic_fetch_add_explicit(&h->frames_published, 1, memory_order_relaxed);
    atomic_store_explicit(&h->heartbeat_ns, time_mono_ns(), memory_order_relaxed);
    if (atomic_load_explicit(&h->state, memory_order_relaxed) == RING_STATE_STARTING)
        atomic_store_explicit(&h->state, RING_STATE_RUNNING, memory_order_relaxed);
    /* Release: a reader that read the old futex word before sleeping either sees
     * the new head or is woken by FUTEX_WAKE (the kernel compares the word). */
    atomic_fetch_add_explicit(&h->futex_word, 1, memory_order_release);
    futex_wake_all(&h->futex_word);
    return seq;
}

void ring_writer_abort(struct ring_writer *w)
{
    /* The slot stays at seq 0 (empty): readers never deliver it. */
    w->in_progress = 0;
}

int64_t ring_writer_publish(struct ring_writer *w, const uint8_t *jpeg, size_t size,
                            const struct ring_frame_meta *meta)
{
    size_t capacity;
    uint8_t *dst;

    if (size > w->slot_size) {
        ring_writer_count_drop(w);
        return -EFBIG;
    }
    dst = ring_writer_begin(w, &capacity);
    memcpy(dst, jpeg, size);
    return (int64_t)ring_writer_commit(w, size, meta);
}

void ring_writer_heartbeat(struct ring_writer *w)
{
    /* Relaxed: readers compare it against a multi-second threshold. */
    atomic_store_explicit(&w->hdr->heartbeat_ns, time_mono_ns(), memory_order_relaxed);
}

void ring_writer_set_state(struct ring_writer *w, enum ring_state state)
{
    struct ring_header *h = w->hdr;
    if (atomic_load_explicit(&h->state, memory_order_relaxed) == (uint32_t)state)
        return;
    atomic_store_explicit(&h->state, (uint32_t)state, memory_order_relaxed);
    /* Release + wake: sleeping readers look at the state at once. */
    atomic_fetch_add_explicit(&h->futex_word, 1, memory_order_release);
    futex_wake_all(&h->futex_word);
}

void ring_writer_count_drop(struct ring_writer *w)
{
    atomic_fetch_add_explicit(&w->hdr->frames_dropped, 1, memory_order_relaxed);
}

void ring_writer_set_stats(struct ring_writer *w, uint32_t fps_measured_milli, uint32_t viewers)
{
    /* Relaxed: gauges for the state report. */
    atomic_store_explicit(&w->hdr->fps_measured_milli, fps_measured_milli, memory_order_relaxed);
    atomic_store_explicit(&w->hdr->viewers, viewers, memory_order_relaxed);
}

size_t ring_writer_slot_size(const struct ring_writer *w)
{
    return w->slot_size;
}

uint64_t ring_writer_generation(const struct ring_writer *w)
{
    return w->hdr->generation;
}

void ring_writer_destroy(struct ring_writer *w, int keep)
{
    if (!w)
        return;
    if (w->hdr && atomic_load_explicit(&w->hdr->magic, memory_order_relaxed) == RING_MAGIC)
        ring_writer_set_state(w, RING_STATE_STOPPED);
    if (w->map)
        munmap(w->map, w->map_len);
    if (w->created && !keep)
        shm_unlink(w->objname);
    free(w);
}

/* ---- reader ------------------------------------------------------------------------ */

struct ring_reader {
    char prefix[RING_PREFIX_MAX + 1];
    char name[RING_NAME_MAX + 1];
    char objname[RING_PREFIX_MAX + RING_NAME_MAX + 16];
    /* The attached object; geometry copied once at attach and trusted from then on. */
    const uint8_t *map;
    size_t map_len;
    const struct ring_header *hdr;
    const struct ring_slot *slots;
    const uint8_t *data;
    struct ring_layout layout;
    int gone;          /* capd behind the attached object is gone */
    int gone_reported; /* a caller has been told */
    uint64_t last_seq; /* last frame delivered from this generation */
    uint64_t last_generation;
    struct ring_reader_stats stats;
};

struct ring_reader *ring_reader_create(const char *prefix, const char *name)
{
    struct ring_reader *r = xcalloc(1, sizeof(*r));
    snprintf(r->prefix, sizeof(r->prefix), "%s", prefix);
    snprintf(r->name, sizeof(r->name), "%s", name);
    if (ring_object_name(r->objname, sizeof(r->objname), r->prefix, r->name, NULL) < 0)
        r->objname[0] = '\0';
    return r;
}

static void reader_detach(struct ring_reader *r)
{
    if (r->map)
        munmap((void *)r->map, r->map_len);
    r->map = NULL;
    r->hdr = NULL;
    r->slots = NULL;
    r->data = NULL;
}

void ring_reader_destroy(struct ring_reader *r)
{
    if (!r)
        return;
    reader_detach(r);
    free(r);
}

void ring_frame_free(struct ring_frame *f)
{
    free(f->data);
    memset(f, 0, sizeof(*f));
}

/* Opens the name and switches to it when it holds a different generation.
 * Returns the liveness of whatever is attached afterwards. */
static int reader_attach(struct ring_reader *r)
{
    const uint8_t *map = NULL;
    size_t len = 0;
    struct ring_layout layout;
    int rc = 0;

    if (!r->objname[0] || !ring_name_valid(r->name))
        return -ENOENT;
    for (int attempt = 0;; attempt++) {
        rc = map_readonly(r->objname, &map, &len);
        if (rc < 0)
            return rc;
        rc = layout_validate((const struct ring_header *)map, len, &layout);
        if (rc != -EAGAIN || attempt >= 20)
            break;
        /* capd is between creating the object and storing its magic. */
        munmap((void *)map, len);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (rc < 0) {
        munmap((void *)map, len);
        return rc == -EAGAIN ? -ESTALE : rc;
    }
    if (r->map && layout.generation == r->layout.generation) {
        /* Same object (or a copy of its identity): keep the current mapping. */
        munmap((void *)map, len);
    } else {
        reader_detach(r);
        r->map = map;
        r->map_len = len;
        r->layout = layout;
        r->hdr = (const struct ring_header *)map;
        r->slots = (const struct ring_slot *)(map + sizeof(struct ring_header));
        r->data = map + layout.data_offset;
        r->stats.attaches++;
    }
    rc = header_alive(r->hdr, r->layout.pid);
    r->gone = rc < 0;
    return rc;
}

static int reader_check(struct ring_reader *r)
{
    int rc;
    if (r->map && !r->gone) {
        rc = header_alive(r->hdr, r->layout.pid);
        if (rc == 0)
            return 0;
        r->gone = 1;
    }
    /* Not attached, or capd gone: look for a (new) capd under the name. */
    rc = reader_attach(r);
    if (rc == 0)
        r->gone_reported = 0;
    return rc;
}

/* Copies frame number seq. 0 on success, -EAGAIN if it is not (or no longer)
 * in its slot, -EPROTO if a field failed a bounds check. */
static int reader_copy(struct ring_reader *r, uint64_t seq, struct ring_frame *f)
{
    uint32_t index = (uint32_t)(seq % r->layout.slot_count);
    const struct ring_slot *slot = &r->slots[index];
    const uint8_t *src = r->data + (size_t)index * r->layout.slot_size;
    uint64_t s1, s2, capture_us, publish_ns;
    uint32_t size, width, height, flags;

    /* Acquire: pairs with the writer's release store of seq at commit. */
    s1 = atomic_load_explicit(&slot->seq, memory_order_acquire);
    if (s1 != seq || seq == 0)
        return -EAGAIN;
    /* Relaxed: validated by the second seq read below. */
    size = atomic_load_explicit(&slot->size, memory_order_relaxed);
    width = atomic_load_explicit(&slot->width, memory_order_relaxed);
    height = atomic_load_explicit(&slot->height, memory_order_relaxed);
    flags = atomic_load_explicit(&slot->flags, memory_order_relaxed);
    capture_us = atomic_load_explicit(&slot->capture_us, memory_order_relaxed);
    publish_ns = atomic_load_explicit(&slot->publish_ns, memory_order_relaxed);
    if (size >= 4 && size <= r->layout.slot_size) {
        if (f->capacity < size) {
            /* Grow straight to the slot size: steady state never reallocates. */
            f->data = xrealloc(f->data, r->layout.slot_size);
            f->capacity = r->layout.slot_size;
        }
        memcpy(f->data, src, size);
    }
    /* Acquire fence: the copy above happens before the re-read of seq, so a
     * writer that started overwriting during the copy is seen here. */
    atomic_thread_fence(memory_order_acquire);
    s2 = atomic_load_explicit(&slot->seq, memory_order_relaxed);
    if (s2 != s1) {
        /* The buffer may hold a mix of two frames: make sure nobody sends it. */
        f->size = 0;
        r->stats.overwritten++;
        return -EAGAIN;
    }
    /* The copy is consistent; now judge what capd wrote. */
    if (size < 4 || size > r->layout.slot_size || width == 0 || height == 0 ||
        width > RING_MAX_DIMENSION || height > RING_MAX_DIMENSION || f->data[0] != 0xFF ||
        f->data[1] != 0xD8 || f->data[size - 2] != 0xFF || f->data[size - 1] != 0xD9) {
        f->size = 0;
        r->stats.rejected++;
        return -EPROTO;
    }
    f->size = size;
    f->seq = seq;
    f->generation = r->layout.generation;
    f->capture_us = capture_us;
    f->publish_ns = publish_ns;
    f->width = width;
    f->height = height;
    f->flags = flags & RING_FRAME_CARD; /* only known bits */
    return 0;
}

/* Delivers the newest frame if it is newer than the last delivered one.
 * 0 delivered, -EAGAIN nothing (new) to deliver. */
static int reader_take_newest(struct ring_reader *r, struct ring_frame *f, int only_new)
{
    for (int attempt = 0; attempt < COPY_ATTEMPTS; attempt++) {
        /* Acquire: pairs with the writer's release store of head. */
        uint64_t head = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
        int rc;

        if (head == 0)
            return -EAGAIN;
        if (only_new && r->last_generation == r->layout.generation && head == r->last_seq)
            return -EAGAIN;
        rc = reader_copy(r, head, f);
        if (rc == 0) {
            r->last_seq = head;
            r->last_generation = r->layout.generation;
            r->stats.frames++;
            return 0;
        }
        if (rc == -EPROTO) {
            /* Skip this frame for good; a hostile slot must not spin us. */
            r->last_seq = head;
            r->last_generation = r->layout.generation;
            return -EAGAIN;
        }
        /* Overwritten while copying: a newer head exists, take that one. */
    }
    return -EAGAIN;
}

static uint64_t ms_to_ns(uint64_t ms)
{
    return ms * 1000000u;
}

static int reader_next(struct ring_reader *r, struct ring_frame *f, int timeout_ms,
                       const volatile int *stop)
{
    uint64_t deadline = time_mono_ns() + ms_to_ns(timeout_ms > 0 ? (uint64_t)timeout_ms : 0);
    int alive_checked = 0; /* capd's pid was checked after the last futex timeout */

    for (;;) {
        uint64_t now;
        uint32_t word;
        int rc;

        if (stop && *stop)
            return -EINTR;
        if (!r->map || r->gone) {
            rc = reader_check(r);
            if (rc < 0) {
                if (!r->gone_reported) {
                    r->gone_reported = 1;
                    return rc;
                }
                now = time_mono_ns();
                if (now >= deadline)
                    return rc;
                uint64_t nap = deadline - now;
                if (nap > ms_to_ns(REATTACH_POLL_MS))
                    nap = ms_to_ns(REATTACH_POLL_MS);
                struct timespec ts = {(time_t)(nap / 1000000000u), (long)(nap % 1000000000u)};
                nanosleep(&ts, NULL);
                continue;
            }
        }
        /* Acquire: read the word before looking for a frame, so a publish that
         * lands between the look and the FUTEX_WAIT changes the word and the
         * kernel refuses to sleep (no lost wake-up). */
        word = atomic_load_explicit(&r->hdr->futex_word, memory_order_acquire);
        if (atomic_load_explicit(&r->hdr->state, memory_order_relaxed) == RING_STATE_STOPPED) {
            r->gone = 1;
            continue;
        }
        if (reader_take_newest(r, f, 1) == 0)
            return 0;
        now = time_mono_ns();
        if (now >= deadline) {
            if (!alive_checked && header_alive(r->hdr, r->layout.pid) < 0) {
                r->gone = 1;
                continue;
            }
            return -EAGAIN;
        }
        uint64_t wait = deadline - now;
        if (wait > ms_to_ns(LIVENESS_CHECK_MS))
            wait = ms_to_ns(LIVENESS_CHECK_MS);
        rc = futex_wait_shared(&r->hdr->futex_word, word, wait);
        alive_checked = rc == -ETIMEDOUT;
        if (alive_checked && header_alive(r->hdr, r->layout.pid) < 0)
            r->gone = 1;
    }
}

static int reader_latest(struct ring_reader *r, struct ring_frame *f)
{
    int rc = reader_check(r);
    if (rc < 0)
        return rc;
    return reader_take_newest(r, f, 0);
}

static int reader_info(struct ring_reader *r, struct ring_info *info)
{
    const struct ring_header *h;
    uint64_t beat, now;
    int rc = reader_check(r);

    memset(info, 0, sizeof(*info));
    if (rc < 0 && !r->map)
        return rc;
    h = r->hdr;
    assert(h != NULL); /* set with map (reader_attach), and reader_check() leaves none without it */
    info->generation = r->layout.generation;
    info->pid = r->layout.pid;
    /* Header fields are untrusted: clamp what is reported. */
    info->width = h->width <= RING_MAX_DIMENSION ? h->width : 0;
    info->height = h->height <= RING_MAX_DIMENSION ? h->height : 0;
    info->fps_milli = h->fps_milli <= 1000000u ? h->fps_milli : 0;
    info->slot_count = r->layout.slot_count;
    info->slot_size = r->layout.slot_size;
    /* Relaxed loads: gauges and counters for display. */
    info->state = atomic_load_explicit(&h->state, memory_order_relaxed);
    if (info->state > RING_STATE_STOPPED)
        info->state = RING_STATE_STOPPED + 1;
    info->fps_measured_milli = atomic_load_explicit(&h->fps_measured_milli, memory_order_relaxed);
    if (info->fps_measured_milli > 1000000u)
        info->fps_measured_milli = 0;
    info->viewers = atomic_load_explicit(&h->viewers, memory_order_relaxed);
    info->frames_published = atomic_load_explicit(&h->frames_published, memory_order_relaxed);
    info->frames_dropped = atomic_load_explicit(&h->frames_dropped, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&h->head, memory_order_relaxed);
    if (head) {
        const struct ring_slot *slot = &r->slots[head % r->layout.slot_count];
        uint32_t fw = atomic_load_explicit(&slot->width, memory_order_relaxed);
        uint32_t fh = atomic_load_explicit(&slot->height, memory_order_relaxed);
        if (fw && fh && fw <= RING_MAX_DIMENSION && fh <= RING_MAX_DIMENSION) {
            info->frame_width = fw;
            info->frame_height = fh;
        }
    }
    beat = atomic_load_explicit(&h->heartbeat_ns, memory_order_relaxed);
    now = time_mono_ns();
    info->heartbeat_age_ms = now > beat ? (now - beat) / 1000000u : 0;
    /* Copy the string byte by byte and keep only printable ASCII: it ends up in JSON. */
    size_t n = 0;
    for (size_t i = 0; i < sizeof(h->source) && i < sizeof(info->source) - 1; i++) {
        char c = h->source[i];
        if (!c)
            break;
        info->source[n++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? c : '?';
    }
    info->source[n] = '\0';
    return rc;
}

/* ---- the guarded entry points ------------------------------------------------------------ */

/* A process with write access shrank the object under us (SIGBUS): drop the
 * mapping, consider capd gone, and look for a proper object again next time. */
static int reader_lost(struct ring_reader *r, struct ring_frame *f)
{
    reader_detach(r);
    r->gone = 1;
    r->stats.rejected++;
    if (f)
        f->size = 0; /* the copy may have stopped half way */
    return -EPROTO;
}

int ring_reader_check(struct ring_reader *r)
{
    BUSGUARD_RETURN(reader_check(r), reader_lost(r, NULL));
}

int ring_reader_next(struct ring_reader *r, struct ring_frame *f, int timeout_ms,
                     const volatile int *stop)
{
    BUSGUARD_RETURN(reader_next(r, f, timeout_ms, stop), reader_lost(r, f));
}

int ring_reader_latest(struct ring_reader *r, struct ring_frame *f)
{
    BUSGUARD_RETURN(reader_latest(r, f), reader_lost(r, f));
}

int ring_reader_info(struct ring_reader *r, struct ring_info *info)
{
    BUSGUARD_RETURN(reader_info(r, info), reader_lost(r, NULL));
}

void ring_reader_stats(const struct ring_reader *r, struct ring_reader_stats *out)
{
    *out = r->stats;
}

uint64_t ring_reader_generation(const struct ring_reader *r)
{
    return r->map ? r->layout.generation : 0;
}
