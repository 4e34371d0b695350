/* ring.h - the shared-memory JPEG frame ring: one capd writer, any number of responder readers. */
#ifndef CAPD_RING_H
#define CAPD_RING_H

/*
 * The contract between capd and the responders
 * ==============================================
 *
 * One POSIX shared-memory object per camera, "/<prefix><name>" (prefix "capd-"
 * unless CAPD_SHM_PREFIX says otherwise; name from [a-z0-9_-]{1,64}). Layout,
 * all fields little-endian fixed width, offsets fixed by _Static_assert in
 * ring.c:
 *
 *   0                  struct ring_header   (512 bytes)
 *   512                struct ring_slot     [slot_count]  (64 bytes each)
 *   data_offset        slot_count data areas of slot_size bytes (page aligned)
 *
 * Writer protocol (capd only; no process-shared locks anywhere):
 *   1. slot = slots[n % slot_count] for the next frame number n (n >= 1);
 *   2. slot.seq = 0 ("busy"), release fence;
 *   3. the frame is written (or encoded) straight into the slot's data area;
 *   4. size, timestamps and geometry stored; slot.seq = n (release);
 *   5. header.head = n (release); header.futex_word += 1; FUTEX_WAKE on
 *      futex_word (a shared futex: readers in other processes wait on it).
 * The writer never waits for a reader. A slot is reused after slot_count more
 * frames, so a reader that is too slow sees its frame overwritten, not torn:
 *
 * Reader protocol (seqlock): read slot.seq (acquire) and require it to equal
 * the frame number wanted; copy the data out; acquire fence; read slot.seq
 * again and deliver the copy only if it did not change. Readers map the object
 * read-only, copy the geometry fields once at attach and bounds-check every
 * field they read afterwards, so a hostile or corrupted object can make a
 * reader drop frames or declare the camera offline, never crash it.
 *
 * Liveness: capd stores CLOCK_MONOTONIC in heartbeat_ns at least every
 * RING_HEARTBEAT_MS. A reader declares capd gone when the heartbeat is older
 * than RING_STALE_MS, when kill(pid, 0) says ESRCH, or when state is
 * RING_STATE_STOPPED. Every capd start creates a fresh object with a new
 * random generation; readers re-open the name and follow it, even when the
 * frame geometry or slot layout changed.
 *
 * The viewer-presence object "/<prefix><name>.viewers" lives in presence.h.
 */

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RING_MAGIC   UINT64_C(0x31474e4952445041) /* "APDRING1" read as little-endian bytes */
#define RING_VERSION 1u

#define RING_NAME_MAX       64 /* camera name length limit, without the NUL */
#define RING_PREFIX_MAX     32
#define RING_DEFAULT_PREFIX "capd-"
#define RING_MIN_SLOTS      2u
#define RING_MAX_SLOTS      256u
#define RING_DEFAULT_SLOTS  8u
#define RING_MIN_SLOT_SIZE  4096u
#define RING_MAX_SLOT_SIZE  (64u << 20)
#define RING_MAX_DIMENSION  16384u
#define RING_HEARTBEAT_MS   250u
#define RING_STALE_MS       3000u

/* What capd is doing; shown by the responder's state endpoint. */
enum ring_state {
    RING_STATE_STARTING = 0,  /* created, no frame yet */
    RING_STATE_RUNNING = 1,   /* live frames */
    RING_STATE_IDLE = 2,      /* camera released for lack of viewers (on-demand) */
    RING_STATE_NO_SIGNAL = 3, /* source lost; frames are "no signal" cards */
    RING_STATE_STOPPED = 4,   /* capd shut down; the object is about to vanish */
};

struct ring_header {
    _Atomic uint64_t magic;  /* RING_MAGIC, stored last (release) when the object is ready */
    uint32_t version;        /* RING_VERSION; any other value is rejected */
    uint32_t header_size;    /* sizeof(struct ring_header) */
    uint64_t total_size;     /* bytes in the object; must equal its st_size */
    uint64_t generation;     /* random, non-zero, new at every capd start */
    uint32_t slot_count;     /* [RING_MIN_SLOTS, RING_MAX_SLOTS] */
    uint32_t slot_size;      /* bytes per data area; multiple of 4096 */
    uint32_t slot_desc_size; /* sizeof(struct ring_slot) */
    uint32_t data_offset;    /* offset of slot 0's data area; page aligned */
    int32_t pid;             /* capd's pid */
    uint32_t width;          /* nominal geometry; frames carry their own */
    uint32_t height;
    uint32_t fps_milli; /* nominal frames per second x 1000 */
    char name[RING_NAME_MAX + 1];
    char source[63];       /* human-readable source, e.g. "testpattern" */
    uint8_t reserved0[64]; /* pads the static part to 256 bytes */
    /* Dynamic fields: written by capd while running. */
    _Atomic uint64_t heartbeat_ns; /* CLOCK_MONOTONIC of capd's last sign of life */
    _Atomic uint64_t head;         /* newest published frame number; 0 = none yet */
    _Atomic uint32_t futex_word;   /* bumped on every publish and state change */
    _Atomic uint32_t state;        /* enum ring_state */
    _Atomic uint64_t frames_published;
    _Atomic uint64_t frames_dropped;     /* oversize frames and bad source input */
    _Atomic uint32_t fps_measured_milli; /* publish rate over the last seconds x 1000 */
    _Atomic uint32_t viewers;            /* viewers seen in the presence object by capd */
    uint8_t reserved1[208];              /* pads the header to 512 bytes */
};

struct ring_slot {
    _Atomic uint64_t seq;        /* frame number held; 0 while empty or being written */
    _Atomic uint64_t capture_us; /* capture time, CLOCK_REALTIME microseconds */
    _Atomic uint64_t publish_ns; /* publish time, CLOCK_MONOTONIC nanoseconds */
    _Atomic uint32_t size;       /* JPEG bytes in the data area */
    _Atomic uint32_t width;
    _Atomic uint32_t height;
    _Atomic uint32_t flags;      /* RING_FRAME_* */
    uint32_t reserved[6];
};

/* Frame flags. A card is an image capd drew itself to say something about the
 * camera ("NO SIGNAL"), not a picture from it. */
#define RING_FRAME_CARD 1u

/* What the writer knows about a frame it publishes. */
struct ring_frame_meta {
    uint32_t width, height;
    uint64_t capture_us; /* CLOCK_REALTIME */
    uint32_t flags;      /* RING_FRAME_* */
};

/* ---- Names -------------------------------------------------------------------- */

/* 1 if name matches [a-z0-9_-]{1,64}, else 0. Safe for any NUL-terminated string. */
int ring_name_valid(const char *name);
/* 1 if prefix matches [a-z0-9_-]{1,32}, else 0. */
int ring_prefix_valid(const char *prefix);
/* The prefix in effect: CAPD_SHM_PREFIX when set and valid, else RING_DEFAULT_PREFIX.
 * Returns -EINVAL (and the default in *out) when the variable is set but invalid. */
int ring_prefix_from_env(const char **out);
/* Writes "/<prefix><name><suffix>" into buf. Returns 0, or -ENAMETOOLONG. */
int ring_object_name(char *buf, size_t len, const char *prefix, const char *name,
                     const char *suffix);
/* Lists camera names with a ring object under prefix (by reading /dev/shm), sorted.
 * Stores up to max names in names[] (each RING_NAME_MAX+1 bytes) and returns how many
 * were stored, or -errno. Entries with invalid names are skipped. */
int ring_list_cameras(const char *prefix, char (*names)[RING_NAME_MAX + 1], int max);

/* Hands an open shm object to owner and group, where they are set (neither 0
 * nor -1). Returns 0 or -errno. Shared by the ring and the presence object. */
int ring_chown_fd(int fd, uid_t owner, gid_t group);

/* ---- Writer (capd) --------------------------------------------------------------- */

struct ring_writer_params {
    const char *prefix;  /* shm name prefix */
    const char *name;    /* camera name, must pass ring_name_valid() */
    const char *source;  /* description for state; truncated to fit */
    uint32_t slot_count; /* [RING_MIN_SLOTS, RING_MAX_SLOTS] */
    uint32_t slot_size;  /* [RING_MIN_SLOT_SIZE, RING_MAX_SLOT_SIZE]; rounded up to 4096 */
    uint32_t width, height;
    uint32_t fps_milli;
    gid_t group; /* 0 or (gid_t)-1 keep the creating process's group */
    uid_t owner; /* 0 or (uid_t)-1 keep its user; else capd --user's */
};

struct ring_writer;

/* Creates the ring object, replacing a stale one left by a dead capd. Returns 0
 * and a writer in *out, or: -EBUSY when a live capd (fresh heartbeat, existing pid)
 * already serves this name, -EINVAL for bad params, -EPERM/-EACCES when the
 * object or group cannot be set up, other -errno from shm_open/ftruncate/mmap.
 * The object is created mode 0640 (owner writes, group reads), owned by
 * params->owner and params->group when they are set (neither 0 nor -1). Not thread-safe:
 * one thread drives a writer. Free with ring_writer_destroy(). */
int ring_writer_create(const struct ring_writer_params *params, struct ring_writer **out);

/* Marks the next slot busy and returns its data area (never NULL) and its
 * capacity in *capacity. The previous content of that slot is gone from now on.
 * Must be followed by ring_writer_commit() or ring_writer_abort(). */
uint8_t *ring_writer_begin(struct ring_writer *w, size_t *capacity);

/* Publishes the slot returned by ring_writer_begin() holding size bytes of JPEG
 * and wakes readers. Returns the new frame number. */
uint64_t ring_writer_commit(struct ring_writer *w, size_t size, const struct ring_frame_meta *meta);

/* Gives the slot back unpublished (it stays empty). */
void ring_writer_abort(struct ring_writer *w);

/* Copies a finished JPEG into the next slot and publishes it. Returns the frame
 * number, or -EFBIG (and counts a drop) when it does not fit in a slot. */
int64_t ring_writer_publish(struct ring_writer *w, const uint8_t *jpeg, size_t size,
                            const struct ring_frame_meta *meta);

/* Stores the heartbeat (call at least every RING_HEARTBEAT_MS). Cheap: no syscall
 * beyond clock_gettime. */
void ring_writer_heartbeat(struct ring_writer *w);
/* Changes the state and wakes readers so they notice at once. */
void ring_writer_set_state(struct ring_writer *w, enum ring_state state);
/* Counter and gauge updates shown in the state endpoint. */
void ring_writer_count_drop(struct ring_writer *w);
void ring_writer_set_stats(struct ring_writer *w, uint32_t fps_measured_milli, uint32_t viewers);
/* The slot size in bytes (after rounding). */
size_t ring_writer_slot_size(const struct ring_writer *w);
uint64_t ring_writer_generation(const struct ring_writer *w);

/* Marks the ring stopped, wakes readers, unmaps it and unlinks the object unless
 * keep is set. Accepts NULL and half-built writers. */
void ring_writer_destroy(struct ring_writer *w, int keep);

/* ---- Reader (responders) -------------------------------------------------------- */

/* A frame copied out of the ring; owned by the caller. The buffer grows as
 * needed and is reused, so steady-state reading allocates nothing. When a copy
 * fails (the frame was overwritten meanwhile, or was rejected), size is set to
 * 0: a frame with size 0 holds nothing deliverable. */
struct ring_frame {
    uint8_t *data;
    size_t size;
    size_t capacity;
    uint64_t seq;
    uint64_t generation;
    uint64_t capture_us; /* CLOCK_REALTIME */
    uint64_t publish_ns; /* CLOCK_MONOTONIC */
    uint32_t width, height;
    uint32_t flags; /* RING_FRAME_* */
};

/* Frees the frame's buffer; accepts a zeroed frame. */
void ring_frame_free(struct ring_frame *f);

/* A validated copy of the header, for state reports. */
struct ring_info {
    uint64_t generation;
    int32_t pid;
    uint32_t width, height, fps_milli;  /* nominal, from the header */
    uint32_t frame_width, frame_height; /* of the newest frame; 0 when none */
    uint32_t slot_count, slot_size;
    uint32_t state; /* enum ring_state, clamped */
    uint32_t fps_measured_milli;
    uint32_t viewers;
    uint64_t frames_published, frames_dropped;
    uint64_t heartbeat_age_ms;
    char source[64];
};

/* Reader-side counters, per reader. */
struct ring_reader_stats {
    uint64_t frames;      /* frames delivered */
    uint64_t overwritten; /* a frame changed under the copy (torn) and was dropped */
    uint64_t rejected;    /* a frame failed a bounds check and was dropped */
    uint64_t attaches;    /* successful (re)attachments */
};

struct ring_reader;

/* Creates a reader bound to a camera name (not to one object: it follows capd
 * restarts). The calls below that read the mapping run under a SIGBUS guard
 * (busguard.h): if another process shrinks the object under us they detach and
 * return -EPROTO instead of killing the process; the reader then re-attaches
 * once a valid object is back. Does not attach yet. Never NULL. Not thread-safe: one reader per
 * thread. The strings are copied. */
struct ring_reader *ring_reader_create(const char *prefix, const char *name);
void ring_reader_destroy(struct ring_reader *r); /* accepts NULL */

/* Attaches or re-attaches as needed and reports whether capd is alive.
 * Returns 0 (attached, capd alive), -ENOENT (no such ring), -ESTALE (ring
 * present but capd gone or stopped), -EPROTO (object rejected: bad magic,
 * version or layout), -EACCES, or -EAGAIN (object still being initialised). */
int ring_reader_check(struct ring_reader *r);

/* Waits up to timeout_ms for a frame newer than the last one this reader
 * delivered and copies it into f. Sleeps in FUTEX_WAIT, so waiting costs no CPU.
 * Returns 0 with a new frame; -EAGAIN when capd is alive but nothing new came in
 * time; -ENOENT/-ESTALE/-EPROTO/-EACCES as ring_reader_check() when capd is gone
 * (on the first call that notices, at once; later calls wait up to timeout_ms for
 * capd to return); -EINTR when *stop became non-zero. */
int ring_reader_next(struct ring_reader *r, struct ring_frame *f, int timeout_ms,
                     const volatile int *stop);

/* Copies the newest frame without waiting (it may be one delivered before).
 * Returns 0, -EAGAIN when there is no frame yet, or the ring_reader_check() errors. */
int ring_reader_latest(struct ring_reader *r, struct ring_frame *f);

/* Fills info from the attached ring. Returns 0, or the ring_reader_check() error. */
int ring_reader_info(struct ring_reader *r, struct ring_info *info);

void ring_reader_stats(const struct ring_reader *r, struct ring_reader_stats *out);

/* The generation of the attached ring, 0 when not attached. No syscall: cheap
 * enough for every frame. */
uint64_t ring_reader_generation(const struct ring_reader *r);

/* Name of a state for humans and JSON ("running", "idle", ...). */
const char *ring_state_name(uint32_t state);

#endif
