/* fuzz_ring.c - libFuzzer target: the ring reader's validation and copies over a heap object image.
 */
#include "../../capd/ring.c"

#include "fuzz_common.h"
#include "ring_image.h"

/*
 * Input: a ring object image in the encoding of ring_image.h (mode byte, payload).
 *
 * Fast and precise: no shm. The image is an exact-size heap block, so ASan reports any read
 * past the object, byte for byte (fuzz_ring_shm.c covers the real mmap path). The module's
 * .c is included to reach its statics: layout_validate() judges the image; when it passes,
 * a reader is attached to the heap block by hand, as reader_attach() would attach it to a
 * mapping, and every reader path runs against it: reader_copy() for chosen sequence numbers,
 * reader_take_newest(), ring_reader_latest(), ring_reader_next() (without waiting) and
 * ring_reader_info(). The reader's object name is emptied, so a re-attach it attempts finds
 * nothing instead of opening a real ring.
 *
 * Invariants checked (from ring.h):
 *   - layout_validate() returns 0, -EAGAIN (magic 0) or -EPROTO, and on 0 the layout fits in
 *     the object;
 *   - a delivered frame is 4..slot_size bytes, starts with SOI and ends with EOI, has a
 *     geometry within RING_MAX_DIMENSION and only known flags, and is a copy of its slot;
 *   - a failed copy leaves the frame at size 0;
 *   - ring_info values are clamped and its source string is printable, JSON-safe ASCII.
 */

static void check_frame(const struct ring_reader *r, const uint8_t *img, const struct ring_frame *f)
{
    uint32_t index = (uint32_t)(f->seq % r->layout.slot_count);
    const uint8_t *slot_data = img + r->layout.data_offset + (size_t)index * r->layout.slot_size;

    FUZZ_CHECK(f->size >= 4 && f->size <= r->layout.slot_size, "frame of %zu bytes", f->size);
    FUZZ_CHECK(f->capacity >= f->size, "capacity %zu < size %zu", f->capacity, f->size);
    FUZZ_CHECK(f->data[0] == 0xFF && f->data[1] == 0xD8 && f->data[f->size - 2] == 0xFF &&
                   f->data[f->size - 1] == 0xD9,
               "delivered frame is not SOI..EOI");
    FUZZ_CHECK(f->width >= 1 && f->width <= RING_MAX_DIMENSION && f->height >= 1 &&
                   f->height <= RING_MAX_DIMENSION,
               "geometry %ux%u", f->width, f->height);
    FUZZ_CHECK((f->flags & ~RING_FRAME_CARD) == 0, "flags %#x", f->flags);
    FUZZ_CHECK(f->generation == r->layout.generation, "generation mismatch");
    FUZZ_CHECK(memcmp(f->data, slot_data, f->size) == 0, "frame is not a copy of slot %u", index);
}

static void check_copy_result(const struct ring_reader *r, const uint8_t *img, int rc,
                              const struct ring_frame *f, const char *what)
{
    FUZZ_CHECK(rc == 0 || rc == -EAGAIN || rc == -EPROTO || rc == -ENOENT || rc == -ESTALE,
               "%s returned %d", what, rc);
    if (rc == 0)
        check_frame(r, img, f);
}

static void check_info(const struct ring_info *info)
{
    FUZZ_CHECK(info->width <= RING_MAX_DIMENSION && info->height <= RING_MAX_DIMENSION,
               "nominal %ux%u", info->width, info->height);
    FUZZ_CHECK(info->frame_width <= RING_MAX_DIMENSION && info->frame_height <= RING_MAX_DIMENSION,
               "frame %ux%u", info->frame_width, info->frame_height);
    FUZZ_CHECK(info->fps_milli <= 1000000u && info->fps_measured_milli <= 1000000u, "fps");
    FUZZ_CHECK(info->state <= RING_STATE_STOPPED + 1, "state %u", info->state);
    FUZZ_CHECK(strcmp(ring_state_name(info->state), "") != 0, "state name");
    const char *nul = memchr(info->source, '\0', sizeof(info->source));
    FUZZ_CHECK(nul != NULL, "source not terminated");
    for (const char *c = info->source; c < nul; c++)
        FUZZ_CHECK(*c >= 0x20 && *c < 0x7f && *c != '"' && *c != '\\', "source byte 0x%02x",
                   (unsigned char)*c);
}

/* Attaches r to the heap image the way reader_attach() attaches it to a mapping. */
static void attach_heap(struct ring_reader *r, const uint8_t *img, size_t size,
                        const struct ring_layout *layout)
{
    r->map = img;
    r->map_len = size;
    r->layout = *layout;
    r->hdr = (const struct ring_header *)img;
    r->slots = (const struct ring_slot *)(img + sizeof(struct ring_header));
    r->data = img + layout->data_offset;
    r->gone = header_alive(r->hdr, layout->pid) < 0;
    r->objname[0] = '\0'; /* a re-attach must not open a real ring */
}

static void run_reader(const uint8_t *img, size_t size, const struct ring_layout *layout)
{
    struct ring_reader *r = ring_reader_create("fz-", "cam");
    struct ring_frame f;
    struct ring_info info;
    const struct ring_header *h = (const struct ring_header *)img;
    uint64_t head = atomic_load_explicit(&h->head, memory_order_relaxed);
    int rc;

    memset(&f, 0, sizeof(f));
    attach_heap(r, img, size, layout);

    /* The newest frame, its predecessor, and whatever each slot claims to hold. */
    uint64_t wanted[3 + RING_MAX_SLOTS];
    size_t count = 0;
    wanted[count++] = head;
    wanted[count++] = head - 1;
    wanted[count++] = head + layout->slot_count;
    for (uint32_t i = 0; i < layout->slot_count && count < ARRAY_SIZE(wanted); i++)
        wanted[count++] = atomic_load_explicit(&r->slots[i].seq, memory_order_relaxed);
    for (size_t i = 0; i < count; i++) {
        rc = reader_copy(r, wanted[i], &f);
        if (rc == 0) {
            FUZZ_CHECK(f.seq == wanted[i], "asked for %llu, got %llu",
                       (unsigned long long)wanted[i], (unsigned long long)f.seq);
            check_frame(r, img, &f);
        } else {
            FUZZ_CHECK(rc == -EAGAIN || rc == -EPROTO, "reader_copy returned %d", rc);
            FUZZ_CHECK(rc == -EAGAIN || f.size == 0, "rejected copy left size %zu", f.size);
        }
    }

    for (int only_new = 0; only_new <= 1; only_new++) {
        rc = reader_take_newest(r, &f, only_new);
        check_copy_result(r, img, rc, &f, "reader_take_newest");
    }
    rc = ring_reader_latest(r, &f);
    check_copy_result(r, img, rc, &f, "ring_reader_latest");
    rc = ring_reader_info(r, &info);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -ESTALE, "ring_reader_info returned %d", rc);
    check_info(&info);
    if (r->map) {
        rc = ring_reader_next(r, &f, 0, NULL);
        check_copy_result(r, img, rc, &f, "ring_reader_next");
    }

    /* The heap image is ours, not a mapping: detach without munmap. */
    r->map = NULL;
    ring_reader_destroy(r);
    ring_frame_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ring_layout layout;
    size_t img_size;
    uint8_t *img;
    int rc;

    if (size < 1)
        return 0;
    img = ring_image_build(data + 1, size - 1, data[0], &img_size);
    if (!img)
        return 0;
    rc = layout_validate((const struct ring_header *)img, img_size, &layout);
    FUZZ_CHECK(rc == 0 || rc == -EAGAIN || rc == -EPROTO, "layout_validate returned %d", rc);
    if (data[0] & RING_IMAGE_STRUCTURED)
        FUZZ_CHECK(rc == 0, "a structured image was rejected (%d)", rc);
    if (rc == 0) {
        FUZZ_CHECK(layout.total_size == img_size && layout.slot_count >= RING_MIN_SLOTS &&
                       layout.slot_count <= RING_MAX_SLOTS,
                   "layout");
        FUZZ_CHECK(layout.data_offset >= sizeof(struct ring_header) +
                                             (size_t)layout.slot_count * sizeof(struct ring_slot),
                   "data area overlaps the slot table");
        FUZZ_CHECK((uint64_t)layout.data_offset + (uint64_t)layout.slot_count * layout.slot_size <=
                       img_size,
                   "data areas end past the object");
        run_reader(img, img_size, &layout);
    }
    free(img);
    return 0;
}
