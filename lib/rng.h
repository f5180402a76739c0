/* SPDX-License-Identifier: MIT */
/* rng.h: a seeded PRNG state passed explicitly (xoshiro256** seeded through
 * splitmix64). Same seed, same stream on every machine; never rand(). */
#ifndef SFC_RNG_H
#define SFC_RNG_H

#include <stdint.h>

struct sfc_rng {
    uint64_t s[4];
};

void sfc_rng_seed(struct sfc_rng *r, uint64_t seed);
uint64_t sfc_rng_u64(struct sfc_rng *r);
/* A seed for stream (a, b) of a run seeded with seed (e.g. a = purpose,
 * b = epoch or step), so each stream can be replayed on its own. */
uint64_t sfc_rng_mix(uint64_t seed, uint64_t a, uint64_t b);
/* Uniform in [0, 1) with 53 random bits. */
double sfc_rng_uniform(struct sfc_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t sfc_rng_below(struct sfc_rng *r, uint64_t n);
/* Standard normal (Box-Muller, one value per call). */
double sfc_rng_normal(struct sfc_rng *r);
/* Fisher-Yates shuffle of n ints. */
void sfc_rng_shuffle_int(struct sfc_rng *r, int *a, int n);

#endif
