/* SPDX-License-Identifier: MIT */
/* json.h: a small JSON (RFC 8259) reader into a tree, and string quoting
 * for writers. Enough for safetensors headers and small config or report
 * files; not meant for large documents. */
#ifndef SFC_JSON_H
#define SFC_JSON_H

#include <stddef.h>
#include <stdint.h>

enum sfc_json_type {
    SFC_JSON_NULL = 0,
    SFC_JSON_BOOL,
    SFC_JSON_INT,  /* a number without fraction or exponent that fits
                      int64 (also available as .real) */
    SFC_JSON_REAL, /* any other number */
    SFC_JSON_STRING,
    SFC_JSON_ARRAY,
    SFC_JSON_OBJECT
};

struct sfc_json {
    enum sfc_json_type type;
    int boolean;            /* BOOL: 0 or 1 */
    int64_t i;              /* INT */
    double real;            /* INT, REAL */
    char *str;              /* STRING: UTF-8, NUL-terminated (owned) */
    size_t len;             /* STRING: bytes, without the NUL */
    int n;                  /* ARRAY, OBJECT: number of items */
    char **keys;            /* OBJECT: n keys in document order (owned) */
    struct sfc_json *items; /* ARRAY, OBJECT: n values (owned) */
};

/* Parse text[0, n) as one JSON value with optional surrounding
 * whitespace. Strings must be valid UTF-8; "\u0000" is refused so every
 * string is a C string. Nesting deeper than 64 is refused. Object keys
 * are kept in document order, duplicates included (callers decide).
 * Returns 0, or -1 with "<name>: malformed JSON at byte N: <why>" set and
 * out zeroed. Release out with sfc_json_release(). */
int sfc_json_parse(const char *name, const char *text, size_t n,
                   struct sfc_json *out);
/* Free everything below j, then zero it. Safe on a zeroed struct. */
void sfc_json_release(struct sfc_json *j);

/* The first value under key in an object, or NULL (also if obj is not an
 * object). */
const struct sfc_json *sfc_json_get(const struct sfc_json *obj,
                                    const char *key);

/* s as a JSON string literal (with quotes) in a fresh heap string. Escapes
 * '"', '\\' and control characters the way Python's json.dumps does with
 * ensure_ascii=False; other bytes are copied as they are. */
char *sfc_json_quote(const char *s);

#endif
