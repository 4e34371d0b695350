/* presence.c - the viewer-presence object: responders claim slots with CAS, capd counts them. */
#include "presence.h"

#include <errno.h>
#include <setjmp.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "busguard.h"
#include "ring.h"
#include "util.h"

_Static_assert(sizeof(struct presence_header) == 64, "presence_header is 64 bytes");
_Static_assert(sizeof(struct presence_slot) == 16, "presence_slot is 16 bytes");
_Static_assert(offsetof(struct presence_header, generation) == 16, "layout");

#define PRESENCE_TOTAL                                                                             \
    (sizeof(struct presence_header) + PRESENCE_SLOTS * sizeof(struct presence_slot))
/* Beats are stored at most this often, to keep a fast stream from writing a
 * shared cache line on every frame. */
#define BEAT_MIN_INTERVAL_NS (250u * 1000000u)

struct presence {
    char objname[RING_PREFIX_MAX + RING_NAME_MAX + 16];
    int created;
    uint8_t *map;
    struct presence_header *hdr;
    struct presence_slot *slots;
    struct presence_claim own; /* viewer side: presence_join()'s claim */
    int lost;                  /* the object shrank under us (SIGBUS): left alone */
};

static _Atomic uint32_t token_counter = 1;

static uint64_t new_token(void)
{
    /* pid in the high half keeps tokens of different processes apart; relaxed:
     * only uniqueness matters. */
    uint32_t n = atomic_fetch_add_explicit(&token_counter, 1, memory_order_relaxed);
    return ((uint64_t)(uint32_t)getpid() << 32) | (n ? n : 1);
}

static int is_stale(uint64_t beat, uint64_t now)
{
    /* A beat from the future is as untrustworthy as an old one. */
    if (beat > now + 1000000000u)
        return 1;
    return now > beat && now - beat > (uint64_t)PRESENCE_STALE_MS * 1000000u;
}

int presence_create(const char *prefix, const char *name, uid_t owner, gid_t group,
                    uint64_t generation, struct presence **out)
{
    struct presence *p = xcalloc(1, sizeof(*p));
    int fd = -1;
    int rc;

    *out = NULL;
    rc = ring_object_name(p->objname, sizeof(p->objname), prefix, name, PRESENCE_SUFFIX);
    if (rc < 0)
        goto out;
    if (shm_unlink(p->objname) < 0 && errno != ENOENT) {
        rc = -errno;
        goto out;
    }
    fd = shm_open(p->objname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    p->created = 1;
    if (fchmod(fd, 0660) < 0 || ring_chown_fd(fd, owner, group) < 0 ||
        ftruncate(fd, PRESENCE_TOTAL) < 0) {
        rc = -errno;
        goto out;
    }
    p->map = mmap(NULL, PRESENCE_TOTAL, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p->map == MAP_FAILED) {
        p->map = NULL;
        rc = -errno;
        goto out;
    }
    p->hdr = (struct presence_header *)p->map;
    p->slots = (struct presence_slot *)(p->map + sizeof(struct presence_header));
    p->hdr->version = PRESENCE_VERSION;
    p->hdr->slot_count = PRESENCE_SLOTS;
    p->hdr->generation = generation;
    /* Release: the fields above are visible to whoever acquires the magic. */
    atomic_store_explicit(&p->hdr->magic, PRESENCE_MAGIC, memory_order_release);
    *out = p;
    p = NULL;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    presence_destroy(p, 0);
    return rc;
}

static uint32_t count_unguarded(struct presence *p)
{
    uint64_t now = time_mono_ns();
    uint32_t count = 0;

    for (uint32_t i = 0; i < PRESENCE_SLOTS; i++) {
        /* Relaxed: a count for decisions made over seconds. */
        uint64_t owner = atomic_load_explicit(&p->slots[i].owner, memory_order_relaxed);
        uint64_t beat = atomic_load_explicit(&p->slots[i].beat_ns, memory_order_relaxed);
        if (owner != 0 && !is_stale(beat, now))
            count++;
    }
    return count;
}

void presence_destroy(struct presence *p, int keep)
{
    if (!p)
        return;
    presence_leave(p);
    if (p->map)
        munmap(p->map, PRESENCE_TOTAL);
    if (p->created && !keep)
        shm_unlink(p->objname);
    free(p);
}

int presence_open(const char *prefix, const char *name, struct presence **out)
{
    struct presence *p = xcalloc(1, sizeof(*p));
    struct stat st;
    int fd = -1;
    int rc;

    *out = NULL;
    rc = ring_object_name(p->objname, sizeof(p->objname), prefix, name, PRESENCE_SUFFIX);
    if (rc < 0)
        goto out;
    fd = shm_open(p->objname, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (st.st_size != (off_t)PRESENCE_TOTAL) {
        rc = -EPROTO;
        goto out;
    }
    p->map = mmap(NULL, PRESENCE_TOTAL, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p->map == MAP_FAILED) {
        p->map = NULL;
        rc = -errno;
        goto out;
    }
    p->hdr = (struct presence_header *)p->map;
    p->slots = (struct presence_slot *)(p->map + sizeof(struct presence_header));
    /* Acquire: pairs with the creator's release store of the magic. */
    if (atomic_load_explicit(&p->hdr->magic, memory_order_acquire) != PRESENCE_MAGIC ||
        p->hdr->version != PRESENCE_VERSION) {
        rc = -EPROTO;
        goto out;
    }
    *out = p;
    p = NULL;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    presence_destroy(p, 0);
    return rc;
}

uint64_t presence_generation(const struct presence *p)
{
    return p->hdr ? p->hdr->generation : 0;
}

static int claim_unguarded(struct presence *p, struct presence_claim *c)
{
    uint64_t token = new_token();
    uint64_t now = time_mono_ns();
    /* Start at a token-dependent slot so that concurrent claimers spread out. */
    uint32_t start = (uint32_t)((token * 2654435761u) % PRESENCE_SLOTS);

    for (uint32_t n = 0; n < PRESENCE_SLOTS; n++) {
        uint32_t i = (start + n) % PRESENCE_SLOTS;
        struct presence_slot *slot = &p->slots[i];
        /* Relaxed loads: the CAS below decides. */
        uint64_t owner = atomic_load_explicit(&slot->owner, memory_order_relaxed);
        uint64_t beat = atomic_load_explicit(&slot->beat_ns, memory_order_relaxed);
        if (owner != 0 && !is_stale(beat, now))
            continue;
        /* A free slot gets a fresh beat before the claim, so that no other
         * claimer can mistake the new claim for a stale one. (A stale slot
         * cannot: its beat belongs to the old owner until we own it.) A rare
         * lost race is repaired by presence_refresh(), which re-claims. */
        if (owner == 0)
            atomic_store_explicit(&slot->beat_ns, now, memory_order_relaxed);
        if (atomic_compare_exchange_strong_explicit(&slot->owner, &owner, token,
                                                    memory_order_acq_rel, memory_order_relaxed)) {
            atomic_store_explicit(&slot->beat_ns, now, memory_order_relaxed);
            c->token = token;
            c->index = i;
            c->last_beat_ns = now;
            return 0;
        }
    }
    c->token = 0;
    return -ENOSPC;
}

static int refresh_unguarded(struct presence *p, struct presence_claim *c)
{
    uint64_t now = time_mono_ns();

    if (!c->token)
        return claim_unguarded(p, c);
    if (now - c->last_beat_ns < BEAT_MIN_INTERVAL_NS)
        return 0;
    c->last_beat_ns = now;
    /* Relaxed: capd judges freshness in seconds. If another viewer took the
     * slot over (we were stalled too long), claim a new one. */
    if (atomic_load_explicit(&p->slots[c->index].owner, memory_order_relaxed) != c->token)
        return claim_unguarded(p, c);
    atomic_store_explicit(&p->slots[c->index].beat_ns, now, memory_order_relaxed);
    return 0;
}

static int release_unguarded(struct presence *p, struct presence_claim *c)
{
    uint64_t expected = c->token;

    if (!c->token || !p->slots)
        return 0;
    /* Release: our last beat is not reordered after giving the slot away. */
    atomic_compare_exchange_strong_explicit(&p->slots[c->index].owner, &expected, 0,
                                            memory_order_release, memory_order_relaxed);
    c->token = 0;
    return 0;
}

/* Another process shrank the object under us (SIGBUS): stop touching it. The
 * count reads 0 and claims fail until the object is opened anew. */
static int presence_lost(struct presence *p, struct presence_claim *c)
{
    if (!p->lost)
        log_warn("%s shrank under us; ignoring it from now on", p->objname);
    p->lost = 1;
    if (c)
        c->token = 0;
    return -EPROTO;
}

/* Runs `call` under a SIGBUS guard (busguard.h); a lost object is not touched. */
#define PRESENCE_GUARDED(p, c, call)                                                               \
    do {                                                                                           \
        if ((p)->lost || !(p)->slots)                                                              \
            return -EPROTO;                                                                        \
        BUSGUARD_RETURN(call, presence_lost(p, c));                                                \
    } while (0)

static int count_guarded(struct presence *p)
{
    PRESENCE_GUARDED(p, NULL, (int)count_unguarded(p));
}

uint32_t presence_count(struct presence *p)
{
    int n = count_guarded(p);
    return n < 0 ? 0 : (uint32_t)n;
}

int presence_claim(struct presence *p, struct presence_claim *c)
{
    PRESENCE_GUARDED(p, c, claim_unguarded(p, c));
}

static int refresh_guarded(struct presence *p, struct presence_claim *c)
{
    PRESENCE_GUARDED(p, c, refresh_unguarded(p, c));
}

void presence_refresh(struct presence *p, struct presence_claim *c)
{
    refresh_guarded(p, c);
}

static int release_guarded(struct presence *p, struct presence_claim *c)
{
    PRESENCE_GUARDED(p, c, release_unguarded(p, c));
}

void presence_release(struct presence *p, struct presence_claim *c)
{
    if (release_guarded(p, c) < 0)
        c->token = 0;
}

int presence_join(struct presence *p)
{
    return p->own.token ? 0 : presence_claim(p, &p->own);
}

void presence_beat(struct presence *p)
{
    if (p->own.token)
        presence_refresh(p, &p->own);
}

void presence_leave(struct presence *p)
{
    presence_release(p, &p->own);
}
