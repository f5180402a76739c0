/* SPDX-License-Identifier: MIT */
/* voc.c: VOC-layout dataset readers (see voc.h). Class order and label
 * semantics follow sfc-reference 1.1: segmentation class id = index + 1
 * of the 20 VOC names, background 0, 255 ignore; image-level labels are
 * the classes present in the mask (the reference's cls_labels_voc.npy
 * holds the same sets). Text files are read whole; errors carry
 * "file:line". */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "img.h"
#include "tensor.h"
#include "util.h"
#include "voc.h"

#define MAX_CLASSES 255 /* ids 0..254; 255 is the ignore value */

static const char *const voc_names[] = {
    "background", "aeroplane", "bicycle", "bird",      "boat",
    "bottle",     "bus",       "car",     "cat",       "chair",
    "cow",        "diningtable", "dog",   "horse",     "motorbike",
    "person",     "pottedplant", "sheep", "sofa",      "train",
    "tvmonitor"};

void sfc_classes_voc(struct sfc_classes *out)
{
    out->n = (int)(sizeof voc_names / sizeof voc_names[0]);
    out->names = sfc_xmalloc((size_t)out->n * sizeof *out->names);
    for (int c = 0; c < out->n; c++) out->names[c] = sfc_xstrdup(voc_names[c]);
}

void sfc_classes_release(struct sfc_classes *c)
{
    if (!c) return;
    for (int i = 0; i < c->n; i++) free(c->names[i]);
    free(c->names);
    c->names = NULL;
    c->n = 0;
}

int sfc_classes_find(const struct sfc_classes *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->names[i], name)) return i;
    return -1;
}

/* Next line of buf (modified in place: the newline becomes NUL, a CR
 * before it too), with blanks trimmed at both ends; NULL at the end. */
static char *next_line(char **cursor)
{
    char *s = *cursor;
    if (!s || !*s) return NULL;
    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = '\0';
        *cursor = nl + 1;
    } else {
        *cursor = s + strlen(s);
    }
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

int sfc_classes_read(const char *path, struct sfc_classes *out)
{
    char *buf = sfc_read_file(path, NULL);
    if (!buf) return -1;
    out->n = 1;
    out->names = sfc_xmalloc(sizeof *out->names);
    out->names[0] = sfc_xstrdup("background");
    char *cur = buf, *s;
    int line = 0, r = 0, first = 1;
    while (r == 0 && (s = next_line(&cur))) {
        line++;
        if (!*s || *s == '#') continue;
        if (first && !strcmp(s, "background")) {
            first = 0;
            continue;
        }
        first = 0;
        for (char *p = s; *p && r == 0; p++)
            if (isspace((unsigned char)*p))
                r = sfc_error(path, "line %d: blank in class name '%s'",
                              line, s);
        if (r == 0 && sfc_classes_find(out, s) >= 0)
            r = sfc_error(path, "line %d: duplicate class name '%s'", line,
                          s);
        if (r == 0 && out->n >= MAX_CLASSES)
            r = sfc_error(path, "line %d: more than %d classes", line,
                          MAX_CLASSES - 1);
        if (r == 0) {
            out->names = sfc_xrealloc(out->names, (size_t)(out->n + 1) *
                                                      sizeof *out->names);
            out->names[out->n++] = sfc_xstrdup(s);
        }
    }
    if (r == 0 && out->n == 1) r = sfc_error(path, "no class names");
    free(buf);
    if (r) sfc_classes_release(out);
    return r;
}

/* The file stem of a path-like token: "/JPEGImages/2007_000032.jpg" ->
 * "2007_000032". Plain ids are returned as they are. */
static char *token_id(const char *tok, size_t len)
{
    const char *b = tok, *e = tok + len;
    int pathlike = 0;
    for (const char *p = tok; p < e; p++)
        if (*p == '/') b = p + 1, pathlike = 1;
    if (pathlike)
        for (const char *p = e; p > b; p--)
            if (p[-1] == '.') {
                e = p - 1;
                break;
            }
    char *id = sfc_xmalloc((size_t)(e - b) + 1);
    memcpy(id, b, (size_t)(e - b));
    id[e - b] = '\0';
    return id;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int sfc_voc_list_read(const char *path, char ***ids_out, long *n_out)
{
    char *buf = sfc_read_file(path, NULL);
    if (!buf) return -1;
    char **ids = NULL, *cur = buf, *s;
    long n = 0, line = 0;
    int r = 0;
    while ((s = next_line(&cur))) {
        line++;
        if (!*s) continue;
        size_t len = strcspn(s, " \t\r");
        char *id = token_id(s, len);
        if (!*id) {
            free(id);
            r = sfc_error(path, "line %ld: no image id", line);
            break;
        }
        ids = sfc_xrealloc(ids, (size_t)(n + 1) * sizeof *ids);
        ids[n++] = id;
    }
    free(buf);
    if (r == 0 && n > 1) { /* repeated ids: sort a copy, compare neighbours */
        char **sorted = sfc_xmalloc((size_t)n * sizeof *sorted);
        memcpy(sorted, ids, (size_t)n * sizeof *sorted);
        qsort(sorted, (size_t)n, sizeof *sorted, cmp_str);
        for (long i = 1; i < n && r == 0; i++)
            if (!strcmp(sorted[i], sorted[i - 1]))
                r = sfc_error(path, "image '%s' listed twice", sorted[i]);
        free(sorted);
    }
    if (r) {
        for (long i = 0; i < n; i++) free(ids[i]);
        free(ids);
        return -1;
    }
    *ids_out = ids;
    *n_out = n;
    return 0;
}

int sfc_voc_mask_labels(const char *path, int width, int height, int ncls,
                        uint8_t present[256])
{
    struct sfc_tensor m = {0};
    memset(present, 0, 256);
    if (sfc_label_load(path, &m)) return -1;
    int r = 0;
    if (m.ndim != 2 || m.shape[0] != height || m.shape[1] != width) {
        r = sfc_error(path, "mask is %lldx%lld, its image is %dx%d",
                      (long long)(m.ndim == 2 ? m.shape[1] : -1),
                      (long long)(m.ndim == 2 ? m.shape[0] : -1), width,
                      height);
    } else {
        const uint8_t *p = m.data;
        int64_t n = sfc_tensor_numel(&m);
        uint8_t seen[256] = {0};
        for (int64_t i = 0; i < n; i++) seen[p[i]] = 1;
        for (int v = 1; v < 255 && r == 0; v++) {
            if (!seen[v]) continue;
            if (v >= ncls)
                r = sfc_error(path, "unknown class id %d (classes are 0..%d"
                              " and 255)", v, ncls - 1);
            else
                present[v] = 1;
        }
    }
    sfc_tensor_release(&m);
    return r;
}

/* First "<tag>" at or after s and before end, or NULL. */
static const char *find_tag(const char *s, const char *end, const char *tag)
{
    size_t n = strlen(tag);
    for (const char *p = s; p + n <= end; p++)
        if (!memcmp(p, tag, n)) return p;
    return NULL;
}

int sfc_voc_xml_labels(const char *path, const struct sfc_classes *cls,
                       uint8_t present[256])
{
    memset(present, 0, 256);
    size_t size;
    char *buf = sfc_read_file(path, &size);
    if (!buf) return -1;
    const char *end = buf + size, *p = buf;
    int r = 0;
    if (!find_tag(buf, end, "<annotation"))
        r = sfc_error(path, "not a VOC annotation (no <annotation>)");
    while (r == 0 && (p = find_tag(p, end, "<object>"))) {
        const char *oend = find_tag(p, end, "</object>");
        if (!oend) {
            r = sfc_error(path, "<object> without </object>");
            break;
        }
        /* the object's own <name>: the first one outside any <part> */
        const char *q = p + 8, *name = NULL;
        while (q < oend && !name) {
            const char *part = find_tag(q, oend, "<part>");
            const char *nm = find_tag(q, oend, "<name>");
            if (!nm) break;
            if (part && part < nm) {
                const char *pe = find_tag(part, oend, "</part>");
                q = pe ? pe + 7 : oend;
            } else {
                name = nm + 6;
            }
        }
        const char *nend = name ? find_tag(name, oend, "</name>") : NULL;
        if (!nend) {
            r = sfc_error(path, "<object> without a <name>");
            break;
        }
        while (name < nend && isspace((unsigned char)*name)) name++;
        while (nend > name && isspace((unsigned char)nend[-1])) nend--;
        char *s = sfc_xmalloc((size_t)(nend - name) + 1);
        memcpy(s, name, (size_t)(nend - name));
        s[nend - name] = '\0';
        int c = sfc_classes_find(cls, s);
        if (c <= 0)
            r = sfc_error(path, "unknown class name '%s'", s);
        else
            present[c] = 1;
        free(s);
        p = oend;
    }
    free(buf);
    return r;
}

/* A class token: a name, or a decimal id 1..C. -1 if unknown. */
static int class_token(const struct sfc_classes *cls, const char *t)
{
    if (isdigit((unsigned char)*t)) {
        char *e;
        long v = strtol(t, &e, 10);
        if (*e) return -1;
        return v >= 1 && v < cls->n ? (int)v : -1;
    }
    int c = sfc_classes_find(cls, t);
    return c >= 1 ? c : -1;
}

int sfc_label_list_read(const char *path, const struct sfc_classes *cls,
                        struct sfc_label_list *out)
{
    memset(out, 0, sizeof *out);
    char *buf = sfc_read_file(path, NULL);
    if (!buf) return -1;
    char *cur = buf, *s;
    long line = 0, cap = 0;
    int r = 0;
    while (r == 0 && (s = next_line(&cur))) {
        line++;
        if (!*s || *s == '#') continue;
        if (out->n == cap) {
            cap = cap ? 2 * cap : 256;
            out->ids = sfc_xrealloc(out->ids, (size_t)cap * sizeof *out->ids);
            out->present = sfc_xrealloc(out->present,
                                        (size_t)cap * sizeof *out->present);
        }
        uint8_t *pr = out->present[out->n];
        memset(pr, 0, 256);
        char *save = NULL;
        char *tok = strtok_r(s, " \t,", &save);
        out->ids[out->n] = token_id(tok, strlen(tok));
        out->n++;
        while (r == 0 && (tok = strtok_r(NULL, " \t,", &save))) {
            int c = class_token(cls, tok);
            if (c < 0)
                r = sfc_error(path, "line %ld: unknown class %s '%s'", line,
                              isdigit((unsigned char)*tok) ? "id" : "name",
                              tok);
            else
                pr[c] = 1;
        }
    }
    free(buf);
    /* sort by id (an index permutation keeps ids and labels together) */
    if (r == 0 && out->n > 1) {
        long n = out->n;
        /* (id, index) pairs; cmp_str compares their first member */
        struct pair { char *id; long i; } *pv =
            sfc_xmalloc((size_t)n * sizeof *pv);
        for (long i = 0; i < n; i++) pv[i].id = out->ids[i], pv[i].i = i;
        qsort(pv, (size_t)n, sizeof *pv, cmp_str);
        char **ids = sfc_xmalloc((size_t)n * sizeof *ids);
        uint8_t(*pres)[256] = sfc_xmalloc((size_t)n * sizeof *pres);
        for (long k = 0; k < n; k++) {
            ids[k] = out->ids[pv[k].i];
            memcpy(pres[k], out->present[pv[k].i], 256);
        }
        free(out->ids);
        free(out->present);
        out->ids = ids;
        out->present = pres;
        for (long k = 1; k < n && r == 0; k++)
            if (!strcmp(ids[k], ids[k - 1]))
                r = sfc_error(path, "image '%s' listed twice", ids[k]);
        free(pv);
    }
    if (r == 0 && out->n == 0) r = sfc_error(path, "no labels");
    if (r) sfc_label_list_release(out);
    return r;
}

long sfc_label_list_find(const struct sfc_label_list *l, const char *id)
{
    long lo = 0, hi = l->n - 1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        int c = strcmp(l->ids[mid], id);
        if (c == 0) return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

void sfc_label_list_release(struct sfc_label_list *l)
{
    if (!l) return;
    for (long i = 0; i < l->n; i++) free(l->ids[i]);
    free(l->ids);
    free(l->present);
    memset(l, 0, sizeof *l);
}
