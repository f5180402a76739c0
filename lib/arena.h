/* SPDX-License-Identifier: MIT */
/* arena.h: bump allocation for activations and scratch. A model plans its
 * buffers once per input shape (one pass that only calls sfc_arena_alloc),
 * then reuses them every step; sfc_arena_reset() rewinds between steps.
 *
 * Planning without memory: an arena initialised with sfc_arena_measure()
 * hands out no memory (sfc_arena_alloc returns NULL) and only counts, so
 * the same planning code gives the size to allocate. Every allocation is
 * rounded up to SFC_ARENA_ALIGN bytes and aligned to it.
 *
 * Running out of arena is a broken invariant (the plan was wrong), so it
 * is an SFC_ASSERT failure, never a silent NULL. */
#ifndef SFC_ARENA_H
#define SFC_ARENA_H

#include <stddef.h>

#define SFC_ARENA_ALIGN 64

struct sfc_arena {
    char *base;          /* NULL in measure mode */
    size_t cap;          /* bytes */
    size_t used;         /* bytes handed out since the last reset */
    size_t peak;         /* max of used over the arena's life */
    unsigned owns : 1;   /* 1: sfc_arena_release frees base */
    unsigned measure : 1;
};

/* An arena of cap bytes over buf (caller-owned, SFC_ARENA_ALIGN-aligned,
 * owns = 0), or over a fresh aligned allocation when buf is NULL
 * (owns = 1; aborts on out of memory). */
void sfc_arena_init(struct sfc_arena *a, void *buf, size_t cap);
/* A counting arena: no memory, unlimited capacity; allocations return
 * NULL and a->peak is the size a real arena needs. */
void sfc_arena_measure(struct sfc_arena *a);
/* bytes (rounded up to SFC_ARENA_ALIGN) from the arena; aborts if they do
 * not fit. Memory is not cleared. */
void *sfc_arena_alloc(struct sfc_arena *a, size_t bytes);
/* n floats. */
static inline float *sfc_arena_floats(struct sfc_arena *a, size_t n)
{
    return (float *)sfc_arena_alloc(a, n * sizeof(float));
}
/* Rewind to empty, or to a mark taken with a->used. */
void sfc_arena_reset(struct sfc_arena *a);
void sfc_arena_reset_to(struct sfc_arena *a, size_t mark);
/* Free the buffer iff owned, then zero the struct. Safe on a zeroed one. */
void sfc_arena_release(struct sfc_arena *a);

#endif
