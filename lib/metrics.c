/* SPDX-License-Identifier: MIT */
/* metrics.c: confusion matrix, per-class IoU / precision / recall, mIoU,
 * head/middle/tail group means, and label maps from CAM files.
 *
 * Follows sfc-reference.md §4 (SFC eval_cam.py) and §8 (eval_sem_seg.py):
 * the confusion and IoU are chainercv's calc_semantic_segmentation_
 * confusion and calc_semantic_segmentation_iou, the mean is np.nanmean.
 * The background-threshold rule is IRN's step/eval_cam.py with the
 * max-normalisation of IRN's step/make_cam.py. Counts are exact (int64);
 * label values outside [0, K) (other than 255) are errors, never dropped.
 * Nothing here does I/O; tools load the maps (lib/img.h, lib/npy.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "metrics.h"
#include "util.h"

int sfc_confusion_init(struct sfc_confusion *cm, int K)
{
    cm->K = 0;
    cm->c = NULL;
    if (K < 1 || K > SFC_METRICS_MAX_CLASSES)
        return sfc_error("confusion", "class count %d not in [1, %d]", K,
                         SFC_METRICS_MAX_CLASSES);
    cm->K = K;
    cm->c = sfc_xcalloc((size_t)K * K, sizeof *cm->c);
    return 0;
}

void sfc_confusion_release(struct sfc_confusion *cm)
{
    if (!cm) return;
    free(cm->c);
    cm->c = NULL;
    cm->K = 0;
}

void sfc_confusion_zero(struct sfc_confusion *cm)
{
    memset(cm->c, 0, (size_t)cm->K * cm->K * sizeof *cm->c);
}

/* First offending value, or -1: pred may hold 255, gt may hold 255. */
static int64_t find_bad(const uint8_t *x, int64_t n, int K)
{
    for (int64_t i = 0; i < n; i++)
        if (x[i] >= K && x[i] != 255) return i;
    return -1;
}

int sfc_confusion_add(struct sfc_confusion *cm, const uint8_t *pred,
                      const uint8_t *gt, int64_t n, const char *pred_name,
                      const char *gt_name)
{
    const int K = cm->K;
    int64_t bad;
    if ((bad = find_bad(gt, n, K)) >= 0)
        return sfc_error(gt_name, "label value %d out of range [0, %d) at "
                         "pixel %lld", gt[bad], K, (long long)bad);
    if ((bad = find_bad(pred, n, K)) >= 0)
        return sfc_error(pred_name, "label value %d out of range [0, %d) at "
                         "pixel %lld", pred[bad], K, (long long)bad);
    int64_t *c = cm->c;
    for (int64_t i = 0; i < n; i++) {
        unsigned g = gt[i], p = pred[i];
        if (g == 255) continue;
        if (p == 255) p = 0; /* IRN eval_sem_seg: unsure counts as bg */
        c[g * (unsigned)K + p]++;
    }
    return 0;
}

void sfc_confusion_merge(struct sfc_confusion *cm,
                         const struct sfc_confusion *other)
{
    SFC_ASSERT(cm->K == other->K);
    for (int64_t i = 0; i < (int64_t)cm->K * cm->K; i++)
        cm->c[i] += other->c[i];
}

void sfc_confusion_scores(const struct sfc_confusion *cm, double *iou_out,
                          double *precision_out, double *recall_out,
                          int64_t *row_out, int64_t *col_out)
{
    const int K = cm->K;
    for (int k = 0; k < K; k++) {
        int64_t row = 0, col = 0, d = cm->c[(int64_t)k * K + k];
        for (int j = 0; j < K; j++) {
            row += cm->c[(int64_t)k * K + j];
            col += cm->c[(int64_t)j * K + k];
        }
        int64_t den = row + col - d;
        /* int64 -> double then divide: what numpy's true_divide does */
        if (iou_out) iou_out[k] = den ? (double)d / (double)den : NAN;
        if (precision_out)
            precision_out[k] = col ? (double)d / (double)col : NAN;
        if (recall_out) recall_out[k] = row ? (double)d / (double)row : NAN;
        if (row_out) row_out[k] = row;
        if (col_out) col_out[k] = col;
    }
}

double sfc_nanmean(const double *x, int n)
{
    double s = 0;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) s += x[i], m++;
    return m ? s / m : NAN;
}

/* ---- head / middle / tail ---------------------------------------------- */

void sfc_group_means(int K, const double *iou, const int *group,
                     double out[SFC_NGROUPS])
{
    for (int g = 0; g < SFC_NGROUPS; g++) {
        double s = 0;
        int m = 0;
        for (int c = 0; c < K; c++)
            if (group[c] == g && !isnan(iou[c])) s += iou[c], m++;
        out[g] = m ? s / m : NAN;
    }
}

/* ---- CAM label maps ---------------------------------------------------- */

static int check_map(const char *domain, const char *name,
                     const struct sfc_tensor *m, int64_t nk)
{
    char sh[96];
    if (!m) return sfc_error(domain, "no array '%s'", name);
    if (m->dtype != SFC_F32)
        return sfc_error(domain, "'%s' has dtype %s, expected float32", name,
                         sfc_dtype_name(m->dtype));
    if (m->ndim != 3 || m->shape[0] != nk)
        return sfc_error(domain, "'%s' has shape %s, expected (%lld, H, W) "
                         "to match 'keys'", name, sfc_shape_str(m, sh,
                         sizeof sh), (long long)nk);
    return 0;
}

int sfc_cam_check(const char *domain, int K, const struct sfc_tensor *keys,
                  const struct sfc_tensor *cam_w,
                  const struct sfc_tensor *cam_p, double ww, double wp)
{
    char sh[96], sh2[96];
    if (!keys) return sfc_error(domain, "no array 'keys'");
    if (keys->dtype != SFC_I64 || keys->ndim != 1 || keys->shape[0] < 1)
        return sfc_error(domain, "'keys' must be int64 (K), got %s %s",
                         sfc_dtype_name(keys->dtype),
                         sfc_shape_str(keys, sh, sizeof sh));
    const int64_t *k = keys->data;
    int64_t nk = keys->shape[0];
    if (k[0] != 0)
        return sfc_error(domain, "'keys' must start with 0 (background), "
                         "got %lld", (long long)k[0]);
    for (int64_t i = 1; i < nk; i++) {
        if (k[i] <= k[i - 1])
            return sfc_error(domain, "'keys' not strictly increasing at "
                             "index %lld", (long long)i);
        if (k[i] >= K)
            return sfc_error(domain, "'keys' holds class %lld, outside "
                             "[0, %d)", (long long)k[i], K);
    }
    if (ww == 0 && wp == 0)
        return sfc_error(domain, "both CAM weights are 0");
    if (ww != 0 && check_map(domain, "cam_w", cam_w, nk)) return -1;
    if (wp != 0 && check_map(domain, "cam_p", cam_p, nk)) return -1;
    if (ww != 0 && wp != 0 && (cam_w->shape[1] != cam_p->shape[1] ||
                               cam_w->shape[2] != cam_p->shape[2]))
        return sfc_error(domain, "'cam_w' %s and 'cam_p' %s differ in shape",
                         sfc_shape_str(cam_w, sh, sizeof sh),
                         sfc_shape_str(cam_p, sh2, sizeof sh2));
    return 0;
}

int sfc_cam_score(const struct sfc_tensor *cam_w,
                  const struct sfc_tensor *cam_p, double ww, double wp,
                  struct sfc_tensor *score_out)
{
    const struct sfc_tensor *ref = ww != 0 ? cam_w : cam_p;
    if (sfc_tensor_init(score_out, SFC_F32, 3, ref->shape)) return -1;
    int64_t n = sfc_tensor_numel(ref);
    float *s = score_out->data;
    /* float32 arithmetic as numpy's `ww * cam_w + wp * cam_p` on float32
     * arrays with Python-float weights (the weights become float32). */
    const float fw = (float)ww, fp = (float)wp;
    const float *w = ww != 0 ? cam_w->data : NULL;
    const float *p = wp != 0 ? cam_p->data : NULL;
    for (int64_t i = 0; i < n; i++) {
        float a = w ? fw * w[i] : 0.0f;
        float b = p ? fp * p[i] : 0.0f;
        s[i] = w && p ? a + b : w ? a : b;
    }
    return 0;
}

void sfc_cam_argmax(const struct sfc_tensor *keys,
                    const struct sfc_tensor *score, uint8_t *label_out)
{
    const int64_t *k = keys->data;
    int64_t nk = score->shape[0], hw = score->shape[1] * score->shape[2];
    const float *s = score->data;
    for (int64_t p = 0; p < hw; p++) {
        float best = s[p];
        int64_t bi = 0;
        for (int64_t c = 1; c < nk; c++)
            if (s[c * hw + p] > best) best = s[c * hw + p], bi = c;
        label_out[p] = (uint8_t)k[bi];
    }
}

void sfc_cam_fgmax(const struct sfc_tensor *keys,
                   const struct sfc_tensor *score, float *fgmax_out,
                   uint8_t *fgcls_out)
{
    const int64_t *k = keys->data;
    int64_t nk = score->shape[0], hw = score->shape[1] * score->shape[2];
    const float *s = score->data;
    for (int64_t p = 0; p < hw; p++) fgmax_out[p] = -INFINITY, fgcls_out[p] = 0;
    for (int64_t c = 1; c < nk; c++) {
        const float *sc = s + c * hw;
        float mx = -INFINITY;
        for (int64_t p = 0; p < hw; p++) mx = sc[p] > mx ? sc[p] : mx;
        float den = mx + SFC_CAM_NORM_EPS;
        for (int64_t p = 0; p < hw; p++) {
            float v = sc[p] / den;
            /* strict >: the lower channel wins ties, as np.argmax */
            if (v > fgmax_out[p]) fgmax_out[p] = v, fgcls_out[p] = (uint8_t)k[c];
        }
    }
}

void sfc_cam_threshold(const float *fgmax, const uint8_t *fgcls, int64_t n,
                       double t, uint8_t *label_out)
{
    const float ft = (float)t; /* np.pad into a float32 array */
    for (int64_t p = 0; p < n; p++)
        label_out[p] = fgmax[p] > ft ? fgcls[p] : 0;
}

int sfc_confusion_add_sweep(struct sfc_confusion *cms, int nt,
                            const double *thresholds, const float *fgmax,
                            const uint8_t *fgcls, const uint8_t *gt,
                            int64_t n, const char *gt_name)
{
    if (nt <= 0) return 0;
    const int K = cms[0].K;
    int64_t bad = find_bad(gt, n, K);
    if (bad >= 0)
        return sfc_error(gt_name, "label value %d out of range [0, %d) at "
                         "pixel %lld", gt[bad], K, (long long)bad);
    for (int64_t p = 0; p < n; p++)
        SFC_ASSERT(fgcls[p] < K);
    float *ft = sfc_xmalloc((size_t)nt * sizeof *ft);
    for (int i = 0; i < nt; i++) {
        SFC_ASSERT(cms[i].K == K);
        ft[i] = (float)thresholds[i];
    }
    for (int64_t p = 0; p < n; p++) {
        unsigned g = gt[p];
        if (g == 255) continue;
        int64_t row = (int64_t)g * K;
        for (int i = 0; i < nt; i++)
            cms[i].c[row + (fgmax[p] > ft[i] ? fgcls[p] : 0)]++;
    }
    free(ft);
    return 0;
}

int sfc_thresholds(double lo, double hi, double step, double **out,
                   int *n_out)
{
    if (!(step > 0) || !(lo <= hi) || !isfinite(lo) || !isfinite(hi))
        return sfc_error("thresholds", "need lo <= hi and step > 0, got "
                         "%g:%g:%g", lo, hi, step);
    double span = (hi - lo) / step;
    if (span > 1e6)
        return sfc_error("thresholds", "too many thresholds (%g)", span);
    int n = (int)floor(span + 1e-9) + 1;
    double *t = sfc_xmalloc((size_t)n * sizeof *t);
    for (int i = 0; i < n; i++) t[i] = lo + i * step;
    *out = t;
    *n_out = n;
    return 0;
}
