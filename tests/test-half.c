/* SPDX-License-Identifier: MIT */
/* test-half.c: float16 <-> float32 (lib/tensor.c) against numpy's casts
 * (tests/ref/ref_half.py: edge cases at every rounding boundary, the
 * subnormal range, overflow to infinity, random values), bit for bit;
 * every one of the 65,536 halves against the binary16 formula
 * (-1)^s 2^(e-15) (1 + m/1024), subnormals 2^-14 m/1024, and narrowing
 * it back gives the same bits; CAM files (lib/camfile.c): numpy's float16
 * file reads as numpy's float32 widening, and ours written as float16
 * holds sfc_f16_from_f32 of every value and reads back widened. */
#include "camfile.h"
#include "sfc.h"
#include "test.h"

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void check_dir(const char *dir)
{
    char *p = sfc_path_join(dir, "half.npz");
    struct sfc_npz z;
    T_CHECK_MSG(sfc_npz_read(p, &z) == 0, "%s", sfc_errmsg());
    const struct sfc_tensor *x = sfc_npz_get(&z, "x"), *h = sfc_npz_get(&z, "h"),
                            *back = sfc_npz_get(&z, "back");
    T_CHECK(x && h && back && x->dtype == SFC_F32 && h->dtype == SFC_F16 &&
            back->dtype == SFC_F32);
    int64_t n = x ? sfc_tensor_numel(x) : 0, bad = 0, badw = 0;
    T_CHECK(n > 1000);
    for (int64_t i = 0; x && h && back && i < n; i++) {
        float xi = ((const float *)x->data)[i];
        uint16_t want = ((const uint16_t *)h->data)[i];
        uint16_t got = sfc_f16_from_f32(xi);
        if (got != want && bad++ < 5)
            fprintf(stderr, "    %s: x = %.9g (0x%08x): half 0x%04x, numpy "
                            "0x%04x\n", p, xi, bits_of(xi), got, want);
        float w = sfc_f32_from_f16(want);
        if (bits_of(w) != ((const uint32_t *)back->data)[i] && badw++ < 5)
            fprintf(stderr, "    %s: half 0x%04x widens to 0x%08x\n", p,
                    want, bits_of(w));
    }
    T_CHECK_MSG(bad == 0, "%s: %lld of %lld narrowings differ", p,
                (long long)bad, (long long)n);
    T_CHECK_MSG(badw == 0, "%s: %lld widenings differ", p, (long long)badw);
    /* the tensor cast does the same */
    struct sfc_tensor c;
    T_CHECK(x && sfc_tensor_cast(&c, x, SFC_F16) == 0);
    T_CHECK(x && h && !memcmp(c.data, h->data, sfc_tensor_nbytes(h)));
    sfc_tensor_release(&c);
    sfc_npz_release(&z);
    free(p);

    /* numpy's float16 CAM file reads as float32 */
    p = sfc_path_join(dir, "cam.npz");
    char *pw = sfc_path_join(dir, "want.npz");
    struct sfc_npz got, want;
    T_CHECK_MSG(sfc_camfile_read(p, &got) == 0, "%s", sfc_errmsg());
    T_CHECK(sfc_npz_read(pw, &want) == 0);
    T_CHECK(got.n == 3 && want.n == 3);
    for (int i = 0; i < want.n && got.n == 3; i++) {
        const struct sfc_tensor *a = sfc_npz_get(&got, want.names[i]);
        const struct sfc_tensor *b = &want.arrays[i];
        T_CHECK_MSG(a && a->dtype == b->dtype && sfc_check_same("t", a, b) == 0 &&
                        !memcmp(a->data, b->data, sfc_tensor_nbytes(b)),
                    "%s: %s", p, want.names[i]);
    }
    sfc_npz_release(&got);
    sfc_npz_release(&want);
    free(p);
    free(pw);
}

/* The binary16 value of bits h by its definition (doubles are exact). */
static double half_formula(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e ? ldexp(1.0 + m / 1024.0, e - 15) : ldexp(m / 1024.0, -14);
    if (e == 31) v = m ? NAN : INFINITY;
    return s ? -v : v;
}

static void check_all_halves(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float w = sfc_f32_from_f16((uint16_t)h);
        double f = half_formula((uint16_t)h);
        int ok = isnan(f) ? isnan(w) && (signbit(w) != 0) == (h >> 15)
                          : (double)w == f && !signbit(w) == !signbit(f);
        /* and back: the same bits (a NaN keeps its payload's top bits) */
        ok = ok && sfc_f16_from_f32(w) == h;
        if (!ok && bad++ < 5)
            fprintf(stderr, "    half 0x%04x: %.9g, formula %.9g\n", h, w, f);
    }
    T_CHECK_MSG(bad == 0, "%d of 65536 halves", bad);
}

/* Our float16 CAM file: the stored bits are sfc_f16_from_f32's, the read
 * gives their exact widening; float32 files are untouched. */
static void check_write(void)
{
    char *d = test_tmpdir("half");
    struct sfc_tensor keys, m[2];
    sfc_tensor_init(&keys, SFC_I64, 1, (const int64_t[]){2});
    ((int64_t *)keys.data)[1] = 5;
    struct sfc_rng r;
    sfc_rng_seed(&r, 11);
    for (int k = 0; k < 2; k++) {
        sfc_tensor_f32(&m[k], 2, 5, 6);
        for (int i = 0; i < 60; i++)
            sfc_tensor_f(&m[k])[i] = (float)(2.4 * sfc_rng_uniform(&r));
    }
    const char *names[] = {"cam_w", "cam_p"};
    const struct sfc_tensor *mp[] = {&m[0], &m[1]};
    for (int dt = 0; dt < 2; dt++) {
        char *p = sfc_path_join(d, dt ? "h.npz" : "f.npz");
        T_CHECK(sfc_camfile_write(p, &keys, 2, names, mp,
                                  dt ? SFC_F16 : SFC_F32, 1) == 0);
        struct sfc_npz raw, z;
        T_CHECK(sfc_npz_read(p, &raw) == 0 && sfc_camfile_read(p, &z) == 0);
        T_CHECK(raw.n == 3 && z.n == 3 && !strcmp(raw.names[0], "keys"));
        for (int k = 0; k < 2 && raw.n == 3 && z.n == 3; k++) {
            const struct sfc_tensor *a = &raw.arrays[k + 1], *b = &z.arrays[k + 1];
            T_CHECK(a->dtype == (dt ? SFC_F16 : SFC_F32) && b->dtype == SFC_F32);
            T_CHECK(sfc_check_same("cam", b, &m[k]) == 0);
            for (int i = 0; i < 60; i++) {
                float x = sfc_tensor_f(&m[k])[i];
                float want = dt ? sfc_f32_from_f16(sfc_f16_from_f32(x)) : x;
                if (dt)
                    T_CHECK(((uint16_t *)a->data)[i] == sfc_f16_from_f32(x));
                T_CHECK(bits_of(sfc_tensor_f(b)[i]) == bits_of(want));
            }
        }
        sfc_npz_release(&raw);
        sfc_npz_release(&z);
        free(p);
    }
    /* a map that is not float32 is refused, nothing written */
    char *p = sfc_path_join(d, "bad.npz");
    const struct sfc_tensor *kp[] = {&keys};
    T_CHECK(sfc_camfile_write(p, &keys, 1, names, kp, SFC_F16, 1) == -1);
    T_CHECK(strstr(sfc_errmsg(), "not float32") != NULL);
    T_CHECK(!sfc_file_exists(p));
    T_CHECK(sfc_camfile_write(p, &keys, 2, names, mp, SFC_I32, 1) == -1);
    T_CHECK(!sfc_file_exists(p));
    free(p);
    sfc_tensor_release(&keys);
    sfc_tensor_release(&m[0]);
    sfc_tensor_release(&m[1]);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    T_CHECK(system(cmd) == 0);
    free(d);
}

int main(void)
{
    check_all_halves();
    check_write();
    test_with_oracle("ref_half.py", "half", check_dir);
    return test_summary();
}
