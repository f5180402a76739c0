/* SPDX-License-Identifier: MIT */
/* voc.h: reading a dataset in PASCAL VOC layout (sfc-reference 1.1):
 * class name files, image lists (ImageSets/Segmentation/<split>.txt),
 * and image-level labels taken from ground-truth masks, from VOC XML
 * annotations, or from a label list file. No database here: sfc-ingest
 * puts the results into the db.
 *
 * Labels are sets of foreground class ids 1..C, kept as a presence array
 * uint8_t present[256] (present[c] = 1 if class c is in the image). Every
 * error names the file (and the line for text files). */
#ifndef SFC_VOC_H
#define SFC_VOC_H

#include <stdint.h>

/* The label set: names[c] for c = 0..n-1, names[0] = "background". */
struct sfc_classes {
    int n;        /* C + 1 */
    char **names; /* owned */
};

/* The 20 VOC classes (aeroplane .. tvmonitor) after background. */
void sfc_classes_voc(struct sfc_classes *out);
/* Read a class file: one name per line (surrounding blanks trimmed; empty
 * lines and lines starting with '#' skipped). The names are classes
 * 1..C in order; a first line "background" is class 0 and is not
 * repeated. Duplicate names, names with blanks, and more than 254 classes
 * are errors. */
int sfc_classes_read(const char *path, struct sfc_classes *out);
void sfc_classes_release(struct sfc_classes *c);
/* The id of a name, or -1. */
int sfc_classes_find(const struct sfc_classes *c, const char *name);

/* Read an image list: the first token of each non-empty line is the id;
 * a token with a '/' (SFC's "/JPEGImages/2007_000032.jpg ..." lists) gives
 * its file stem. A repeated id is an error. */
int sfc_voc_list_read(const char *path, char ***ids_out, long *n_out);

/* Labels from a ground-truth mask: load it (palette or grayscale PNG),
 * require size width x height, set present[c] for the values 1..ncls-1
 * found (0 and 255 are not labels); a value in ncls..254 is an error
 * ("unknown class id"). present is cleared first. */
int sfc_voc_mask_labels(const char *path, int width, int height, int ncls,
                        uint8_t present[256]);

/* Labels from a VOC annotation: the <name> of every <object> (parts
 * ignored). An unknown name is an error. present is cleared first. */
int sfc_voc_xml_labels(const char *path, const struct sfc_classes *cls,
                       uint8_t present[256]);

/* A label list file: one image per line, its id then its classes, each a
 * name or a numeric id 1..C, separated by blanks or commas. Unknown names
 * and ids (background included) and repeated images are errors. */
struct sfc_label_list {
    long n;
    char **ids;
    uint8_t (*present)[256]; /* (n, 256) */
};
int sfc_label_list_read(const char *path, const struct sfc_classes *cls,
                        struct sfc_label_list *out);
/* Index of an image id, or -1 (binary search; the reader sorts). */
long sfc_label_list_find(const struct sfc_label_list *l, const char *id);
void sfc_label_list_release(struct sfc_label_list *l);

#endif
