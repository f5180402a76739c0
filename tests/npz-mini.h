/* SPDX-License-Identifier: MIT */
/* npz-mini.h: a minimal reader for the .npz files the oracle scripts write
 * with np.savez (stored zip members, zip64 extra fields, .npy version 1.0
 * or 2.0, little-endian float32/int32/int64, C order), for tests only.
 * A stopgap until lib/npy.c lands; anything unexpected is a test failure,
 * reported with the file name. */
#ifndef SFC_NPZ_MINI_H
#define SFC_NPZ_MINI_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPZM_MAX 48

struct npzm_arr {
    char name[64];
    char descr[8]; /* "<f4", "<i4", "<i8" */
    int ndim;
    long shape[8];
    long n;
    void *data;
};

struct npzm {
    int n;
    struct npzm_arr a[NPZM_MAX];
};

static inline unsigned npzm_u16(const unsigned char *p)
{
    return p[0] | (unsigned)p[1] << 8;
}
static inline uint32_t npzm_u32(const unsigned char *p)
{
    return npzm_u16(p) | (uint32_t)npzm_u16(p + 2) << 16;
}
static inline uint64_t npzm_u64(const unsigned char *p)
{
    return npzm_u32(p) | (uint64_t)npzm_u32(p + 4) << 32;
}

/* Parse one .npy image; 0 or -1. */
static inline int npzm_parse_npy(const unsigned char *p, uint64_t len,
                                 struct npzm_arr *a)
{
    if (len < 10 || memcmp(p, "\x93NUMPY", 6)) return -1;
    uint64_t hl, off;
    if (p[6] == 1) hl = npzm_u16(p + 8), off = 10;
    else if (len >= 12) hl = npzm_u32(p + 8), off = 12;
    else return -1;
    if (off + hl > len) return -1;
    char hdr[1024];
    if (hl >= sizeof hdr) return -1;
    memcpy(hdr, p + off, hl);
    hdr[hl] = 0;
    char *d = strstr(hdr, "'descr': '");
    char *f = strstr(hdr, "'fortran_order': False");
    char *s = strstr(hdr, "'shape': (");
    if (!d || !f || !s) return -1;
    d += 10;
    size_t dl = strcspn(d, "'");
    if (dl >= sizeof a->descr) return -1;
    memcpy(a->descr, d, dl);
    a->descr[dl] = 0;
    size_t es;
    if (!strcmp(a->descr, "<f4") || !strcmp(a->descr, "<i4")) es = 4;
    else if (!strcmp(a->descr, "<i8")) es = 8;
    else return -1;
    s += 10;
    a->ndim = 0;
    a->n = 1;
    while (*s && *s != ')') {
        char *e;
        long v = strtol(s, &e, 10);
        if (e == s || a->ndim == 8) return -1;
        a->shape[a->ndim++] = v;
        a->n *= v;
        s = e;
        while (*s == ',' || *s == ' ') s++;
    }
    if ((uint64_t)a->n * es != len - off - hl) return -1;
    a->data = malloc(a->n * es + 1);
    memcpy(a->data, p + off + hl, a->n * es);
    return 0;
}

static inline void npzm_release(struct npzm *z)
{
    for (int i = 0; i < z->n; i++) free(z->a[i].data);
    z->n = 0;
}

/* Read every member; 0, or -1 after printing why. */
static inline int npzm_read(const char *path, struct npzm *z)
{
    z->n = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "%s: cannot open\n", path);
        return -1;
    }
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc(sz > 0 ? sz : 1);
    if (sz <= 0 || fread(buf, 1, sz, fp) != (size_t)sz) {
        fclose(fp);
        free(buf);
        fprintf(stderr, "%s: cannot read\n", path);
        return -1;
    }
    fclose(fp);
    uint64_t pos = 0;
    while (pos + 30 <= (uint64_t)sz && npzm_u32(buf + pos) == 0x04034b50) {
        const unsigned char *h = buf + pos;
        unsigned method = npzm_u16(h + 8), nl = npzm_u16(h + 26),
                 xl = npzm_u16(h + 28);
        uint64_t cs = npzm_u32(h + 18);
        if (method != 0 || (npzm_u16(h + 6) & 8) || z->n == NPZM_MAX ||
            pos + 30 + nl + xl > (uint64_t)sz)
            goto bad;
        const unsigned char *x = h + 30 + nl;
        for (unsigned o = 0; o + 4 <= xl;) { /* zip64 extra: usize, csize */
            unsigned id = npzm_u16(x + o), l = npzm_u16(x + o + 2);
            if (id == 1 && cs == 0xffffffffu && l >= 16)
                cs = npzm_u64(x + o + 4 + 8);
            o += 4 + l;
        }
        struct npzm_arr *a = &z->a[z->n];
        if (nl < 5 || nl - 4 >= sizeof a->name) goto bad;
        memcpy(a->name, h + 30, nl - 4); /* drop ".npy" */
        a->name[nl - 4] = 0;
        uint64_t dpos = pos + 30 + nl + xl;
        if (dpos + cs > (uint64_t)sz ||
            npzm_parse_npy(buf + dpos, cs, a))
            goto bad;
        z->n++;
        pos = dpos + cs;
    }
    free(buf);
    if (z->n == 0) {
        fprintf(stderr, "%s: no members\n", path);
        return -1;
    }
    return 0;
bad:
    free(buf);
    npzm_release(z);
    fprintf(stderr, "%s: unsupported or corrupt npz\n", path);
    return -1;
}

static inline const struct npzm_arr *npzm_get(const struct npzm *z,
                                              const char *name)
{
    for (int i = 0; i < z->n; i++)
        if (!strcmp(z->a[i].name, name)) return &z->a[i];
    return NULL;
}

#endif
