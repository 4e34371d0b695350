/* presence.h - the viewer-presence object: responders claim slots with CAS, capd counts them. */
#ifndef CAPD_PRESENCE_H
#define CAPD_PRESENCE_H

/*
 * "/<prefix><name>.viewers", mode 0660, created fresh by capd at every start
 * and unlinked at a clean stop. Responders (the web server's group) map it
 * read-write; capd treats its content as untrusted: it only counts slots,
 * using its own slot count and clock, so garbage can skew the viewer count
 * and nothing else.
 *
 *   0    struct presence_header (64 bytes)
 *   64   struct presence_slot[PRESENCE_SLOTS] (16 bytes each)
 *
 * A viewer claims a free slot by CAS of owner from 0 (or from a stale owner) to
 * a token unique to it, stores beat_ns (CLOCK_MONOTONIC) at least every
 * PRESENCE_BEAT_MS while it watches, and CASes owner back to 0 when it leaves.
 * A viewer killed without leaving stops beating; its slot counts as free after
 * PRESENCE_STALE_MS. No locks: a process killed at any instant holds nothing.
 */

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#define PRESENCE_MAGIC    UINT64_C(0x31525753454e4550) /* "PENSWR1" little-endian */
#define PRESENCE_VERSION  1u
#define PRESENCE_SLOTS    4096u
#define PRESENCE_BEAT_MS  1000u
#define PRESENCE_STALE_MS 5000u
#define PRESENCE_SUFFIX   ".viewers"

struct presence_header {
    _Atomic uint64_t magic; /* stored last (release) */
    uint32_t version;
    uint32_t slot_count;    /* PRESENCE_SLOTS */
    uint64_t generation;    /* the ring generation it belongs to */
    uint8_t reserved[40];
};

struct presence_slot {
    _Atomic uint64_t owner;   /* 0 = free, else the claiming viewer's token */
    _Atomic uint64_t beat_ns; /* CLOCK_MONOTONIC of the owner's last beat */
};

struct presence;

/* capd: creates the object (replacing any old one), mode 0660, handed to
 * `owner` and `group` where they are set (neither 0 nor -1). Returns 0 or -errno. Not
 * thread-safe. Destroy with presence_destroy(). */
int presence_create(const char *prefix, const char *name, uid_t owner, gid_t group,
                    uint64_t generation, struct presence **out);
/* capd: the number of slots with a fresh beat, in [0, PRESENCE_SLOTS]. */
uint32_t presence_count(struct presence *p);
/* Unmaps; unlinks the object when this process created it and keep is 0.
 * Accepts NULL and half-built objects. */
void presence_destroy(struct presence *p, int keep);

/* Responder: maps an existing object read-write. Returns 0, -ENOENT (capd not
 * running), -EACCES (no write permission: the web server is not in capd's
 * --group), -EPROTO (bad magic, version or size). Close with presence_destroy().
 * One struct presence per thread: the calls below are not thread-safe on the
 * same object (the shared memory itself is safe across processes). */
int presence_open(const char *prefix, const char *name, struct presence **out);
/* The generation the object belongs to (0 when unknown). */
uint64_t presence_generation(const struct presence *p);
/* One viewer's claim on a slot. A process that serves several viewers from
 * one mapping keeps one claim per viewer. Zero-initialise. */
struct presence_claim {
    uint64_t token; /* non-zero while claimed */
    uint32_t index;
    uint64_t last_beat_ns;
};
/* Claims a slot. Returns 0, -ENOSPC when every slot is held (c stays unclaimed), or
 * -EPROTO when the object shrank under us (SIGBUS, caught by busguard.h): from
 * then on this struct presence is left alone: claims fail, counts read 0. The
 * same guard protects capd's presence_count() and the calls below. */
int presence_claim(struct presence *p, struct presence_claim *c);
/* Refreshes the claim's beat (at most every 250 ms; cheap to call per frame), and
 * claims anew when unclaimed or when the slot was taken over meanwhile. */
void presence_refresh(struct presence *p, struct presence_claim *c);
/* Gives the slot back; safe on an unclaimed claim. */
void presence_release(struct presence *p, struct presence_claim *c);

/* The same for a mapping that serves one viewer, with the claim kept inside.
 * presence_join returns 0 or -ENOSPC. */
int presence_join(struct presence *p);
void presence_beat(struct presence *p);
void presence_leave(struct presence *p);

#endif
