/* fuzz_ring_shm.c - libFuzzer target: the ring reader against hostile bytes in a real shm object.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "ring.h"
#include "ring_image.h"

/*
 * The reader's real path: shm_open, fstat, mmap read-only, validate, copy. The object is a
 * private one ("/[$CAPD_SHM_PREFIX]fz<pid>-cam"), written from the input, and the reader only
 * uses the public API. The mapping is not on the heap, so ASan does not watch it: a read past
 * the end of the object shows up as SIGSEGV or SIGBUS, which libFuzzer reports as a crash.
 *
 * Input: a mode byte, then (when the mode asks for a second object) a 16-bit split point, then
 * the payload. Mode bits:
 *   0-1  how the first object is built from the payload (ring_image.h: structured, live);
 *   2-3  what happens after the reader has used the first object:
 *          0 nothing;
 *          1 replaced: the name is unlinked and a new object created from the second image
 *            (what a capd restart with other settings does);
 *          2 overwritten in place with the second image's bytes, size kept (a process with
 *            write access scribbling over the ring);
 *          3 resized in place to the second image's size, then overwritten (the same process
 *            truncating the object under the reader's mapping);
 *        then the reader is used again;
 *   4-5  how the second object is built.
 * A first object with magic 0 would make each attach retry for 20 ms (capd between creating
 * and initialising it); the magic is made non-zero so runs stay fast. fuzz_ring.c covers that
 * path without waiting.
 *
 * Action 3 makes the reader touch pages past the new end: the SIGBUS that raises must be
 * caught by the reader's guard (busguard.h) and turned into -EPROTO.
 *
 * Invariants checked: no crash, no out-of-bounds read; every call returns one of the errors
 * ring.h lists; a delivered frame is 4 bytes or more, SOI..EOI, with a sane geometry.
 */

#define ACTION_NONE      0u
#define ACTION_REPLACE   1u
#define ACTION_OVERWRITE 2u
#define ACTION_RESIZE    3u

static char shm_prefix[RING_PREFIX_MAX + 1];
static char shm_object[RING_PREFIX_MAX + RING_NAME_MAX + 16];
static const char camera[] = "cam";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *outer = getenv("CAPD_SHM_PREFIX");

    (void)argc;
    (void)argv;
    if (!outer || !ring_prefix_valid(outer) || strlen(outer) > 16)
        outer = "";
    snprintf(shm_prefix, sizeof(shm_prefix), "%sfz%d-", outer, (int)getpid());
    FUZZ_CHECK(ring_prefix_valid(shm_prefix), "prefix %s", shm_prefix);
    FUZZ_CHECK(ring_object_name(shm_object, sizeof(shm_object), shm_prefix, camera, NULL) == 0,
               "object name");
    return 0;
}

/* Writes img[0..size) as the object's content; create makes a new object, else resizes. */
static void write_object(const uint8_t *img, size_t size, int create)
{
    int fd = shm_open(shm_object, O_RDWR | (create ? O_CREAT | O_EXCL : 0), 0600);
    FUZZ_CHECK(fd >= 0, "shm_open %s: %s", shm_object, strerror(errno));
    FUZZ_CHECK(ftruncate(fd, (off_t)size) == 0, "ftruncate: %s", strerror(errno));
    FUZZ_CHECK(size == 0 || pwrite(fd, img, size, 0) == (ssize_t)size, "pwrite: %s",
               strerror(errno));
    close(fd);
}

/* Overwrites the object's bytes without changing its size. */
static void overwrite_object(const uint8_t *img, size_t size)
{
    int fd = shm_open(shm_object, O_RDWR, 0);
    struct stat st;

    FUZZ_CHECK(fd >= 0 && fstat(fd, &st) == 0, "shm_open %s: %s", shm_object, strerror(errno));
    size_t n = (size_t)st.st_size < size ? (size_t)st.st_size : size;
    FUZZ_CHECK(n == 0 || pwrite(fd, img, n, 0) == (ssize_t)n, "pwrite: %s", strerror(errno));
    close(fd);
}

static uint8_t *build(const uint8_t *payload, size_t n, unsigned mode, size_t *size)
{
    uint8_t *img = ring_image_build(payload, n, mode, size);
    if (img && *size >= sizeof(uint64_t) && memcmp(img, "\0\0\0\0\0\0\0\0", 8) == 0)
        img[0] = 1;
    return img;
}

static void check_rc(int rc, const char *what)
{
    FUZZ_CHECK(rc == 0 || rc == -EAGAIN || rc == -ENOENT || rc == -ESTALE || rc == -EPROTO ||
                   rc == -EACCES,
               "%s returned %d", what, rc);
}

static void check_frame(int rc, const struct ring_frame *f, const char *what)
{
    check_rc(rc, what);
    if (rc != 0)
        return;
    FUZZ_CHECK(f->size >= 4 && f->size <= RING_MAX_SLOT_SIZE && f->size <= f->capacity,
               "%s: frame of %zu bytes", what, f->size);
    FUZZ_CHECK(f->data[0] == 0xFF && f->data[1] == 0xD8 && f->data[f->size - 2] == 0xFF &&
                   f->data[f->size - 1] == 0xD9,
               "%s: frame is not SOI..EOI", what);
    FUZZ_CHECK(f->width >= 1 && f->width <= RING_MAX_DIMENSION && f->height >= 1 &&
                   f->height <= RING_MAX_DIMENSION,
               "%s: geometry %ux%u", what, f->width, f->height);
}

/* Every reader entry point once; none may wait (timeout 0). */
static void use_reader(struct ring_reader *r, struct ring_frame *f)
{
    struct ring_info info;
    struct ring_reader_stats stats;
    int rc;

    check_rc(ring_reader_check(r), "ring_reader_check");
    check_frame(ring_reader_latest(r, f), f, "ring_reader_latest");
    rc = ring_reader_info(r, &info);
    check_rc(rc, "ring_reader_info");
    FUZZ_CHECK(info.state <= RING_STATE_STOPPED + 1, "state %u", info.state);
    FUZZ_CHECK(memchr(info.source, '\0', sizeof(info.source)) != NULL, "source");
    check_frame(ring_reader_next(r, f, 0, NULL), f, "ring_reader_next");
    ring_reader_stats(r, &stats);
    (void)ring_reader_generation(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ring_frame f;
    struct ring_reader *r;
    uint8_t *first, *second = NULL;
    size_t first_size, second_size = 0, split;
    unsigned mode, action;

    if (size < 1)
        return 0;
    mode = data[0];
    action = (mode >> 2) & 3;
    data++;
    size--;
    split = size;
    if (action != ACTION_NONE) {
        split = (size_t)fuzz_take(&data, &size, 2);
        if (split > size)
            split = size;
    }
    first = build(data, split, mode & 3, &first_size);
    if (action != ACTION_NONE)
        second = build(data + split, size - split, (mode >> 4) & 3, &second_size);

    shm_unlink(shm_object); /* a previous input that crashed may have left it */
    write_object(first, first_size, 1);
    memset(&f, 0, sizeof(f));
    r = ring_reader_create(shm_prefix, camera);
    use_reader(r, &f);

    switch (action) {
    case ACTION_REPLACE:
        shm_unlink(shm_object);
        write_object(second, second_size, 1);
        break;
    case ACTION_OVERWRITE:
        overwrite_object(second, second_size);
        break;
    case ACTION_RESIZE:
        write_object(second, second_size, 0);
        break;
    default:
        break;
    }
    if (action != ACTION_NONE)
        use_reader(r, &f);

    ring_reader_destroy(r);
    ring_frame_free(&f);
    shm_unlink(shm_object);
    free(first);
    free(second);
    return 0;
}
