/* SPDX-License-Identifier: MIT */
/* coco.h: MS COCO instance annotations (instances_*.json) read with a
 * streaming JSON parser, checked, and rendered to class masks.
 *
 * Classes: the categories sorted by id become classes 1..C (COCO 2014:
 * ids 1..90 with gaps -> 1..80), background is 0.
 *
 * Segmentations, in COCO's own three forms (pycocotools' mask semantics):
 * - polygons: a list of [x0, y0, x1, y1, ...] in pixel coordinates. Pixel
 *   (column x, row y) belongs to a polygon when the point (x, y) lies
 *   inside it by the even-odd rule, an edge counting for the columns x
 *   with min(x0, x1) <= x < max(x0, x1) and the rows y >= its crossing.
 *   pycocotools applies the same rule on a grid upsampled 5 times, so the
 *   two agree up to its 1/5-pixel rounding of the edges. The polygons of
 *   one annotation are united.
 * - uncompressed RLE (crowd regions in the official files):
 *   {"counts": [n0, n1, ...], "size": [h, w]}, run lengths over the pixels
 *   in column-major order, alternating background (first, possibly 0) and
 *   object;
 * - compressed RLE: the same runs as a "counts" string, each run (from the
 *   fourth on, minus the run two before it) written as a signed number in
 *   5-bit groups, least significant first, one character 48 + group each,
 *   bit 0x20 set on every group but the last (the sign is bit 0x10 of the
 *   last group).
 *
 * Rendering one image (sfc_coco_render): crowd annotations are painted
 * first (their class, or 255 with SFC_COCO_CROWD_IGNORE), then the other
 * annotations; where instances overlap, the smaller one (fewer pixels;
 * ties: later in the file) is painted last and wins (SFC_COCO_OVERLAP_SMALL,
 * default), or the later annotation in the file wins
 * (SFC_COCO_OVERLAP_LAST, what the usual conversion scripts do). The
 * image-level labels are the classes of all its annotations, crowd ones
 * included. */
#ifndef SFC_COCO_H
#define SFC_COCO_H

#include <stddef.h>
#include <stdint.h>

enum sfc_coco_seg { SFC_COCO_POLY, SFC_COCO_RLE, SFC_COCO_RLE_STRING };

struct sfc_coco_image {
    int64_t id;
    char *file;        /* file_name (owned) */
    int width, height;
    long first, n_ann; /* its annotations: c->by_image[first .. first+n) */
};

struct sfc_coco_ann {
    int64_t id, image_id, category_id;
    long image;        /* index into c->images (set by the checks) */
    int cls;           /* class 1..C (set by the checks) */
    uint8_t crowd;     /* iscrowd */
    uint8_t kind;      /* enum sfc_coco_seg */
    int rle_h, rle_w;  /* RLE: "size" */
    size_t off;        /* POLY: first polygon in c->plen; RLE: first run in
                          c->counts; RLE_STRING: first byte in c->str */
    size_t n;          /* polygons, runs, or string bytes */
    size_t xy;         /* POLY: first coordinate in c->xy */
};

struct sfc_coco {
    char *path;                     /* the file read (error domain) */
    long n_images, n_anns;
    int n_cats;                     /* C */
    struct sfc_coco_image *images;  /* in file order */
    struct sfc_coco_ann *anns;      /* in file order */
    int64_t *cat_ids;               /* (C) ascending: class c = index + 1 */
    char **cat_names;               /* (C) */
    long *by_image;                 /* (n_anns) annotation indices grouped
                                       by image, file order within one */
    uint32_t *plen;                 /* points of each polygon */
    double *xy;                     /* polygon coordinates x, y, ... */
    uint32_t *counts;               /* uncompressed RLE runs */
    char *str;                      /* compressed RLE strings (no NULs) */
    size_t n_plen, n_xy, n_counts, n_str;
};

/* Read and check an annotation file. Checks: well-formed JSON (the
 * error gives the byte offset), the expected structure, unique image,
 * annotation and category ids, each annotation's image and category id
 * known, polygons with an even number of coordinates inside the
 * image widened by margin pixels on each side, RLE of the image's size
 * covering exactly its pixels, compressed strings that decode. Errors name
 * the file and the annotation: "<file>: annotation 42: unknown category id
 * 91". Returns 0, or -1 with the slot set and out zeroed. */
int sfc_coco_read(const char *path, double margin, struct sfc_coco *out);
void sfc_coco_release(struct sfc_coco *c);

/* The file stem of an image's file_name (its id in the db and the name
 * of its mask): "COCO_train2014_000000000009". Heap string. */
char *sfc_coco_stem(const char *file_name);

enum sfc_coco_crowd { SFC_COCO_CROWD_CLASS, SFC_COCO_CROWD_IGNORE };
enum sfc_coco_overlap { SFC_COCO_OVERLAP_SMALL, SFC_COCO_OVERLAP_LAST };

/* One annotation's instance mask: m (H, W) row-major of its image's size
 * is cleared, then set to 1 on its pixels. Returns the pixel count. */
long sfc_coco_ann_mask(const struct sfc_coco *c, long a, uint8_t *m);

/* The class mask of image i into label (H, W) row-major (0 background,
 * 1..C, 255 crowd when ignored) and its labels into present[256]
 * (cleared first). Needs 2 H W bytes of scratch, allocated here. */
void sfc_coco_render(const struct sfc_coco *c, long i,
                     enum sfc_coco_crowd crowd, enum sfc_coco_overlap ov,
                     uint8_t *label, uint8_t present[256]);

/* ---- the segmentation formats, also for tests --------------------- */

/* Even-odd fill of one polygon (n points, xy = x0, y0, x1, y1, ...) into
 * m (H, W) row-major: pixels inside are set to 1, others untouched. */
void sfc_coco_poly_fill(uint8_t *m, int H, int W, const double *xy, long n);
/* Set to 1 the object runs of column-major RLE counts over m (H, W)
 * row-major; the runs must cover at most H W pixels. */
void sfc_coco_rle_fill(uint8_t *m, int H, int W, const uint32_t *counts,
                       size_t n);
/* Column-major runs of a binary (0 / non-zero) mask m (H, W) row-major:
 * heap array, *n_out runs (the first run is background, may be 0). */
uint32_t *sfc_coco_rle_encode(const uint8_t *m, int H, int W, size_t *n_out);
/* The compressed counts string of n runs (heap string). */
char *sfc_coco_rle_to_string(const uint32_t *counts, size_t n);
/* Decode a compressed counts string of len bytes: 0 and a heap array of
 * *n_out runs, or -1 with "<domain>: ..." set (a character outside
 * '0'..'o', a truncated number, a negative or too large run). */
int sfc_coco_rle_from_string(const char *domain, const char *s, size_t len,
                             uint32_t **counts_out, size_t *n_out);

#endif
