/* SPDX-License-Identifier: MIT */
/* formats_manifest.h: shared by test-npy.c and test-safetensors.c. Reads
 * the manifests tests/ref/ref_formats.py writes (one case per line, words
 * separated by blanks; arrays as "DTYPE NDIM DIMS... HEX", see the script's
 * docstring), and writes the verify.txt the script checks. */
#ifndef SFC_FORMATS_MANIFEST_H
#define SFC_FORMATS_MANIFEST_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sfc.h"
#include "test.h"

#define GOLDEN_FORMATS "tests/golden/formats"

struct mline {
    int nw;
    char **w;
};

/* Read a manifest into lines of words; returns the count (or -1). */
static int manifest_read(const char *path, struct mline **out)
{
    size_t n;
    char *text = sfc_read_file(path, &n);
    *out = NULL;
    if (!text) return -1;
    int cap = 16, nl = 0;
    struct mline *ls = sfc_xcalloc((size_t)cap, sizeof *ls);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (nl == cap) {
            cap *= 2;
            ls = sfc_xrealloc(ls, (size_t)cap * sizeof *ls);
        }
        struct mline *m = &ls[nl];
        int wcap = 8;
        m->nw = 0;
        m->w = sfc_xmalloc((size_t)wcap * sizeof *m->w);
        char *s2 = NULL;
        for (char *w = strtok_r(line, " \t", &s2); w;
             w = strtok_r(NULL, " \t", &s2)) {
            if (m->nw == wcap) {
                wcap *= 2;
                m->w = sfc_xrealloc(m->w, (size_t)wcap * sizeof *m->w);
            }
            m->w[m->nw++] = sfc_xstrdup(w);
        }
        if (m->nw)
            nl++;
        else
            free(m->w);
    }
    free(text);
    *out = ls;
    return nl;
}

static void manifest_free(struct mline *ls, int n)
{
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < ls[i].nw; j++)
            free(ls[i].w[j]);
        free(ls[i].w);
    }
    free(ls);
}

static int dtype_from_name(const char *s, enum sfc_dtype *dt)
{
    static const char *const st[] = {"F32", "U8", "I32", "I64", "F16"};
    for (int i = 0; i < SFC_NDTYPES; i++)
        if (!strcmp(s, sfc_dtype_name((enum sfc_dtype)i)) ||
            !strcmp(s, st[i])) {
            *dt = (enum sfc_dtype)i;
            return 0;
        }
    return -1;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode hex ("-" = empty) into a fresh buffer. */
static unsigned char *unhex(const char *h, size_t *n)
{
    if (!strcmp(h, "-")) {
        *n = 0;
        return sfc_xmalloc(1);
    }
    size_t len = strlen(h);
    unsigned char *b = sfc_xmalloc(len / 2 + 1);
    for (size_t i = 0; i + 1 < len; i += 2)
        b[i / 2] = (unsigned char)(hexval(h[i]) << 4 | hexval(h[i + 1]));
    *n = len / 2;
    return b;
}

static char *tohex(const void *p, size_t n)
{
    if (!n) return sfc_xstrdup("-");
    char *s = sfc_xmalloc(2 * n + 1);
    for (size_t i = 0; i < n; i++)
        sprintf(s + 2 * i, "%02x", ((const unsigned char *)p)[i]);
    return s;
}

/* Words "DTYPE NDIM DIMS... HEX" -> owned tensor; *used = words eaten.
 * Returns 0, or -1 if the words are malformed (a test bug). */
static int manifest_array(char **w, int nw, struct sfc_tensor *t, int *used)
{
    enum sfc_dtype dt;
    int64_t shape[SFC_MAXDIM];
    if (nw < 2 || dtype_from_name(w[0], &dt) != 0) return -1;
    int nd = atoi(w[1]);
    if (nd < 0 || nd > SFC_MAXDIM || nw < 3 + nd) return -1;
    for (int i = 0; i < nd; i++)
        shape[i] = atoll(w[2 + i]);
    if (sfc_tensor_init(t, dt, nd, shape) != 0) return -1;
    size_t n;
    unsigned char *raw = unhex(w[2 + nd], &n);
    int ok = n == sfc_tensor_nbytes(t);
    if (ok && n) memcpy(t->data, raw, n);
    free(raw);
    if (used) *used = 3 + nd;
    if (!ok) sfc_tensor_release(t);
    return ok ? 0 : -1;
}

/* "DTYPE NDIM DIMS... HEX" for a tensor (names as the manifest uses). */
static void print_array(FILE *fp, const struct sfc_tensor *t, int st_names)
{
    static const char *const st[] = {"F32", "U8", "I32", "I64", "F16"};
    fprintf(fp, "%s %d", st_names ? st[t->dtype] : sfc_dtype_name(t->dtype),
            t->ndim);
    for (int i = 0; i < t->ndim; i++)
        fprintf(fp, " %lld", (long long)t->shape[i]);
    char *h = tohex(t->data, sfc_tensor_nbytes(t));
    fprintf(fp, " %s", h);
    free(h);
}

static int same_tensor(const struct sfc_tensor *a, const struct sfc_tensor *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    size_t n = sfc_tensor_nbytes(a);
    return n == 0 || memcmp(a->data, b->data, n) == 0;
}

/* The last error is one line "<path>: ..." containing want. */
static int error_is(const char *path, const char *want)
{
    const char *m = sfc_errmsg();
    size_t pl = strlen(path);
    int ok = !strncmp(m, path, pl) && !strncmp(m + pl, ": ", 2) &&
             strstr(m + pl, want) && !strchr(m, '\n');
    if (!ok)
        fprintf(stderr, "    error was \"%s\", want \"%s: ...%s...\"\n", m,
                path, want);
    return ok;
}

/* Rest of the words joined by blanks (an expected error substring). */
static char *join_words(char **w, int nw)
{
    size_t len = 1;
    for (int i = 0; i < nw; i++)
        len += strlen(w[i]) + 1;
    char *s = sfc_xcalloc(1, len);
    for (int i = 0; i < nw; i++) {
        if (i) strcat(s, " ");
        strcat(s, w[i]);
    }
    return s;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void rm_rf(const char *dir)
{
    char *cmd = sfc_xasprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: cannot remove %s\n", dir);
    free(cmd);
}

/* Run the oracle script with args; returns its exit status. */
static int run_oracle(const char *args)
{
    const char *py = test_oracle();
    if (!py) return -1;
    char *cmd = sfc_xasprintf("'%s' tests/ref/ref_formats.py %s", py, args);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : 1;
}

#endif
