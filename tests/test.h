/* SPDX-License-Identifier: MIT */
/* test.h: checks for the C test programs. The verdict is the exit status:
 * every test-*.c ends with `return test_summary();`, which prints the
 * counts and returns 1 if any check failed.
 *
 * test_close() compares float arrays element-wise with |a - b| <= atol +
 * rtol*|ref| and on failure prints the name, the first five pairs, the max
 * abs diff, the worst index and the count over tolerance. Each checker is
 * shown to fail in test-core.c (checker self-test). */
#ifndef SFC_TEST_H
#define SFC_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int test_checks_, test_failed_;

#define T_CHECK(cond)                                                        \
    test_check_((cond), __FILE__, __LINE__, #cond)
#define T_CHECK_MSG(cond, ...)                                               \
    do {                                                                     \
        if (!test_check_((cond), __FILE__, __LINE__, #cond)) {               \
            fprintf(stderr, "    ");                                         \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                           \
        }                                                                    \
    } while (0)

static inline int test_check_(int ok, const char *file, int line,
                              const char *expr)
{
    test_checks_++;
    if (!ok) {
        test_failed_++;
        fprintf(stderr, "FAIL %s:%d: %s\n", file, line, expr);
    }
    return ok;
}

/* Compare n floats; returns 1 if all within tolerance. quiet suppresses
 * the report (for the checker self-test). */
static inline int test_close_q(const char *name, const float *got,
                               const float *ref, int64_t n, double atol,
                               double rtol, int quiet)
{
    int64_t bad = 0, worst = -1;
    double maxdiff = 0, worst_excess = -1;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        double tol = atol + rtol * fabs((double)ref[i]);
        if (!(d <= tol)) { /* also catches NaN */
            bad++;
            double ex = isnan(d) ? INFINITY : d - tol;
            if (ex > worst_excess) worst_excess = ex, worst = i;
        }
        if (d > maxdiff || isnan(d)) maxdiff = isnan(d) ? NAN : d;
    }
    if (bad && !quiet) {
        fprintf(stderr, "  %s: %lld of %lld over tolerance (atol %g, rtol %g),"
                " max abs diff %g, worst at [%lld]: got %.9g want %.9g\n",
                name, (long long)bad, (long long)n, atol, rtol, maxdiff,
                (long long)worst, got[worst], ref[worst]);
        fprintf(stderr, "    first pairs:");
        for (int64_t i = 0; i < n && i < 5; i++)
            fprintf(stderr, " (%.7g, %.7g)", got[i], ref[i]);
        fprintf(stderr, "\n");
    }
    return bad == 0;
}

#define test_close(name, got, ref, n, atol, rtol)                            \
    test_check_(test_close_q((name), (got), (ref), (n), (atol), (rtol), 0),  \
                __FILE__, __LINE__, name)

/* Max |a-b| / max(|ref|, floor): the "relative error" of the issue bars. */
static inline double test_max_rel(const float *got, const float *ref,
                                  int64_t n, double floor)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double den = fmax(fabs((double)ref[i]), floor);
        double r = fabs((double)got[i] - (double)ref[i]) / den;
        if (r > m || isnan(r)) m = isnan(r) ? INFINITY : r;
    }
    return m;
}

/* The oracle interpreter (Debian's python3 with torch + numpy), or NULL
 * when SFC_ORACLE is unset or empty (tests then use tests/golden/ only). */
static inline const char *test_oracle(void)
{
    const char *o = getenv("SFC_ORACLE");
    return (o && *o) ? o : NULL;
}

/* A fresh empty directory under $TMPDIR for one test; caller frees. */
static inline char *test_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/sfc-%s-XXXXXX", base ? base : "/tmp",
             tag);
    char *d = mkdtemp(tmpl);
    if (!d) {
        perror("mkdtemp");
        exit(1);
    }
    char *r = malloc(strlen(d) + 1);
    strcpy(r, d);
    return r;
}

/* The fresh seeds this program drew (test_fresh_seed), named again by
 * test_summary() when a check failed, so that a failure can be replayed. */
#define TEST_MAX_SEEDS 16
static struct {
    char what[32];
    unsigned seed;
} test_seeds_[TEST_MAX_SEEDS];
static int test_nseeds_;

/* A fresh seed in [0, 1000000) for `what` (an oracle's cases, a fuzz
 * run): time and pid, or $SFC_TEST_SEED when set, which replays a failed
 * run. It is printed now and, if any check fails, again at the end. */
static inline unsigned test_fresh_seed(const char *what)
{
    const char *se = getenv("SFC_TEST_SEED");
    unsigned seed =
        se && *se ? (unsigned)strtoul(se, NULL, 10)
                  : (unsigned)(((unsigned long)time(NULL) ^
                                ((unsigned long)getpid() << 8)) % 1000000);
    if (test_nseeds_ < TEST_MAX_SEEDS) {
        snprintf(test_seeds_[test_nseeds_].what,
                 sizeof test_seeds_[0].what, "%s", what);
        test_seeds_[test_nseeds_++].seed = seed;
    }
    fprintf(stderr, "fresh seed %u (%s)%s\n", seed, what,
            se && *se ? ", from SFC_TEST_SEED" : "");
    return seed;
}

/* Run check(dir) on tests/golden/<tag>, then, when the oracle is
 * installed, on a fresh case written by `tests/ref/<script> --out DIR
 * --seed S` with a fresh seed (test_fresh_seed); the directory is removed
 * afterwards. */
static inline void test_with_oracle(const char *script, const char *tag,
                                    void (*check)(const char *dir))
{
    char golden[256], cmd[1024];
    snprintf(golden, sizeof golden, "tests/golden/%s", tag);
    check(golden);
    if (!test_oracle()) return;
    char *tmp = test_tmpdir(tag);
    unsigned seed = test_fresh_seed(script);
    snprintf(cmd, sizeof cmd, "%s tests/ref/%s --out %s --seed %u",
             test_oracle(), script, tmp, seed);
    fprintf(stderr, "oracle: %s\n", cmd);
    if (test_check_(system(cmd) == 0, __FILE__, __LINE__, cmd)) check(tmp);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    test_check_(system(cmd) == 0, __FILE__, __LINE__, cmd);
    free(tmp);
}

static inline int test_summary(void)
{
    for (int i = 0; test_failed_ && i < test_nseeds_; i++)
        fprintf(stderr, "fresh seed %u (%s): replay with SFC_TEST_SEED=%u\n",
                test_seeds_[i].seed, test_seeds_[i].what, test_seeds_[i].seed);
    fprintf(stderr, "%d checks, %d failed\n", test_checks_, test_failed_);
    return test_failed_ ? 1 : 0;
}

#endif
