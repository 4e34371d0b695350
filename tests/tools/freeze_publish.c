/* freeze_publish.c - stops capd with SIGSTOP while it is writing a slot, so a test can kill it mid-publish. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ring.h"
#include "util.h"

/*
 * Usage: freeze_publish SHM_PATH PID TIMEOUT_MS
 *
 * Watches the ring at SHM_PATH (e.g. /dev/shm/capd-default) read-only. A publish in
 * progress shows as the slot after the newest frame holding seq 0 once the ring has
 * wrapped (ring.h: the writer zeroes seq, fills the slot, then stores the new seq).
 * When it sees one, it stops PID, waits until the kernel reports it stopped, and
 * looks again: still busy means PID is frozen mid-publish. Exit 0 then (PID left
 * stopped); exit 1 with PID running when TIMEOUT_MS passes first; exit 2 on errors.
 * A shell loop doing the same forks for every look and catches a 1-ms window rarely.
 */

static int process_stopped(pid_t pid)
{
    char path[64], buf[256], *p;
    FILE *f;
    int stopped = 0;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) != NULL && p[1] == ' ')
        stopped = p[2] == 'T' || p[2] == 't';
    fclose(f);
    return stopped;
}

/* 1 when the slot after head is being written. */
static int publish_in_progress(const struct ring_header *h, const struct ring_slot *slots,
                               uint32_t n)
{
    /* Acquire: the seq we read belongs to the head we read, or to a later publish. */
    uint64_t head = atomic_load_explicit(&h->head, memory_order_acquire);
    if (head < n)
        return 0;
    return atomic_load_explicit(&slots[(head + 1) % n].seq, memory_order_acquire) == 0;
}

int main(int argc, char **argv)
{
    const struct ring_header *h;
    const struct ring_slot *slots;
    struct stat st;
    uint64_t deadline;
    uint32_t n;
    pid_t pid;
    void *map;
    int fd;

    if (argc != 4) {
        fprintf(stderr, "usage: freeze_publish SHM_PATH PID TIMEOUT_MS\n");
        return 2;
    }
    pid = (pid_t)atoi(argv[2]);
    deadline = time_mono_ns() + (uint64_t)atoi(argv[3]) * 1000000u;
    fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(struct ring_header)) {
        fprintf(stderr, "freeze_publish: %s: %s\n", argv[1], fd < 0 ? strerror(errno) : "too small");
        return 2;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        fprintf(stderr, "freeze_publish: mmap: %s\n", strerror(errno));
        return 2;
    }
    h = map;
    n = h->slot_count;
    if (n < 2 || sizeof(*h) + (size_t)n * sizeof(struct ring_slot) > (size_t)st.st_size) {
        fprintf(stderr, "freeze_publish: %s: not a ring\n", argv[1]);
        return 2;
    }
    slots = (const struct ring_slot *)(h + 1);
    while (time_mono_ns() < deadline) {
        struct timespec nap = {0, 100000}; /* 0.1 ms: a publish's busy window is ~1 ms */
        if (!publish_in_progress(h, slots, n)) {
            nanosleep(&nap, NULL);
            continue;
        }
        if (kill(pid, SIGSTOP) < 0)
            return 2;
        for (int i = 0; i < 1000 && process_stopped(pid) == 0; i++)
            nanosleep(&nap, NULL);
        if (publish_in_progress(h, slots, n))
            return 0;
        kill(pid, SIGCONT);
    }
    return 1;
}
