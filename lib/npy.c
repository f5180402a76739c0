/* SPDX-License-Identifier: MIT */
/* npy.c: NumPy .npy files and .npz archives.
 *
 * .npy follows NEP 1 ("A simple file format for NumPy arrays") as
 * numpy/lib/format.py implements it: magic "\x93NUMPY", version, a 2-byte
 * (1.0) or 4-byte (2.0, 3.0) little-endian header length, a Python dict
 * literal {'descr', 'fortran_order', 'shape'} padded with spaces to a
 * multiple of 64 bytes and ended by '\n', then the raw data. Our writer
 * reproduces format.py's bytes exactly (sorted keys, repr() spelling, the
 * 21-column growth padding), so a C-written .npy equals np.save's.
 *
 * .npz is a zip archive of "<name>.npy" members (numpy/lib/npyio.py:
 * _savez). The zip layout follows PKWARE's APPNOTE 6.3: local headers,
 * central directory, end of central directory record, and the zip64
 * extra field / end records (np.savez forces zip64 local headers). The
 * reader trusts the central directory, checks every offset against the
 * file, inflates with zlib (raw deflate) and checks each member's CRC-32.
 * The writer uses a fixed 1980-01-01 timestamp so outputs are
 * byte-reproducible. The host must be little endian (checked at compile
 * time), so data is copied without swapping. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "atomic.h"
#include "err.h"
#include "npy.h"
#include "util.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host"
#endif

/* numpy/lib/format.py: _MAX_HEADER_SIZE (np.load refuses longer headers
 * unless told otherwise) and ARRAY_ALIGN, GROWTH_AXIS_MAX_DIGITS. */
#define NPY_MAX_HEADER 10000
#define NPY_ALIGN 64
#define NPY_GROWTH_DIGITS 21
#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6

/* ------------------------------------------------------------------ */
/* Little-endian byte access                                            */

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static unsigned char *wr16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    return p + 2;
}

static unsigned char *wr32(unsigned char *p, uint32_t v)
{
    p = wr16(p, v & 0xffff);
    return wr16(p, v >> 16);
}

static unsigned char *wr64(unsigned char *p, uint64_t v)
{
    p = wr32(p, (uint32_t)v);
    return wr32(p, (uint32_t)(v >> 32));
}

/* ------------------------------------------------------------------ */
/* .npy header                                                          */

struct npy_info {
    enum sfc_dtype dtype;
    int ndim;
    int64_t shape[SFC_MAXDIM];
    size_t header_bytes; /* magic through the '\n': offset of the data */
    size_t data_bytes;   /* product(shape) * itemsize */
};

/* Minimal reader for the dict literal numpy writes. */
struct lit {
    const char *p, *end;
};

static void lit_ws(struct lit *l)
{
    while (l->p < l->end &&
           (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r'))
        l->p++;
}

static int lit_eat(struct lit *l, char c)
{
    lit_ws(l);
    if (l->p < l->end && *l->p == c) {
        l->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string without escapes (all numpy puts there). */
static int lit_str(struct lit *l, char *out, size_t cap)
{
    lit_ws(l);
    if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return -1;
    char q = *l->p++;
    size_t n = 0;
    while (l->p < l->end && *l->p != q) {
        if (*l->p == '\\' || n + 1 >= cap) return -1;
        out[n++] = *l->p++;
    }
    if (l->p >= l->end) return -1;
    l->p++;
    out[n] = '\0';
    return 0;
}

static int lit_word(struct lit *l, const char *w)
{
    size_t n = strlen(w);
    lit_ws(l);
    if ((size_t)(l->end - l->p) >= n && memcmp(l->p, w, n) == 0) {
        const char *q = l->p + n;
        if (q < l->end &&
            (*q == '_' || (*q >= 'a' && *q <= 'z') ||
             (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9')))
            return 0;
        l->p = q;
        return 1;
    }
    return 0;
}

static int descr_dtype(const char *domain, const char *d, enum sfc_dtype *out)
{
    static const struct {
        const char *descr;
        enum sfc_dtype dt;
    } ok[] = {{"<f4", SFC_F32}, {"|u1", SFC_U8},  {"<u1", SFC_U8},
              {">u1", SFC_U8},  {"<i4", SFC_I32}, {"<i8", SFC_I64},
              {"<f2", SFC_F16}};
    for (size_t i = 0; i < SFC_ARRAY_LEN(ok); i++)
        if (strcmp(d, ok[i].descr) == 0) {
            *out = ok[i].dt;
            return 0;
        }
    if (d[0] == '>')
        return sfc_error(domain, "big-endian data ('%s') is not supported", d);
    if (strcmp(d, "|O") == 0 || strcmp(d, "O") == 0)
        return sfc_error(domain, "object arrays are not supported");
    return sfc_error(domain,
                     "unsupported dtype '%s' (float32, float16, uint8, "
                     "int32 and int64 are supported)",
                     d);
}

/* Parse the dict text (between the length field and the data). */
static int parse_dict(const char *domain, const char *text, size_t n,
                      struct npy_info *info)
{
    struct lit l = {text, text + n};
    int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0;
    char key[32], descr[64];

    if (!lit_eat(&l, '{')) goto bad;
    for (;;) {
        if (lit_eat(&l, '}')) break;
        if (lit_str(&l, key, sizeof key) != 0 || !lit_eat(&l, ':')) goto bad;
        if (strcmp(key, "descr") == 0 && !have_descr) {
            lit_ws(&l);
            if (l.p < l.end && *l.p == '[')
                return sfc_error(domain, "structured dtypes are not supported");
            if (lit_str(&l, descr, sizeof descr) != 0) goto bad;
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0 && !have_fortran) {
            if (lit_word(&l, "True"))
                fortran = 1;
            else if (!lit_word(&l, "False"))
                goto bad;
            have_fortran = 1;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            if (!lit_eat(&l, '(')) goto bad;
            info->ndim = 0;
            for (;;) {
                if (lit_eat(&l, ')')) break;
                lit_ws(&l);
                if (l.p >= l.end || *l.p < '0' || *l.p > '9') goto bad;
                int64_t v = 0;
                while (l.p < l.end && *l.p >= '0' && *l.p <= '9') {
                    if (v > (INT64_MAX - 9) / 10)
                        return sfc_error(domain, "dimension too large");
                    v = v * 10 + (*l.p++ - '0');
                }
                if (l.p < l.end && *l.p == 'L') l.p++; /* Python 2 long */
                if (info->ndim == SFC_MAXDIM)
                    return sfc_error(domain, "more than %d dimensions",
                                     SFC_MAXDIM);
                info->shape[info->ndim++] = v;
                if (lit_eat(&l, ',')) continue;
                if (lit_eat(&l, ')')) break;
                goto bad;
            }
            /* "(3)" is not a tuple in Python; numpy always writes "(3,)". */
            have_shape = 1;
        } else {
            return sfc_error(domain, "header has an unexpected key '%s'", key);
        }
        if (lit_eat(&l, ',')) continue;
        if (lit_eat(&l, '}')) break;
        goto bad;
    }
    lit_ws(&l);
    if (l.p != l.end) goto bad;
    if (!have_descr || !have_fortran || !have_shape)
        return sfc_error(domain, "header lacks one of 'descr', "
                                 "'fortran_order', 'shape'");
    if (descr_dtype(domain, descr, &info->dtype) != 0) return -1;
    /* For 0-d and 1-d arrays Fortran and C order are the same bytes. */
    if (fortran && info->ndim > 1)
        return sfc_error(domain, "Fortran-order arrays are not supported");

    size_t bytes = sfc_dtype_size(info->dtype);
    for (int i = 0; i < info->ndim; i++) {
        int64_t d = info->shape[i];
        if (d && bytes > (size_t)INT64_MAX / 2 / (uint64_t)d)
            return sfc_error(domain, "shape is too large");
        bytes *= (size_t)d;
    }
    info->data_bytes = bytes;
    return 0;
bad:
    return sfc_error(domain, "malformed .npy header");
}

/* Preamble: magic, version and header length from the first bytes.
 * Returns 0 and sets *len_field_end (10 or 12) and *hlen. */
static int parse_preamble(const char *domain, const unsigned char *p, size_t n,
                          size_t *len_field_end, size_t *hlen)
{
    if (n < 8 || memcmp(p, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
        if (n >= 4 && memcmp(p, "PK\x03\x04", 4) == 0)
            return sfc_error(domain, "is an .npz archive, not an .npy file");
        if (n < 8 &&
            memcmp(p, NPY_MAGIC, SFC_MIN(n, (size_t)NPY_MAGIC_LEN)) == 0)
            return sfc_error(domain, "truncated .npy header");
        return sfc_error(domain, "not an .npy file (bad magic)");
    }
    int major = p[6], minor = p[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        return sfc_error(domain, "unsupported .npy format version %d.%d", major,
                         minor);
    *len_field_end = major == 1 ? 10 : 12;
    if (n < *len_field_end) return sfc_error(domain, "truncated .npy header");
    *hlen = major == 1 ? rd16(p + 8) : rd32(p + 8);
    if (*hlen > NPY_MAX_HEADER)
        return sfc_error(domain,
                         "header length %zu exceeds the limit of %d bytes",
                         *hlen, NPY_MAX_HEADER);
    return 0;
}

/* Parse the header at the start of buf (n bytes available). */
static int parse_header(const char *domain, const unsigned char *buf, size_t n,
                        struct npy_info *info)
{
    size_t off, hlen;
    if (parse_preamble(domain, buf, n, &off, &hlen) != 0) return -1;
    if (n < off + hlen) return sfc_error(domain, "truncated .npy header");
    if (parse_dict(domain, (const char *)buf + off, hlen, info) != 0) return -1;
    info->header_bytes = off + hlen;
    return 0;
}

static int size_mismatch(const char *domain, const struct npy_info *info,
                         uint64_t have)
{
    if (have < info->data_bytes)
        return sfc_error(domain,
                         "truncated data: shape needs %zu bytes, found "
                         "%llu",
                         info->data_bytes, (unsigned long long)have);
    return sfc_error(domain, "%llu bytes of data where the shape needs %zu",
                     (unsigned long long)have, info->data_bytes);
}

static int make_tensor(const struct npy_info *info, struct sfc_tensor *out)
{
    return sfc_tensor_init(out, info->dtype, info->ndim, info->shape);
}

int sfc_npy_read_mem(const char *name, const void *buf, size_t n,
                     struct sfc_tensor *out)
{
    struct npy_info info;
    memset(out, 0, sizeof *out);
    if (parse_header(name, buf, n, &info) != 0) return -1;
    if (n - info.header_bytes != info.data_bytes)
        return size_mismatch(name, &info, n - info.header_bytes);
    if (make_tensor(&info, out) != 0) return -1;
    if (info.data_bytes)
        memcpy(out->data, (const char *)buf + info.header_bytes,
               info.data_bytes);
    return 0;
}

int sfc_npy_read(const char *path, struct sfc_tensor *out)
{
    unsigned char head[12 + NPY_MAX_HEADER];
    struct npy_info info;
    struct stat st;
    size_t off, hlen;
    int c;

    memset(out, 0, sizeof *out);
    FILE *fp = fopen(path, "rb");
    if (!fp) return sfc_error(path, "cannot open:");
    size_t got = fread(head, 1, 12, fp);
    if (ferror(fp)) goto read_error;
    if (parse_preamble(path, head, got, &off, &hlen) != 0) goto fail;
    /* got may include the first header bytes when the version is 1.0. */
    if (got < off + hlen) {
        got += fread(head + got, 1, off + hlen - got, fp);
        if (ferror(fp)) goto read_error;
    }
    if (parse_header(path, head, got, &info) != 0) goto fail;
    if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) &&
        (uint64_t)st.st_size != info.header_bytes + info.data_bytes) {
        size_mismatch(path, &info,
                      (uint64_t)st.st_size < info.header_bytes
                          ? 0
                          : (uint64_t)st.st_size - info.header_bytes);
        goto fail;
    }
    if (make_tensor(&info, out) != 0) goto fail;
    /* The first data bytes may already be in head (version 1.0 files whose
     * header is shorter than 2 bytes cannot exist, but be exact). */
    size_t pre = got > info.header_bytes ? got - info.header_bytes : 0;
    if (pre) memcpy(out->data, head + info.header_bytes, pre);
    size_t rd = fread((char *)out->data + pre, 1, info.data_bytes - pre, fp);
    if (ferror(fp)) goto read_error;
    if (pre + rd < info.data_bytes) {
        size_mismatch(path, &info, pre + rd);
        goto fail;
    }
    if ((c = fgetc(fp)) != EOF) {
        sfc_error(path, "data is longer than the shape says");
        goto fail;
    }
    fclose(fp);
    return 0;
read_error:
    sfc_error(path, "read error:");
fail:
    fclose(fp);
    sfc_tensor_release(out);
    return -1;
}

/* ------------------------------------------------------------------ */
/* .npy writing                                                         */

static const char *descr_of(enum sfc_dtype dt)
{
    switch (dt) {
    case SFC_F32:
        return "<f4";
    case SFC_U8:
        return "|u1";
    case SFC_I32:
        return "<i4";
    case SFC_I64:
        return "<i8";
    case SFC_F16:
        return "<f2";
    default:
        return NULL;
    }
}

/* Build the complete header (magic .. '\n') into a heap buffer, exactly as
 * numpy/lib/format.py:_write_array_header does for version None. */
static int encode_header(const char *domain, const struct sfc_tensor *t,
                         unsigned char **out, size_t *n_out)
{
    char dict[512], num[32];
    size_t len = 0;
    const char *descr = descr_of(t->dtype);

    if (!descr) return sfc_error(domain, "cannot write dtype %d", t->dtype);
    if (t->ndim < 0 || t->ndim > SFC_MAXDIM)
        return sfc_error(domain, "tensor rank %d is out of range", t->ndim);
    if (!t->data && sfc_tensor_nbytes(t))
        return sfc_error(domain, "tensor has no data");
    len += (size_t)snprintf(dict + len, sizeof dict - len,
                            "{'descr': '%s', 'fortran_order': False, "
                            "'shape': (",
                            descr);
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0)
            return sfc_error(domain, "negative dimension %lld",
                             (long long)t->shape[i]);
        len += (size_t)snprintf(dict + len, sizeof dict - len, "%s%lld",
                                i ? ", " : "", (long long)t->shape[i]);
    }
    len += (size_t)snprintf(dict + len, sizeof dict - len, "%s), }",
                            t->ndim == 1 ? "," : "");
    if (t->ndim > 0) {
        int digits = snprintf(num, sizeof num, "%lld", (long long)t->shape[0]);
        for (int i = digits; i < NPY_GROWTH_DIGITS; i++)
            dict[len++] = ' ';
    }
    SFC_ASSERT(len < sizeof dict);
    size_t hlen = len + 1; /* the '\n' */
    size_t pre = 10;
    size_t pad = NPY_ALIGN - (pre + hlen) % NPY_ALIGN;
    int major = 1;
    if (hlen + pad > 0xffff) {
        pre = 12;
        pad = NPY_ALIGN - (pre + hlen) % NPY_ALIGN;
        major = 2;
    }
    size_t total = pre + hlen + pad;
    unsigned char *b = sfc_xmalloc(total);
    memcpy(b, NPY_MAGIC, NPY_MAGIC_LEN);
    b[6] = (unsigned char)major;
    b[7] = 0;
    if (major == 1)
        wr16(b + 8, (uint32_t)(hlen + pad));
    else
        wr32(b + 8, (uint32_t)(hlen + pad));
    memcpy(b + pre, dict, len);
    memset(b + pre + len, ' ', pad);
    b[total - 1] = '\n';
    *out = b;
    *n_out = total;
    return 0;
}

int sfc_npy_encode(const struct sfc_tensor *t, char **buf_out, size_t *n_out)
{
    unsigned char *h;
    size_t hn;
    if (encode_header("<npy>", t, &h, &hn) != 0) return -1;
    size_t nb = sfc_tensor_nbytes(t);
    char *b = sfc_xmalloc(hn + nb);
    memcpy(b, h, hn);
    if (nb) memcpy(b + hn, t->data, nb);
    free(h);
    *buf_out = b;
    *n_out = hn + nb;
    return 0;
}

int sfc_npy_write(const char *path, const struct sfc_tensor *t)
{
    struct sfc_atomic a;
    unsigned char *h;
    size_t hn, nb;
    if (encode_header(path, t, &h, &hn) != 0) return -1;
    nb = sfc_tensor_nbytes(t);
    FILE *fp = sfc_atomic_open(&a, path);
    if (!fp) {
        free(h);
        return -1;
    }
    if (fwrite(h, 1, hn, fp) != hn ||
        (nb && fwrite(t->data, 1, nb, fp) != nb)) {
        sfc_error(path, "write error:");
        free(h);
        sfc_atomic_abort(&a);
        return -1;
    }
    free(h);
    return sfc_atomic_commit(&a);
}

/* ------------------------------------------------------------------ */
/* .npz reading                                                         */

#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_EOCD_SIG 0x06054b50u
#define ZIP64_EOCD_SIG 0x06064b50u
#define ZIP64_LOC_SIG 0x07064b50u
#define ZIP_LOCAL_LEN 30
#define ZIP_CENTRAL_LEN 46
#define ZIP_EOCD_LEN 22
#define ZIP64_EOCD_LEN 56
#define ZIP64_LOC_LEN 20
/* Deflate cannot expand data by more than 1032:1 (a 258-byte match costs at
 * least 2 bits); a larger claimed size is a corrupt directory. */
#define DEFLATE_MAX_RATIO 1032

struct zip_entry {
    char *name;
    unsigned method, flags;
    uint32_t crc;
    uint64_t csize, usize, local_off;
};

/* Parse the zip64 extended information extra field, replacing the fields
 * that were 0xffffffff in the fixed record (APPNOTE 4.5.3). */
static int zip64_extra(const unsigned char *x, size_t n, struct zip_entry *e,
                       int need_u, int need_c, int need_off)
{
    while (n >= 4) {
        unsigned id = rd16(x), sz = rd16(x + 2);
        if (sz > n - 4) return -1;
        if (id == 0x0001) {
            const unsigned char *p = x + 4, *end = x + 4 + sz;
            if (need_u) {
                if (end - p < 8) return -1;
                e->usize = rd64(p), p += 8;
            }
            if (need_c) {
                if (end - p < 8) return -1;
                e->csize = rd64(p), p += 8;
            }
            if (need_off) {
                if (end - p < 8) return -1;
                e->local_off = rd64(p), p += 8;
            }
            return 0;
        }
        x += 4 + sz;
        n -= 4 + sz;
    }
    return need_u || need_c || need_off ? -1 : 0;
}

/* Find the central directory: (offset, size, count), and where the end
 * records begin (the directory must end before them). */
static int zip_find_cd(const char *path, const unsigned char *b, size_t n,
                       uint64_t *cd_off, uint64_t *cd_size, uint64_t *count)
{
    if (n >= NPY_MAGIC_LEN && memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN) == 0)
        return sfc_error(path, "is an .npy file, not an .npz archive");
    if (n < ZIP_EOCD_LEN)
        return sfc_error(path, n && b[0] == 'P' ? "truncated zip archive"
                                                : "not a zip archive");
    size_t lo = n - ZIP_EOCD_LEN > 0xffff ? n - ZIP_EOCD_LEN - 0xffff : 0;
    size_t eocd = SIZE_MAX;
    for (size_t p = n - ZIP_EOCD_LEN + 1; p-- > lo;)
        if (rd32(b + p) == ZIP_EOCD_SIG &&
            p + ZIP_EOCD_LEN + rd16(b + p + 20) <= n) {
            eocd = p;
            break;
        }
    if (eocd == SIZE_MAX)
        return sfc_error(path, memcmp(b, "PK\x03\x04", 4) == 0
                                   ? "truncated zip archive (no end of "
                                     "central directory record)"
                                   : "not a zip archive");
    const unsigned char *e = b + eocd;
    unsigned disk = rd16(e + 4), cd_disk = rd16(e + 6);
    uint64_t n_disk = rd16(e + 8), n_total = rd16(e + 10);
    *cd_size = rd32(e + 12);
    *cd_off = rd32(e + 16);
    size_t end = eocd; /* the directory ends before this */

    if (eocd >= ZIP64_LOC_LEN && rd32(e - ZIP64_LOC_LEN) == ZIP64_LOC_SIG) {
        const unsigned char *loc = e - ZIP64_LOC_LEN;
        uint64_t z = rd64(loc + 8);
        if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1 ||
            z > eocd - ZIP64_LOC_LEN ||
            eocd - ZIP64_LOC_LEN - z < ZIP64_EOCD_LEN ||
            rd32(b + z) != ZIP64_EOCD_SIG)
            return sfc_error(path, "bad zip64 end of central directory");
        const unsigned char *r = b + z;
        disk = rd32(r + 16);
        cd_disk = rd32(r + 20);
        n_disk = rd64(r + 24);
        n_total = rd64(r + 32);
        *cd_size = rd64(r + 40);
        *cd_off = rd64(r + 48);
        end = z;
    } else if (n_total == 0xffff || *cd_size == 0xffffffffu ||
               *cd_off == 0xffffffffu) {
        return sfc_error(path, "zip64 end of central directory is missing");
    }
    if (disk != 0 || cd_disk != 0 || n_disk != n_total)
        return sfc_error(path, "multi-disk zip archives are not supported");
    if (*cd_off > end || *cd_size > end - *cd_off)
        return sfc_error(path, "bad zip structure: central directory is out "
                               "of range");
    if (n_total > *cd_size / ZIP_CENTRAL_LEN)
        return sfc_error(path,
                         "bad zip structure: %llu entries do not fit "
                         "in the central directory",
                         (unsigned long long)n_total);
    *count = n_total;
    return 0;
}

/* Read central directory entry at *pos; advances *pos. */
static int zip_entry_parse(const char *path, const unsigned char *b,
                           uint64_t cd_end, uint64_t *pos, uint64_t cd_off,
                           struct zip_entry *e)
{
    const unsigned char *c = b + *pos;
    memset(e, 0, sizeof *e);
    if (cd_end - *pos < ZIP_CENTRAL_LEN || rd32(c) != ZIP_CENTRAL_SIG)
        return sfc_error(path, "bad zip structure: corrupt central directory");
    e->flags = rd16(c + 8);
    e->method = rd16(c + 10);
    e->crc = rd32(c + 16);
    e->csize = rd32(c + 20);
    e->usize = rd32(c + 24);
    size_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
    unsigned disk = rd16(c + 34);
    e->local_off = rd32(c + 42);
    if (cd_end - *pos - ZIP_CENTRAL_LEN < nlen + xlen + clen)
        return sfc_error(path, "bad zip structure: corrupt central directory");
    e->name = sfc_xmalloc(nlen + 1);
    memcpy(e->name, c + ZIP_CENTRAL_LEN, nlen);
    e->name[nlen] = '\0';
    if (memchr(e->name, '\0', nlen))
        return sfc_error(path, "bad zip structure: member name contains NUL");
    if (zip64_extra(c + ZIP_CENTRAL_LEN + nlen, xlen, e,
                    e->usize == 0xffffffffu, e->csize == 0xffffffffu,
                    e->local_off == 0xffffffffu) != 0)
        return sfc_error(path,
                         "bad zip structure: member '%s': bad zip64 "
                         "extra field",
                         e->name);
    if (disk != 0 && disk != 0xffff)
        return sfc_error(path, "multi-disk zip archives are not supported");
    *pos += ZIP_CENTRAL_LEN + nlen + xlen + clen;
    if (e->flags & 1)
        return sfc_error(path, "member '%s' is encrypted", e->name);
    if (e->method != 0 && e->method != 8)
        return sfc_error(path,
                         "member '%s' uses unsupported compression method %u",
                         e->name, e->method);
    /* Local header: signature, then skip its own name and extra field. */
    if (e->local_off > cd_off || cd_off - e->local_off < ZIP_LOCAL_LEN ||
        rd32(b + e->local_off) != ZIP_LOCAL_SIG)
        return sfc_error(path,
                         "bad zip structure: member '%s': bad local "
                         "header offset",
                         e->name);
    const unsigned char *l = b + e->local_off;
    uint64_t data = e->local_off + ZIP_LOCAL_LEN + rd16(l + 26) + rd16(l + 28);
    if (rd16(l + 26) != nlen || memcmp(l + ZIP_LOCAL_LEN, e->name, nlen) != 0)
        return sfc_error(path,
                         "bad zip structure: member '%s': local and "
                         "central names differ",
                         e->name);
    if (data > cd_off || e->csize > cd_off - data)
        return sfc_error(path, "truncated zip member '%s'", e->name);
    if (e->method == 0 && e->csize != e->usize)
        return sfc_error(path,
                         "bad zip structure: stored member '%s' has "
                         "different sizes",
                         e->name);
    if (e->method == 8 && e->usize / DEFLATE_MAX_RATIO > e->csize + 1)
        return sfc_error(path,
                         "bad zip structure: member '%s' claims an "
                         "impossible size",
                         e->name);
    e->local_off = data; /* from here on: where the member's data starts */
    return 0;
}

/* Inflate a raw deflate stream of exactly csize bytes into usize bytes. */
static int inflate_member(const char *path, const struct zip_entry *e,
                          const unsigned char *src, unsigned char *dst)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK)
        return sfc_error(path, "zlib initialisation failed");
    uint64_t in_left = e->csize, out_left = e->usize;
    int rc;
    z.next_in = (unsigned char *)src;
    z.next_out = dst;
    do {
        if (z.avail_in == 0 && in_left) {
            z.avail_in = (uInt)SFC_MIN(in_left, (uint64_t)UINT_MAX);
            in_left -= z.avail_in;
        }
        if (z.avail_out == 0 && out_left) {
            z.avail_out = (uInt)SFC_MIN(out_left, (uint64_t)UINT_MAX);
            out_left -= z.avail_out;
        }
        rc = inflate(&z, Z_NO_FLUSH);
    } while (rc == Z_OK && (z.avail_in || in_left) &&
             (z.avail_out || out_left));
    int ok = rc == Z_STREAM_END && z.avail_in == 0 && in_left == 0 &&
             z.avail_out == 0 && out_left == 0;
    if (rc == Z_OK && z.avail_out == 0 && out_left == 0) {
        /* Output full: the stream must end here, with nothing more. */
        unsigned char extra;
        z.next_out = &extra;
        z.avail_out = 1;
        rc = inflate(&z, Z_NO_FLUSH);
        ok = rc == Z_STREAM_END && z.avail_out == 1 && z.avail_in == 0 &&
             in_left == 0;
    }
    inflateEnd(&z);
    if (ok) return 0;
    if (rc == Z_DATA_ERROR || rc == Z_STREAM_END || rc == Z_OK)
        return sfc_error(path,
                         "member '%s': corrupt deflate data or wrong "
                         "size",
                         e->name);
    return sfc_error(path, "member '%s': truncated deflate data", e->name);
}

static void npz_init(struct sfc_npz *z)
{
    memset(z, 0, sizeof *z);
}

int sfc_npz_read(const char *path, struct sfc_npz *out)
{
    size_t n;
    uint64_t cd_off = 0, cd_size = 0, count = 0, pos;
    struct zip_entry e = {0};
    unsigned char *tmp = NULL;
    char *domain = NULL;

    npz_init(out);
    unsigned char *b = (unsigned char *)sfc_read_file(path, &n);
    if (!b) return -1;
    if (zip_find_cd(path, b, n, &cd_off, &cd_size, &count) != 0) goto fail;
    out->path = sfc_xstrdup(path);
    out->names = sfc_xcalloc(count ? count : 1, sizeof *out->names);
    out->arrays = sfc_xcalloc(count ? count : 1, sizeof *out->arrays);
    pos = cd_off;
    for (uint64_t i = 0; i < count; i++) {
        if (zip_entry_parse(path, b, cd_off + cd_size, &pos, cd_off, &e) != 0)
            goto fail;
        size_t nl = strlen(e.name);
        if (nl < 5 || strcmp(e.name + nl - 4, ".npy") != 0) {
            sfc_error(path, "member '%s' is not an .npy array", e.name);
            goto fail;
        }
        e.name[nl - 4] = '\0';
        for (int j = 0; j < out->n; j++)
            if (strcmp(out->names[j], e.name) == 0) {
                sfc_error(path, "duplicate member '%s.npy'", e.name);
                goto fail;
            }
        e.name[nl - 4] = '.';
        const unsigned char *data = b + e.local_off;
        if (e.method == 8) {
            tmp = sfc_xmalloc(e.usize ? e.usize : 1);
            if (inflate_member(path, &e, data, tmp) != 0) goto fail;
            data = tmp;
        }
        uLong crc = crc32(0L, Z_NULL, 0);
        for (uint64_t k = 0; k < e.usize;) {
            uInt chunk = (uInt)SFC_MIN(e.usize - k, (uint64_t)1 << 30);
            crc = crc32(crc, data + k, chunk);
            k += chunk;
        }
        if ((uint32_t)crc != e.crc) {
            sfc_error(path, "member '%s': CRC mismatch (corrupt data)", e.name);
            goto fail;
        }
        domain = sfc_xasprintf("%s: member '%s'", path, e.name);
        if (sfc_npy_read_mem(domain, data, e.usize, &out->arrays[out->n]) != 0)
            goto fail;
        free(domain);
        domain = NULL;
        free(tmp);
        tmp = NULL;
        e.name[nl - 4] = '\0';
        out->names[out->n++] = e.name;
        e.name = NULL;
    }
    free(b);
    return 0;
fail:
    free(domain);
    free(tmp);
    free(e.name);
    free(b);
    sfc_npz_release(out);
    return -1;
}

const struct sfc_tensor *sfc_npz_get(const struct sfc_npz *z, const char *name)
{
    for (int i = 0; i < z->n; i++)
        if (strcmp(z->names[i], name) == 0) return &z->arrays[i];
    sfc_error(z->path, "no array '%s'", name);
    return NULL;
}

void sfc_npz_release(struct sfc_npz *z)
{
    if (!z) return;
    for (int i = 0; i < z->n; i++) {
        free(z->names[i]);
        sfc_tensor_release(&z->arrays[i]);
    }
    free(z->names);
    free(z->arrays);
    free(z->path);
    npz_init(z);
}

/* ------------------------------------------------------------------ */
/* .npz writing                                                         */

/* 1980-01-01 00:00:00 in MS-DOS form: fixed so output is reproducible. */
#define ZIP_DOS_TIME 0
#define ZIP_DOS_DATE ((0 << 9) | (1 << 5) | 1)
/* Beyond this the member (or its deflated form) might not fit 32 bits. */
#define ZIP64_MEMBER_LIMIT 0xF0000000u
#define ZIP_CHUNK (1u << 16)

struct npz_member {
    char *name; /* with ".npy" */
    uint32_t crc;
    uint64_t csize, usize, off;
    int zip64_local;
};

static int write_all(const char *path, FILE *fp, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, fp) != n) return sfc_error(path, "write error:");
    return 0;
}

/* Stream header + data through the member's encoding; sets crc/csize. */
static int write_member_data(const char *path, FILE *fp, int compress,
                             const unsigned char *hdr, size_t hn,
                             const struct sfc_tensor *t, struct npz_member *m)
{
    const unsigned char *parts[2] = {hdr, t->data};
    size_t lens[2] = {hn, sfc_tensor_nbytes(t)};
    uLong crc = crc32(0L, Z_NULL, 0);
    z_stream z;
    unsigned char *obuf = NULL;
    int rc = 0;

    m->csize = 0;
    if (compress) {
        memset(&z, 0, sizeof z);
        if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            return sfc_error(path, "zlib initialisation failed");
        obuf = sfc_xmalloc(ZIP_CHUNK);
    }
    for (int part = 0; part < 2; part++) {
        const unsigned char *p = parts[part];
        size_t left = lens[part];
        while (left || (compress && part == 1 && rc != Z_STREAM_END)) {
            uInt chunk = (uInt)SFC_MIN(left, (size_t)1 << 30);
            if (chunk) crc = crc32(crc, p, chunk);
            if (!compress) {
                if (write_all(path, fp, p, chunk) != 0) return -1;
                m->csize += chunk;
            } else {
                int flush =
                    (part == 1 && chunk == left) ? Z_FINISH : Z_NO_FLUSH;
                z.next_in = (unsigned char *)p;
                z.avail_in = chunk;
                do {
                    z.next_out = obuf;
                    z.avail_out = ZIP_CHUNK;
                    rc = deflate(&z, flush);
                    SFC_ASSERT(rc != Z_STREAM_ERROR);
                    size_t have = ZIP_CHUNK - z.avail_out;
                    if (write_all(path, fp, obuf, have) != 0) {
                        deflateEnd(&z);
                        free(obuf);
                        return -1;
                    }
                    m->csize += have;
                } while (z.avail_out == 0 ||
                         (flush == Z_FINISH && rc != Z_STREAM_END));
            }
            p += chunk;
            left -= chunk;
        }
    }
    if (compress) {
        deflateEnd(&z);
        free(obuf);
    }
    m->crc = (uint32_t)crc;
    return 0;
}

static int name_is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 0;
    return 1;
}

int sfc_npz_write(const char *path, int n, const char *const *names,
                  const struct sfc_tensor *const *arrays, int compress)
{
    struct sfc_atomic a;
    struct npz_member *m = NULL;
    unsigned char rec[128], *p, *hdr = NULL;
    size_t hn;
    int i, rc = -1;
    FILE *fp;

    if (n < 0) return sfc_error(path, "negative member count");
    for (i = 0; i < n; i++) {
        if (!names[i] || !*names[i])
            return sfc_error(path, "array %d has an empty name", i);
        if (strlen(names[i]) > 0xffff - 4)
            return sfc_error(path, "array name '%.40s...' is too long",
                             names[i]);
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                return sfc_error(path, "duplicate array name '%s'", names[i]);
    }
    fp = sfc_atomic_open(&a, path);
    if (!fp) return -1;
    m = sfc_xcalloc(n ? (size_t)n : 1, sizeof *m);
    for (i = 0; i < n; i++) {
        char *dom = sfc_xasprintf("%s: array '%s'", path, names[i]);
        int bad = encode_header(dom, arrays[i], &hdr, &hn);
        free(dom);
        if (bad) goto fail;
        struct npz_member *e = &m[i];
        e->name = sfc_xasprintf("%s.npy", names[i]);
        e->usize = hn + sfc_tensor_nbytes(arrays[i]);
        off_t o = ftello(fp);
        if (o < 0) {
            sfc_error(path, "cannot tell position:");
            goto fail;
        }
        e->off = (uint64_t)o;
        e->zip64_local = e->usize >= ZIP64_MEMBER_LIMIT;
        size_t nlen = strlen(e->name);
        p = rec;
        p = wr32(p, ZIP_LOCAL_SIG);
        p = wr16(p, e->zip64_local ? 45 : 20);
        p = wr16(p, name_is_ascii(e->name) ? 0 : 0x800);
        p = wr16(p, compress ? 8 : 0);
        p = wr16(p, ZIP_DOS_TIME);
        p = wr16(p, ZIP_DOS_DATE);
        p = wr32(p, 0); /* crc, sizes: patched below */
        p = wr32(p, 0);
        p = wr32(p, 0);
        p = wr16(p, (uint32_t)nlen);
        p = wr16(p, e->zip64_local ? 20 : 0);
        if (write_all(path, fp, rec, (size_t)(p - rec)) != 0 ||
            write_all(path, fp, e->name, nlen) != 0)
            goto fail;
        if (e->zip64_local) {
            p = rec;
            p = wr16(p, 0x0001);
            p = wr16(p, 16);
            p = wr64(p, 0);
            p = wr64(p, 0);
            if (write_all(path, fp, rec, (size_t)(p - rec)) != 0) goto fail;
        }
        if (write_member_data(path, fp, compress, hdr, hn, arrays[i], e) != 0)
            goto fail;
        free(hdr);
        hdr = NULL;
        if (!e->zip64_local && e->csize >= 0xffffffffu) {
            sfc_error(path, "member '%s' grew past 4 GiB when compressed",
                      e->name);
            goto fail;
        }
        /* Patch crc and sizes into the local header. */
        off_t end = ftello(fp);
        if (end < 0 || fseeko(fp, (off_t)e->off + 14, SEEK_SET) != 0) {
            sfc_error(path, "cannot seek:");
            goto fail;
        }
        p = rec;
        p = wr32(p, e->crc);
        p = wr32(p, e->zip64_local ? 0xffffffffu : (uint32_t)e->csize);
        p = wr32(p, e->zip64_local ? 0xffffffffu : (uint32_t)e->usize);
        if (write_all(path, fp, rec, 12) != 0) goto fail;
        if (e->zip64_local) {
            if (fseeko(fp, (off_t)(e->off + ZIP_LOCAL_LEN + nlen + 4),
                       SEEK_SET) != 0) {
                sfc_error(path, "cannot seek:");
                goto fail;
            }
            p = rec;
            p = wr64(p, e->usize);
            p = wr64(p, e->csize);
            if (write_all(path, fp, rec, 16) != 0) goto fail;
        }
        if (fseeko(fp, end, SEEK_SET) != 0) {
            sfc_error(path, "cannot seek:");
            goto fail;
        }
    }
    /* Central directory. */
    off_t cdo = ftello(fp);
    if (cdo < 0) {
        sfc_error(path, "cannot tell position:");
        goto fail;
    }
    uint64_t cd_off = (uint64_t)cdo, cd_size = 0;
    for (i = 0; i < n; i++) {
        struct npz_member *e = &m[i];
        int big_u = e->usize >= 0xffffffffu, big_c = e->csize >= 0xffffffffu,
            big_o = e->off >= 0xffffffffu;
        int z64 = big_u || big_c || big_o;
        size_t nlen = strlen(e->name);
        size_t xlen = z64 ? 4 + 8 * (size_t)(big_u + big_c + big_o) : 0;
        p = rec;
        p = wr32(p, ZIP_CENTRAL_SIG);
        p = wr16(p, (3u << 8) | (z64 || e->zip64_local ? 45 : 20));
        p = wr16(p, z64 || e->zip64_local ? 45 : 20);
        p = wr16(p, name_is_ascii(e->name) ? 0 : 0x800);
        p = wr16(p, compress ? 8 : 0);
        p = wr16(p, ZIP_DOS_TIME);
        p = wr16(p, ZIP_DOS_DATE);
        p = wr32(p, e->crc);
        p = wr32(p, big_c ? 0xffffffffu : (uint32_t)e->csize);
        p = wr32(p, big_u ? 0xffffffffu : (uint32_t)e->usize);
        p = wr16(p, (uint32_t)nlen);
        p = wr16(p, (uint32_t)xlen);
        p = wr16(p, 0);              /* comment */
        p = wr16(p, 0);              /* disk */
        p = wr16(p, 0);              /* internal attributes */
        p = wr32(p, 0100644u << 16); /* regular file, rw-r--r-- */
        p = wr32(p, big_o ? 0xffffffffu : (uint32_t)e->off);
        if (write_all(path, fp, rec, (size_t)(p - rec)) != 0 ||
            write_all(path, fp, e->name, nlen) != 0)
            goto fail;
        if (z64) {
            p = rec;
            p = wr16(p, 0x0001);
            p = wr16(p, (uint32_t)(xlen - 4));
            if (big_u) p = wr64(p, e->usize);
            if (big_c) p = wr64(p, e->csize);
            if (big_o) p = wr64(p, e->off);
            if (write_all(path, fp, rec, (size_t)(p - rec)) != 0) goto fail;
        }
        cd_size += ZIP_CENTRAL_LEN + nlen + xlen;
    }
    int z64_end =
        n >= 0xffff || cd_off >= 0xffffffffu || cd_size >= 0xffffffffu;
    if (z64_end) {
        uint64_t z = cd_off + cd_size;
        p = rec;
        p = wr32(p, ZIP64_EOCD_SIG);
        p = wr64(p, ZIP64_EOCD_LEN - 12);
        p = wr16(p, (3u << 8) | 45);
        p = wr16(p, 45);
        p = wr32(p, 0);
        p = wr32(p, 0);
        p = wr64(p, (uint64_t)n);
        p = wr64(p, (uint64_t)n);
        p = wr64(p, cd_size);
        p = wr64(p, cd_off);
        p = wr32(p, ZIP64_LOC_SIG);
        p = wr32(p, 0);
        p = wr64(p, z);
        p = wr32(p, 1);
        if (write_all(path, fp, rec, (size_t)(p - rec)) != 0) goto fail;
    }
    p = rec;
    p = wr32(p, ZIP_EOCD_SIG);
    p = wr16(p, 0);
    p = wr16(p, 0);
    p = wr16(p, z64_end ? 0xffff : (uint32_t)n);
    p = wr16(p, z64_end ? 0xffff : (uint32_t)n);
    p = wr32(p, z64_end ? 0xffffffffu : (uint32_t)cd_size);
    p = wr32(p, z64_end ? 0xffffffffu : (uint32_t)cd_off);
    p = wr16(p, 0);
    if (write_all(path, fp, rec, (size_t)(p - rec)) != 0) goto fail;
    rc = sfc_atomic_commit(&a);
    goto done;
fail:
    sfc_atomic_abort(&a);
done:
    free(hdr);
    for (i = 0; i < n; i++)
        free(m[i].name);
    free(m);
    return rc;
}
