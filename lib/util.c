/* SPDX-License-Identifier: MIT */
/* util.c: see util.h. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "err.h"
#include "util.h"

static _Noreturn void oom(size_t n)
{
    fprintf(stderr, "%s: out of memory (%zu bytes)\n", sfc_progname(), n);
    abort();
}

void *sfc_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *sfc_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) oom(count * size);
    return p;
}

void *sfc_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *sfc_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = sfc_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

void *sfc_xmalloc_aligned(size_t n)
{
    size_t r = (n + 63) / 64 * 64;
    void *p = aligned_alloc(64, r ? r : 64);
    if (!p) oom(n);
    return p;
}

char *sfc_xasprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    SFC_ASSERT(n >= 0);
    char *s = sfc_xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

int sfc_parse_long(const char *what, const char *s, long min, long max,
                   long *out)
{
    char *end;
    if (!s || !*s) return sfc_error(what, "empty value, expected an integer");
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || end == s)
        return sfc_error(what, "'%s' is not an integer", s);
    if (errno == ERANGE || v < min || v > max)
        return sfc_error(what, "%s is out of range [%ld, %ld]", s, min, max);
    *out = v;
    return 0;
}

int sfc_parse_double(const char *what, const char *s, double min, double max,
                     double *out)
{
    char *end;
    if (!s || !*s) return sfc_error(what, "empty value, expected a number");
    errno = 0;
    double v = strtod(s, &end);
    if (*end || end == s) return sfc_error(what, "'%s' is not a number", s);
    if (errno == ERANGE || !isfinite(v) || v < min || v > max)
        return sfc_error(what, "%s is out of range [%g, %g]", s, min, max);
    *out = v;
    return 0;
}

int sfc_fshut(FILE *fp, const char *name)
{
    int ret = 0;
    /* fflush, then ferror, then fclose: each can report a lost write. */
    if (fflush(fp) == EOF) ret = 1;
    if (ferror(fp)) ret = 1;
    if (fclose(fp) == EOF) ret = 1;
    if (ret) fprintf(stderr, "%s: %s: write error: %s\n", sfc_progname(),
                     name, strerror(errno));
    return ret;
}

char *sfc_read_file(const char *path, size_t *size_out)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        sfc_error(path, "cannot open:");
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = sfc_xmalloc(cap + 1);
    for (;;) {
        size_t n = fread(buf + len, 1, cap - len, fp);
        len += n;
        if (len < cap) break;
        cap *= 2;
        buf = sfc_xrealloc(buf, cap + 1);
    }
    if (ferror(fp)) {
        sfc_error(path, "read error:");
        fclose(fp);
        free(buf);
        return NULL;
    }
    fclose(fp);
    buf[len] = '\0';
    if (size_out) *size_out = len;
    return buf;
}

int sfc_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int sfc_mkdirs(const char *path, unsigned mode)
{
    char *p = sfc_xstrdup(path);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST) {
                sfc_error(p, "cannot create directory:");
                free(p);
                return -1;
            }
            *s = c;
            if (!c) break;
        }
    }
    struct stat st;
    int ok = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
    free(p);
    if (!ok) return sfc_error(path, "not a directory");
    return 0;
}

char *sfc_path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    if (n && dir[n - 1] == '/') return sfc_xasprintf("%s%s", dir, name);
    return sfc_xasprintf("%s/%s", dir, name);
}

double sfc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
