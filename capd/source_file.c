/* source_file.c - the file source: one JPEG, or a folder of JPEGs looped at the chosen fps. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jpeg_scan.h"
#include "source.h"
#include "util.h"

#define MIN_DEFAULT_SLOT (256u * 1024u)
/* Complaints about bad files are repeated at most this often. */
#define WARN_INTERVAL_NS (5u * 1000000000ull)

struct filesource {
    struct source base;
    char **paths;
    size_t count;
    size_t next;
    struct source_pacer pacer;
    uint64_t last_warn_ns;
};

static void filesource_warn(struct filesource *f, const char *path, const char *why)
{
    uint64_t now = time_mono_ns();
    if (f->last_warn_ns && now - f->last_warn_ns < WARN_INTERVAL_NS)
        return;
    f->last_warn_ns = now;
    log_warn("file: %s: %s; frame dropped", path, why);
}

/* Reads a whole file into buf. Returns its size, -EFBIG when larger than cap, or -errno. */
static ssize_t read_whole(const char *path, uint8_t *buf, size_t cap)
{
    struct stat st;
    ssize_t rc;
    size_t used = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if ((uint64_t)st.st_size > cap) {
        rc = -EFBIG;
        goto out;
    }
    while (used < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + used, (size_t)st.st_size - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            goto out;
        }
        used += (size_t)n;
    }
    rc = (ssize_t)used;
out:
    close(fd);
    return rc;
}

static int filesource_step(struct source *s, struct ring_writer *ring, int timeout_ms)
{
    struct filesource *f = (struct filesource *)s;
    const char *path;
    struct jpeg_scan_info info;
    uint64_t capture_us;
    size_t capacity;
    ssize_t n;
    uint8_t *slot;
    int rc = source_pacer_wait(&f->pacer, timeout_ms);

    if (rc <= 0)
        return rc;
    path = f->paths[f->next];
    f->next = (f->next + 1) % f->count;
    capture_us = time_real_us();
    /* Read straight into the ring slot; validate before publishing. */
    slot = ring_writer_begin(ring, &capacity);
    n = read_whole(path, slot, capacity);
    if (n < 0 || jpeg_scan_check(slot, (size_t)n, &info) != 0 || info.length != (size_t)n ||
        info.width == 0 || info.height == 0) {
        ring_writer_abort(ring);
        ring_writer_count_drop(ring);
        s->dropped++;
        filesource_warn(f, path,
                        n == -EFBIG ? "larger than a ring slot (raise --slot-size)"
                        : n < 0     ? strerror((int)-n)
                                    : "not a complete JPEG");
        return 0;
    }
    struct ring_frame_meta meta = {info.width, info.height, capture_us, 0};
    ring_writer_commit(ring, (size_t)n, &meta);
    s->frames++;
    return 1;
}

static void filesource_destroy(struct source *s)
{
    struct filesource *f = (struct filesource *)s;
    if (!f)
        return;
    for (size_t i = 0; i < f->count; i++)
        free(f->paths[i]);
    free(f->paths);
    free(f);
}

static const struct source_ops filesource_ops = {
    .kind = "file",
    .step = filesource_step,
    .destroy = filesource_destroy,
};

static int has_jpeg_suffix(const char *name)
{
    size_t n = strlen(name);
    return (n > 4 && strcasecmp(name + n - 4, ".jpg") == 0) ||
           (n > 5 && strcasecmp(name + n - 5, ".jpeg") == 0);
}

static int jpeg_entry(const struct dirent *de)
{
    return de->d_name[0] != '.' && has_jpeg_suffix(de->d_name);
}

static void add_path(struct filesource *f, const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(len);
    snprintf(p, len, "%s%s%s", dir, dir[0] && name[0] ? "/" : "", name);
    f->paths = xrealloc(f->paths, (f->count + 1) * sizeof(*f->paths));
    f->paths[f->count++] = p;
}

int source_file_create(const struct source_params *p, const char *path, struct source **out)
{
    struct filesource *f = xcalloc(1, sizeof(*f));
    struct dirent **entries = NULL;
    struct stat st;
    struct jpeg_scan_info info;
    uint8_t *probe = NULL;
    off_t largest = 0;
    ssize_t n;
    int count = 0;
    int rc;

    *out = NULL;
    f->base.ops = &filesource_ops;
    if (stat(path, &st) < 0) {
        rc = -errno;
        log_error("--source file:%s: %s", path, strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        count = scandir(path, &entries, jpeg_entry, alphasort);
        if (count < 0) {
            rc = -errno;
            log_error("--source file:%s: %s", path, strerror(errno));
            goto out;
        }
        for (int i = 0; i < count; i++)
            add_path(f, path, entries[i]->d_name);
        if (f->count == 0) {
            rc = -ENOENT;
            log_error("--source file:%s: the folder has no *.jpg or *.jpeg files", path);
            goto out;
        }
    } else if (S_ISREG(st.st_mode)) {
        add_path(f, path, "");
    } else {
        rc = -EINVAL;
        log_error("--source file:%s: not a regular file or a folder", path);
        goto out;
    }
    for (size_t i = 0; i < f->count; i++) {
        if (stat(f->paths[i], &st) == 0 && st.st_size > largest)
            largest = st.st_size;
    }
    if ((uint64_t)largest > RING_MAX_SLOT_SIZE) {
        rc = -EFBIG;
        log_error("--source file:%s: a file is larger than the %u MiB slot limit", path,
                  RING_MAX_SLOT_SIZE >> 20);
        goto out;
    }
    /* The first file sets the nominal geometry and must be a JPEG. */
    probe = xmalloc((size_t)largest + 1);
    n = read_whole(f->paths[0], probe, (size_t)largest + 1);
    if (n < 0 || jpeg_scan_check(probe, (size_t)n, &info) != 0 || info.width == 0) {
        rc = -EINVAL;
        log_error("--source file: %s is not a readable, complete JPEG", f->paths[0]);
        goto out;
    }
    f->base.geometry.width = info.width;
    f->base.geometry.height = info.height;
    f->base.geometry.min_slot_size = 0;
    /* Headroom for files that change or grow while capd runs. */
    f->base.geometry.default_slot_size = (size_t)largest + (size_t)largest / 2;
    if (f->base.geometry.default_slot_size < MIN_DEFAULT_SLOT)
        f->base.geometry.default_slot_size = MIN_DEFAULT_SLOT;
    source_pacer_init(&f->pacer, p->fps_milli);
    log_info("file source: %zu file%s, %ux%u", f->count, f->count == 1 ? "" : "s", info.width,
             info.height);
    *out = &f->base;
    f = NULL;
    rc = 0;
out:
    for (int i = 0; i < count; i++)
        free(entries[i]);
    free(entries);
    free(probe);
    filesource_destroy(f ? &f->base : NULL);
    return rc;
}
