/* SPDX-License-Identifier: MIT */
/* json.c: a recursive-descent JSON reader following the grammar of RFC
 * 8259 (values, objects, arrays, strings with every escape including
 * UTF-16 surrogate pairs, numbers, literals), and a string quoter whose
 * output matches Python's json.dumps(ensure_ascii=False). Invariants: the
 * reader never reads past text + n, recursion is bounded (JSON_MAX_DEPTH),
 * and on failure nothing is leaked and the output is zeroed. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json.h"
#include "util.h"

#define JSON_MAX_DEPTH 64

struct parser {
    const char *name;
    const unsigned char *s, *p, *end;
    int failed;
};

static int fail(struct parser *ps, const char *why)
{
    if (!ps->failed)
        sfc_error(ps->name, "malformed JSON at byte %zu: %s",
                  (size_t)(ps->p - ps->s), why);
    ps->failed = 1;
    return -1;
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
                               *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

/* Growable byte buffer for string contents. */
struct buf {
    char *p;
    size_t len, cap;
};

static void buf_put(struct buf *b, const void *src, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = SFC_MAX(b->cap * 2, b->len + n + 16);
        b->p = sfc_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void put_utf8(struct buf *b, unsigned long cp)
{
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xc0 | cp >> 6);
        u[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xe0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (unsigned char)(0xf0 | cp >> 18);
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    buf_put(b, u, n);
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned long cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

static int hex4(struct parser *ps, unsigned long *out)
{
    unsigned long v = 0;
    if (ps->end - ps->p < 4) return fail(ps, "short \\u escape");
    for (int i = 0; i < 4; i++) {
        int c = ps->p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return fail(ps, "bad \\u escape");
        v = v << 4 | (unsigned long)d;
    }
    ps->p += 4;
    *out = v;
    return 0;
}

/* At the opening quote. On success *out is a heap string. */
static int parse_string(struct parser *ps, char **out, size_t *len)
{
    struct buf b = {NULL, 0, 0};
    buf_put(&b, "", 0);
    ps->p++; /* '"' */
    for (;;) {
        if (ps->p >= ps->end) {
            fail(ps, "unterminated string");
            goto bad;
        }
        unsigned c = *ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c < 0x20) {
            fail(ps, "control character in string");
            goto bad;
        }
        if (c != '\\') {
            size_t n = utf8_len(ps->p, ps->end);
            if (!n) {
                fail(ps, "invalid UTF-8 in string");
                goto bad;
            }
            /* One whole UTF-8 character. */
            buf_put(&b, ps->p, n);
            ps->p += n;
            continue;
        }
        ps->p++;
        if (ps->p >= ps->end) {
            fail(ps, "unterminated string");
            goto bad;
        }
        char e = (char)*ps->p++, ch;
        switch (e) {
        case '"':
            ch = '"';
            break;
        case '\\':
            ch = '\\';
            break;
        case '/':
            ch = '/';
            break;
        case 'b':
            ch = '\b';
            break;
        case 'f':
            ch = '\f';
            break;
        case 'n':
            ch = '\n';
            break;
        case 'r':
            ch = '\r';
            break;
        case 't':
            ch = '\t';
            break;
        case 'u': {
            unsigned long cp, lo;
            if (hex4(ps, &cp) != 0) goto bad;
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                fail(ps, "lone low surrogate");
                goto bad;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (ps->end - ps->p < 2 || ps->p[0] != '\\' ||
                    ps->p[1] != 'u') {
                    fail(ps, "lone high surrogate");
                    goto bad;
                }
                ps->p += 2;
                if (hex4(ps, &lo) != 0) goto bad;
                if (lo < 0xdc00 || lo > 0xdfff) {
                    fail(ps, "bad surrogate pair");
                    goto bad;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0) {
                fail(ps, "\\u0000 in string");
                goto bad;
            }
            put_utf8(&b, cp);
            continue;
        }
        default:
            ps->p--;
            fail(ps, "bad escape");
            goto bad;
        }
        buf_put(&b, &ch, 1);
    }
    *out = b.p;
    if (len) *len = b.len;
    return 0;
bad:
    free(b.p);
    return -1;
}

static int is_digit(const unsigned char *p, const unsigned char *end)
{
    return p < end && *p >= '0' && *p <= '9';
}

static int parse_number(struct parser *ps, struct sfc_json *out)
{
    const unsigned char *start = ps->p;
    int integral = 1;
    if (ps->p < ps->end && *ps->p == '-') ps->p++;
    if (!is_digit(ps->p, ps->end)) return fail(ps, "bad number");
    if (*ps->p == '0') {
        ps->p++;
        if (is_digit(ps->p, ps->end)) return fail(ps, "leading zero");
    } else {
        while (is_digit(ps->p, ps->end))
            ps->p++;
    }
    if (ps->p < ps->end && *ps->p == '.') {
        integral = 0;
        ps->p++;
        if (!is_digit(ps->p, ps->end)) return fail(ps, "bad fraction");
        while (is_digit(ps->p, ps->end))
            ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        integral = 0;
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
        if (!is_digit(ps->p, ps->end)) return fail(ps, "bad exponent");
        while (is_digit(ps->p, ps->end))
            ps->p++;
    }
    char tmp[64];
    size_t n = (size_t)(ps->p - start);
    char *s = n < sizeof tmp ? tmp : sfc_xmalloc(n + 1);
    memcpy(s, start, n);
    s[n] = '\0';
    out->real = strtod(s, NULL);
    out->type = SFC_JSON_REAL;
    if (integral) {
        errno = 0;
        long long v = strtoll(s, NULL, 10);
        if (errno == 0) {
            out->type = SFC_JSON_INT;
            out->i = v;
        }
    }
    if (s != tmp) free(s);
    return 0;
}

static int literal(struct parser *ps, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0)
        return fail(ps, "unexpected character");
    ps->p += n;
    return 0;
}

static int parse_value(struct parser *ps, struct sfc_json *out, int depth);

static int parse_container(struct parser *ps, struct sfc_json *out, int depth)
{
    int object = *ps->p == '{';
    char close = object ? '}' : ']';
    int cap = 0;
    out->type = object ? SFC_JSON_OBJECT : SFC_JSON_ARRAY;
    if (depth >= JSON_MAX_DEPTH) return fail(ps, "nesting too deep");
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return 0;
    }
    for (;;) {
        if (out->n == cap) {
            cap = cap ? 2 * cap : 4;
            out->items =
                sfc_xrealloc(out->items, (size_t)cap * sizeof *out->items);
            if (object)
                out->keys =
                    sfc_xrealloc(out->keys, (size_t)cap * sizeof *out->keys);
        }
        skip_ws(ps);
        if (object) {
            if (ps->p >= ps->end || *ps->p != '"')
                return fail(ps, "expected a string key");
            if (parse_string(ps, &out->keys[out->n], NULL) != 0) return -1;
            memset(&out->items[out->n], 0, sizeof out->items[0]);
            out->n++; /* the key is owned from here on */
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return fail(ps, "expected ':'");
            ps->p++;
            if (parse_value(ps, &out->items[out->n - 1], depth + 1) != 0)
                return -1;
        } else {
            memset(&out->items[out->n], 0, sizeof out->items[0]);
            out->n++;
            if (parse_value(ps, &out->items[out->n - 1], depth + 1) != 0)
                return -1;
        }
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return 0;
        }
        return fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_value(struct parser *ps, struct sfc_json *out, int depth)
{
    skip_ws(ps);
    if (ps->p >= ps->end) return fail(ps, "unexpected end of text");
    switch (*ps->p) {
    case '{':
    case '[':
        return parse_container(ps, out, depth);
    case '"':
        out->type = SFC_JSON_STRING;
        return parse_string(ps, &out->str, &out->len);
    case 't':
        out->type = SFC_JSON_BOOL;
        out->boolean = 1;
        return literal(ps, "true");
    case 'f':
        out->type = SFC_JSON_BOOL;
        return literal(ps, "false");
    case 'n':
        return literal(ps, "null");
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
            return parse_number(ps, out);
        return fail(ps, "unexpected character");
    }
}

int sfc_json_parse(const char *name, const char *text, size_t n,
                   struct sfc_json *out)
{
    struct parser ps = {name, (const unsigned char *)text,
                        (const unsigned char *)text,
                        (const unsigned char *)text + n, 0};
    memset(out, 0, sizeof *out);
    if (parse_value(&ps, out, 0) == 0) {
        skip_ws(&ps);
        if (ps.p == ps.end) return 0;
        fail(&ps, "trailing characters");
    }
    sfc_json_release(out);
    return -1;
}

void sfc_json_release(struct sfc_json *j)
{
    if (!j) return;
    for (int i = 0; i < j->n; i++) {
        if (j->keys) free(j->keys[i]);
        sfc_json_release(&j->items[i]);
    }
    free(j->keys);
    free(j->items);
    free(j->str);
    memset(j, 0, sizeof *j);
}

const struct sfc_json *sfc_json_get(const struct sfc_json *obj, const char *key)
{
    if (!obj || obj->type != SFC_JSON_OBJECT) return NULL;
    for (int i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}

char *sfc_json_quote(const char *s)
{
    struct buf b = {NULL, 0, 0};
    buf_put(&b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        const char *e = NULL;
        switch (*p) {
        case '"':
            e = "\\\"";
            break;
        case '\\':
            e = "\\\\";
            break;
        case '\b':
            e = "\\b";
            break;
        case '\f':
            e = "\\f";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\t':
            e = "\\t";
            break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                e = esc;
            }
        }
        if (e)
            buf_put(&b, e, strlen(e));
        else
            buf_put(&b, p, 1);
    }
    buf_put(&b, "\"", 1);
    return b.p;
}
