/* testrand.h - deterministic random numbers and end-guarded buffers for the unit tests. */
#ifndef CAPD_TESTS_TESTRAND_H
#define CAPD_TESTS_TESTRAND_H

/*
 * Header-only (static inline), for one test program each: the generator's state is per
 * program and not thread-safe. Seed it in main() so that a failure reproduces.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* Restarts the sequence; a zero seed (which xorshift never leaves) becomes 1. */
static inline void rng_seed(uint64_t seed)
{
    rng_state = seed ? seed : 1;
}

/* xorshift64*: the next 64 random bits. */
static inline uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/* A number in [0, n); n > 0. */
static inline size_t rng_below(size_t n)
{
    return (size_t)(rng_next() % n);
}

/* The top 8 bits of the next number (the best ones of xorshift64*). */
static inline uint8_t rnd8(void)
{
    return (uint8_t)(rng_next() >> 56);
}

/* A buffer whose last byte sits right before a PROT_NONE page, like the end of a driver
 * buffer: a read past the end (ours, or a library's that ASan does not see) faults. Exits
 * the test program when the kernel refuses the mapping. Free with guarded_free(). */
struct guarded {
    uint8_t *map;
    size_t map_len;
    uint8_t *data; /* len bytes, ending at the guard page */
};

static inline void guarded_alloc(struct guarded *g, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (len + page - 1) / page;

    g->map_len = (data_pages + 1) * page;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    if (mprotect(g->map + data_pages * page, page, PROT_NONE) != 0) {
        perror("mprotect");
        exit(1);
    }
    g->data = g->map + data_pages * page - len;
}

static inline void guarded_free(struct guarded *g)
{
    munmap(g->map, g->map_len);
}

#endif
