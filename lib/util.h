/* SPDX-License-Identifier: MIT */
/* util.h: allocation that aborts on OOM, strict number parsing, small file
 * helpers, a monotonic clock. */
#ifndef SFC_UTIL_H
#define SFC_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Out of memory is fatal in a batch tool: print "<prog>: out of memory
 * (N bytes)" and abort. Zero-byte requests return a valid pointer. */
void *sfc_xmalloc(size_t n);
void *sfc_xcalloc(size_t count, size_t size);
void *sfc_xrealloc(void *p, size_t n);
char *sfc_xstrdup(const char *s);
/* Aligned (64 bytes) allocation for kernels; free with free(). */
void *sfc_xmalloc_aligned(size_t n);
/* printf into a fresh heap string. */
char *sfc_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define SFC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SFC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SFC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Strict parsing: the whole string must be a number in [min, max].
 * Return 0, or -1 with the error slot set ("<what>: ..."). */
int sfc_parse_long(const char *what, const char *s, long min, long max,
                   long *out);
int sfc_parse_double(const char *what, const char *s, double min, double max,
                     double *out);

/* Close a stream with a check (flush errors, full disk, closed pipe). On
 * failure print "<prog>: <name>: write error: ..." and return 1; else 0.
 * Tools end with: return sfc_fshut(stdout, "<stdout>"); */
int sfc_fshut(FILE *fp, const char *name);

/* Read a whole file into a heap buffer (NUL-terminated for convenience;
 * *size_out excludes the NUL). NULL with the error slot set on failure. */
char *sfc_read_file(const char *path, size_t *size_out);

/* 1 if path names an existing regular file, else 0. */
int sfc_file_exists(const char *path);
/* mkdir -p; 0 or -1 with the error slot set. */
int sfc_mkdirs(const char *path, unsigned mode);
/* Join dir and name into a fresh heap string ("dir/name"). */
char *sfc_path_join(const char *dir, const char *name);

/* Seconds on a monotonic clock. */
double sfc_now(void);

#endif
