/* SPDX-License-Identifier: MIT */
/* test-img.c: lib/img.c against PIL/numpy (tests/ref/ref_img.py).
 *
 * Goldens (tests/golden/img/): palette PNGs (8- and 4-bit, random
 * palette), grayscale, RGB, RGBA, LA, 16-bit RGB and grey PNGs, colour and
 * grey JPEGs, each with PIL's or numpy's expected decode. Images must
 * match exactly (the JPEGs too: libvips and PIL share Debian's
 * libjpeg-turbo; a tolerance of 1 is reported separately). Writes: label
 * PNGs round-trip and expand (through libvips) to the VOC colours of the
 * oracle's palette; with the oracle, PIL checks the written label is mode
 * "P" with the same indices and the VOC palette. Rejections: missing,
 * empty, non-image, truncated JPEG/PNG, RGB label; failed saves leave no
 * file behind. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "img.h"
#include "rng.h"
#include "tensor.h"
#include "test.h"
#include "util.h"

#define GOLDEN "tests/golden/img"
#define REF "tests/ref/ref_img.py"

/* ------------------------------------------------ minimal uint8 .npy */

static int npy_load_u8(const char *path, struct sfc_tensor *out)
{
    size_t n;
    char *buf = sfc_read_file(path, &n);
    if (!buf) return -1;
    int rc = -1;
    if (n < 10 || memcmp(buf, "\x93NUMPY", 6)) goto done;
    size_t hl = (uint8_t)buf[8] | (size_t)(uint8_t)buf[9] << 8;
    if (10 + hl > n) goto done;
    char *hdr = sfc_xmalloc(hl + 1);
    memcpy(hdr, buf + 10, hl);
    hdr[hl] = 0;
    int64_t shape[4];
    int nd = 0;
    char *s = strstr(hdr, "'shape': (");
    if (strstr(hdr, "'|u1'") && s && !strstr(hdr, "'fortran_order': True")) {
        s += 10;
        while (*s && *s != ')' && nd < 4) {
            shape[nd++] = strtoll(s, &s, 10);
            while (*s == ',' || *s == ' ') s++;
        }
        if (sfc_tensor_init(out, SFC_U8, nd, shape) == 0 &&
            sfc_tensor_nbytes(out) == n - 10 - hl) {
            memcpy(out->data, buf + 10 + hl, n - 10 - hl);
            rc = 0;
        }
    }
    free(hdr);
done:
    free(buf);
    if (rc) fprintf(stderr, "cannot parse %s\n", path);
    return rc;
}

static int npy_save_u8(const char *path, const struct sfc_tensor *t)
{
    char dims[96] = "", hdr[192];
    for (int i = 0; i < t->ndim; i++) {
        size_t dl = strlen(dims);
        snprintf(dims + dl, sizeof dims - dl, "%lld, ",
                 (long long)t->shape[i]);
    }
    int len = snprintf(hdr, sizeof hdr,
                       "{'descr': '|u1', 'fortran_order': False, "
                       "'shape': (%s), }",
                       dims);
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    uint16_t hl = (uint16_t)(len + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, fp);
    fputc(hl & 0xff, fp);
    fputc(hl >> 8, fp);
    fwrite(hdr, 1, (size_t)len, fp);
    for (int i = 0; i < pad; i++) fputc(' ', fp);
    fputc('\n', fp);
    fwrite(t->data, 1, sfc_tensor_nbytes(t), fp);
    return fclose(fp);
}

/* ------------------------------------------------------ helpers */

static int same_shape(const struct sfc_tensor *a, const struct sfc_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

/* Count of bytes differing, and the max abs difference. */
static int64_t diff_u8(const struct sfc_tensor *a, const struct sfc_tensor *b,
                       int *maxd)
{
    int64_t bad = 0;
    *maxd = 0;
    const uint8_t *x = a->data, *y = b->data;
    for (int64_t i = 0; i < sfc_tensor_numel(a); i++) {
        int d = abs((int)x[i] - (int)y[i]);
        if (d) bad++;
        if (d > *maxd) *maxd = d;
    }
    return bad;
}

static void check_image(const char *dir, const char *file, const char *want,
                        int jpeg)
{
    char p[1024], q[1024];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    snprintf(q, sizeof q, "%s/%s", dir, want);
    struct sfc_tensor got = {0}, ref = {0};
    int rc = sfc_image_load(p, &got);
    T_CHECK_MSG(rc == 0, "%s: %s", p, sfc_errmsg());
    if (rc || npy_load_u8(q, &ref)) goto out;
    T_CHECK_MSG(got.dtype == SFC_U8 && same_shape(&got, &ref),
                "%s: shape mismatch", p);
    if (!same_shape(&got, &ref)) goto out;
    int maxd;
    int64_t bad = diff_u8(&got, &ref, &maxd);
    T_CHECK_MSG(maxd <= 1, "%s: max diff %d against PIL", p, maxd);
    T_CHECK_MSG(bad == 0, "%s: %lld bytes differ (max %d)%s", p,
                (long long)bad, maxd,
                jpeg ? " from PIL's libjpeg-turbo decode" : "");
    int w = 0, h = 0;
    T_CHECK_MSG(sfc_image_size(p, &w, &h) == 0 && w == ref.shape[1] &&
                    h == ref.shape[0],
                "%s: size %dx%d", p, w, h);
out:
    sfc_tensor_release(&got);
    sfc_tensor_release(&ref);
}

static void check_label(const char *dir, const char *file, const char *want)
{
    char p[1024], q[1024];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    snprintf(q, sizeof q, "%s/%s", dir, want);
    struct sfc_tensor got = {0}, ref = {0};
    int rc = sfc_label_load(p, &got);
    T_CHECK_MSG(rc == 0, "%s: %s", p, sfc_errmsg());
    if (rc || npy_load_u8(q, &ref)) goto out;
    T_CHECK_MSG(got.ndim == 2 && same_shape(&got, &ref), "%s: shape", p);
    if (!same_shape(&got, &ref)) goto out;
    int maxd;
    T_CHECK_MSG(diff_u8(&got, &ref, &maxd) == 0, "%s: indices differ", p);
out:
    sfc_tensor_release(&got);
    sfc_tensor_release(&ref);
}

static void check_cases(const char *dir)
{
    check_label(dir, "pal8.png", "pal8_label.npy");
    check_label(dir, "pal4.png", "pal4_label.npy");
    check_label(dir, "gray.png", "gray_label.npy");
    check_image(dir, "pal8.png", "pal8_rgb.npy", 0);
    check_image(dir, "gray.png", "gray_rgb.npy", 0);
    check_image(dir, "rgb.png", "rgb_rgb.npy", 0);
    check_image(dir, "rgba.png", "rgba_rgb.npy", 0);
    check_image(dir, "la.png", "la_rgb.npy", 0);
    check_image(dir, "rgb16.png", "rgb16_rgb.npy", 0);
    check_image(dir, "gray16.png", "gray16_rgb.npy", 0);
    check_image(dir, "rgb.jpg", "rgb_jpg_rgb.npy", 1);
    check_image(dir, "gray.jpg", "gray_jpg_rgb.npy", 1);
}

/* The palette against the oracle's, computed from the definition. */
static void check_palette(void)
{
    struct sfc_tensor ref = {0};
    if (npy_load_u8(GOLDEN "/voc_palette.npy", &ref)) {
        T_CHECK(0);
        return;
    }
    uint8_t pal[256][3];
    sfc_voc_palette(pal);
    T_CHECK(sfc_tensor_numel(&ref) == 768);
    T_CHECK(memcmp(pal, ref.data, 768) == 0);
    /* two anchors from the VOC devkit's documentation */
    T_CHECK(pal[1][0] == 128 && pal[1][1] == 0 && pal[1][2] == 0);
    T_CHECK(pal[255][0] == 224 && pal[255][1] == 224 && pal[255][2] == 192);
    sfc_tensor_release(&ref);
}

/* No file at path and no temporaries (".name.tmp.*") in dir. */
static int nothing_left(const char *dir, const char *path)
{
    if (access(path, F_OK) == 0) return 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int clean = 1;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) clean = 0;
    closedir(d);
    return clean;
}

static void write_file(const char *path, const void *buf, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        perror(path);
        exit(1);
    }
    fwrite(buf, 1, n, fp);
    fclose(fp);
}

/* err must contain both the file name and the phrase. */
static void expect_error(int rc, const char *path, const char *phrase)
{
    const char *m = sfc_errmsg();
    T_CHECK_MSG(rc == -1 && strstr(m, path) && strstr(m, phrase) &&
                    !strchr(m, '\n'),
                "want error naming %s with '%s', got rc %d '%s'", path,
                phrase, rc, m);
}

static void check_rejections(const char *tmp)
{
    struct sfc_tensor t = {0};
    char p[1024];

    snprintf(p, sizeof p, "%s/missing.jpg", tmp);
    expect_error(sfc_image_load(p, &t), p, "cannot open");
    expect_error(sfc_label_load(p, &t), p, "cannot open");
    int w, h;
    expect_error(sfc_image_size(p, &w, &h), p, "cannot open");

    snprintf(p, sizeof p, "%s/x.jpg", tmp);
    write_file(p, "hello, not an image\n", 20);
    expect_error(sfc_image_load(p, &t), p, "not a JPEG or PNG");
    expect_error(sfc_image_size(p, &w, &h), p, "not a JPEG or PNG");
    expect_error(sfc_label_load(p, &t), p, "not a PNG");

    snprintf(p, sizeof p, "%s/empty.png", tmp);
    write_file(p, "", 0);
    expect_error(sfc_image_load(p, &t), p, "empty file");

    /* truncated JPEG and PNG: cut the goldens in half */
    const char *srcs[] = {GOLDEN "/rgb.jpg", GOLDEN "/rgb.png",
                          GOLDEN "/pal8.png"};
    const char *names[] = {"trunc.jpg", "trunc.png", "trunc_label.png"};
    const char *phr[] = {"truncated or corrupt JPEG",
                         "truncated or corrupt PNG", "truncated PNG"};
    for (int i = 0; i < 3; i++) {
        size_t n;
        char *buf = sfc_read_file(srcs[i], &n);
        T_CHECK(buf != NULL);
        if (!buf) continue;
        snprintf(p, sizeof p, "%s/%s", tmp, names[i]);
        write_file(p, buf, n / 2);
        free(buf);
        if (i < 2)
            expect_error(sfc_image_load(p, &t), p, phr[i]);
        else
            expect_error(sfc_label_load(p, &t), p, phr[i]);
        T_CHECK(t.data == NULL);
    }

    /* an RGB PNG is not a label map; nor is a JPEG */
    expect_error(sfc_label_load(GOLDEN "/rgb.png", &t), GOLDEN "/rgb.png",
                 "must be palette or grayscale, not RGB");
    expect_error(sfc_label_load(GOLDEN "/rgb.jpg", &t), GOLDEN "/rgb.jpg",
                 "not a label PNG");

    /* failed saves leave nothing behind */
    struct sfc_tensor bad = {0};
    sfc_tensor_init(&bad, SFC_U8, 3, (const int64_t[]){4, 5, 2});
    snprintf(p, sizeof p, "%s/bad.png", tmp);
    expect_error(sfc_image_save_png(p, &bad), p, "expected shape");
    T_CHECK(nothing_left(tmp, p));
    snprintf(p, sizeof p, "%s/bad.jpg", tmp);
    expect_error(sfc_image_save_jpeg(p, &bad, 90), p, "expected shape");
    T_CHECK(nothing_left(tmp, p));
    snprintf(p, sizeof p, "%s/bad_label.png", tmp);
    expect_error(sfc_label_save(p, &bad), p, "expected shape");
    T_CHECK(nothing_left(tmp, p));
    sfc_tensor_release(&bad);
    sfc_tensor_init(&bad, SFC_U8, 3, (const int64_t[]){4, 5, 3});
    snprintf(p, sizeof p, "%s/q.jpg", tmp);
    expect_error(sfc_image_save_jpeg(p, &bad, 0), p, "quality");
    T_CHECK(nothing_left(tmp, p));
    snprintf(p, sizeof p, "%s/no/such/dir/x.png", tmp);
    T_CHECK(sfc_image_save_png(p, &bad) == -1);
    T_CHECK(sfc_label_save(p, &(struct sfc_tensor){0}) == -1);
    sfc_tensor_release(&bad);
}

/* Writes: labels round-trip and expand to VOC colours; RGB PNG
 * round-trips exactly; JPEG round-trips within JPEG error; saving is
 * deterministic. Leaves label_c.{png,npy} and rgb_c.{png,npy} in tmp for
 * the oracle. */
static void check_writes(const char *tmp, uint64_t seed)
{
    struct sfc_rng r;
    sfc_rng_seed(&r, seed);
    int h = 7 + (int)sfc_rng_below(&r, 20), w = 7 + (int)sfc_rng_below(&r, 20);
    struct sfc_tensor lab = {0}, back = {0}, rgb = {0}, exp = {0};
    sfc_tensor_init(&lab, SFC_U8, 2, (const int64_t[]){h, w});
    uint8_t *l = lab.data;
    for (int i = 0; i < h * w; i++) {
        uint64_t u = sfc_rng_below(&r, 30);
        l[i] = u < 21 ? (uint8_t)u : u < 25 ? 255 : (uint8_t)sfc_rng_below(&r, 256);
    }
    char p[1024], q[1024];
    snprintf(p, sizeof p, "%s/label_c.png", tmp);
    T_CHECK_MSG(sfc_label_save(p, &lab) == 0, "%s", sfc_errmsg());
    snprintf(q, sizeof q, "%s/label_c.npy", tmp);
    T_CHECK(npy_save_u8(q, &lab) == 0);
    T_CHECK_MSG(sfc_label_load(p, &back) == 0, "%s", sfc_errmsg());
    int maxd;
    T_CHECK(same_shape(&back, &lab) && diff_u8(&back, &lab, &maxd) == 0);
    /* libvips expands the palette: colours must be the oracle's VOC map */
    struct sfc_tensor pal = {0};
    T_CHECK(npy_load_u8(GOLDEN "/voc_palette.npy", &pal) == 0);
    T_CHECK_MSG(sfc_image_load(p, &rgb) == 0, "%s", sfc_errmsg());
    if (rgb.data && pal.data) {
        int okc = 1;
        const uint8_t *c = rgb.data, *pp = pal.data;
        for (int i = 0; i < h * w; i++)
            for (int k = 0; k < 3; k++)
                okc &= c[i * 3 + k] == pp[l[i] * 3 + k];
        T_CHECK_MSG(okc, "label PNG colours are not the VOC palette");
    }
    /* deterministic bytes */
    snprintf(q, sizeof q, "%s/label_c2.png", tmp);
    T_CHECK(sfc_label_save(q, &lab) == 0);
    size_t n1, n2;
    char *b1 = sfc_read_file(p, &n1), *b2 = sfc_read_file(q, &n2);
    T_CHECK(b1 && b2 && n1 == n2 && !memcmp(b1, b2, n1));
    free(b1);
    free(b2);

    /* RGB PNG and JPEG */
    sfc_tensor_release(&rgb);
    sfc_tensor_init(&exp, SFC_U8, 3, (const int64_t[]){h, w, 3});
    uint8_t *e = exp.data;
    for (int i = 0; i < h * w * 3; i++) e[i] = (uint8_t)sfc_rng_below(&r, 256);
    snprintf(p, sizeof p, "%s/rgb_c.png", tmp);
    T_CHECK_MSG(sfc_image_save_png(p, &exp) == 0, "%s", sfc_errmsg());
    T_CHECK(sfc_image_load(p, &rgb) == 0);
    T_CHECK(same_shape(&rgb, &exp) && diff_u8(&rgb, &exp, &maxd) == 0);
    sfc_tensor_release(&rgb);
    snprintf(q, sizeof q, "%s/rgb_c.npy", tmp);
    T_CHECK(npy_save_u8(q, &exp) == 0);
    /* smooth image through JPEG at quality 95: small error */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < 3; k++)
                e[(y * w + x) * 3 + k] = (uint8_t)(40 + 6 * x + 5 * y + 30 * k);
    snprintf(p, sizeof p, "%s/c.jpg", tmp);
    T_CHECK_MSG(sfc_image_save_jpeg(p, &exp, 95) == 0, "%s", sfc_errmsg());
    T_CHECK(sfc_image_load(p, &rgb) == 0);
    T_CHECK(same_shape(&rgb, &exp));
    if (same_shape(&rgb, &exp)) {
        double sum = 0;
        const uint8_t *a = rgb.data;
        for (int i = 0; i < h * w * 3; i++) sum += abs((int)a[i] - (int)e[i]);
        diff_u8(&rgb, &exp, &maxd);
        T_CHECK_MSG(maxd <= 32 && sum / (h * w * 3) <= 3.0,
                    "JPEG round trip max diff %d, mean %g", maxd,
                    sum / (h * w * 3));
    }
    sfc_tensor_release(&rgb);
    sfc_tensor_release(&lab);
    sfc_tensor_release(&back);
    sfc_tensor_release(&exp);
    sfc_tensor_release(&pal);
}

/* Loading the same file from several OpenMP threads gives the same
 * pixels (libvips initialised once, no shared state). */
static void check_threads(void)
{
    struct sfc_tensor ref = {0};
    T_CHECK(sfc_image_load(GOLDEN "/rgb.jpg", &ref) == 0);
    int bad = 0;
#pragma omp parallel for reduction(+ : bad)
    for (int i = 0; i < 16; i++) {
        struct sfc_tensor t = {0};
        if (sfc_image_load(i % 2 ? GOLDEN "/rgb.jpg" : GOLDEN "/rgb.png",
                           &t)) {
            bad++;
            continue;
        }
        if (i % 2 && memcmp(t.data, ref.data, sfc_tensor_nbytes(&ref)))
            bad++;
        sfc_tensor_release(&t);
    }
    T_CHECK(bad == 0);
    sfc_tensor_release(&ref);
}

int main(void)
{
    sfc_proginit("test-img");
    check_palette();
    check_cases(GOLDEN);
    char *tmp = test_tmpdir("img");
    check_rejections(tmp);
    check_writes(tmp, 1);
    check_threads();

    const char *py = test_oracle();
    if (py) {
        char *fresh = test_tmpdir("img-oracle");
        unsigned seed = test_fresh_seed("ref_img.py");
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "%s %s --out %s --seed %u", py, REF, fresh,
                 seed);
        fprintf(stderr, "oracle: %s\n", cmd);
        T_CHECK(system(cmd) == 0);
        check_cases(fresh);
        check_writes(fresh, seed);
        snprintf(cmd, sizeof cmd, "%s %s --check %s", py, REF, fresh);
        T_CHECK_MSG(system(cmd) == 0, "PIL rejects the C-written files");
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", fresh);
        if (system(cmd)) fprintf(stderr, "cannot remove %s\n", fresh);
        free(fresh);
    }
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", tmp);
    free(tmp);
    return test_summary();
}
