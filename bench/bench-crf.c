/* SPDX-License-Identifier: MIT */
/* bench-crf.c: time lib/crf's dense CRF (make bench-crf; bench/crf.sh runs
 * it beside pydensecrf, bench/crf_pydensecrf.py, when that is importable).
 *
 *   bench-crf gen DIR        write the bench case into DIR: rgb.npy (H, W, 3)
 *                            uint8, lab.npy (H, W) uint8 (the noisy labels),
 *                            images/bench.png, cams/bench.npz (keys 0..K-1,
 *                            cam_w = one-hot of lab, cam_p = 0: the
 *                            "cam-crf" rule of sfc-crf then runs the same
 *                            CRF on the same labels)
 *   bench-crf run DIR T RUNS [THREADS]
 *                            sfc_crf_label on that case, T mean-field
 *                            iterations, RUNS times (after one warm-up);
 *                            writes DIR/sfc_t<T>.npy (the labels)
 *
 * The case: a generated 500x375 "photograph" with K = 21 labels. Voronoi
 * regions (42 cells, two per label), each with a base colour, a linear
 * colour gradient and a sine texture, plus pixel noise (sigma 5): a broad,
 * photo-like colour distribution, so that the bilateral lattice is about
 * as large as on a natural image. Labels: the regions' own, with the cell
 * centres moved by up to 12 px (shifted boundaries, as a coarse CAM), 40
 * discs of a random label and 3 % of pixels flipped.
 *
 * `run` prints one line: t, median seconds of the whole sfc_crf_label
 * (lattices, unaries, inference, argmax), min and max seconds, peak RSS
 * in MB, OpenMP threads, the lattice sizes of both kernels, and the
 * median CPU seconds of a run (all threads: on a loaded machine the
 * process's share of the cores, not its work, sets the wall time). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "crf.h"
#include "err.h"
#include "img.h"
#include "npy.h"
#include "rng.h"
#include "tensor.h"
#include "util.h"

#define BW 500
#define BH 375
#define BK 21
#define CELLS (2 * BK)

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* CPU seconds of the process (all threads) */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double peak_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static int nearest(const float *cx, const float *cy, int x, int y)
{
    int best = 0;
    float bd = 1e30f;
    for (int k = 0; k < CELLS; k++) {
        float d = (x - cx[k]) * (x - cx[k]) + (y - cy[k]) * (y - cy[k]);
        if (d < bd) bd = d, best = k;
    }
    return best;
}

static uint8_t clamp8(double v)
{
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5);
}

/* The bench case: rgb (BH, BW, 3), lab (BH, BW). */
static void make_case(uint8_t *rgb, uint8_t *lab)
{
    struct sfc_rng r;
    sfc_rng_seed(&r, 2011);
    float cx[CELLS], cy[CELLS], base[CELLS][3], grad[CELLS][3][2];
    float tex[CELLS][4];
    for (int k = 0; k < CELLS; k++) {
        cx[k] = (float)(sfc_rng_uniform(&r) * BW);
        cy[k] = (float)(sfc_rng_uniform(&r) * BH);
        for (int c = 0; c < 3; c++) {
            base[k][c] = (float)(30 + 195 * sfc_rng_uniform(&r));
            for (int a = 0; a < 2; a++)
                grad[k][c][a] = (float)((2 * sfc_rng_uniform(&r) - 1) * 0.4);
        }
        tex[k][0] = (float)(0.02 + 0.3 * sfc_rng_uniform(&r)); /* fx */
        tex[k][1] = (float)(0.02 + 0.3 * sfc_rng_uniform(&r)); /* fy */
        tex[k][2] = (float)(6.3 * sfc_rng_uniform(&r));        /* phase */
        tex[k][3] = (float)(15 * sfc_rng_uniform(&r));         /* amplitude */
    }
    for (int y = 0; y < BH; y++)
        for (int x = 0; x < BW; x++) {
            int i = y * BW + x, k = nearest(cx, cy, x, y);
            double t = tex[k][3] * sin(tex[k][0] * x + tex[k][1] * y + tex[k][2]);
            for (int c = 0; c < 3; c++)
                rgb[i * 3 + c] = clamp8(base[k][c] + grad[k][c][0] * (x - cx[k]) +
                                        grad[k][c][1] * (y - cy[k]) + t +
                                        5 * sfc_rng_normal(&r));
        }
    float mx[CELLS], my[CELLS];
    for (int k = 0; k < CELLS; k++) {
        mx[k] = cx[k] + (float)((2 * sfc_rng_uniform(&r) - 1) * 12);
        my[k] = cy[k] + (float)((2 * sfc_rng_uniform(&r) - 1) * 12);
    }
    for (int y = 0; y < BH; y++)
        for (int x = 0; x < BW; x++)
            lab[y * BW + x] = (uint8_t)(nearest(mx, my, x, y) % BK);
    for (int d = 0; d < 40; d++) {
        double ox = sfc_rng_uniform(&r) * BW, oy = sfc_rng_uniform(&r) * BH;
        double rad = 5 + 15 * sfc_rng_uniform(&r);
        uint8_t l = (uint8_t)sfc_rng_below(&r, BK);
        for (int y = 0; y < BH; y++)
            for (int x = 0; x < BW; x++)
                if ((x - ox) * (x - ox) + (y - oy) * (y - oy) < rad * rad)
                    lab[y * BW + x] = l;
    }
    for (int i = 0; i < BW * BH; i++)
        if (sfc_rng_uniform(&r) < 0.03) lab[i] = (uint8_t)sfc_rng_below(&r, BK);
}

static char *path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = sfc_xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int gen(const char *dir)
{
    struct sfc_tensor rgb, lab, keys, cw, cp;
    sfc_tensor_init(&rgb, SFC_U8, 3, (const int64_t[]){BH, BW, 3});
    sfc_tensor_init(&lab, SFC_U8, 2, (const int64_t[]){BH, BW});
    sfc_tensor_init(&keys, SFC_I64, 1, (const int64_t[]){BK});
    sfc_tensor_f32(&cw, BK, BH, BW);
    sfc_tensor_f32(&cp, BK, BH, BW);
    make_case(rgb.data, lab.data);
    for (int k = 0; k < BK; k++) ((int64_t *)keys.data)[k] = k;
    float *w = cw.data;
    memset(w, 0, sfc_tensor_nbytes(&cw));
    memset(cp.data, 0, sfc_tensor_nbytes(&cp));
    for (int i = 0; i < BW * BH; i++)
        w[(int64_t)((uint8_t *)lab.data)[i] * BW * BH + i] = 1.0f;
    char *p_rgb = path_in(dir, "rgb.npy"), *p_lab = path_in(dir, "lab.npy");
    char *p_im = path_in(dir, "images"), *p_cam = path_in(dir, "cams");
    char *p_png = path_in(p_im, "bench.png"), *p_npz = path_in(p_cam, "bench.npz");
    const char *names[] = {"keys", "cam_w", "cam_p"};
    const struct sfc_tensor *arrs[] = {&keys, &cw, &cp};
    int rc = sfc_mkdirs(p_im, 0777) || sfc_mkdirs(p_cam, 0777) ||
             sfc_npy_write(p_rgb, &rgb) || sfc_npy_write(p_lab, &lab) ||
             sfc_image_save_png(p_png, &rgb) ||
             sfc_npz_write(p_npz, 3, names, arrs, 1);
    if (rc) fprintf(stderr, "bench-crf: %s\n", sfc_errmsg());
    free(p_rgb), free(p_lab), free(p_im), free(p_cam), free(p_png), free(p_npz);
    sfc_tensor_release(&rgb);
    sfc_tensor_release(&lab);
    sfc_tensor_release(&keys);
    sfc_tensor_release(&cw);
    sfc_tensor_release(&cp);
    return rc ? 1 : 0;
}

static int run(const char *dir, int iters, int runs)
{
    struct sfc_tensor rgb, lab, out;
    char *p_rgb = path_in(dir, "rgb.npy"), *p_lab = path_in(dir, "lab.npy");
    char name[32];
    snprintf(name, sizeof name, "sfc_t%d.npy", iters);
    char *p_out = path_in(dir, name);
    if (sfc_npy_read(p_rgb, &rgb) || sfc_npy_read(p_lab, &lab) ||
        sfc_check_shape("rgb.npy", &rgb, BH, BW, 3) ||
        sfc_check_shape("lab.npy", &lab, BH, BW)) {
        fprintf(stderr, "bench-crf: %s\n", sfc_errmsg());
        return 1;
    }
    sfc_tensor_init(&out, SFC_U8, 2, (const int64_t[]){BH, BW});
    struct sfc_crf_params p = SFC_CRF_PARAMS_SFC;
    p.iters = iters;
    double t[101], cpu[101];
    for (int k = 0; k <= runs; k++) { /* k = 0: warm-up */
        double t0 = now(), c0 = cpu_now();
        if (sfc_crf_label(rgb.data, BH, BW, lab.data, BK, &p, SFC_CRF_LATTICE,
                          out.data)) {
            fprintf(stderr, "bench-crf: %s\n", sfc_errmsg());
            return 1;
        }
        t[k] = now() - t0;
        cpu[k] = cpu_now() - c0;
    }
    qsort(t + 1, (size_t)runs, sizeof *t, cmp_double);
    qsort(cpu + 1, (size_t)runs, sizeof *cpu, cmp_double);
    double cmed = runs % 2 ? cpu[1 + runs / 2]
                           : 0.5 * (cpu[runs / 2] + cpu[1 + runs / 2]);
    double med = runs % 2 ? t[1 + runs / 2]
                          : 0.5 * (t[runs / 2] + t[1 + runs / 2]);
    /* lattice sizes (not timed) */
    struct sfc_crf *crf = sfc_crf_new(rgb.data, BH, BW, &p, SFC_CRF_LATTICE);
    int64_t m[2];
    sfc_crf_lattice_sizes(crf, m);
    sfc_crf_free(crf);
    if (sfc_npy_write(p_out, &out)) {
        fprintf(stderr, "bench-crf: %s\n", sfc_errmsg());
        return 1;
    }
    printf("%d %.4f %.4f %.4f %.1f %d %lld %lld %.4f\n", iters, med, t[1],
           t[runs], peak_mb(), omp_get_max_threads(), (long long)m[0],
           (long long)m[1], cmed);
    free(p_rgb), free(p_lab), free(p_out);
    sfc_tensor_release(&rgb);
    sfc_tensor_release(&lab);
    sfc_tensor_release(&out);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "gen")) return gen(argv[2]);
    if ((argc == 5 || argc == 6) && !strcmp(argv[1], "run")) {
        int iters = atoi(argv[3]), runs = atoi(argv[4]);
        if (argc == 6) omp_set_num_threads(atoi(argv[5]));
        if (iters >= 0 && iters <= 100 && runs >= 1 && runs <= 100)
            return run(argv[2], iters, runs);
    }
    fprintf(stderr, "usage: bench-crf gen DIR | bench-crf run DIR T RUNS "
            "[THREADS]\n");
    return 2;
}
