/* SPDX-License-Identifier: MIT */
/* metrics.h: segmentation scores (no I/O).
 *
 * Confusion matrix: K classes (1 <= K <= 255), int64 counts, row = ground
 * truth, column = prediction (chainercv's calc_semantic_segmentation_
 * confusion layout). Label maps are uint8: ground truth 255 is ignored,
 * prediction 255 counts as background (class 0, as IRN's eval_sem_seg.py
 * does); any other value >= K is an error naming the map.
 *
 * Per class c, with C the confusion, row_c = sum_j C[c][j] (ground-truth
 * pixels of c) and col_c = sum_i C[i][c] (predicted pixels of c):
 *   IoU_c       = C[c][c] / (row_c + col_c - C[c][c])
 *   precision_c = C[c][c] / col_c
 *   recall_c    = C[c][c] / row_c
 * each NaN when its denominator is 0. mIoU is the mean over the classes
 * whose IoU is not NaN (np.nanmean): a class absent from both ground truth
 * and prediction is skipped, one predicted but absent from ground truth
 * scores 0.
 *
 * CAM label maps (sfc-reference.md §3, §4): a CAM file holds keys int64
 * (K') with keys[0] = 0 and strictly increasing class ids, and float32
 * maps (K', H, W) named cam_w (M_W) and cam_p (M_P). The score is
 * S = ww * cam_w + wp * cam_p, computed in float32 as numpy does
 * (a weight of 0 skips its map, which may then be NULL). Two rules:
 *   - SFC (background channel): label = keys[argmax_k S[k]];
 *   - IRN (background threshold): drop S[0], divide every foreground
 *     channel by (its max over H, W) + 1e-5 (IRN make_cam.py), put a
 *     constant channel t in front and take the argmax; so a pixel is
 *     background iff its largest normalised foreground score is <= t.
 * Argmax ties go to the lowest channel (np.argmax). */
#ifndef SFC_METRICS_H
#define SFC_METRICS_H

#include <stdint.h>

#include "tensor.h"

/* Largest class count a uint8 label map can carry (255 is ignore). */
#define SFC_METRICS_MAX_CLASSES 255
/* IRN's max-normalisation guard (make_cam.py: max + 1e-5). */
#define SFC_CAM_NORM_EPS 1e-5f

struct sfc_confusion {
    int K;
    int64_t *c; /* (K, K): c[gt * K + pred] */
};

/* Allocate a zeroed K x K matrix. -1 if K is not in [1, 255]. */
int sfc_confusion_init(struct sfc_confusion *cm, int K);
void sfc_confusion_release(struct sfc_confusion *cm);
/* Set every count to 0. */
void sfc_confusion_zero(struct sfc_confusion *cm);

/* Add n pixels. pred_name and gt_name are the domains of the error
 * message "<name>: label value V out of range [0, K) at pixel I". On error
 * nothing is added. */
int sfc_confusion_add(struct sfc_confusion *cm, const uint8_t *pred,
                      const uint8_t *gt, int64_t n, const char *pred_name,
                      const char *gt_name);
/* cm += other (same K). */
void sfc_confusion_merge(struct sfc_confusion *cm,
                         const struct sfc_confusion *other);

/* Per-class scores into caller arrays of K doubles (NaN as above). Any
 * output pointer may be NULL. row_out/col_out receive row_c and col_c. */
void sfc_confusion_scores(const struct sfc_confusion *cm, double *iou_out,
                          double *precision_out, double *recall_out,
                          int64_t *row_out, int64_t *col_out);
/* Mean of the non-NaN values of x[0..n); NaN if there are none. */
double sfc_nanmean(const double *x, int n);

/* Head / middle / tail: group[c] = 0, 1, 2 (enum sfc_class_group of
 * lib/db.h; sfc_class_groups() there ranks the foreground classes by their
 * image counts, largest first, ties by ascending id, first third head,
 * second middle, rest tail; 20 classes: 7, 7, 6), -1 for background. */
#define SFC_NGROUPS 3
/* nanmean of iou over each group's classes; NaN for an empty group. */
void sfc_group_means(int K, const double *iou, const int *group,
                     double out[SFC_NGROUPS]);

/* ---- CAM label maps ---------------------------------------------------- */

/* Check a CAM's keys (int64 (K'), keys[0] = 0, strictly increasing, all
 * < K) and maps (float32 (K', H, W), equal shapes); domain names the file.
 * Maps with weight 0 may be NULL. */
int sfc_cam_check(const char *domain, int K, const struct sfc_tensor *keys,
                  const struct sfc_tensor *cam_w,
                  const struct sfc_tensor *cam_p, double ww, double wp);

/* S = ww * cam_w + wp * cam_p into a fresh float32 (K', H, W) tensor.
 * Inputs must have passed sfc_cam_check(). */
int sfc_cam_score(const struct sfc_tensor *cam_w,
                  const struct sfc_tensor *cam_p, double ww, double wp,
                  struct sfc_tensor *score_out);

/* SFC rule: label_out[p] = keys[argmax_k score[k][p]] for H*W pixels. */
void sfc_cam_argmax(const struct sfc_tensor *keys,
                    const struct sfc_tensor *score, uint8_t *label_out);

/* IRN rule, split for threshold sweeps: for each pixel the largest
 * max-normalised foreground score (fgmax_out, H*W floats) and its class id
 * keys[k] (fgcls_out). A CAM with no foreground channel gives fgmax
 * -infinity (background at every threshold). */
void sfc_cam_fgmax(const struct sfc_tensor *keys,
                   const struct sfc_tensor *score, float *fgmax_out,
                   uint8_t *fgcls_out);
/* Label at background threshold t: 0 where fgmax <= (float)t, else fgcls. */
void sfc_cam_threshold(const float *fgmax, const uint8_t *fgcls, int64_t n,
                       double t, uint8_t *label_out);
/* For each of nt thresholds, add the thresholded labels against gt into
 * cms[i] (all with the same K); gt as in sfc_confusion_add. */
int sfc_confusion_add_sweep(struct sfc_confusion *cms, int nt,
                            const double *thresholds, const float *fgmax,
                            const uint8_t *fgcls, const uint8_t *gt,
                            int64_t n, const char *gt_name);

/* Thresholds lo, lo + step, ..., up to hi (inclusive within 1e-9 step) into
 * a fresh array; *n_out is the count. -1 unless step > 0 and lo <= hi. */
int sfc_thresholds(double lo, double hi, double step, double **out,
                   int *n_out);

#endif
