/* SPDX-License-Identifier: MIT */
/* arena.c: bump allocator for activations and scratch (see arena.h). After
 * ggml's context (a buffer with an owned flag) and llm.c's one-shot
 * activation allocation; unlike ggml's release build, overflow aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "err.h"
#include "util.h"

static size_t round_up(size_t n)
{
    SFC_ASSERT(n <= SIZE_MAX - SFC_ARENA_ALIGN);
    return (n + SFC_ARENA_ALIGN - 1) & ~(size_t)(SFC_ARENA_ALIGN - 1);
}

void sfc_arena_init(struct sfc_arena *a, void *buf, size_t cap)
{
    memset(a, 0, sizeof *a);
    if (buf) {
        SFC_ASSERT((uintptr_t)buf % SFC_ARENA_ALIGN == 0);
        a->base = buf;
    } else {
        a->base = sfc_xmalloc_aligned(cap ? cap : 1);
        a->owns = 1;
    }
    a->cap = cap;
}

void sfc_arena_measure(struct sfc_arena *a)
{
    memset(a, 0, sizeof *a);
    a->cap = SIZE_MAX;
    a->measure = 1;
}

void *sfc_arena_alloc(struct sfc_arena *a, size_t bytes)
{
    size_t n = round_up(bytes);
    SFC_ASSERT(n <= a->cap - a->used); /* out of arena: the plan is wrong */
    void *p = a->measure ? NULL : a->base + a->used;
    a->used += n;
    if (a->used > a->peak) a->peak = a->used;
    return p;
}

void sfc_arena_reset(struct sfc_arena *a)
{
    a->used = 0;
}

void sfc_arena_reset_to(struct sfc_arena *a, size_t mark)
{
    SFC_ASSERT(mark <= a->used);
    a->used = mark;
}

void sfc_arena_release(struct sfc_arena *a)
{
    if (a->owns) free(a->base);
    memset(a, 0, sizeof *a);
}
