/* SPDX-License-Identifier: MIT */
/* tensor.h: n-dimensional arrays in C order with a dtype, for I/O and
 * shape checks. Kernels take raw float pointers and explicit dimensions;
 * this struct is what travels between files, tools and models.
 *
 * Ownership: owns_data = 1 means sfc_tensor_release() frees data; views
 * (into a parameter block, an arena, a mapped file) have owns_data = 0 and
 * are never freed through the tensor. */
#ifndef SFC_TENSOR_H
#define SFC_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define SFC_MAXDIM 8

enum sfc_dtype {
    SFC_F32 = 0,
    SFC_U8,
    SFC_I32,
    SFC_I64,
    SFC_F16,  /* IEEE binary16 bits (uint16_t); storage only, see
                 sfc_tensor_cast */
    SFC_NDTYPES
};

struct sfc_tensor {
    void *data;
    enum sfc_dtype dtype;
    int ndim;                   /* 0..SFC_MAXDIM (0 = scalar) */
    int64_t shape[SFC_MAXDIM];  /* row-major (C order); NCHW for activations */
    unsigned owns_data : 1;
};

/* Bytes per element, and the name used in messages ("float32", ...). */
size_t sfc_dtype_size(enum sfc_dtype dt);
const char *sfc_dtype_name(enum sfc_dtype dt);

/* Allocate a zero-filled tensor (64-byte aligned); owns_data = 1. Returns
 * 0, or -1 if ndim or a dimension is invalid (error slot set). */
int sfc_tensor_init(struct sfc_tensor *t, enum sfc_dtype dt, int ndim,
                    const int64_t *shape);
/* Convenience for float32: sfc_tensor_f32(&t, C, H, W) (1..8 dims). */
#define sfc_tensor_f32(t, ...)                                               \
    sfc_tensor_init((t), SFC_F32, SFC_NARGS_(__VA_ARGS__),                   \
                    (const int64_t[]){__VA_ARGS__})
#define SFC_NARGS_(...) ((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
/* A view on caller memory; owns_data = 0. */
void sfc_tensor_view(struct sfc_tensor *t, void *data, enum sfc_dtype dt,
                     int ndim, const int64_t *shape);
/* Free data iff owned, then zero the struct. Safe on a zeroed struct. */
void sfc_tensor_release(struct sfc_tensor *t);

int64_t sfc_tensor_numel(const struct sfc_tensor *t);
size_t sfc_tensor_nbytes(const struct sfc_tensor *t);
static inline float *sfc_tensor_f(const struct sfc_tensor *t)
{
    return (float *)t->data;
}

/* IEEE half precision (binary16) <-> float32, as numpy's float16 casts:
 * float32 -> half rounds to nearest, ties to even, to subnormals below
 * 2^-14 and to infinity at 65520 and above; NaN stays NaN (sign and the
 * top payload bits kept). half -> float32 is exact. */
uint16_t sfc_f16_from_f32(float x);
float sfc_f32_from_f16(uint16_t h);
/* out = in converted to dtype dt, a fresh owned tensor of in's shape.
 * Supported: float32 <-> float16 (the rules above) and any dtype to
 * itself (a copy). 0, or -1 with "cannot convert <a> to <b>" set. */
int sfc_tensor_cast(struct sfc_tensor *out, const struct sfc_tensor *in,
                    enum sfc_dtype dt);

/* Write "(2, 3, 4)" into buf. */
const char *sfc_shape_str(const struct sfc_tensor *t, char *buf, size_t n);

/* Checkers: return 0, or -1 with "domain: expected shape (.., ..), got
 * (..)". sfc_check_shape(domain, t, N, C, H, W): the rank is the number of
 * dimensions given; a dimension given as -1 matches anything. */
#define sfc_check_shape(domain, t, ...)                                      \
    sfc_check_shape_v((domain), (t), SFC_NARGS_(__VA_ARGS__),                \
                      (const int64_t[]){__VA_ARGS__})
int sfc_check_shape_v(const char *domain, const struct sfc_tensor *t,
                      int ndim, const int64_t *want);
int sfc_check_dtype(const char *domain, const struct sfc_tensor *t,
                    enum sfc_dtype dt);
/* Same shape and dtype as a reference tensor. */
int sfc_check_same(const char *domain, const struct sfc_tensor *t,
                   const struct sfc_tensor *ref);

#endif
