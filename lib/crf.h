/* SPDX-License-Identifier: MIT */
/* crf.h: the fully connected CRF of Krähenbühl & Koltun (NIPS 2011) as
 * pydensecrf's DenseCRF2D runs it, the permutohedral lattice that does its
 * message passing (Adams, Baek & Davis, Eurographics 2010), and the rules
 * that turn CAMs into IR labels (sfc-reference.md §5). Algorithms only, no
 * I/O.
 *
 * Layouts: an image is uint8 (H, W, 3) RGB; N = H*W pixels in row-major
 * order; per-pixel label vectors (unaries U, marginals Q, messages) are
 * float (N, K), pixel-major, label fastest; CAMs are float (K, H, W) as
 * in the CAM .npz files.
 *
 * The model. Two Potts kernels over features f (one per pixel):
 *   Gaussian   f = (x/sxy, y/sxy)                 weight gauss_compat
 *   bilateral  f = (x/sxy, y/sxy, r/srgb, g/srgb, b/srgb)   bilat_compat
 * k(f_i, f_j) = exp(-|f_i - f_j|^2 / 2), j = i included. Each kernel is
 * normalised symmetrically, as pydensecrf's NORMALIZE_SYMMETRIC:
 *   n_i = 1/sqrt(sum_j k(f_i, f_j) + 1e-20),
 *   message_i(l) = n_i sum_j k(f_i, f_j) n_j Q_j(l).
 * Mean field: Q = softmax(-U); then `iters` times
 *   Q_i = softmax(-U_i + sum_kernels compat * message_i).
 * The result is the argmax of Q (the first maximum on ties).
 *
 * Three ways to compute the sums: SFC_CRF_LATTICE (permutohedral
 * lattice, O(N d^2 + M d K), an approximation of the Gaussian; the
 * blurred lattice values of the mean field stored as binary16),
 * SFC_CRF_LATTICE_F32 (the same with float32 values) and SFC_CRF_EXACT
 * (brute force O(N^2 (d + K)) in double precision: the oracle of the
 * tests, practical only up to a few thousand pixels).
 *
 * Binary16 values: every value is >= 0 and rounded to nearest (relative
 * error <= 2^-11) once per blur pass, the sums themselves in float; so
 * each message of SFC_CRF_LATTICE is within a factor (1 + 2^-11)^(d+1)
 * of SFC_CRF_LATTICE_F32's (d = 2: 0.15 %, d = 5: 0.29 %), plus float
 * rounding, against the lattice's own 2-15 % from the exact Gaussian.
 * The values are scaled by a power of two that keeps them below 2^14
 * (no overflow; subnormals only for values 2^-28 of the largest).
 *
 * Threads: OpenMP over pixels and lattice vertices; every sum is in a
 * fixed order, so results do not depend on the thread count (the mean
 * field's pixel passes use two threads, the other loops all). */
#ifndef SFC_CRF_H
#define SFC_CRF_H

#include <stdint.h>

/* ---- parameters ---------------------------------------------------- */

struct sfc_crf_params {
    int iters;          /* mean-field iterations */
    float gt_prob;      /* unary from hard labels: confidence of the label */
    float gauss_sxy;    /* Gaussian kernel: position scale (pixels) */
    float gauss_compat; /* Gaussian kernel: Potts weight */
    float bilat_sxy;    /* bilateral kernel: position scale (pixels) */
    float bilat_srgb;   /* bilateral kernel: colour scale (0..255 units) */
    float bilat_compat; /* bilateral kernel: Potts weight */
};

/* SFC's values (cam2ir.py, tool/imutils.crf_inference_label): t = 12,
 * gt_prob 0.7, Gaussian sxy 3 compat 3, bilateral sxy 50 srgb 5 compat 10.
 * IRN's are the same with t = 10. */
#define SFC_CRF_ITERS_SFC 12
#define SFC_CRF_ITERS_IRN 10
#define SFC_CRF_PARAMS_SFC {SFC_CRF_ITERS_SFC, 0.7f, 3.0f, 3.0f, 50.0f, 5.0f, 10.0f}

/* 0, or -1 with "crf: <problem>" when a value is out of range (iters < 0,
 * gt_prob not in (0, 1), a scale <= 0, a weight < 0 or not finite). */
int sfc_crf_params_check(const struct sfc_crf_params *p);

/* ---- permutohedral lattice ------------------------------------------ */

/* A lattice built over N points with d-dimensional features; filtering
 * computes out_i = alpha * sum_j B(f_i, f_j) in_j for a kernel B close to
 * the Gaussian exp(-|f_i - f_j|^2 / 2) up to a constant factor. */
struct sfc_lattice;

/* Build from features (N, d), 1 <= d <= SFC_LATTICE_MAXD. NULL with the
 * error slot set if N < 1, d is out of range or a coordinate is not
 * finite or too large for the lattice's integer keys. */
#define SFC_LATTICE_MAXD 16
struct sfc_lattice *sfc_lattice_new(const float *feat, int64_t N, int d);
void sfc_lattice_free(struct sfc_lattice *lat);
/* Number of lattice vertices (M). */
int64_t sfc_lattice_size(const struct sfc_lattice *lat);
/* Filter V values per point: in (N, V) -> out (N, V); in and out may not
 * overlap. in_scale and out_scale, if not NULL, are (N) factors applied to
 * each point's values on the way in and on the way out. */
void sfc_lattice_filter(const struct sfc_lattice *lat, const float *in,
                        float *out, int V, const float *in_scale,
                        const float *out_scale);

/* ---- dense CRF ------------------------------------------------------- */

enum sfc_crf_filter {
    SFC_CRF_LATTICE = 0, /* permutohedral lattice, binary16 values (fast) */
    SFC_CRF_EXACT,       /* brute-force exact Gaussian sums (tests) */
    SFC_CRF_LATTICE_F32  /* permutohedral lattice, float32 values */
};

/* SFC_CRF_LATTICE's binary16 conversions: use = 1 (the default) takes
 * the CPU's (x86-64 F16C with AVX2) when it has them, use = 0 the plain
 * C ones (lib/tensor.h's rounding: the same bits, slower; for tests).
 * Returns 1 when the CPU's are in use. Not thread-safe: call it before
 * any CRF work. */
int sfc_crf_f16c(int use);

/* The two kernels of one image, with their normalisations. */
struct sfc_crf;

/* Build for an image rgb (H, W, 3). The image is copied (features);
 * NULL with the error slot set on bad parameters or sizes. */
struct sfc_crf *sfc_crf_new(const uint8_t *rgb, int H, int W,
                            const struct sfc_crf_params *p,
                            enum sfc_crf_filter how);
void sfc_crf_free(struct sfc_crf *crf);
/* Lattice vertex counts of the two kernels (0 = Gaussian, 1 = bilateral);
 * 0 for SFC_CRF_EXACT. */
void sfc_crf_lattice_sizes(const struct sfc_crf *crf, int64_t m_out[2]);

/* The normalised message of one kernel (0 = Gaussian, 1 = bilateral),
 * without its Potts weight: out (N, K) = n . filter(n . Q), with
 * SFC_CRF_LATTICE's values in binary16 as its mean field has them (the
 * splat in another order). For tests. */
void sfc_crf_message(const struct sfc_crf *crf, int kernel, const float *Q,
                     int K, float *out);

/* Mean field from unaries U (N, K), `iters` iterations (0 gives
 * softmax(-U)); writes Q (N, K). K >= 1. */
void sfc_crf_inference(const struct sfc_crf *crf, const float *U, int K,
                       int iters, float *Q_out);

/* Unary from hard labels (pydensecrf unary_from_labels, zero_unsure =
 * False): label l = lab[i] in [0, K) gets -ln(gt_prob), every other label
 * -ln((1 - gt_prob)/(K - 1)). K >= 2. U is (N, K). */
void sfc_crf_unary_from_labels(const uint8_t *lab, int64_t N, int K,
                               float gt_prob, float *U);
/* Unary from probabilities prob (K, N) (channel-first, as CAMs):
 * U(i, l) = -ln(max(prob(l, i), clip)); clip > 0 (pydensecrf uses 1e-5). */
void sfc_crf_unary_from_prob(const float *prob, int64_t N, int K, float clip,
                             float *U);

/* Argmax over K per pixel of a (N, K) array (first maximum on ties). */
void sfc_crf_argmax(const float *Q, int64_t N, int K, uint8_t *out);

/* The whole of crf_inference_label: unary from the hard labels lab (N)
 * with p->gt_prob, p->iters iterations, argmax into out (N, may be lab).
 * K == 1 gives all zeros. 0, or -1 with the error slot set. */
int sfc_crf_label(const uint8_t *rgb, int H, int W, const uint8_t *lab,
                  int K, const struct sfc_crf_params *p,
                  enum sfc_crf_filter how, uint8_t *out);

/* ---- IR-label rules (sfc-reference.md §5) ----------------------------- */

enum sfc_ir_rule {
    SFC_IR_SFC = 0, /* cam2ir.py: two argmax maps, background x1 / x bg_scale */
    SFC_IR_IRN,     /* IRN cam_to_ir_label.py: constant background thresholds */
    SFC_IR_CAMCRF   /* "CAM + CRF": keys[CRF(argmax S)] */
};

struct sfc_ir_params {
    enum sfc_ir_rule rule;
    float w_w, w_p;   /* S = w_w M_W + w_p M_P (1, 0.7) */
    float bg_scale;   /* SFC: background factor of the second map (0.5) */
    float conf_fg;    /* IRN: background constant of the fg map (0.30) */
    float conf_bg;    /* IRN: background constant of the bg map (0.05) */
    struct sfc_crf_params crf;
};

#define SFC_IR_PARAMS_SFC                                                    \
    {SFC_IR_SFC, 1.0f, 0.7f, 0.5f, 0.30f, 0.05f, SFC_CRF_PARAMS_SFC}

/* S = w_w * cam_w + w_p * cam_p, both (K, N); S (K, N). */
void sfc_ir_score(const float *cam_w, const float *cam_p, int64_t N,
                     int K, float w_w, float w_p, float *S);
/* Channel argmax of a (K, N) map with channel 0 multiplied by bg_scale
 * (first maximum on ties, as np.argmax). */
void sfc_ir_argmax(const float *S, int64_t N, int K, float bg_scale,
                    uint8_t *out);
/* IRN's confident map: channels 1..K-1 of S, each divided by its maximum
 * over the image + 1e-5 (IRN make_cam.py; as lib/metrics.h's IRN rule),
 * behind a constant background channel `thresh`; argmax (ties to the
 * lower index, so a pixel is background iff no normalised score exceeds
 * thresh). */
void sfc_ir_argmax_irn(const float *S, int64_t N, int K, float thresh,
                        uint8_t *out);
/* Combine two class-id maps (values are class ids, 0 = background):
 * label = fg; label[fg == 0] = 255; label[fg == 0 & bg == 0] = 0. */
void sfc_ir_combine(const uint8_t *fg, const uint8_t *bg, int64_t N,
                    uint8_t *out);

/* The IR label of one image: rgb (H, W, 3); cam_w, cam_p (K, H, W); keys
 * (K) class ids (keys[0] = 0, each in [0, 254]); writes out (H, W) with 0
 * = background, class id, 255 = unsure (rules SFC and IRN) or class ids
 * only (CAM + CRF). 0, or -1 with the error slot set ("keys: ..."). */
int sfc_ir_label(const uint8_t *rgb, int H, int W, const float *cam_w,
                 const float *cam_p, const int64_t *keys, int K,
                 const struct sfc_ir_params *p, enum sfc_crf_filter how,
                 uint8_t *out);

#endif
