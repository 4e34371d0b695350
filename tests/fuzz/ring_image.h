/* ring_image.h - turns fuzz input into a ring shm object image, raw or with a plausible layout. */
#ifndef CAPD_TESTS_FUZZ_RING_IMAGE_H
#define CAPD_TESTS_FUZZ_RING_IMAGE_H

/*
 * Shared by fuzz_ring.c (in-process, heap buffer) and fuzz_ring_shm.c (a real shm object) and
 * by seedgen.c, which writes seeds in this encoding.
 *
 * Encoding of one image: a mode byte, then the payload.
 *   RING_IMAGE_RAW (bit 0 clear): the payload is the whole object, byte for byte. Exercises
 *     the layout validation with every field hostile; objects that pass are rare.
 *   RING_IMAGE_STRUCTURED (bit 0 set): the payload is the 512-byte header, then the slot
 *     table, then the data areas, all packed (missing bytes are zero). The builder forces the
 *     fields layout validation insists on (magic, version, sizes, total_size, data_offset) and
 *     folds slot_count and slot_size into small valid values, so almost every input attaches
 *     and the fuzzer spends its time on the slots, the head and the frames: what a corrupted
 *     or hostile but well-formed object can do to a reader.
 *   RING_IMAGE_LIVE (bit 1): also stamps a fresh heartbeat and this process's pid, so the
 *     reader believes capd is alive and reads frames instead of declaring it gone.
 * The remaining bits are left to the caller (fuzz_ring_shm.c uses them).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring.h"
#include "util.h"

#define RING_IMAGE_STRUCTURED 0x01u
#define RING_IMAGE_LIVE       0x02u

/* Small bounds for structured images keep each run fast (at most 8 x 8 KiB of data). */
#define RING_IMAGE_MAX_SLOTS 8u
#define RING_IMAGE_PAGE      4096u

/* Offset of the first data area for slot_count slots, as capd lays it out. */
static inline size_t ring_image_data_offset(uint32_t slot_count)
{
    return (size_t)round_up_pow2(sizeof(struct ring_header) +
                                     (uint64_t)slot_count * sizeof(struct ring_slot),
                                 RING_IMAGE_PAGE);
}

/*
 * Builds the object image for payload[0..n) in the given mode. Returns a malloc'd buffer of
 * exactly *size bytes (the caller frees it), or NULL with *size = 0 for an empty raw image.
 */
static inline uint8_t *ring_image_build(const uint8_t *payload, size_t n, unsigned mode,
                                        size_t *size)
{
    struct ring_header hdr;
    uint8_t *img;

    *size = 0;
    if (!(mode & RING_IMAGE_STRUCTURED)) {
        if (n == 0)
            return NULL;
        img = xmalloc(n);
        memcpy(img, payload, n);
        if ((mode & RING_IMAGE_LIVE) && n >= sizeof(hdr)) {
            memcpy(&hdr, img, sizeof(hdr));
            atomic_store_explicit(&hdr.heartbeat_ns, time_mono_ns(), memory_order_relaxed);
            hdr.pid = (int32_t)getpid();
            memcpy(img, &hdr, sizeof(hdr));
        }
        *size = n;
        return img;
    }

    memset(&hdr, 0, sizeof(hdr));
    memcpy(&hdr, payload, n < sizeof(hdr) ? n : sizeof(hdr));
    /* Keep valid values as they are (seeds from a real ring stay intact), fold the rest. */
    if (hdr.slot_count < RING_MIN_SLOTS || hdr.slot_count > RING_IMAGE_MAX_SLOTS)
        hdr.slot_count = RING_MIN_SLOTS + hdr.slot_count % (RING_IMAGE_MAX_SLOTS - 1);
    if (hdr.slot_size != RING_IMAGE_PAGE && hdr.slot_size != 2 * RING_IMAGE_PAGE)
        hdr.slot_size = RING_IMAGE_PAGE * (1 + hdr.slot_size % 2);
    size_t table = (size_t)hdr.slot_count * sizeof(struct ring_slot);
    size_t data_offset = ring_image_data_offset(hdr.slot_count);
    size_t data_len = (size_t)hdr.slot_count * hdr.slot_size;
    size_t total = data_offset + data_len;

    atomic_store_explicit(&hdr.magic, RING_MAGIC, memory_order_relaxed);
    hdr.version = RING_VERSION;
    hdr.header_size = sizeof(hdr);
    hdr.slot_desc_size = sizeof(struct ring_slot);
    hdr.data_offset = (uint32_t)data_offset;
    hdr.total_size = total;
    if (hdr.generation == 0)
        hdr.generation = 1;
    if (mode & RING_IMAGE_LIVE) {
        atomic_store_explicit(&hdr.heartbeat_ns, time_mono_ns(), memory_order_relaxed);
        hdr.pid = (int32_t)getpid();
        if (atomic_load_explicit(&hdr.state, memory_order_relaxed) == RING_STATE_STOPPED)
            atomic_store_explicit(&hdr.state, RING_STATE_RUNNING, memory_order_relaxed);
    }

    img = xcalloc(1, total);
    memcpy(img, &hdr, sizeof(hdr));
    if (n > sizeof(hdr)) {
        size_t k = n - sizeof(hdr) < table ? n - sizeof(hdr) : table;
        memcpy(img + sizeof(hdr), payload + sizeof(hdr), k);
    }
    if (n > sizeof(hdr) + table) {
        size_t rest = n - sizeof(hdr) - table;
        memcpy(img + data_offset, payload + sizeof(hdr) + table, rest < data_len ? rest : data_len);
    }
    *size = total;
    return img;
}

#endif
