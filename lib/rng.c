/* SPDX-License-Identifier: MIT */
/* rng.c: xoshiro256** (Blackman & Vigna 2018) with splitmix64 seeding. */
#include <math.h>

#include "rng.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sfc_rng_seed(struct sfc_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sfc_rng_u64(struct sfc_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double sfc_rng_uniform(struct sfc_rng *r)
{
    return (double)(sfc_rng_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t sfc_rng_below(struct sfc_rng *r, uint64_t n)
{
    /* Rejection: discard the top partial range. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = sfc_rng_u64(r);
    while (x >= limit);
    return x % n;
}

double sfc_rng_normal(struct sfc_rng *r)
{
    double u1 = 1.0 - sfc_rng_uniform(r); /* (0, 1] */
    double u2 = sfc_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void sfc_rng_shuffle_int(struct sfc_rng *r, int *a, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)sfc_rng_below(r, (uint64_t)i + 1);
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

uint64_t sfc_rng_mix(uint64_t seed, uint64_t a, uint64_t b)
{
    return seed * 0x9E3779B97F4A7C15ULL ^ (a + 1) * 0xBF58476D1CE4E5B9ULL ^
           (b + 1) * 0x94D049BB133111EBULL;
}
