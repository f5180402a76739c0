/* SPDX-License-Identifier: MIT */
/* pblock.c: named ranges of a flat parameter block, and their load and
 * save through safetensors by checkpoint key (see pblock.h). Loading
 * mirrors torch's load_state_dict(strict=True) reporting: missing keys,
 * unexpected keys, then size mismatches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "pblock.h"
#include "util.h"

#define LIST_MAX 8 /* keys named in one message */

void sfc_pblock_init(struct sfc_pblock *b)
{
    memset(b, 0, sizeof *b);
}

void sfc_pblock_release(struct sfc_pblock *b)
{
    for (int i = 0; i < b->n; i++) free(b->e[i].name);
    free(b->e);
    memset(b, 0, sizeof *b);
}

size_t sfc_pblock_add(struct sfc_pblock *b, const char *name, int buffer,
                      int ndim, const int64_t *shape)
{
    SFC_ASSERT(ndim >= 1 && ndim <= 4);
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->e = sfc_xrealloc(b->e, (size_t)b->cap * sizeof *b->e);
    }
    struct sfc_pentry *e = &b->e[b->n++];
    memset(e, 0, sizeof *e);
    e->name = sfc_xstrdup(name);
    e->ndim = ndim;
    e->numel = 1;
    for (int i = 0; i < ndim; i++) {
        SFC_ASSERT(shape[i] > 0);
        e->shape[i] = shape[i];
        e->numel *= (size_t)shape[i];
    }
    e->buffer = buffer ? 1 : 0;
    e->off = b->size;
    b->size += e->numel;
    return e->off;
}

const struct sfc_pentry *sfc_pblock_find(const struct sfc_pblock *b,
                                         const char *name)
{
    for (int i = 0; i < b->n; i++)
        if (!strcmp(b->e[i].name, name)) return &b->e[i];
    return NULL;
}

/* A growing "a, b, c (and N more)" list. */
struct keylist {
    char buf[1024];
    int count;
};

static void keylist_add(struct keylist *k, const char *key)
{
    if (k->count < LIST_MAX) {
        size_t len = strlen(k->buf);
        snprintf(k->buf + len, sizeof k->buf - len, "%s'%s'",
                 k->count ? ", " : "", key);
    }
    k->count++;
}

static const char *keylist_str(struct keylist *k)
{
    if (k->count > LIST_MAX) {
        size_t len = strlen(k->buf);
        snprintf(k->buf + len, sizeof k->buf - len, " (%d in all)",
                 k->count);
    }
    return k->buf;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int shape_equal(const struct sfc_pentry *e, const struct sfc_tensor *t)
{
    if (t->ndim != e->ndim) return 0;
    for (int i = 0; i < e->ndim; i++)
        if (t->shape[i] != e->shape[i]) return 0;
    return 1;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t len = 0;
    len += (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < ndim && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? ", " : "",
                                (long long)shape[i]);
    if (len < n) snprintf(buf + len, n - len, ")");
}

int sfc_pblock_load(const struct sfc_pblock *b, float *block,
                    const struct sfc_safetensors *st, const char *prefix,
                    const char *const *ignore, const char *domain)
{
    size_t plen = strlen(prefix);
    struct keylist missing = {{0}, 0}, unexpected = {{0}, 0}, bad = {{0}, 0};
    char key[512];

    for (int i = 0; i < b->n; i++) {
        snprintf(key, sizeof key, "%s%s", prefix, b->e[i].name);
        const struct sfc_tensor *t = sfc_safetensors_get(st, key);
        if (!t) {
            keylist_add(&missing, key);
        } else if (t->dtype != SFC_F32 || !shape_equal(&b->e[i], t)) {
            char want[96], got[96], item[1024];
            shape_str(want, sizeof want, b->e[i].ndim, b->e[i].shape);
            shape_str(got, sizeof got, t->ndim, t->shape);
            snprintf(item, sizeof item, "%s %s %s, expected float32 %s", key,
                     sfc_dtype_name(t->dtype), got, want);
            keylist_add(&bad, item);
        }
    }
    for (int i = 0; i < st->n; i++) {
        const char *k = st->names[i];
        if (strncmp(k, prefix, plen)) continue;
        const char *rest = k + plen;
        if (sfc_pblock_find(b, rest)) continue;
        if (ends_with(rest, "num_batches_tracked")) continue;
        int skip = 0;
        for (int j = 0; ignore && ignore[j]; j++)
            if (!strncmp(rest, ignore[j], strlen(ignore[j]))) skip = 1;
        if (!skip) keylist_add(&unexpected, k);
    }
    if (missing.count)
        return sfc_error(domain, "missing keys: %s", keylist_str(&missing));
    if (unexpected.count)
        return sfc_error(domain, "unexpected keys: %s",
                         keylist_str(&unexpected));
    if (bad.count)
        return sfc_error(domain, "shape mismatch: %s", keylist_str(&bad));
    for (int i = 0; i < b->n; i++) {
        snprintf(key, sizeof key, "%s%s", prefix, b->e[i].name);
        const struct sfc_tensor *t = sfc_safetensors_get(st, key);
        memcpy(block + b->e[i].off, t->data, b->e[i].numel * sizeof(float));
    }
    return 0;
}

void sfc_pblock_views(const struct sfc_pblock *b, const float *block,
                      const char *prefix, char **names,
                      struct sfc_tensor *views)
{
    for (int i = 0; i < b->n; i++) {
        names[i] = sfc_xasprintf("%s%s", prefix, b->e[i].name);
        sfc_tensor_view(&views[i], (void *)(block + b->e[i].off), SFC_F32,
                        b->e[i].ndim, b->e[i].shape);
    }
}

void sfc_pblock_names_free(char **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
}

int sfc_pblock_save(const struct sfc_pblock *b, const float *block,
                    const char *path, const char *prefix)
{
    char **names = sfc_xcalloc((size_t)b->n + 1, sizeof *names);
    struct sfc_tensor *views = sfc_xcalloc((size_t)b->n + 1, sizeof *views);
    const struct sfc_tensor **tp = sfc_xcalloc((size_t)b->n + 1, sizeof *tp);
    sfc_pblock_views(b, block, prefix, names, views);
    for (int i = 0; i < b->n; i++) tp[i] = &views[i];
    int rc = sfc_safetensors_write(path, b->n, (const char *const *)names,
                                   tp, 0, NULL, NULL);
    sfc_pblock_names_free(names, b->n);
    free(names);
    free(views);
    free(tp);
    return rc;
}
