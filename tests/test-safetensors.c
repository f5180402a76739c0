/* SPDX-License-Identifier: MIT */
/* test-safetensors.c: safetensors and the JSON reader.
 *
 * Oracle: tests/ref/ref_formats.py writes safetensors files with Python's
 * json module and numpy (the safetensors library's layout, ours, and one
 * with header keys shuffled against the data), malformed ones, and (with
 * SFC_ORACLE) a torchvision resnet18 state dict. The C side must read
 * every tensor with its torchvision name and exact bytes, return tensors
 * in data order, reject each malformed file with one line naming the
 * file (and the tensor where there is one), rewrite our layout byte for
 * byte, and write files that the script's independent reader and
 * torchvision's load_state_dict(strict=True) accept with equal values.
 * JSON cases come from RFC 8259 (escapes, surrogates, number grammar). */
#include <time.h>

#include "json.h"
#include "safetensors.h"
#include "formats_manifest.h"

static int ncases;
static char *scratch; /* a temp dir for rewrites */

static struct sfc_safetensors cache;
static char *cache_path;

static const struct sfc_safetensors *st_cached(const char *path)
{
    if (cache_path && !strcmp(cache_path, path)) return &cache;
    sfc_safetensors_release(&cache);
    free(cache_path);
    cache_path = NULL;
    if (sfc_safetensors_read(path, &cache) != 0) {
        fprintf(stderr, "    %s\n", sfc_errmsg());
        return NULL;
    }
    cache_path = sfc_xstrdup(path);
    return &cache;
}

/* Write s again (data order, metadata order) and compare bytes with path. */
static int rewrite_same(const struct sfc_safetensors *s, const char *path)
{
    char *p = sfc_path_join(scratch, "rewrite.safetensors");
    int ok;
    const struct sfc_tensor **tp = sfc_xcalloc((size_t)s->n + 1, sizeof *tp);
    for (int i = 0; i < s->n; i++)
        tp[i] = &s->tensors[i];
    ok = sfc_safetensors_write(p, s->n, (const char *const *)s->names, tp,
                               s->nmeta, (const char *const *)s->meta_keys,
                               (const char *const *)s->meta_values) == 0;
    size_t n1, n2;
    char *a = sfc_read_file(path, &n1), *b = sfc_read_file(p, &n2);
    ok = ok && a && b && n1 == n2 && !memcmp(a, b, n1);
    free(a);
    free(b);
    free(tp);
    unlink(p);
    free(p);
    return ok;
}

static double sum_tensor(const struct sfc_tensor *t, double *maxabs)
{
    double s = 0;
    *maxabs = 0;
    for (int64_t i = 0; i < sfc_tensor_numel(t); i++) {
        double v = t->dtype == SFC_F32 ? (double)sfc_tensor_f(t)[i]
                                       : (double)((int64_t *)t->data)[i];
        s += v;
        *maxabs = fmax(*maxabs, fabs(v));
    }
    return s;
}

static void check_line(const char *dir, struct mline *m)
{
    const char *kind = m->w[0];
    char *path = sfc_path_join(dir, m->w[1]);
    struct sfc_tensor want;

    if (!strcmp(kind, "st")) {
        ncases++;
        const struct sfc_safetensors *s = st_cached(path);
        T_CHECK_MSG(s != NULL, "%s", path);
        T_CHECK(manifest_array(m->w + 3, m->nw - 3, &want, NULL) == 0);
        if (s) {
            const struct sfc_tensor *t = sfc_safetensors_get(s, m->w[2]);
            T_CHECK_MSG(t && same_tensor(t, &want), "%s: %s differs", path,
                        m->w[2]);
        }
        sfc_tensor_release(&want);
    } else if (!strcmp(kind, "stsum")) {
        ncases++;
        const struct sfc_safetensors *s = st_cached(path);
        const struct sfc_tensor *t = s ? sfc_safetensors_get(s, m->w[2]) : NULL;
        T_CHECK_MSG(t != NULL, "%s: no tensor %s", path, m->w[2]);
        enum sfc_dtype dt;
        T_CHECK(dtype_from_name(m->w[3], &dt) == 0);
        int nd = atoi(m->w[4]);
        if (t) {
            int ok = t->dtype == dt && t->ndim == nd;
            for (int i = 0; ok && i < nd; i++)
                ok = t->shape[i] == atoll(m->w[5 + i]);
            T_CHECK_MSG(ok, "%s: %s dtype or shape differs", path, m->w[2]);
            double maxabs, got = sum_tensor(t, &maxabs);
            double ref = strtod(m->w[5 + nd], NULL);
            double tol = 1e-12 * (double)sfc_tensor_numel(t) * maxabs;
            T_CHECK_MSG(fabs(got - ref) <= tol, "%s: %s sum %.17g, want %.17g",
                        path, m->w[2], got, ref);
        }
    } else if (!strcmp(kind, "storder")) {
        const struct sfc_safetensors *s = st_cached(path);
        T_CHECK_MSG(s && s->n == m->nw - 2, "%s: tensor count", path);
        for (int i = 0; s && i < s->n && i < m->nw - 2; i++)
            T_CHECK_MSG(!strcmp(s->names[i], m->w[2 + i]),
                        "%s: tensor %d is %s, want %s", path, i, s->names[i],
                        m->w[2 + i]);
    } else if (!strcmp(kind, "stmeta")) {
        const struct sfc_safetensors *s = st_cached(path);
        size_t kn, vn;
        char *k = (char *)unhex(m->w[2], &kn), *v = (char *)unhex(m->w[3], &vn);
        k[kn] = v[vn] = '\0';
        const char *got = s ? sfc_safetensors_meta(s, k) : NULL;
        T_CHECK_MSG(got && !strcmp(got, v), "%s: metadata '%s'", path, k);
        free(k);
        free(v);
    } else if (!strcmp(kind, "stbytes")) {
        const struct sfc_safetensors *s = st_cached(path);
        T_CHECK_MSG(s && rewrite_same(s, path), "%s: rewrite differs", path);
    } else if (!strcmp(kind, "reject") && !strcmp(m->w[1], "st")) {
        ncases++;
        free(path);
        path = sfc_path_join(dir, m->w[2]);
        char *msg = join_words(m->w + 3, m->nw - 3);
        struct sfc_safetensors s;
        T_CHECK_MSG(sfc_safetensors_read(path, &s) == -1, "%s: accepted", path);
        T_CHECK(error_is(path, msg));
        T_CHECK(s.n == 0 && s.names == NULL && s.nmeta == 0);
        free(msg);
    }
    free(path);
}

static void check_manifest(const char *dir, const char *file)
{
    struct mline *ls = NULL;
    char *mf = sfc_path_join(dir, file);
    int n = manifest_read(mf, &ls);
    T_CHECK_MSG(n > 0, "cannot read %s", mf);
    for (int i = 0; i < n; i++)
        check_line(dir, &ls[i]);
    manifest_free(ls, n);
    free(mf);
    sfc_safetensors_release(&cache);
    free(cache_path);
    cache_path = NULL;
}

/* ------------------------------------------------------------------ */

static void check_json(void)
{
    struct sfc_json j;
    const char *doc =
        " {\"a\" : [1, -2, 3.5e1, true, false, null],"
        "\"s\":\"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\","
        "\"big\": 9223372036854775807, \"bigger\": 9223372036854775808,"
        "\"e\":{}, \"z\":[]} ";
    T_CHECK_MSG(sfc_json_parse("doc", doc, strlen(doc), &j) == 0, "%s",
                sfc_errmsg());
    T_CHECK(j.type == SFC_JSON_OBJECT && j.n == 6);
    const struct sfc_json *a = sfc_json_get(&j, "a"),
                          *s = sfc_json_get(&j, "s");
    T_CHECK(a && a->type == SFC_JSON_ARRAY && a->n == 6);
    if (a && a->n == 6) {
        T_CHECK(a->items[0].type == SFC_JSON_INT && a->items[0].i == 1);
        T_CHECK(a->items[1].type == SFC_JSON_INT && a->items[1].i == -2);
        T_CHECK(a->items[2].type == SFC_JSON_REAL && a->items[2].real == 35.0);
        T_CHECK(a->items[3].type == SFC_JSON_BOOL && a->items[3].boolean);
        T_CHECK(a->items[4].type == SFC_JSON_BOOL && !a->items[4].boolean);
        T_CHECK(a->items[5].type == SFC_JSON_NULL);
    }
    /* U+00E9 = C3 A9, U+1F600 (from the surrogate pair) = F0 9F 98 80. */
    const char *want = "q\"b\\s/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80";
    T_CHECK(s && s->type == SFC_JSON_STRING && s->len == strlen(want) &&
            !strcmp(s->str, want));
    T_CHECK(sfc_json_get(&j, "big")->type == SFC_JSON_INT &&
            sfc_json_get(&j, "big")->i == INT64_MAX);
    T_CHECK(sfc_json_get(&j, "bigger")->type == SFC_JSON_REAL);
    T_CHECK(sfc_json_get(&j, "e")->n == 0 && sfc_json_get(&j, "z")->n == 0);
    T_CHECK(sfc_json_get(&j, "nope") == NULL);
    sfc_json_release(&j);
    T_CHECK(j.type == SFC_JSON_NULL && j.items == NULL);

    static const char *const bad[] = {
        "",
        "{",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "01",
        "-",
        "1.",
        "1e",
        ".5",
        "+1",
        "\"abc",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\\u0000\"",
        "\"\x01\"",
        "\"\xff\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "tru",
        "nul",
        "[1] 2",
        "{\"a\":1}}",
        "'a'",
        "[1 2]",
    };
    for (size_t i = 0; i < SFC_ARRAY_LEN(bad); i++) {
        int rc = sfc_json_parse("bad", bad[i], strlen(bad[i]), &j);
        T_CHECK_MSG(rc == -1, "accepted bad JSON case %zu", i);
        T_CHECK(!strncmp(sfc_errmsg(), "bad: malformed JSON at byte ", 28));
        T_CHECK(j.type == SFC_JSON_NULL && j.n == 0);
    }
    /* Nesting depth is bounded (no stack overflow on hostile input). */
    char deep[4096];
    memset(deep, '[', sizeof deep);
    T_CHECK(sfc_json_parse("deep", deep, sizeof deep, &j) == -1);
    T_CHECK(strstr(sfc_errmsg(), "nesting too deep") != NULL);
    char ok64[130];
    memset(ok64, '[', 64);
    memset(ok64 + 64, ']', 64);
    T_CHECK(sfc_json_parse("ok", ok64, 128, &j) == 0);
    sfc_json_release(&j);
    /* The text need not be NUL-terminated: n bounds it. */
    T_CHECK(sfc_json_parse("n", "[1]xyz", 3, &j) == 0 && j.n == 1);
    sfc_json_release(&j);

    char *q = sfc_json_quote("a\"b\\c\n\x01\x1f\xc3\xa9/");
    T_CHECK(!strcmp(q, "\"a\\\"b\\\\c\\n\\u0001\\u001f\xc3\xa9/\""));
    free(q);
}

/* ------------------------------------------------------------------ */

static void fill(struct sfc_tensor *t, struct sfc_rng *r)
{
    for (int64_t i = 0; i < sfc_tensor_numel(t); i++) {
        if (t->dtype == SFC_F32)
            sfc_tensor_f(t)[i] = (float)sfc_rng_normal(r);
        else
            ((int64_t *)t->data)[i] = (int64_t)sfc_rng_u64(r);
    }
}

/* C writes; C reads back; the oracle reads with its own reader. */
static void check_writes(const char *dir, uint64_t seed)
{
    static const struct {
        const char *name;
        enum sfc_dtype dt;
        int ndim;
        int64_t shape[4];
    } spec[] = {
        {"conv1.weight", SFC_F32, 4, {4, 3, 3, 3}},
        {"bn1.num_batches_tracked", SFC_I64, 0, {0}},
        {"bn1.weight", SFC_F32, 1, {4}},
        {"layer1.0.downsample.0.weight", SFC_F32, 4, {8, 4, 1, 1}},
        {"empty", SFC_F32, 2, {0, 5}},
        {"fc.bias", SFC_F32, 1, {3}},
        {"ids", SFC_I64, 2, {2, 3}},
        {"caf\xc3\xa9\"q\\", SFC_F32, 1, {2}},
    };
    enum { NT = SFC_ARRAY_LEN(spec) };
    struct sfc_tensor ts[NT];
    const struct sfc_tensor *tp[NT];
    const char *names[NT];
    const char *mk[] = {"step", "note", "\xe4\xb8\xad"};
    const char *mv[] = {"12", "tab\tnl\nquote\"bs\\\x01", ""};
    struct sfc_rng r;
    sfc_rng_seed(&r, seed);
    for (int i = 0; i < NT; i++) {
        T_CHECK(sfc_tensor_init(&ts[i], spec[i].dt, spec[i].ndim,
                                spec[i].shape) == 0);
        fill(&ts[i], &r);
        tp[i] = &ts[i];
        names[i] = spec[i].name;
    }
    char *p = sfc_path_join(dir, "w.safetensors");
    T_CHECK_MSG(sfc_safetensors_write(p, NT, names, tp, 3, mk, mv) == 0, "%s",
                sfc_errmsg());
    struct sfc_safetensors s;
    T_CHECK_MSG(sfc_safetensors_read(p, &s) == 0, "%s", sfc_errmsg());
    T_CHECK(s.n == NT && s.nmeta == 3);
    for (int i = 0; i < s.n && i < NT; i++) {
        T_CHECK(!strcmp(s.names[i], names[i])); /* data in given order */
        T_CHECK(same_tensor(&s.tensors[i], tp[i]));
        T_CHECK(((uintptr_t)s.tensors[i].data & 63) == 0);
    }
    for (int i = 0; i < 3; i++) {
        const char *v = sfc_safetensors_meta(&s, mk[i]);
        T_CHECK(v && !strcmp(v, mv[i]));
    }
    T_CHECK(sfc_safetensors_meta(&s, "nope") == NULL);
    T_CHECK(sfc_safetensors_get(&s, "nope") == NULL);
    /* Reading then writing reproduces the file. */
    T_CHECK(rewrite_same(&s, p));
    sfc_safetensors_release(&s);
    /* Header size is a multiple of 8, data follows at once. */
    size_t n;
    unsigned char *b = (unsigned char *)sfc_read_file(p, &n);
    T_CHECK(b && n > 8 && b[0] % 8 == 0 && b[8] == '{');
    free(b);

    char *vp = sfc_path_join(dir, "verify.txt");
    FILE *vf = fopen(vp, "w");
    T_CHECK(vf != NULL);
    if (vf) {
        fprintf(vf, "storder w.safetensors");
        for (int i = 0; i < NT; i++)
            fprintf(vf, " %s", names[i]);
        fprintf(vf, "\n");
        for (int i = 0; i < NT; i++) {
            fprintf(vf, "st w.safetensors %s ", names[i]);
            print_array(vf, tp[i], 1);
            fputc('\n', vf);
        }
        for (int i = 0; i < 3; i++) {
            char *kh = tohex(mk[i], strlen(mk[i]));
            char *vh = tohex(mv[i], strlen(mv[i]));
            fprintf(vf, "stmeta w.safetensors %s %s\n", kh, vh);
            free(kh);
            free(vh);
        }
        T_CHECK(fclose(vf) == 0);
    }
    free(vp);
    free(p);
    for (int i = 0; i < NT; i++)
        sfc_tensor_release(&ts[i]);
}

static void check_write_failures(void)
{
    char *dir = test_tmpdir("stfail");
    char *p = sfc_path_join(dir, "x.safetensors");
    struct sfc_tensor f, u;
    T_CHECK(sfc_tensor_f32(&f, 2, 2) == 0);
    T_CHECK(sfc_tensor_init(&u, SFC_U8, 1, (int64_t[]){3}) == 0);
    const struct sfc_tensor *both[2] = {&f, &u};
    const char *nm[2] = {"w", "mask"};
    T_CHECK(sfc_safetensors_write(p, 2, nm, both, 0, NULL, NULL) == -1);
    T_CHECK(error_is(p, "tensor 'mask': cannot write dtype uint8"));
    const char *dup[2] = {"w", "w"};
    both[1] = &f;
    T_CHECK(sfc_safetensors_write(p, 2, dup, both, 0, NULL, NULL) == -1);
    T_CHECK(error_is(p, "duplicate tensor name 'w'"));
    const char *meta[1] = {"__metadata__"};
    T_CHECK(sfc_safetensors_write(p, 1, meta, both, 0, NULL, NULL) == -1);
    T_CHECK(error_is(p, "is not a tensor name"));
    const char *mk[2] = {"a", "a"}, *mv[2] = {"1", "2"};
    T_CHECK(sfc_safetensors_write(p, 1, nm, both, 2, mk, mv) == -1);
    T_CHECK(error_is(p, "duplicate metadata key 'a'"));
    T_CHECK(count_entries(dir) == 0);
    char *nodir = sfc_path_join(dir, "no/x.safetensors");
    T_CHECK(sfc_safetensors_write(nodir, 1, nm, both, 0, NULL, NULL) == -1);
    T_CHECK(error_is(nodir, "cannot create temporary file"));
    free(nodir);
    /* An existing checkpoint survives a failed overwrite. */
    T_CHECK(sfc_safetensors_write(p, 1, nm, both, 0, NULL, NULL) == 0);
    both[1] = &u;
    T_CHECK(sfc_safetensors_write(p, 2, nm, both, 0, NULL, NULL) == -1);
    struct sfc_safetensors s;
    T_CHECK(sfc_safetensors_read(p, &s) == 0 && s.n == 1);
    sfc_safetensors_release(&s);
    T_CHECK(count_entries(dir) == 1);
    char *missing = sfc_path_join(dir, "missing.safetensors");
    T_CHECK(sfc_safetensors_read(missing, &s) == -1 &&
            error_is(missing, "cannot open"));
    T_CHECK(sfc_safetensors_read(dir, &s) == -1 &&
            error_is(dir, "not a regular file"));
    free(missing);
    sfc_tensor_release(&f);
    sfc_tensor_release(&u);
    free(p);
    rm_rf(dir);
    free(dir);
}

/* Truncations (every length in the header, then every 7th) are all
 * rejected; random byte changes never crash and any
 * error names the file. */
static void check_corruptions(void)
{
    char *src = sfc_path_join(GOLDEN_FORMATS, "tiny-hf.safetensors");
    char *p = sfc_path_join(scratch, "c.safetensors");
    size_t n;
    unsigned char *b = (unsigned char *)sfc_read_file(src, &n);
    T_CHECK(b != NULL);
    int accepted = 0, unnamed = 0;
    struct sfc_rng r;
    sfc_rng_seed(&r, 5);
    for (size_t cut = 0; b && cut < n; cut += cut < 160 ? 1 : 7) {
        FILE *fp = fopen(p, "wb");
        T_CHECK(fp && fwrite(b, 1, cut, fp) == cut && fclose(fp) == 0);
        struct sfc_safetensors s;
        int rc = sfc_safetensors_read(p, &s);
        accepted += rc == 0;
        unnamed += rc == -1 && strncmp(sfc_errmsg(), p, strlen(p));
        sfc_safetensors_release(&s);
    }
    T_CHECK_MSG(accepted == 0, "%d truncations accepted", accepted);
    for (int k = 0; b && k < 600; k++) {
        size_t at = (size_t)sfc_rng_below(&r, n);
        unsigned char old = b[at];
        b[at] = (unsigned char)sfc_rng_u64(&r);
        FILE *fp = fopen(p, "wb");
        T_CHECK(fp && fwrite(b, 1, n, fp) == n && fclose(fp) == 0);
        b[at] = old;
        struct sfc_safetensors s;
        int rc = sfc_safetensors_read(p, &s);
        unnamed += rc == -1 && strncmp(sfc_errmsg(), p, strlen(p));
        sfc_safetensors_release(&s);
    }
    T_CHECK_MSG(unnamed == 0, "%d errors do not name the file", unnamed);
    unlink(p);
    free(p);
    free(b);
    free(src);
}

int main(void)
{
    sfc_proginit("test-safetensors");
    scratch = test_tmpdir("st");
    check_json();
    check_manifest(GOLDEN_FORMATS, "manifest.txt");
    T_CHECK_MSG(ncases > 50, "only %d golden cases", ncases);
    check_write_failures();
    check_corruptions();

    char *dir = test_tmpdir("st-w");
    check_writes(dir, 11);
    rm_rf(dir);
    free(dir);

    if (test_oracle()) {
        unsigned seed = test_fresh_seed("ref_formats.py");
        dir = test_tmpdir("st-oracle");
        char *args =
            sfc_xasprintf("--out '%s' --torch '%s' --seed %u", dir, dir, seed);
        T_CHECK(run_oracle(args) == 0);
        free(args);
        ncases = 0;
        check_manifest(dir, "manifest.txt");
        T_CHECK(ncases > 50);
        ncases = 0;
        check_manifest(dir, "manifest-torch.txt");
        T_CHECK_MSG(ncases == 122,
                    "resnet18 has 122 state_dict entries, "
                    "checked %d",
                    ncases);

        /* Rewrite the resnet in state_dict order (the manifest's order)
         * with a step in the metadata; torchvision must load it. */
        struct mline *ls = NULL;
        char *mf = sfc_path_join(dir, "manifest-torch.txt");
        int nl = manifest_read(mf, &ls);
        char *in = sfc_path_join(dir, "resnet18.safetensors");
        struct sfc_safetensors s;
        T_CHECK(sfc_safetensors_read(in, &s) == 0);
        const char **names = sfc_xcalloc((size_t)nl + 1, sizeof *names);
        const struct sfc_tensor **tp = sfc_xcalloc((size_t)nl + 1, sizeof *tp);
        int nt = 0;
        for (int i = 0; i < nl; i++)
            if (!strcmp(ls[i].w[0], "stsum")) {
                names[nt] = ls[i].w[2];
                tp[nt] = sfc_safetensors_get(&s, ls[i].w[2]);
                T_CHECK(tp[nt] != NULL);
                if (tp[nt]) nt++;
            }
        char *outp = sfc_path_join(dir, "resnet18-c.safetensors");
        char step[32];
        snprintf(step, sizeof step, "%u", seed % 1000);
        const char *mk[2] = {"format", "step"}, *mv[2] = {"pt", step};
        T_CHECK(sfc_safetensors_write(outp, nt, names, tp, 2, mk, mv) == 0);
        check_writes(dir, seed);
        char *vp = sfc_path_join(dir, "verify.txt");
        FILE *vf = fopen(vp, "a");
        T_CHECK(vf != NULL);
        if (vf) {
            fprintf(vf, "resnet resnet18-c.safetensors %u %s\n", seed, step);
            fclose(vf);
        }
        args = sfc_xasprintf("--verify '%s'", dir);
        T_CHECK_MSG(run_oracle(args) == 0, "the oracle rejects our files");
        free(args);
        free(vp);
        free(outp);
        free(names);
        free(tp);
        free(in);
        free(mf);
        manifest_free(ls, nl);
        sfc_safetensors_release(&s);
        rm_rf(dir);
        free(dir);
    }
    rm_rf(scratch);
    free(scratch);
    return test_summary();
}
