/* SPDX-License-Identifier: MIT */
/* pblock.h: the layout of a flat parameter block. A model's parameters
 * (and its non-trained buffers such as BatchNorm running statistics) live
 * in ONE contiguous float array; each named tensor is a range of it. The
 * gradients, momentum buffers and any other optimiser state use the same
 * layout, so zeroing, the update, the global norm, an allreduce and a
 * checkpoint are flat loops or single writes (after llm.c's parameter
 * block). Names are the checkpoint keys (torchvision's for the ResNet).
 *
 * Entries are laid out in the order they are added; a safetensors file is
 * written in that order. */
#ifndef SFC_PBLOCK_H
#define SFC_PBLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

struct sfc_pentry {
    char *name;                /* checkpoint key (owned) */
    size_t off;                /* floats from the block start */
    size_t numel;
    int ndim;                  /* 1..4 */
    int64_t shape[4];
    unsigned buffer : 1;       /* 1: saved and loaded, never trained */
};

struct sfc_pblock {
    int n, cap;
    struct sfc_pentry *e;
    size_t size;               /* floats in the block */
};

void sfc_pblock_init(struct sfc_pblock *b);
void sfc_pblock_release(struct sfc_pblock *b);
/* Append an entry (name is copied) and return its offset. */
size_t sfc_pblock_add(struct sfc_pblock *b, const char *name, int buffer,
                      int ndim, const int64_t *shape);
/* The entry called name, or NULL. */
const struct sfc_pentry *sfc_pblock_find(const struct sfc_pblock *b,
                                         const char *name);

/* Fill block from st. The key of entry e is prefix + e->name. Keys of st
 * that do not start with prefix belong to someone else and are skipped.
 * Among those that do, a key whose remainder starts with one of the
 * NULL-terminated ignore prefixes (e.g. "fc.") or ends in
 * "num_batches_tracked" is skipped; any other key that is not an entry is
 * unexpected. Missing keys, unexpected keys and shape or dtype mismatches
 * are errors (domain = the file name given) listing the keys (the first
 * few, with the count). Nothing is written to block on error. */
int sfc_pblock_load(const struct sfc_pblock *b, float *block,
                    const struct sfc_safetensors *st, const char *prefix,
                    const char *const *ignore, const char *domain);

/* Point names[i] and views[i] (i < b->n) at the entries of block:
 * names[i] = prefix + name (heap strings, free with sfc_pblock_names_free),
 * views[i] a tensor view (owns_data = 0) into block. For writing a
 * checkpoint with sfc_safetensors_write. */
void sfc_pblock_views(const struct sfc_pblock *b, const float *block,
                      const char *prefix, char **names,
                      struct sfc_tensor *views);
void sfc_pblock_names_free(char **names, int n);

/* Write the block to path (safetensors, atomic) under prefix + name. */
int sfc_pblock_save(const struct sfc_pblock *b, const float *block,
                    const char *path, const char *prefix);

#endif
