/* SPDX-License-Identifier: MIT */
/* tensor.c: see tensor.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "tensor.h"
#include "util.h"

static const size_t dtype_sizes[SFC_NDTYPES] = {4, 1, 4, 8, 2};
static const char *const dtype_names[SFC_NDTYPES] = {
    "float32", "uint8", "int32", "int64", "float16"};

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

/* float32 -> binary16 on the bits: a = |x|'s bits; the half's bits are
 * the float's exponent rebased (127 -> 15) and its mantissa's top 10
 * bits, the 13 (or, for subnormal halves, more) bits dropped rounded to
 * nearest even; a carry out of the mantissa moves up the exponent (to
 * infinity from 65520 up), as it must. */
uint16_t sfc_f16_from_f32(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) { /* inf, NaN */
        if (a == 0x7f800000u) return sign | 0x7c00u;
        uint16_t h = (uint16_t)(0x7c00u + ((a & 0x7fffffu) >> 13));
        return sign | (h == 0x7c00u ? 0x7c01u : h);
    }
    if (a >= 0x47800000u) return sign | 0x7c00u; /* >= 2^16 */
    uint32_t h, rem, half;
    if (a < 0x38800000u) { /* below 2^-14: subnormal half (or 0) */
        if (a < 0x33000000u) return sign; /* < 2^-25 */
        uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24: units of 2^-24 */
        h = m >> shift;
        rem = m & ((1u << shift) - 1);
        half = 1u << (shift - 1);
    } else {
        h = (a - 0x38000000u) >> 13;
        rem = a & 0x1fffu;
        half = 0x1000u;
    }
    if (rem > half || (rem == half && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float sfc_f32_from_f16(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0) {
        float v = ldexpf((float)m, -24); /* exact */
        return sign ? -v : v;
    }
    if (e == 31)
        u = sign | 0x7f800000u | (m << 13);
    else
        u = sign | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

int sfc_tensor_cast(struct sfc_tensor *out, const struct sfc_tensor *in,
                    enum sfc_dtype dt)
{
    memset(out, 0, sizeof *out);
    int same = in->dtype == dt;
    if (!same && !((in->dtype == SFC_F32 && dt == SFC_F16) ||
                   (in->dtype == SFC_F16 && dt == SFC_F32)))
        return sfc_error(NULL, "cannot convert %s to %s",
                         sfc_dtype_name(in->dtype), sfc_dtype_name(dt));
    if (sfc_tensor_init(out, dt, in->ndim, in->shape) != 0) return -1;
    int64_t n = sfc_tensor_numel(in);
    if (same) {
        if (n) memcpy(out->data, in->data, sfc_tensor_nbytes(in));
    } else if (dt == SFC_F16) {
        const float *s = in->data;
        uint16_t *d = out->data;
        for (int64_t i = 0; i < n; i++) d[i] = sfc_f16_from_f32(s[i]);
    } else {
        const uint16_t *s = in->data;
        float *d = out->data;
        for (int64_t i = 0; i < n; i++) d[i] = sfc_f32_from_f16(s[i]);
    }
    return 0;
}
