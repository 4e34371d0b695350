/* fuzz_common.h - shared by the libFuzzer targets: invariant checks that crash loudly, a PRNG. */
#ifndef CAPD_TESTS_FUZZ_COMMON_H
#define CAPD_TESTS_FUZZ_COMMON_H

/*
 * A broken invariant must look like a crash to libFuzzer, so that it saves the input and the
 * run fails: FUZZ_CHECK prints what was expected and aborts (libFuzzer catches SIGABRT and
 * prints the stack). Asserts are not used because NDEBUG must not be able to switch them off.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* libFuzzer's entry point; declared here so -Wmissing-prototypes stays quiet. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Chunk sizes and similar choices come from a PRNG seeded by the input, not from the input
 * bytes themselves, so mutating the payload does not also reshuffle how it is fed: the
 * fuzzer explores both independently. splitmix64: tiny, and good enough for this.
 */
struct fuzz_rng {
    uint64_t state;
};

static inline uint64_t fuzz_rng_next(struct fuzz_rng *rng)
{
    uint64_t z = (rng->state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* A value in [lo, hi] (hi >= lo). */
static inline size_t fuzz_rng_range(struct fuzz_rng *rng, size_t lo, size_t hi)
{
    return lo + (size_t)(fuzz_rng_next(rng) % ((uint64_t)(hi - lo) + 1));
}

/* Consumes up to n leading bytes of *data as a little-endian number (0 for missing bytes). */
static inline uint64_t fuzz_take(const uint8_t **data, size_t *size, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i<n && * size> 0; i++) {
        v |= (uint64_t) * *data << (8 * i);
        (*data)++;
        (*size)--;
    }
    return v;
}

#endif
