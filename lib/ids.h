/* SPDX-License-Identifier: MIT */
/* ids.h: the image ids a per-image tool works on, read the same way by
 * every tool: the positional arguments, else a list file (a VOC list: the
 * first token of each line, or the file stem of SFC's "/JPEGImages/<id>.jpg
 * ..." lines; a repeated id is an error), else a split of the db, else
 * standard input (one id per line). Every id must name a file in a folder (no '/', not "."
 * or ".."); an empty list is an error. */
#ifndef SFC_IDS_H
#define SFC_IDS_H

#include <stdio.h>

struct sfc_db;

struct sfc_ids {
    char **v;
    long n, cap;
};

/* Fill out from the first source given: npos positional ids, list (a
 * file), split (needs db), else stdin. -1 with the error slot naming the
 * list, the split or the bad id. */
int sfc_ids_get(struct sfc_ids *out, int npos, char **pos, const char *list,
                struct sfc_db *db, const char *split);
/* Append the lines of a stream, or of a file (blank lines skipped, white
 * space trimmed; also used for lists of class names). */
int sfc_ids_read(struct sfc_ids *out, const char *name, FILE *fp);
int sfc_ids_read_file(struct sfc_ids *out, const char *path);
void sfc_ids_push(struct sfc_ids *s, const char *id);
void sfc_ids_release(struct sfc_ids *s);
/* The image file of each id: "<images>/<id><ext>" when images is given,
 * else the path the db records. A new array of ids->n strings (free with
 * sfc_db_strv_free(paths, ids->n)), or NULL with the error slot naming
 * the id. */
char **sfc_ids_image_paths(const struct sfc_ids *ids, struct sfc_db *db,
                           const char *images, const char *ext);

#endif
