/* SPDX-License-Identifier: MIT */
/* npy.h: NumPy .npy and .npz files (the exchange format of every
 * intermediate tensor). Supported: float32, float16 (as SFC_F16 bits),
 * uint8, int32, int64; C order;
 * little endian. Reading accepts what np.save, np.savez and
 * np.savez_compressed write (format versions 1.0, 2.0 and 3.0; stored and
 * deflated zip members, zip64). Big-endian data, Fortran order, object or
 * other dtypes, truncated or oversized headers, and data shorter or longer
 * than the shape says are rejected with "<file>: <problem>".
 * Writes are atomic (lib/atomic.h). */
#ifndef SFC_NPY_H
#define SFC_NPY_H

#include <stddef.h>

#include "tensor.h"

/* Read one .npy file into out (owns its data). */
int sfc_npy_read(const char *path, struct sfc_tensor *out);
/* Parse an .npy image held in memory; name is used in messages. */
int sfc_npy_read_mem(const char *name, const void *buf, size_t n,
                     struct sfc_tensor *out);
/* Serialise t as .npy (version 1.0) into a fresh heap buffer. */
int sfc_npy_encode(const struct sfc_tensor *t, char **buf_out, size_t *n_out);
/* Write t to path as .npy, atomically. */
int sfc_npy_write(const char *path, const struct sfc_tensor *t);

/* A set of named arrays. */
struct sfc_npz {
    int n;
    char **names;               /* without the ".npy" suffix */
    struct sfc_tensor *arrays;  /* each owns its data */
    char *path;                 /* as given to sfc_npz_read (messages) */
};

/* Read every member of an .npz, in archive order. Members must be named
 * "<name>.npy" and be unique. Errors: "<path>: ..." for the zip structure
 * (not a zip, truncated, bad offsets, CRC mismatch, unsupported method),
 * "<path>: member '<name>.npy': ..." for the array inside. */
int sfc_npz_read(const char *path, struct sfc_npz *out);
/* The array called name, or NULL with "<path?>: no array 'name'" set. */
const struct sfc_tensor *sfc_npz_get(const struct sfc_npz *z,
                                     const char *name);
void sfc_npz_release(struct sfc_npz *z);
/* Write n arrays as an .npz, atomically; compress = 1 deflates members
 * (as np.savez_compressed), 0 stores them (as np.savez). */
int sfc_npz_write(const char *path, int n, const char *const *names,
                  const struct sfc_tensor *const *arrays, int compress);

#endif
