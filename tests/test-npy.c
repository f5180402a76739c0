/* SPDX-License-Identifier: MIT */
/* test-npy.c: .npy and .npz against numpy (tests/ref/ref_formats.py).
 *
 * Reading: files written by np.save / np.savez / np.savez_compressed
 * (every dtype; 0-d, 1-d, 4-d and empty shapes; header versions 1.0, 2.0,
 * 3.0; zip64 records) must read as the raw bytes the manifest lists, and
 * re-encoding an np.save file must give np.save's exact bytes. Every
 * rejection file must fail with one line "<file>: ..." naming the problem.
 * Writing: C-written files read back equal, are byte-reproducible, leave
 * no file behind on failure, and (with the oracle) np.load reads them
 * equal and np.save writes the same .npy bytes. The goldens always run;
 * with SFC_ORACLE set the script also writes fresh random cases. */
#include <time.h>

#include "npy.h"
#include "formats_manifest.h"

static int ncases;

/* The .npz most recently loaded by a manifest line (files repeat). */
static struct sfc_npz cache;
static char *cache_path;

static const struct sfc_npz *npz_cached(const char *path)
{
    if (cache_path && !strcmp(cache_path, path)) return &cache;
    sfc_npz_release(&cache);
    free(cache_path);
    cache_path = NULL;
    if (sfc_npz_read(path, &cache) != 0) {
        fprintf(stderr, "    %s\n", sfc_errmsg());
        return NULL;
    }
    cache_path = sfc_xstrdup(path);
    return &cache;
}

static void check_line(const char *dir, struct mline *m)
{
    char *path = sfc_path_join(dir, m->w[1]);
    struct sfc_tensor want, got;
    const char *kind = m->w[0];

    if (!strcmp(kind, "npy")) {
        ncases++;
        T_CHECK(manifest_array(m->w + 2, m->nw - 2, &want, NULL) == 0);
        int rc = sfc_npy_read(path, &got);
        T_CHECK_MSG(rc == 0, "%s", sfc_errmsg());
        if (rc == 0) {
            T_CHECK_MSG(same_tensor(&got, &want), "%s differs", path);
            sfc_tensor_release(&got);
        }
        size_t n;
        char *buf = sfc_read_file(path, &n);
        T_CHECK(buf != NULL);
        rc = sfc_npy_read_mem(path, buf, n, &got);
        T_CHECK_MSG(rc == 0, "%s", sfc_errmsg());
        if (rc == 0) {
            T_CHECK_MSG(same_tensor(&got, &want), "%s differs (mem)", path);
            sfc_tensor_release(&got);
        }
        free(buf);
        sfc_tensor_release(&want);
    } else if (!strcmp(kind, "npybytes")) {
        size_t n, en;
        char *buf = sfc_read_file(path, &n), *enc = NULL;
        T_CHECK(buf && sfc_npy_read_mem(path, buf, n, &got) == 0);
        T_CHECK(sfc_npy_encode(&got, &enc, &en) == 0);
        T_CHECK_MSG(en == n && !memcmp(enc, buf, n),
                    "%s: our encoding differs from np.save's", path);
        free(enc);
        free(buf);
        sfc_tensor_release(&got);
    } else if (!strcmp(kind, "npz")) {
        ncases++;
        const struct sfc_npz *z = npz_cached(path);
        T_CHECK_MSG(z != NULL, "%s", path);
        T_CHECK(manifest_array(m->w + 3, m->nw - 3, &want, NULL) == 0);
        if (z) {
            const struct sfc_tensor *t = sfc_npz_get(z, m->w[2]);
            T_CHECK_MSG(t && same_tensor(t, &want), "%s: %s differs", path,
                        m->w[2]);
        }
        sfc_tensor_release(&want);
    } else if (!strcmp(kind, "npzmembers")) {
        const struct sfc_npz *z = npz_cached(path);
        T_CHECK_MSG(z && z->n == m->nw - 2, "%s: member count", path);
        for (int i = 0; z && i < z->n && i < m->nw - 2; i++)
            T_CHECK_MSG(!strcmp(z->names[i], m->w[2 + i]),
                        "%s: member %d is"
                        " %s, want %s",
                        path, i, z->names[i], m->w[2 + i]);
        if (z) {
            T_CHECK(sfc_npz_get(z, "no-such-array") == NULL);
            T_CHECK(error_is(path, "no array 'no-such-array'"));
        }
    } else if (!strcmp(kind, "reject") && strcmp(m->w[1], "st")) {
        ncases++;
        free(path);
        path = sfc_path_join(dir, m->w[2]);
        char *want_msg = join_words(m->w + 3, m->nw - 3);
        if (!strcmp(m->w[1], "npy")) {
            T_CHECK_MSG(sfc_npy_read(path, &got) == -1, "%s: accepted", path);
            T_CHECK(error_is(path, want_msg));
            T_CHECK(got.data == NULL);
            size_t n;
            char *buf = sfc_read_file(path, &n);
            T_CHECK_MSG(sfc_npy_read_mem(path, buf, n, &got) == -1,
                        "%s: accepted (mem)", path);
            T_CHECK(error_is(path, want_msg));
            free(buf);
        } else {
            struct sfc_npz z;
            T_CHECK_MSG(sfc_npz_read(path, &z) == -1, "%s: accepted", path);
            T_CHECK(error_is(path, want_msg));
            T_CHECK(z.n == 0 && z.names == NULL);
        }
        free(want_msg);
    }
    free(path);
}

static void check_manifest(const char *dir)
{
    struct mline *ls = NULL;
    char *mf = sfc_path_join(dir, "manifest.txt");
    int n = manifest_read(mf, &ls);
    T_CHECK_MSG(n > 0, "cannot read %s", mf);
    for (int i = 0; i < n; i++)
        check_line(dir, &ls[i]);
    manifest_free(ls, n);
    free(mf);
    sfc_npz_release(&cache);
    free(cache_path);
    cache_path = NULL;
}

/* ------------------------------------------------------------------ */
/* Writing                                                              */

static void fill_random(struct sfc_tensor *t, struct sfc_rng *r)
{
    size_t n = sfc_tensor_nbytes(t);
    unsigned char *p = t->data;
    if (t->dtype == SFC_F32) {
        for (int64_t i = 0; i < sfc_tensor_numel(t); i++)
            sfc_tensor_f(t)[i] = (float)sfc_rng_normal(r);
        return;
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)sfc_rng_u64(r);
}

static const int64_t wshapes[][5] = {
    /* ndim, dims: 0-d, 1-d, 4-d, empty */
    {0}, {1, 5}, {4, 2, 3, 4, 5}, {1, 0}, {3, 3, 0, 2}, {2, 1, 1},
};

/* Writes npy/npz files into dir, checks them in C, lists them in
 * dir/verify.txt for the oracle. */
static void check_writes(const char *dir, uint64_t seed)
{
    struct sfc_rng r;
    struct sfc_tensor ts[SFC_NDTYPES * SFC_ARRAY_LEN(wshapes)];
    const struct sfc_tensor *tp[SFC_ARRAY_LEN(ts)];
    char *names[SFC_ARRAY_LEN(ts)];
    int nt = 0;
    char *vpath = sfc_path_join(dir, "verify.txt");
    FILE *vf = fopen(vpath, "w");
    T_CHECK(vf != NULL);
    sfc_rng_seed(&r, seed);

    for (int dt = 0; dt < SFC_NDTYPES; dt++)
        for (size_t s = 0; s < SFC_ARRAY_LEN(wshapes); s++) {
            struct sfc_tensor *t = &ts[nt];
            T_CHECK(sfc_tensor_init(t, (enum sfc_dtype)dt, (int)wshapes[s][0],
                                    wshapes[s] + 1) == 0);
            fill_random(t, &r);
            names[nt] = sfc_xasprintf("%s_%zu", sfc_dtype_name(t->dtype), s);
            tp[nt] = t;
            char *fn = sfc_xasprintf("%s.npy", names[nt]);
            char *p = sfc_path_join(dir, fn);
            T_CHECK_MSG(sfc_npy_write(p, t) == 0, "%s", sfc_errmsg());
            struct sfc_tensor back;
            T_CHECK(sfc_npy_read(p, &back) == 0);
            T_CHECK_MSG(same_tensor(&back, t), "%s: round trip", p);
            sfc_tensor_release(&back);
            /* encode == the file's bytes */
            size_t n, en;
            char *buf = sfc_read_file(p, &n), *enc;
            T_CHECK(sfc_npy_encode(t, &enc, &en) == 0);
            T_CHECK(buf && en == n && !memcmp(buf, enc, n));
            T_CHECK(n % 64 == sfc_tensor_nbytes(t) % 64); /* header aligned */
            free(buf);
            free(enc);
            fprintf(vf, "npy %s ", fn);
            print_array(vf, t, 0);
            fputc('\n', vf);
            free(fn);
            free(p);
            nt++;
        }

    for (int compress = 0; compress < 2; compress++) {
        char *fn = sfc_xasprintf("w%d.npz", compress);
        char *p = sfc_path_join(dir, fn);
        T_CHECK_MSG(
            sfc_npz_write(p, nt, (const char *const *)names, tp, compress) == 0,
            "%s", sfc_errmsg());
        struct sfc_npz z;
        T_CHECK_MSG(sfc_npz_read(p, &z) == 0, "%s", sfc_errmsg());
        T_CHECK(z.n == nt);
        for (int i = 0; i < z.n && i < nt; i++) {
            T_CHECK(!strcmp(z.names[i], names[i]));
            T_CHECK_MSG(same_tensor(&z.arrays[i], tp[i]), "%s: %s", p,
                        names[i]);
        }
        sfc_npz_release(&z);
        /* Byte-reproducible: the same call writes the same bytes. */
        char *p2 = sfc_path_join(dir, "again.npz");
        T_CHECK(sfc_npz_write(p2, nt, (const char *const *)names, tp,
                              compress) == 0);
        size_t n1, n2;
        char *b1 = sfc_read_file(p, &n1), *b2 = sfc_read_file(p2, &n2);
        T_CHECK(b1 && b2 && n1 == n2 && !memcmp(b1, b2, n1));
        if (compress) {
            size_t n0;
            char *p0 = sfc_path_join(dir, "w0.npz");
            free(sfc_read_file(p0, &n0));
            T_CHECK_MSG(n1 < n0, "deflated %zu >= stored %zu", n1, n0);
            free(p0);
        }
        free(b1);
        free(b2);
        unlink(p2);
        free(p2);
        fprintf(vf, "npzmembers %s", fn);
        for (int i = 0; i < nt; i++)
            fprintf(vf, " %s", names[i]);
        fputc('\n', vf);
        for (int i = 0; i < nt; i++) {
            fprintf(vf, "npz %s %s ", fn, names[i]);
            print_array(vf, tp[i], 0);
            fputc('\n', vf);
        }
        free(fn);
        free(p);
    }
    /* An empty archive. */
    char *pe = sfc_path_join(dir, "none.npz");
    T_CHECK(sfc_npz_write(pe, 0, NULL, NULL, 1) == 0);
    struct sfc_npz ze;
    T_CHECK(sfc_npz_read(pe, &ze) == 0 && ze.n == 0);
    sfc_npz_release(&ze);
    fprintf(vf, "npzmembers none.npz\n");
    free(pe);

    T_CHECK(fclose(vf) == 0);
    if (test_oracle()) {
        char *args = sfc_xasprintf("--verify '%s'", dir);
        T_CHECK_MSG(run_oracle(args) == 0, "numpy rejects our files");
        free(args);
    }
    for (int i = 0; i < nt; i++) {
        sfc_tensor_release(&ts[i]);
        free(names[i]);
    }
    free(vpath);
}

/* Failures leave no file (and do not touch an existing one). */
static void check_write_failures(void)
{
    char *dir = test_tmpdir("npyfail");
    struct sfc_tensor a, bad;
    T_CHECK(sfc_tensor_f32(&a, 2, 3) == 0);
    char *p = sfc_path_join(dir, "x.npy");
    char *pz = sfc_path_join(dir, "x.npz");

    /* A tensor with an invalid dtype fails in the middle of an .npz: the
     * first member is already written when the second fails. */
    bad = a;
    bad.dtype = SFC_NDTYPES;
    bad.owns_data = 0;
    const struct sfc_tensor *ts[2] = {&a, &bad};
    const char *names[2] = {"a", "b"};
    T_CHECK(sfc_npz_write(pz, 2, names, ts, 1) == -1);
    T_CHECK(error_is(pz, "array 'b'"));
    T_CHECK(sfc_npz_write(pz, 2, names, ts, 0) == -1);
    T_CHECK(count_entries(dir) == 0);
    T_CHECK(sfc_npy_write(p, &bad) == -1);
    T_CHECK(count_entries(dir) == 0);
    /* Duplicate and empty names. */
    const char *dup[2] = {"a", "a"}, *empty[1] = {""};
    ts[1] = &a;
    T_CHECK(sfc_npz_write(pz, 2, dup, ts, 0) == -1);
    T_CHECK(error_is(pz, "duplicate array name 'a'"));
    T_CHECK(sfc_npz_write(pz, 1, empty, ts, 0) == -1);
    T_CHECK(count_entries(dir) == 0);
    /* A missing directory. */
    char *nodir = sfc_path_join(dir, "no/such/x.npy");
    T_CHECK(sfc_npy_write(nodir, &a) == -1);
    T_CHECK(error_is(nodir, "cannot create temporary file"));
    free(nodir);
    /* An existing file survives a failed overwrite. */
    T_CHECK(sfc_npy_write(p, &a) == 0);
    T_CHECK(sfc_npz_write(p, 2, names,
                          (const struct sfc_tensor *const[]){&a, &bad},
                          0) == -1);
    struct sfc_tensor back;
    T_CHECK(sfc_npy_read(p, &back) == 0 && same_tensor(&back, &a));
    sfc_tensor_release(&back);
    T_CHECK(count_entries(dir) == 1);
    /* Missing input files. */
    T_CHECK(sfc_npy_read(pz, &back) == -1 && error_is(pz, "cannot open"));
    T_CHECK(sfc_npz_read(pz, &(struct sfc_npz){0}) == -1 &&
            error_is(pz, "cannot open"));
    sfc_tensor_release(&a);
    free(p);
    free(pz);
    rm_rf(dir);
    free(dir);
}

/* The C writer's header bytes for a few shapes, spelled out from numpy's
 * format.py rules (sorted keys, repr of the shape, 21-column growth pad,
 * 64-byte alignment) so this check stands without Python. */
static void check_header_text(void)
{
    struct sfc_tensor t;
    char *b;
    size_t n;
    T_CHECK(sfc_tensor_init(&t, SFC_U8, 1, (int64_t[]){3}) == 0);
    T_CHECK(sfc_npy_encode(&t, &b, &n) == 0);
    const char *want = "{'descr': '|u1', 'fortran_order': False, "
                       "'shape': (3,), }";
    T_CHECK(n == 128 + 3 && !memcmp(b, "\x93NUMPY\x01\x00\x76\x00", 10));
    T_CHECK(!memcmp(b + 10, want, strlen(want)));
    T_CHECK(b[127] == '\n' && b[10 + strlen(want)] == ' ');
    free(b);
    sfc_tensor_release(&t);
    T_CHECK(sfc_tensor_init(&t, SFC_F32, 0, NULL) == 0);
    T_CHECK(sfc_npy_encode(&t, &b, &n) == 0);
    want = "{'descr': '<f4', 'fortran_order': False, 'shape': (), }";
    T_CHECK(n == 128 + 4 && !memcmp(b + 10, want, strlen(want)));
    T_CHECK(b[10 + strlen(want)] == ' ' && b[10 + strlen(want) + 1] == ' ');
    free(b);
    sfc_tensor_release(&t);
}

/* Truncations (every length up to 160, then every 7th) and single-byte
 * corruptions of a few good files either read or fail with a message
 * naming the file; never crash (run under ASan by make test-sanitize),
 * never succeed on a truncation. */
static int write_plain(const char *path, const void *b, size_t n)
{
    FILE *fp = fopen(path, "wb"); /* scratch file: no fsync wanted */
    if (!fp) return -1;
    size_t w = fwrite(b, 1, n, fp);
    return fclose(fp) == 0 && w == n ? 0 : -1;
}

static void check_corruptions(void)
{
    static const char *const files[] = {"deflated.npz", "stored.npz",
                                        "zip64.npz", "float32-2.npy"};
    char *dir = test_tmpdir("npycorrupt");
    char *p = sfc_path_join(dir, "c");
    struct sfc_rng r;
    sfc_rng_seed(&r, 3);
    for (size_t f = 0; f < SFC_ARRAY_LEN(files); f++) {
        char *src = sfc_path_join(GOLDEN_FORMATS, files[f]);
        int is_npz = strstr(files[f], ".npz") != NULL;
        size_t n;
        unsigned char *b = (unsigned char *)sfc_read_file(src, &n);
        T_CHECK(b != NULL);
        int bad_ok = 0, bad_msg = 0;
        for (size_t cut = 0; b && cut < n; cut += cut < 160 ? 1 : 7) {
            T_CHECK(write_plain(p, b, cut) == 0);
            struct sfc_npz z;
            struct sfc_tensor t;
            int rc = is_npz ? sfc_npz_read(p, &z) : sfc_npy_read(p, &t);
            bad_ok += rc == 0;
            bad_msg += rc == -1 && strncmp(sfc_errmsg(), p, strlen(p)) != 0;
            if (rc == 0) is_npz ? sfc_npz_release(&z) : sfc_tensor_release(&t);
        }
        T_CHECK_MSG(bad_ok == 0, "%s: %d truncations accepted", src, bad_ok);
        for (int k = 0; b && k < 200; k++) {
            size_t at = (size_t)sfc_rng_below(&r, n);
            unsigned char old = b[at];
            b[at] = (unsigned char)(k % 3 == 0 ? 0xff : sfc_rng_u64(&r));
            T_CHECK(write_plain(p, b, n) == 0);
            b[at] = old;
            struct sfc_npz z;
            struct sfc_tensor t;
            int rc = is_npz ? sfc_npz_read(p, &z) : sfc_npy_read(p, &t);
            bad_msg += rc == -1 && strncmp(sfc_errmsg(), p, strlen(p)) != 0;
            if (rc == 0) is_npz ? sfc_npz_release(&z) : sfc_tensor_release(&t);
        }
        T_CHECK_MSG(bad_msg == 0, "%s: %d errors do not name the file", src,
                    bad_msg);
        free(b);
        free(src);
    }
    unlink(p);
    free(p);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    sfc_proginit("test-npy");
    check_header_text();
    check_manifest(GOLDEN_FORMATS);
    T_CHECK_MSG(ncases > 60, "only %d golden cases", ncases);
    check_write_failures();
    check_corruptions();

    char *dir = test_tmpdir("npy");
    check_writes(dir, 7);
    rm_rf(dir);
    free(dir);

    if (test_oracle()) {
        dir = test_tmpdir("npy-oracle");
        unsigned seed = test_fresh_seed("ref_formats.py");
        char *args = sfc_xasprintf("--out '%s' --seed %u", dir, seed);
        T_CHECK(run_oracle(args) == 0);
        free(args);
        ncases = 0;
        check_manifest(dir);
        T_CHECK(ncases > 60);
        rm_rf(dir);
        free(dir);
        dir = test_tmpdir("npy-verify");
        check_writes(dir, seed);
        rm_rf(dir);
        free(dir);
    }
    return test_summary();
}
