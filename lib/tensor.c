/* SPDX-License-Identifier: MIT */
/* tensor.c: see tensor.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "tensor.h"
#include "util.h"

static const size_t dtype_sizes[SFC_NDTYPES] = {4, 1, 4, 8};
static const char *const dtype_names[SFC_NDTYPES] = {"float32", "uint8",
                                                     "int32", "int64"};

size_t sfc_dtype_size(enum sfc_dtype dt)
{
    SFC_ASSERT(dt >= 0 && dt < SFC_NDTYPES);
    return dtype_sizes[dt];
}

const char *sfc_dtype_name(enum sfc_dtype dt)
{
    if (dt < 0 || dt >= SFC_NDTYPES) return "unknown";
    return dtype_names[dt];
}

int sfc_tensor_init(struct sfc_tensor *t, enum sfc_dtype dt, int ndim,
                    const int64_t *shape)
{
    memset(t, 0, sizeof *t);
    if (ndim < 0 || ndim > SFC_MAXDIM)
        return sfc_error(NULL, "tensor rank %d is out of range [0, %d]", ndim,
                         SFC_MAXDIM);
    if (dt < 0 || dt >= SFC_NDTYPES)
        return sfc_error(NULL, "unknown dtype %d", (int)dt);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] && n > INT64_MAX / 16 / shape[i]))
            return sfc_error(NULL, "invalid tensor dimension %lld",
                             (long long)shape[i]);
        n *= shape[i];
        t->shape[i] = shape[i];
    }
    t->dtype = dt;
    t->ndim = ndim;
    size_t bytes = (size_t)n * dtype_sizes[dt];
    t->data = sfc_xmalloc_aligned(bytes);
    memset(t->data, 0, bytes);
    t->owns_data = 1;
    return 0;
}

void sfc_tensor_view(struct sfc_tensor *t, void *data, enum sfc_dtype dt,
                     int ndim, const int64_t *shape)
{
    SFC_ASSERT(ndim >= 0 && ndim <= SFC_MAXDIM);
    memset(t, 0, sizeof *t);
    t->data = data;
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->owns_data = 0;
}

void sfc_tensor_release(struct sfc_tensor *t)
{
    if (!t) return;
    if (t->owns_data) free(t->data);
    memset(t, 0, sizeof *t);
}

int64_t sfc_tensor_numel(const struct sfc_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t sfc_tensor_nbytes(const struct sfc_tensor *t)
{
    return (size_t)sfc_tensor_numel(t) * sfc_dtype_size(t->dtype);
}

static const char *shape_str(int ndim, const int64_t *shape, char *buf,
                             size_t n)
{
    size_t len = 0;
    len += (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < ndim && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? ", " : "",
                                (long long)shape[i]);
    if (len < n) snprintf(buf + len, n - len, ")");
    return buf;
}

const char *sfc_shape_str(const struct sfc_tensor *t, char *buf, size_t n)
{
    return shape_str(t->ndim, t->shape, buf, n);
}

int sfc_check_shape_v(const char *domain, const struct sfc_tensor *t,
                      int ndim, const int64_t *want)
{
    int ok = t->ndim == ndim;
    SFC_ASSERT(ndim >= 0 && ndim <= SFC_MAXDIM);
    for (int i = 0; ok && i < ndim; i++)
        if (want[i] != -1 && want[i] != t->shape[i]) ok = 0;
    if (ok) return 0;
    char a[128], b[128];
    return sfc_error(domain, "expected shape %s, got %s",
                     shape_str(ndim, want, a, sizeof a),
                     sfc_shape_str(t, b, sizeof b));
}

int sfc_check_dtype(const char *domain, const struct sfc_tensor *t,
                    enum sfc_dtype dt)
{
    if (t->dtype == dt) return 0;
    return sfc_error(domain, "expected dtype %s, got %s", sfc_dtype_name(dt),
                     sfc_dtype_name(t->dtype));
}

int sfc_check_same(const char *domain, const struct sfc_tensor *t,
                   const struct sfc_tensor *ref)
{
    if (sfc_check_dtype(domain, t, ref->dtype)) return -1;
    int ok = t->ndim == ref->ndim;
    for (int i = 0; ok && i < t->ndim; i++) ok = t->shape[i] == ref->shape[i];
    if (ok) return 0;
    char a[128], b[128];
    return sfc_error(domain, "expected shape %s, got %s",
                     sfc_shape_str(ref, a, sizeof a),
                     sfc_shape_str(t, b, sizeof b));
}
