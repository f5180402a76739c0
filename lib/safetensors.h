/* SPDX-License-Identifier: MIT */
/* safetensors.h: checkpoints in the safetensors format (8-byte little-
 * endian header length, JSON header, raw little-endian data). Dtypes F32
 * and I64 (BatchNorm's num_batches_tracked). The header is validated:
 * JSON well formed, every offset in range, no overlap and no gap, shapes
 * consistent with byte sizes. Files saved by the safetensors Python package
 * (torch or numpy) load, and ours load there. Writes are atomic and put
 * tensors in the order given (a model writes its parameter block order). */
#ifndef SFC_SAFETENSORS_H
#define SFC_SAFETENSORS_H

#include "tensor.h"

struct sfc_safetensors {
    int n;
    char **names;
    struct sfc_tensor *tensors; /* each owns its data */
    int nmeta;                  /* "__metadata__" string pairs */
    char **meta_keys, **meta_values;
};

/* Read a whole checkpoint. Tensors come back in data order (the order a
 * writer gave), each in its own 64-byte aligned buffer; names and
 * metadata are copies. Errors, as "<path>: ...": cannot open, truncated
 * file or header, header size over 100 MB, "header: malformed JSON at byte
 * N: ...", duplicate key, "tensor '<name>': unsupported dtype 'F16' ...",
 * bad shape or data_offsets, size not matching the shape, overlap, gap,
 * bytes after the last tensor, non-string metadata. out is zeroed on
 * failure. */
int sfc_safetensors_read(const char *path, struct sfc_safetensors *out);
/* The tensor called name, or NULL (no error set: callers list keys). */
const struct sfc_tensor *sfc_safetensors_get(const struct sfc_safetensors *s,
                                             const char *name);
/* Metadata value for key, or NULL. */
const char *sfc_safetensors_meta(const struct sfc_safetensors *s,
                                 const char *key);
void sfc_safetensors_release(struct sfc_safetensors *s);

/* Write n tensors (F32 or I64; views are fine) and nmeta metadata pairs,
 * atomically. The header lists "__metadata__" first (omitted when nmeta
 * is 0), then the tensors; data follows in the order given. Refused before
 * anything is written: other dtypes (naming the tensor), empty, duplicate
 * or "__metadata__" names, duplicate metadata keys. */
int sfc_safetensors_write(const char *path, int n, const char *const *names,
                          const struct sfc_tensor *const *tensors, int nmeta,
                          const char *const *meta_keys,
                          const char *const *meta_values);

#endif
