/* SPDX-License-Identifier: MIT */
/* ids.c: image-id lists for the per-image tools (see ids.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "db.h"
#include "err.h"
#include "ids.h"
#include "util.h"
#include "voc.h"

void sfc_ids_push(struct sfc_ids *s, const char *id)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = sfc_xrealloc(s->v, (size_t)s->cap * sizeof *s->v);
    }
    s->v[s->n++] = sfc_xstrdup(id);
}

void sfc_ids_release(struct sfc_ids *s)
{
    for (long i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

int sfc_ids_read(struct sfc_ids *out, const char *name, FILE *fp)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, fp)) >= 0) {
        char *s = line, *e = line + len;
        while (s < e && isspace((unsigned char)*s)) s++;
        while (e > s && isspace((unsigned char)e[-1])) e--;
        if (e == s) continue;
        *e = '\0';
        sfc_ids_push(out, s);
    }
    int bad = ferror(fp);
    free(line);
    return bad ? sfc_error(name, "read error:") : 0;
}

int sfc_ids_read_file(struct sfc_ids *out, const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) return sfc_error(path, "cannot open:");
    int e = sfc_ids_read(out, path, fp);
    fclose(fp);
    return e;
}

int sfc_ids_get(struct sfc_ids *out, int npos, char **pos, const char *list,
                struct sfc_db *db, const char *split)
{
    const char *from = "<stdin>";
    memset(out, 0, sizeof *out);
    if (npos > 0) {
        from = "arguments";
        for (int i = 0; i < npos; i++) sfc_ids_push(out, pos[i]);
    } else if (list) {
        /* VOC lists and SFC's "/JPEGImages/<id>.jpg ..." lines alike */
        from = list;
        char **v;
        long n;
        if (sfc_voc_list_read(list, &v, &n)) return -1;
        out->v = v;
        out->n = out->cap = n;
    } else if (split) {
        from = split;
        if (!db) return sfc_error(split, "a split needs --db");
        struct sfc_db_image *im;
        long n;
        if (sfc_db_split_images(db, split, &im, &n)) return -1;
        for (long i = 0; i < n; i++) sfc_ids_push(out, im[i].id);
        sfc_db_images_free(im, n);
    } else if (sfc_ids_read(out, "<stdin>", stdin)) {
        return -1;
    }
    if (out->n == 0) return sfc_error(from, "no image ids");
    for (long i = 0; i < out->n; i++) {
        const char *id = out->v[i];
        if (!*id || strchr(id, '/') || !strcmp(id, ".") || !strcmp(id, ".."))
            return sfc_error(id, "not a valid image id");
    }
    return 0;
}

char **sfc_ids_image_paths(const struct sfc_ids *ids, struct sfc_db *db,
                           const char *images, const char *ext)
{
    char **paths = sfc_xcalloc((size_t)ids->n + 1, sizeof(char *));
    for (long i = 0; i < ids->n; i++) {
        if (images) {
            paths[i] = sfc_xasprintf("%s/%s%s", images, ids->v[i], ext);
            continue;
        }
        struct sfc_db_image im;
        if (!db || sfc_db_image_get(db, ids->v[i], &im)) {
            if (!db) sfc_error(ids->v[i], "no --images and no --db");
            sfc_db_strv_free(paths, ids->n);
            return NULL;
        }
        paths[i] = sfc_xstrdup(im.path);
        sfc_db_image_release(&im);
    }
    return paths;
}
