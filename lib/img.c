/* SPDX-License-Identifier: MIT */
/* img.c: image and label-map I/O (see img.h). The only file that includes
 * vips.h.
 *
 * Images decode through libvips and are converted here, in plain C, to
 * uint8 (H, W, 3) RGB: grey is replicated, alpha is dropped (as PIL's
 * convert("RGB") does), 16-bit samples v become round(v * 255 / 65535).
 * Label maps bypass libvips, which expands palettes to RGB: they are read
 * and written with libpng so palette indices travel unchanged, and written
 * as 8-bit indexed PNGs with the 256-entry VOC colour map (the bit-
 * interleaved map of the PASCAL VOC devkit, VOCdevkit/VOCcode/labelcolormap).
 * libvips is initialised once (pthread_once) with its operation cache off,
 * so a file replaced under the same name is never served stale, and one
 * worker thread per pipeline, so callers own the parallelism. Every write
 * is encoded to memory and then written with sfc_atomic_write(). */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <vips/vips.h>

#include "atomic.h" /* defines: sfc_atomic_write */
#include "err.h"
#include "img.h"
#include "util.h"

/* ---------------------------------------------------------------- vips */

static pthread_once_t vips_once = PTHREAD_ONCE_INIT;
static int vips_ok;

static void quiet_log(const gchar *domain, GLogLevelFlags level,
                      const gchar *msg, gpointer data)
{
    (void)domain, (void)level, (void)msg, (void)data;
}

static void vips_start(void)
{
    if (vips_init("sfc") != 0) return;
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    vips_concurrency_set(1);
    /* Decoder warnings ("premature end of JPEG file") would be a second
     * stderr line; failures are reported through the error slot. */
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE,
                      quiet_log, NULL);
    vips_ok = 1;
}

static int vips_ready(const char *path)
{
    pthread_once(&vips_once, vips_start);
    if (!vips_ok) return sfc_error(path, "cannot initialise libvips");
    return 0;
}

/* Record "path: <what> (<first line of the vips error>)" and clear vips'
 * error buffer. */
static int vips_fail(const char *path, const char *what)
{
    char *buf = vips_error_buffer_copy();
    char line[256] = "";
    if (buf) {
        const char *s = buf;
        while (*s == '\n') s++;
        size_t n = strcspn(s, "\n");
        if (n >= sizeof line) n = sizeof line - 1;
        memcpy(line, s, n);
        line[n] = '\0';
        g_free(buf);
    }
    if (line[0]) return sfc_error(path, "%s (%s)", what, line);
    return sfc_error(path, "%s", what);
}

enum kind { KIND_JPEG = 1, KIND_PNG };

/* Sniff the magic bytes: JPEG, PNG, or an error naming the file. */
static int sniff(const char *path, enum kind *kind_out)
{
    unsigned char m[8] = {0};
    FILE *fp = fopen(path, "rb");
    if (!fp) return sfc_error(path, "cannot open:");
    size_t n = fread(m, 1, sizeof m, fp);
    fclose(fp);
    if (n >= 3 && m[0] == 0xff && m[1] == 0xd8 && m[2] == 0xff)
        *kind_out = KIND_JPEG;
    else if (n == 8 && !memcmp(m, "\x89PNG\r\n\x1a\n", 8))
        *kind_out = KIND_PNG;
    else if (n == 0)
        return sfc_error(path, "empty file, not a JPEG or PNG");
    else
        return sfc_error(path, "not a JPEG or PNG");
    return 0;
}

static VipsImage *open_vips(const char *path, enum kind k)
{
    VipsImage *im = NULL;
    int r;
    if (k == KIND_JPEG)
        r = vips_jpegload(path, &im, "access", VIPS_ACCESS_SEQUENTIAL,
                          "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL);
    else
        r = vips_pngload(path, &im, "access", VIPS_ACCESS_SEQUENTIAL,
                         "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL);
    if (r != 0) {
        vips_fail(path, k == KIND_JPEG ? "cannot read JPEG header"
                                       : "cannot read PNG header");
        return NULL;
    }
    return im;
}

int sfc_image_size(const char *path, int *w_out, int *h_out)
{
    enum kind k;
    if (vips_ready(path) || sniff(path, &k)) return -1;
    VipsImage *im = open_vips(path, k);
    if (!im) return -1;
    *w_out = vips_image_get_width(im);
    *h_out = vips_image_get_height(im);
    g_object_unref(im);
    return 0;
}

int sfc_image_load(const char *path, struct sfc_tensor *out)
{
    enum kind k;
    if (vips_ready(path) || sniff(path, &k)) return -1;
    VipsImage *im = open_vips(path, k);
    if (!im) return -1;
    const char *kname = k == KIND_JPEG ? "JPEG" : "PNG";
    int rc = -1;
    void *mem = NULL;

    if (vips_image_get_interpretation(im) == VIPS_INTERPRETATION_CMYK) {
        VipsImage *rgb = NULL;
        if (vips_colourspace(im, &rgb, VIPS_INTERPRETATION_sRGB, NULL)) {
            vips_fail(path, "cannot convert CMYK to RGB");
            goto done;
        }
        g_object_unref(im);
        im = rgb;
    }
    int w = vips_image_get_width(im), h = vips_image_get_height(im);
    int bands = vips_image_get_bands(im);
    VipsBandFormat fmt = vips_image_get_format(im);
    if (fmt != VIPS_FORMAT_UCHAR && fmt != VIPS_FORMAT_USHORT) {
        sfc_error(path, "unsupported sample format in %s", kname);
        goto done;
    }
    if (bands < 1 || bands > 4) {
        sfc_error(path, "unsupported band count %d in %s", bands, kname);
        goto done;
    }
    size_t size = 0;
    mem = vips_image_write_to_memory(im, &size);
    if (!mem) {
        vips_fail(path, k == KIND_JPEG ? "truncated or corrupt JPEG"
                                       : "truncated or corrupt PNG");
        goto done;
    }
    size_t ss = fmt == VIPS_FORMAT_USHORT ? 2 : 1;
    size_t npix = (size_t)w * (size_t)h;
    SFC_ASSERT(size == npix * (size_t)bands * ss);

    struct sfc_tensor t;
    if (sfc_tensor_init(&t, SFC_U8, 3, (const int64_t[]){h, w, 3})) goto done;
    uint8_t *dst = t.data;
    /* Channel c of the output comes from source band src[c]. */
    int src[3];
    for (int c = 0; c < 3; c++) src[c] = bands >= 3 ? c : 0;
    for (size_t p = 0; p < npix; p++) {
        for (int c = 0; c < 3; c++) {
            size_t i = p * (size_t)bands + (size_t)src[c];
            if (ss == 1) {
                dst[p * 3 + (size_t)c] = ((const uint8_t *)mem)[i];
            } else {
                uint32_t v = ((const uint16_t *)mem)[i];
                dst[p * 3 + (size_t)c] = (uint8_t)((v * 255u + 32767u) / 65535u);
            }
        }
    }
    *out = t;
    rc = 0;
done:
    g_free(mem);
    g_object_unref(im);
    return rc;
}

/* Check an (H, W, 3) uint8 tensor and wrap it as a vips image. */
static VipsImage *wrap_rgb(const char *path, const struct sfc_tensor *rgb)
{
    if (sfc_check_dtype(path, rgb, SFC_U8) ||
        sfc_check_shape(path, rgb, -1, -1, 3))
        return NULL;
    if (rgb->shape[0] < 1 || rgb->shape[1] < 1 || rgb->shape[0] > 65535 ||
        rgb->shape[1] > 65535) {
        sfc_error(path, "image size %lldx%lld out of range",
                  (long long)rgb->shape[1], (long long)rgb->shape[0]);
        return NULL;
    }
    VipsImage *im = vips_image_new_from_memory(
        rgb->data, sfc_tensor_nbytes(rgb), (int)rgb->shape[1],
        (int)rgb->shape[0], 3, VIPS_FORMAT_UCHAR);
    if (!im) vips_fail(path, "cannot wrap image");
    return im;
}

static int save_vips(const char *path, const struct sfc_tensor *rgb,
                     int quality)
{
    if (vips_ready(path)) return -1;
    VipsImage *im = wrap_rgb(path, rgb);
    if (!im) return -1;
    void *buf = NULL;
    size_t len = 0;
    int r;
    if (quality > 0)
        r = vips_jpegsave_buffer(im, &buf, &len, "Q", quality, "strip", TRUE,
                                 NULL);
    else
        r = vips_pngsave_buffer(im, &buf, &len, "compression", 6, "strip",
                                TRUE, NULL);
    g_object_unref(im);
    if (r != 0)
        return vips_fail(path, quality > 0 ? "cannot encode JPEG"
                                           : "cannot encode PNG");
    int rc = sfc_atomic_write(path, buf, len);
    g_free(buf);
    return rc;
}

int sfc_image_save_jpeg(const char *path, const struct sfc_tensor *rgb,
                        int quality)
{
    if (quality < 1 || quality > 100)
        return sfc_error(path, "JPEG quality %d is not in 1..100", quality);
    return save_vips(path, rgb, quality);
}

int sfc_image_save_png(const char *path, const struct sfc_tensor *rgb)
{
    return save_vips(path, rgb, 0);
}

/* ------------------------------------------------------- label maps */

void sfc_voc_palette(uint8_t pal[256][3])
{
    for (int i = 0; i < 256; i++) {
        int r = 0, g = 0, b = 0, c = i;
        for (int j = 0; j < 8; j++) {
            r |= ((c >> 0) & 1) << (7 - j);
            g |= ((c >> 1) & 1) << (7 - j);
            b |= ((c >> 2) & 1) << (7 - j);
            c >>= 3;
        }
        pal[i][0] = (uint8_t)r;
        pal[i][1] = (uint8_t)g;
        pal[i][2] = (uint8_t)b;
    }
}

/* libpng reports through these: the message goes to the caller's buffer
 * and control returns to its setjmp. */
struct png_io {
    const uint8_t *data; /* reading: the whole file */
    size_t size, pos;
    uint8_t *out;        /* writing: a growing buffer */
    size_t len, cap;
    char msg[200];
};

static void png_err(png_structp png, png_const_charp msg)
{
    struct png_io *io = png_get_error_ptr(png);
    snprintf(io->msg, sizeof io->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp msg)
{
    (void)png, (void)msg;
}

static void png_read_cb(png_structp png, png_bytep buf, size_t n)
{
    struct png_io *io = png_get_io_ptr(png);
    if (io->size - io->pos < n) png_error(png, "truncated PNG");
    memcpy(buf, io->data + io->pos, n);
    io->pos += n;
}

static void png_write_cb(png_structp png, png_bytep buf, size_t n)
{
    struct png_io *io = png_get_io_ptr(png);
    if (io->cap - io->len < n) {
        size_t cap = io->cap ? io->cap : 4096;
        while (cap - io->len < n) cap *= 2;
        io->out = sfc_xrealloc(io->out, cap);
        io->cap = cap;
    }
    memcpy(io->out + io->len, buf, n);
    io->len += n;
}

static void png_flush_cb(png_structp png)
{
    (void)png;
}

/* The libpng part of sfc_label_load, kept apart so setjmp's rules on
 * automatic variables only concern the few locals here. */
static int read_label(const char *path, struct png_io *io,
                      struct sfc_tensor *t, png_bytepp volatile *rows_p)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, io,
                                             png_err, png_warn);
    if (!png) return sfc_error(path, "cannot create PNG reader");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return sfc_error(path, "cannot create PNG reader");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return sfc_error(path, "%s", io->msg[0] ? io->msg : "corrupt PNG");
    }
    png_set_read_fn(png, io, png_read_cb);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info);
    png_uint_32 h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info);
    int ct = png_get_color_type(png, info);
    if (ct != PNG_COLOR_TYPE_PALETTE && ct != PNG_COLOR_TYPE_GRAY) {
        snprintf(io->msg, sizeof io->msg,
                 "label PNG must be palette or grayscale, not %s",
                 ct == PNG_COLOR_TYPE_RGB        ? "RGB"
                 : ct == PNG_COLOR_TYPE_RGB_ALPHA ? "RGBA"
                                                  : "grayscale+alpha");
        png_longjmp(png, 1);
    }
    if (depth > 8) {
        snprintf(io->msg, sizeof io->msg,
                 "label PNG must have at most 8 bits per sample, not %d",
                 depth);
        png_longjmp(png, 1);
    }
    if (depth < 8) png_set_packing(png); /* one byte per index, unscaled */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != w) {
        snprintf(io->msg, sizeof io->msg, "unexpected PNG row layout");
        png_longjmp(png, 1);
    }
    if (sfc_tensor_init(t, SFC_U8, 2, (const int64_t[]){h, w})) {
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    png_bytepp rows = sfc_xmalloc(sizeof(png_bytep) * (h ? h : 1));
    *rows_p = rows;
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = (uint8_t *)t->data + (size_t)y * w;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

int sfc_label_load(const char *path, struct sfc_tensor *out)
{
    size_t size = 0;
    char *data = sfc_read_file(path, &size);
    if (!data) return -1;
    if (size == 0) {
        free(data);
        return sfc_error(path, "empty file, not a PNG");
    }
    if (size < 8 || memcmp(data, "\x89PNG\r\n\x1a\n", 8)) {
        int jpeg = size >= 3 && !memcmp(data, "\xff\xd8\xff", 3);
        free(data);
        return sfc_error(path, jpeg ? "a JPEG is not a label PNG"
                                    : "not a PNG");
    }
    struct png_io io = {.data = (const uint8_t *)data, .size = size};
    struct sfc_tensor t = {0};
    png_bytepp volatile rows = NULL;
    int rc = read_label(path, &io, &t, &rows);
    free(rows);
    free(data);
    if (rc) {
        sfc_tensor_release(&t);
        return -1;
    }
    *out = t;
    return 0;
}

static int encode_label(const char *path, const struct sfc_tensor *label,
                        struct png_io *io)
{
    uint32_t h = (uint32_t)label->shape[0], w = (uint32_t)label->shape[1];
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, io,
                                              png_err, png_warn);
    if (!png) return sfc_error(path, "cannot create PNG writer");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return sfc_error(path, "cannot create PNG writer");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return sfc_error(path, "cannot encode PNG (%s)", io->msg);
    }
    png_set_write_fn(png, io, png_write_cb, png_flush_cb);
    png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_PALETTE,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    uint8_t pal[256][3];
    sfc_voc_palette(pal);
    png_color plte[256];
    for (int i = 0; i < 256; i++) {
        plte[i].red = pal[i][0];
        plte[i].green = pal[i][1];
        plte[i].blue = pal[i][2];
    }
    png_set_PLTE(png, info, plte, 256);
    png_set_compression_level(png, 6);
    png_write_info(png, info);
    for (uint32_t y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)label->data + (size_t)y * w);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int sfc_label_save(const char *path, const struct sfc_tensor *label)
{
    if (sfc_check_dtype(path, label, SFC_U8) ||
        sfc_check_shape(path, label, -1, -1))
        return -1;
    if (label->shape[0] < 1 || label->shape[1] < 1 ||
        label->shape[0] > 0x7fffffff || label->shape[1] > 0x7fffffff)
        return sfc_error(path, "label size %lldx%lld out of range",
                         (long long)label->shape[1],
                         (long long)label->shape[0]);
    struct png_io io = {0};
    int rc = encode_label(path, label, &io);
    if (rc == 0) rc = sfc_atomic_write(path, io.out, io.len);
    free(io.out);
    return rc;
}

/* ------------------------------------------- display tiles (reports) */

/* Heat colours: the usual piecewise-linear "jet" ramp (blue, cyan,
 * yellow, red), 256 entries. */
static void jet_lut(uint8_t lut[256][3])
{
    for (int i = 0; i < 256; i++) {
        double x = i / 255.0, c[3];
        c[0] = 1.5 - fabs(4 * x - 3);
        c[1] = 1.5 - fabs(4 * x - 2);
        c[2] = 1.5 - fabs(4 * x - 1);
        for (int k = 0; k < 3; k++) {
            double v = c[k] < 0 ? 0 : c[k] > 1 ? 1 : c[k];
            lut[i][k] = (uint8_t)(v * 255 + 0.5);
        }
    }
}

/* im (any bands, uchar) through a 256-entry RGB table. Unrefs im. */
static VipsImage *map_colours(const char *name, VipsImage *im,
                              uint8_t lut[256][3])
{
    VipsImage *l = vips_image_new_from_memory_copy(lut, 256 * 3, 256, 1, 3,
                                                   VIPS_FORMAT_UCHAR);
    VipsImage *out = NULL;
    if (!l || vips_maplut(im, &out, l, NULL)) {
        vips_fail(name, "cannot colour the map");
        out = NULL;
    }
    if (l) g_object_unref(l);
    g_object_unref(im);
    return out;
}

/* Shrink im so its longer side is at most side (nearest neighbour for
 * label maps), encode it into a fresh malloc'd buffer: label maps as PNG
 * (flat colours compress well), images as JPEG (quality SFC_TILE_JPEG_Q,
 * no chroma subsampling, so small tiles keep their colours). Unrefs im. */
static int tile_finish(const char *name, VipsImage *im, int side,
                       int nearest, void **png_out, size_t *n_out)
{
    int w = vips_image_get_width(im), h = vips_image_get_height(im);
    int big = w > h ? w : h;
    if (side > 0 && big > side) {
        VipsImage *r = NULL;
        int rc = vips_resize(im, &r, (double)side / big, "kernel",
                             nearest ? VIPS_KERNEL_NEAREST
                                     : VIPS_KERNEL_LINEAR,
                             NULL);
        g_object_unref(im);
        if (rc) return vips_fail(name, "cannot resize the tile");
        im = r;
    }
    void *buf = NULL;
    size_t len = 0;
    int rc = nearest ? vips_pngsave_buffer(im, &buf, &len, "compression", 6,
                                           "strip", TRUE, NULL)
                     : vips_jpegsave_buffer(
                           im, &buf, &len, "Q", SFC_TILE_JPEG_Q, "strip",
                           TRUE, "subsample_mode",
                           VIPS_FOREIGN_SUBSAMPLE_OFF, NULL);
    g_object_unref(im);
    if (rc) return vips_fail(name, nearest ? "cannot encode PNG"
                                           : "cannot encode JPEG");
    *png_out = sfc_xmalloc(len);
    memcpy(*png_out, buf, len);
    *n_out = len;
    g_free(buf);
    return 0;
}

int sfc_tile_rgb(const char *name, const struct sfc_tensor *rgb, int side,
                 void **png_out, size_t *n_out)
{
    if (vips_ready(name)) return -1;
    VipsImage *im = wrap_rgb(name, rgb);
    if (!im) return -1;
    return tile_finish(name, im, side, 0, png_out, n_out);
}

int sfc_tile_label(const char *name, const struct sfc_tensor *label,
                   int side, void **png_out, size_t *n_out)
{
    if (vips_ready(name)) return -1;
    if (sfc_check_dtype(name, label, SFC_U8) ||
        sfc_check_shape(name, label, -1, -1))
        return -1;
    VipsImage *im = vips_image_new_from_memory(
        label->data, sfc_tensor_nbytes(label), (int)label->shape[1],
        (int)label->shape[0], 1, VIPS_FORMAT_UCHAR);
    if (!im) return vips_fail(name, "cannot wrap label map");
    uint8_t pal[256][3];
    sfc_voc_palette(pal);
    im = map_colours(name, im, pal);
    if (!im) return -1;
    return tile_finish(name, im, side, 1, png_out, n_out);
}

int sfc_tile_heat(const char *name, const struct sfc_tensor *rgb,
                  const float *heat, double alpha, int side, void **png_out,
                  size_t *n_out)
{
    if (vips_ready(name)) return -1;
    if (!(alpha >= 0 && alpha <= 1))
        return sfc_error(name, "blend weight %g is not in [0, 1]", alpha);
    VipsImage *im = wrap_rgb(name, rgb);
    if (!im) return -1;
    int w = (int)rgb->shape[1], h = (int)rgb->shape[0];
    VipsImage *m = vips_image_new_from_memory(
        (void *)heat, (size_t)w * h * sizeof(float), w, h, 1,
        VIPS_FORMAT_FLOAT);
    VipsImage *u = NULL, *col = NULL, *a = NULL, *b = NULL, *sum = NULL,
              *out = NULL;
    int rc = -1;
    if (!m) {
        vips_fail(name, "cannot wrap heat map");
        goto fail;
    }
    /* [0, 1] -> 0..255 (clipped by the cast), then the colour ramp */
    if (vips_linear1(m, &u, 255.0, 0.0, "uchar", TRUE, NULL)) {
        vips_fail(name, "cannot scale heat map");
        goto fail;
    }
    uint8_t lut[256][3];
    jet_lut(lut);
    col = map_colours(name, u, lut);
    u = NULL;
    if (!col) goto fail;
    /* alpha * colour + (1 - alpha) * image, rounded to uchar */
    if (vips_linear1(col, &a, alpha, 0.0, NULL) ||
        vips_linear1(im, &b, 1 - alpha, 0.5, NULL) ||
        vips_add(a, b, &sum, NULL) ||
        vips_cast_uchar(sum, &out, NULL)) {
        vips_fail(name, "cannot blend heat map");
        goto fail;
    }
    rc = tile_finish(name, out, side, 0, png_out, n_out);
    out = NULL;
fail:
    if (m) g_object_unref(m);
    if (u) g_object_unref(u);
    if (col) g_object_unref(col);
    if (a) g_object_unref(a);
    if (b) g_object_unref(b);
    if (sum) g_object_unref(sum);
    if (out) g_object_unref(out);
    g_object_unref(im);
    return rc;
}
