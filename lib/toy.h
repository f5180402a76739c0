/* SPDX-License-Identifier: MIT */
/* toy.h: the generated long-tailed toy segmentation dataset (rendering
 * only, no I/O; tools/sfc-toygen.c writes the files).
 *
 * Classes come in groups. A group shares a body (shape, texture, colours);
 * each class adds a small mark (shape, colour) at one end of the body. In
 * each group the first class is frequent (head), the others rare (tail).
 * A train image holds 1-3 distinct classes (p = .45/.35/.20), drawn one
 * after another without replacement with probability proportional to
 * w_c^imbalance; a val image draws its classes uniformly (class-balanced
 * evaluation). Objects are rotated, fully inside the image, and overlap
 * by at most max_overlap of either object's area; later objects occlude
 * earlier ones. The mask is exact: each pixel holds the class id (1..C)
 * of the last object whose body or mark covers its centre, else 0.
 *
 * Everything about image (split, index) comes from one struct sfc_rng
 * seeded from (seed, split, index), so images can be rendered in any
 * order, on any number of threads, with the same bytes. See
 * examples/toy-dataset.md for the design and the default class table. */
#ifndef SFC_TOY_H
#define SFC_TOY_H

#include <stdint.h>

#define SFC_TOY_MAX_CLASSES 24
#define SFC_TOY_MAX_OBJECTS 3
#define SFC_TOY_DEFAULT_CLASSES 8

enum sfc_toy_split { SFC_TOY_TRAIN = 0, SFC_TOY_VAL = 1 };

struct sfc_toy_class {
    char name[32];   /* "<body>_<mark>", e.g. "oval_disc" */
    int group;       /* 0-based body index, shared within the group */
    int head;        /* 1: the frequent class of its group */
    double weight;   /* frequency weight w (train P ∝ w^imbalance) */
    int mark;        /* mark shape index (see toy.c) */
    uint8_t mark_rgb[3];
};

struct sfc_toy_config {
    int size;            /* image side in pixels (square images) */
    int n_classes;       /* foreground classes C; class ids 1..C */
    int n_groups;
    struct sfc_toy_class cls[SFC_TOY_MAX_CLASSES]; /* cls[id - 1] */
    double imbalance;    /* exponent on the weights (0 = balanced) */
    double mark_radius;  /* mark radius / body half-length */
    double max_overlap;  /* max fraction of an object covered by another */
    uint64_t seed;
};

/* Defaults: 96 px, C = n_classes (2..SFC_TOY_MAX_CLASSES) in
 * G = ceil(C / 3) groups, class k (0-based) in group k mod G, so classes
 * 1..G are the heads. Weights: for C = 8 the table 1, .6, .4, .12, .09,
 * .07, .05, .04; otherwise geometric from 1 down to 0.04. imbalance 1,
 * mark_radius 0.30, max_overlap 0.10, seed 0. Returns 0, or -1 with the
 * error slot set if n_classes is out of range. */
int sfc_toy_config_default(struct sfc_toy_config *c, int n_classes);

/* The class ids (1..C) of image `index` of `split`, in drawing (and
 * painting) order; returns their count (1..3). */
int sfc_toy_classes(const struct sfc_toy_config *c, enum sfc_toy_split split,
                    long index, int *ids_out);

/* Render image `index` of `split`: rgb (size, size, 3) and mask
 * (size, size), caller-allocated. ids_out (SFC_TOY_MAX_OBJECTS) receives
 * the class ids of the objects drawn, in painting order; returns their
 * count (an object that finds no place within the overlap limit is
 * dropped, which is rare). Thread-safe, no allocation beyond a scratch
 * buffer of size*size bytes. */
int sfc_toy_render(const struct sfc_toy_config *c, enum sfc_toy_split split,
                   long index, uint8_t *rgb, uint8_t *mask, int *ids_out);

/* p_out[id - 1] = probability that class id appears in an image of
 * `split` (before placement), by exact enumeration of the draws; times
 * the image count it is the expected number of images per class. */
void sfc_toy_expected(const struct sfc_toy_config *c, enum sfc_toy_split split,
                      double *p_out);

/* Probability of drawing k objects (k = 1..3), before capping at C. */
extern const double sfc_toy_nobj_p[SFC_TOY_MAX_OBJECTS];

#endif
