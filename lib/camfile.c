/* SPDX-License-Identifier: MIT */
/* camfile.c: CAM files in float32 or float16 (see camfile.h); the half
 * conversions are lib/tensor.c's (IEEE 754 binary16, numpy's rounding). */
#include <stdlib.h>

#include "camfile.h"
#include "err.h"
#include "tensor.h"
#include "util.h"

int sfc_camfile_write(const char *path, const struct sfc_tensor *keys, int n,
                      const char *const *names,
                      const struct sfc_tensor *const *maps,
                      enum sfc_dtype dtype, int compress)
{
    if (dtype != SFC_F32 && dtype != SFC_F16)
        return sfc_error(path, "CAM maps are stored as float32 or float16, "
                               "not %s", sfc_dtype_name(dtype));
    const char **nm = sfc_xcalloc((size_t)n + 1, sizeof *nm);
    const struct sfc_tensor **arr = sfc_xcalloc((size_t)n + 1, sizeof *arr);
    struct sfc_tensor *half = sfc_xcalloc((size_t)n + 1, sizeof *half);
    int rc = 0;
    nm[0] = "keys";
    arr[0] = keys;
    for (int i = 0; i < n && rc == 0; i++) {
        nm[i + 1] = names[i];
        arr[i + 1] = maps[i];
        if (maps[i]->dtype != SFC_F32)
            rc = sfc_error(path, "map '%s' is %s, not float32", names[i],
                           sfc_dtype_name(maps[i]->dtype));
        else if (dtype == SFC_F16) {
            rc = sfc_tensor_cast(&half[i], maps[i], SFC_F16);
            arr[i + 1] = &half[i];
        }
    }
    if (rc == 0) rc = sfc_npz_write(path, n + 1, nm, arr, compress);
    for (int i = 0; i < n; i++) sfc_tensor_release(&half[i]);
    free(half);
    free(arr);
    free(nm);
    return rc;
}

int sfc_camfile_read(const char *path, struct sfc_npz *out)
{
    if (sfc_npz_read(path, out) != 0) return -1;
    for (int i = 0; i < out->n; i++) {
        struct sfc_tensor *t = &out->arrays[i], wide;
        if (t->dtype != SFC_F16) continue;
        if (sfc_tensor_cast(&wide, t, SFC_F32) != 0) { /* cannot fail */
            sfc_npz_release(out);
            return -1;
        }
        sfc_tensor_release(t);
        *t = wide;
    }
    return 0;
}
