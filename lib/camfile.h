/* SPDX-License-Identifier: MIT */
/* camfile.h: the CAM files sfc-cam writes and every later stage reads,
 * cam/<id>.npz: keys int64 (K) with keys[0] = 0 (background) and the
 * image's classes, and maps (K, H, W) named cam_w, cam_p and optionally
 * cam_c (sfc-reference.md §3). The maps are stored as float32 or, to halve
 * the disk, as float16 (numpy's '<f2', each value float32 rounded to the
 * nearest half, ties to even); readers get float32 either way. */
#ifndef SFC_CAMFILE_H
#define SFC_CAMFILE_H

#include "npy.h"

/* Write keys and the n float32 maps (named names[i]) to path as an .npz,
 * atomically; the maps are stored as dtype (SFC_F32 or SFC_F16); compress
 * = 1 deflates the members. 0, or -1 with the error set (nothing
 * written). */
int sfc_camfile_write(const char *path, const struct sfc_tensor *keys, int n,
                      const char *const *names,
                      const struct sfc_tensor *const *maps,
                      enum sfc_dtype dtype, int compress);
/* Read a CAM file as sfc_npz_read does, then widen every float16 member
 * to float32 (exactly), so that a caller sees float32 maps whether the
 * file holds float32 or float16. Errors as sfc_npz_read. */
int sfc_camfile_read(const char *path, struct sfc_npz *out);

#endif
