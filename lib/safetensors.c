/* SPDX-License-Identifier: MIT */
/* safetensors.c: checkpoints in the safetensors format
 * (huggingface/safetensors, docs "format"): an 8-byte little-endian header
 * size N, N bytes of UTF-8 JSON mapping each tensor name to {"dtype",
 * "shape", "data_offsets": [begin, end]} (offsets relative to the data
 * section) plus an optional "__metadata__" string map, then the data.
 *
 * Reading validates what the reference implementation validates: a sane
 * N, well-formed JSON, offsets that tile the data section exactly (sorted
 * by begin: no overlap, no gap, nothing after the last tensor), and
 * end - begin == product(shape) * itemsize. Tensors come back in data
 * order, each read straight into its own aligned buffer.
 *
 * Writing emits {"__metadata__":{...},"<name>":{"dtype":..,"shape":[..],
 * "data_offsets":[b,e]},...} without blanks, in the order given, padded
 * with spaces to a multiple of 8 bytes (as the reference writer does), and
 * the data in the same order: a model writes its parameter block order. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomic.h"
#include "err.h"
#include "json.h"
#include "safetensors.h"
#include "util.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

/* The reference implementation's MAX_HEADER_SIZE (100 MB). */
#define ST_MAX_HEADER 100000000u
#define ST_META "__metadata__"

static const char *st_dtype_name(enum sfc_dtype dt)
{
    return dt == SFC_F32 ? "F32" : dt == SFC_I64 ? "I64" : NULL;
}

/* One tensor entry of the header, before the data is read. */
struct entry {
    const char *name; /* points into the JSON tree */
    enum sfc_dtype dtype;
    int ndim;
    int64_t shape[SFC_MAXDIM];
    uint64_t begin, end;
};

static void st_init(struct sfc_safetensors *s)
{
    memset(s, 0, sizeof *s);
}

void sfc_safetensors_release(struct sfc_safetensors *s)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        free(s->names[i]);
        sfc_tensor_release(&s->tensors[i]);
    }
    for (int i = 0; i < s->nmeta; i++) {
        free(s->meta_keys[i]);
        free(s->meta_values[i]);
    }
    free(s->names);
    free(s->tensors);
    free(s->meta_keys);
    free(s->meta_values);
    st_init(s);
}

static const char *shape_text(const struct entry *e, char *buf, size_t n)
{
    size_t len = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < e->ndim && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? ", " : "",
                                (long long)e->shape[i]);
    if (len < n) snprintf(buf + len, n - len, "]");
    return buf;
}

/* Parse one tensor's header object into e. */
static int parse_entry(const char *path, const char *name,
                       const struct sfc_json *v, struct entry *e)
{
    const struct sfc_json *dt, *shape, *offs;
    memset(e, 0, sizeof *e);
    e->name = name;
    if (v->type != SFC_JSON_OBJECT)
        return sfc_error(path, "tensor '%s': header entry is not an object",
                         name);
    if (!(dt = sfc_json_get(v, "dtype")))
        return sfc_error(path, "tensor '%s': missing 'dtype'", name);
    if (!(shape = sfc_json_get(v, "shape")))
        return sfc_error(path, "tensor '%s': missing 'shape'", name);
    if (!(offs = sfc_json_get(v, "data_offsets")))
        return sfc_error(path, "tensor '%s': missing 'data_offsets'", name);
    if (dt->type != SFC_JSON_STRING)
        return sfc_error(path, "tensor '%s': dtype is not a string", name);
    if (!strcmp(dt->str, "F32"))
        e->dtype = SFC_F32;
    else if (!strcmp(dt->str, "I64"))
        e->dtype = SFC_I64;
    else
        return sfc_error(path,
                         "tensor '%s': unsupported dtype '%s' (F32 and I64 "
                         "are supported)",
                         name, dt->str);
    if (shape->type != SFC_JSON_ARRAY || shape->n > SFC_MAXDIM)
        return sfc_error(path,
                         "tensor '%s': bad shape (a list of at most %d "
                         "sizes)",
                         name, SFC_MAXDIM);
    uint64_t bytes = sfc_dtype_size(e->dtype);
    for (int i = 0; i < shape->n; i++) {
        const struct sfc_json *d = &shape->items[i];
        if (d->type != SFC_JSON_INT || d->i < 0)
            return sfc_error(path,
                             "tensor '%s': bad shape (sizes must be "
                             "non-negative integers)",
                             name);
        if (d->i && bytes > (uint64_t)INT64_MAX / 2 / (uint64_t)d->i)
            return sfc_error(path, "tensor '%s': shape is too large", name);
        e->shape[i] = d->i;
        bytes *= (uint64_t)d->i;
    }
    e->ndim = shape->n;
    if (offs->type != SFC_JSON_ARRAY || offs->n != 2 ||
        offs->items[0].type != SFC_JSON_INT || offs->items[0].i < 0 ||
        offs->items[1].type != SFC_JSON_INT || offs->items[1].i < 0)
        return sfc_error(path,
                         "tensor '%s': bad data_offsets (want [begin, "
                         "end], non-negative integers)",
                         name);
    e->begin = (uint64_t)offs->items[0].i;
    e->end = (uint64_t)offs->items[1].i;
    if (e->begin > e->end)
        return sfc_error(path,
                         "tensor '%s': data_offsets begin %llu > end "
                         "%llu",
                         name, (unsigned long long)e->begin,
                         (unsigned long long)e->end);
    if (e->end - e->begin != bytes) {
        char sb[200];
        return sfc_error(path,
                         "tensor '%s': shape %s (%s) needs %llu bytes, "
                         "data_offsets give %llu",
                         name, shape_text(e, sb, sizeof sb), dt->str,
                         (unsigned long long)bytes,
                         (unsigned long long)(e->end - e->begin));
    }
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

int sfc_safetensors_read(const char *path, struct sfc_safetensors *out)
{
    unsigned char n8[8];
    struct stat st;
    struct sfc_json root = {0};
    struct entry *ents = NULL;
    char *hdr = NULL, *jname = NULL;
    int ne = 0;

    st_init(out);
    FILE *fp = fopen(path, "rb");
    if (!fp) return sfc_error(path, "cannot open:");
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        sfc_error(path, "not a regular file");
        goto fail;
    }
    uint64_t fsize = (uint64_t)st.st_size;
    if (fread(n8, 1, 8, fp) != 8) {
        sfc_error(path, ferror(fp) ? "read error:"
                                   : "truncated file (no header size)");
        goto fail;
    }
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--)
        hn = hn << 8 | n8[i];
    if (hn > ST_MAX_HEADER) {
        sfc_error(path, "header size %llu exceeds the limit of %u bytes",
                  (unsigned long long)hn, ST_MAX_HEADER);
        goto fail;
    }
    if (hn > fsize - 8) {
        sfc_error(path, "truncated header (%llu bytes declared, %llu present)",
                  (unsigned long long)hn, (unsigned long long)(fsize - 8));
        goto fail;
    }
    hdr = sfc_xmalloc(hn + 1);
    if (fread(hdr, 1, hn, fp) != hn) {
        sfc_error(path, ferror(fp) ? "read error:" : "truncated header");
        goto fail;
    }
    uint64_t dsize = fsize - 8 - hn;
    jname = sfc_xasprintf("%s: header", path);
    if (sfc_json_parse(jname, hdr, hn, &root) != 0) goto fail;
    if (root.type != SFC_JSON_OBJECT) {
        sfc_error(path, "header is not a JSON object");
        goto fail;
    }

    /* Entries and metadata, with duplicate keys refused. */
    ents = sfc_xcalloc(root.n ? (size_t)root.n : 1, sizeof *ents);
    for (int i = 0; i < root.n; i++) {
        const char *key = root.keys[i];
        for (int j = 0; j < i; j++)
            if (!strcmp(root.keys[j], key)) {
                sfc_error(path, "duplicate key '%s' in header", key);
                goto fail;
            }
        if (!strcmp(key, ST_META)) {
            const struct sfc_json *m = &root.items[i];
            if (m->type != SFC_JSON_OBJECT) {
                sfc_error(path, ST_META " is not an object");
                goto fail;
            }
            out->meta_keys =
                sfc_xcalloc(m->n ? (size_t)m->n : 1, sizeof(char *));
            out->meta_values =
                sfc_xcalloc(m->n ? (size_t)m->n : 1, sizeof(char *));
            for (int k = 0; k < m->n; k++) {
                for (int j = 0; j < k; j++)
                    if (!strcmp(m->keys[j], m->keys[k])) {
                        sfc_error(path, "duplicate key '%s' in " ST_META,
                                  m->keys[k]);
                        goto fail;
                    }
                if (m->items[k].type != SFC_JSON_STRING) {
                    sfc_error(path, ST_META " value '%s' is not a string",
                              m->keys[k]);
                    goto fail;
                }
                out->meta_keys[out->nmeta] = sfc_xstrdup(m->keys[k]);
                out->meta_values[out->nmeta++] = sfc_xstrdup(m->items[k].str);
            }
            continue;
        }
        if (parse_entry(path, key, &root.items[i], &ents[ne]) != 0) goto fail;
        if (ents[ne].end > dsize) {
            sfc_error(path,
                      "tensor '%s': data_offsets [%llu, %llu] out of range "
                      "(the data section has %llu bytes)",
                      key, (unsigned long long)ents[ne].begin,
                      (unsigned long long)ents[ne].end,
                      (unsigned long long)dsize);
            goto fail;
        }
        ne++;
    }

    /* The tensors must tile the data section exactly. */
    qsort(ents, (size_t)ne, sizeof *ents, cmp_entry);
    uint64_t at = 0;
    for (int i = 0; i < ne; i++) {
        if (ents[i].begin < at) {
            sfc_error(path, "tensor '%s' overlaps tensor '%s'", ents[i].name,
                      ents[i - 1].name);
            goto fail;
        }
        if (ents[i].begin > at) {
            sfc_error(path, "gap of %llu bytes before tensor '%s'",
                      (unsigned long long)(ents[i].begin - at), ents[i].name);
            goto fail;
        }
        at = ents[i].end;
    }
    if (at != dsize) {
        sfc_error(path, "%llu bytes after the last tensor",
                  (unsigned long long)(dsize - at));
        goto fail;
    }

    out->names = sfc_xcalloc(ne ? (size_t)ne : 1, sizeof *out->names);
    out->tensors = sfc_xcalloc(ne ? (size_t)ne : 1, sizeof *out->tensors);
    for (int i = 0; i < ne; i++) {
        struct sfc_tensor *t = &out->tensors[i];
        if (sfc_tensor_init(t, ents[i].dtype, ents[i].ndim, ents[i].shape) != 0)
            goto fail;
        out->names[i] = sfc_xstrdup(ents[i].name);
        out->n++;
        size_t nb = sfc_tensor_nbytes(t);
        if (nb && fread(t->data, 1, nb, fp) != nb) {
            sfc_error(path, ferror(fp) ? "read error:"
                                       : "truncated data (file shrank while "
                                         "reading)");
            goto fail;
        }
    }
    fclose(fp);
    free(ents);
    free(hdr);
    free(jname);
    sfc_json_release(&root);
    return 0;
fail:
    fclose(fp);
    free(ents);
    free(hdr);
    free(jname);
    sfc_json_release(&root);
    sfc_safetensors_release(out);
    return -1;
}

const struct sfc_tensor *sfc_safetensors_get(const struct sfc_safetensors *s,
                                             const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) return &s->tensors[i];
    return NULL;
}

const char *sfc_safetensors_meta(const struct sfc_safetensors *s,
                                 const char *key)
{
    for (int i = 0; i < s->nmeta; i++)
        if (!strcmp(s->meta_keys[i], key)) return s->meta_values[i];
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Writing                                                              */

struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = SFC_MAX(2 * b->cap, b->len + n + 256);
        b->p = sfc_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static void sb_quoted(struct sbuf *b, const char *s)
{
    char *q = sfc_json_quote(s);
    sb_add(b, q);
    free(q);
}

int sfc_safetensors_write(const char *path, int n, const char *const *names,
                          const struct sfc_tensor *const *tensors, int nmeta,
                          const char *const *meta_keys,
                          const char *const *meta_values)
{
    struct sbuf h = {NULL, 0, 0};
    char num[96];
    struct sfc_atomic a;
    int rc = -1;

    if (n < 0 || nmeta < 0) return sfc_error(path, "negative count");
    for (int i = 0; i < n; i++) {
        const struct sfc_tensor *t = tensors[i];
        if (!names[i] || !*names[i])
            return sfc_error(path, "tensor %d has an empty name", i);
        if (!strcmp(names[i], ST_META))
            return sfc_error(path, "'" ST_META "' is not a tensor name");
        for (int j = 0; j < i; j++)
            if (!strcmp(names[i], names[j]))
                return sfc_error(path, "duplicate tensor name '%s'", names[i]);
        if (!st_dtype_name(t->dtype))
            return sfc_error(path,
                             "tensor '%s': cannot write dtype %s (F32 "
                             "and I64 are supported)",
                             names[i], sfc_dtype_name(t->dtype));
        if (t->ndim < 0 || t->ndim > SFC_MAXDIM)
            return sfc_error(path, "tensor '%s': bad rank %d", names[i],
                             t->ndim);
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0)
                return sfc_error(path, "tensor '%s': negative dimension",
                                 names[i]);
        if (!t->data && sfc_tensor_nbytes(t))
            return sfc_error(path, "tensor '%s' has no data", names[i]);
    }
    for (int i = 0; i < nmeta; i++) {
        if (!meta_keys[i] || !meta_values[i])
            return sfc_error(path, "metadata pair %d is incomplete", i);
        for (int j = 0; j < i; j++)
            if (!strcmp(meta_keys[i], meta_keys[j]))
                return sfc_error(path, "duplicate metadata key '%s'",
                                 meta_keys[i]);
    }

    sb_add(&h, "{");
    if (nmeta) {
        sb_add(&h, "\"" ST_META "\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) sb_add(&h, ",");
            sb_quoted(&h, meta_keys[i]);
            sb_add(&h, ":");
            sb_quoted(&h, meta_values[i]);
        }
        sb_add(&h, "}");
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const struct sfc_tensor *t = tensors[i];
        if (nmeta || i) sb_add(&h, ",");
        sb_quoted(&h, names[i]);
        sb_add(&h, ":{\"dtype\":\"");
        sb_add(&h, st_dtype_name(t->dtype));
        sb_add(&h, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "",
                     (long long)t->shape[d]);
            sb_add(&h, num);
        }
        uint64_t nb = sfc_tensor_nbytes(t);
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}",
                 (unsigned long long)off, (unsigned long long)(off + nb));
        sb_add(&h, num);
        off += nb;
    }
    sb_add(&h, "}");
    while (h.len % 8)
        sb_add(&h, " ");

    unsigned char n8[8];
    for (int i = 0; i < 8; i++)
        n8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    FILE *fp = sfc_atomic_open(&a, path);
    if (!fp) goto done;
    if (fwrite(n8, 1, 8, fp) != 8 || fwrite(h.p, 1, h.len, fp) != h.len)
        goto write_error;
    for (int i = 0; i < n; i++) {
        size_t nb = sfc_tensor_nbytes(tensors[i]);
        if (nb && fwrite(tensors[i]->data, 1, nb, fp) != nb) goto write_error;
    }
    rc = sfc_atomic_commit(&a);
    goto done;
write_error:
    sfc_error(path, "write error:");
    sfc_atomic_abort(&a);
done:
    free(h.p);
    return rc;
}
