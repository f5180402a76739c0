/* SPDX-License-Identifier: MIT */
/* test-sample.c: DC coefficients against the table of sfc-reference.md
 * §2.5 (VOC train_aug counts of §1.2, N_ibr = 396), and the IBR schedule
 * against a brute-force re-simulation of the bank (scan back for the
 * latest batch image holding each class), plus its invariants. */
#include "sample.h"
#include "sfc.h"
#include "test.h"

static void test_dc_voc(void)
{
    /* §1.2: image counts of train_aug by class index 0..19 */
    const int64_t N[20] = {590, 504, 705, 468, 714, 393, 1150, 1005, 1228,
                           267, 613, 1188, 445, 492, 4155, 522, 300, 649,
                           503, 567};
    /* §2.5 table, same class order */
    const double want[20] = {0.8065, 0.9025, 0.7726, 0.9809, 0.7732, 1.2084,
                             0.8725, 0.8318, 0.9068, 1.7694, 0.7929, 0.8870,
                             1.0424, 0.9259, 1.5451, 0.8765, 1.5955, 0.7801,
                             0.9042, 0.8257};
    double n_ibr = sfc_dc_n_ibr(660 * 3, 4, 20);
    T_CHECK(fabs(n_ibr - 396.0) < 1e-12);
    double dc[20];
    T_CHECK(sfc_dc_compute(20, N, n_ibr, dc) == 0);
    for (int c = 0; c < 20; c++)
        T_CHECK_MSG(fabs(round(dc[c] * 1e4) / 1e4 - want[c]) < 1e-9,
                    "class %d: DC %.6f, table %.4f", c, dc[c], want[c]);
    double mean = 0;
    for (int c = 0; c < 20; c++) mean += dc[c];
    T_CHECK(fabs(mean / 20 - 1) < 1e-12);
    /* equal counts leave DC undefined: an error, not a division by 0 */
    int64_t same[3] = {5, 5, 5};
    T_CHECK(sfc_dc_compute(3, same, 0, dc) == -1);
}

static int sched_equal(const struct sfc_schedule *a,
                       const struct sfc_schedule *b)
{
    return a->steps == b->steps && a->slots == b->slots &&
           !memcmp(a->slot, b->slot, sizeof *a->slot * a->steps * a->slots) &&
           !memcmp(a->bank, b->bank, sizeof *a->bank * a->steps * a->C);
}

static void test_schedule(enum sfc_aug_style style)
{
    enum { NIMG = 53, C = 7 };
    int h[NIMG], w[NIMG];
    uint8_t lab[NIMG * C] = {0};
    struct sfc_rng r;
    sfc_rng_seed(&r, 99);
    for (int i = 0; i < NIMG; i++) {
        h[i] = 20 + (int)sfc_rng_below(&r, 60);
        w[i] = 20 + (int)sfc_rng_below(&r, 60);
        int nl = 1 + (int)sfc_rng_below(&r, 3);
        /* a long tail: class c with probability ~ 1/(c+1) */
        for (int k = 0; k < nl; k++) {
            int c = (int)sfc_rng_below(&r, C);
            if (sfc_rng_below(&r, (uint64_t)c + 1) == 0) lab[i * C + c] = 1;
        }
    }
    struct sfc_sched_params p = {NIMG, h, w, C, lab, 3, 8, 4, 48, style,
                                 32, 64, 7};
    struct sfc_schedule s, s2, s3;
    T_CHECK(sfc_schedule_build(&p, &s) == 0);
    T_CHECK(s.steps == 3 * (NIMG / 8) && s.slots == 12);
    T_CHECK(sfc_schedule_build(&p, &s2) == 0);
    T_CHECK(sched_equal(&s, &s2)); /* deterministic */
    p.seed = 8;
    T_CHECK(sfc_schedule_build(&p, &s3) == 0);
    T_CHECK(!sched_equal(&s, &s3));

    int ok_epoch = 1, ok_bank = 1, ok_draw = 1, ok_geom = 1;
    int draws_per_class[C] = {0}, flips = 0, ndraws = 0;
    for (int e = 0; e < 3; e++) { /* each epoch: distinct images */
        int seen[NIMG] = {0};
        for (int st = e * s.steps_per_epoch; st < (e + 1) * s.steps_per_epoch;
             st++)
            for (int j = 0; j < 8; j++)
                if (seen[s.slot[st * s.slots + j].image]++) ok_epoch = 0;
    }
    for (long st = 0; st < s.steps; st++) {
        const struct sfc_slot *sl = s.slot + st * s.slots;
        for (int c = 0; c < C; c++) {
            /* brute force: scan back for the latest batch slot with c */
            int want_img = -1;
            long want_step = -1;
            struct sfc_aug want_aug;
            memset(&want_aug, 0, sizeof want_aug);
            for (long t = st; t >= 0 && want_img < 0; t--)
                for (int j = 7; j >= 0; j--) {
                    const struct sfc_slot *x = &s.slot[t * s.slots + j];
                    if (lab[x->image * C + c]) {
                        want_img = x->image;
                        want_step = t;
                        want_aug = x->aug;
                        break;
                    }
                }
            const struct sfc_bank_entry *b = &s.bank[st * C + c];
            if (b->image != want_img || (want_img >= 0 &&
                (b->since_step != want_step ||
                 memcmp(&b->aug, &want_aug, sizeof want_aug))))
                ok_bank = 0;
        }
        for (int j = 0; j < s.slots; j++) {
            const struct sfc_slot *x = &sl[j];
            if (j >= 8) {
                const struct sfc_bank_entry *b =
                    &s.bank[st * C + x->bank_class];
                if (x->image != b->image ||
                    (b->image >= 0 && memcmp(&x->aug, &b->aug, sizeof b->aug)))
                    ok_draw = 0;
                draws_per_class[x->bank_class]++;
                ndraws++;
            } else if (x->bank_class != -1) {
                ok_draw = 0;
            }
            if (x->image < 0) continue;
            const struct sfc_aug *a = &x->aug;
            int H = h[x->image], W = w[x->image];
            if (style == SFC_AUG_SFC) {
                if (a->h != H || a->w != W || a->flip || a->scale != 1.0)
                    ok_geom = 0;
            } else {
                int lng = SFC_MAX(a->h, a->w);
                if (lng < 32 || lng > 64 ||
                    fabs(a->scale * SFC_MAX(H, W) - lng) > 1e-9)
                    ok_geom = 0;
                flips += a->flip;
            }
            if (a->ch != SFC_MIN(a->h, 48) || a->cw != SFC_MIN(a->w, 48) ||
                a->cont_top + a->ch > 48 || a->cont_left + a->cw > 48 ||
                a->img_top + a->ch > a->h || a->img_left + a->cw > a->w ||
                a->cont_top < 0 || a->img_top < 0 || a->cont_left < 0 ||
                a->img_left < 0 || (a->cont_top && a->img_top) ||
                (a->cont_left && a->img_left))
                ok_geom = 0;
        }
    }
    T_CHECK(ok_epoch);
    T_CHECK(ok_bank);
    T_CHECK(ok_draw);
    T_CHECK(ok_geom);
    for (int c = 0; c < C; c++) T_CHECK(draws_per_class[c] > 0);
    if (style == SFC_AUG_IRN)
        T_CHECK(flips > 0 && flips < ndraws + 8 * s.steps);
    sfc_schedule_release(&s);
    sfc_schedule_release(&s2);
    sfc_schedule_release(&s3);
}

static void test_draw_uniform(void)
{
    /* draws are uniform over classes: chi-square over many steps */
    enum { NIMG = 40, C = 5 };
    int h[NIMG], w[NIMG];
    uint8_t lab[NIMG * C] = {0};
    for (int i = 0; i < NIMG; i++) {
        h[i] = w[i] = 10;
        lab[i * C + i % C] = 1;
    }
    struct sfc_sched_params p = {NIMG, h, w, C, lab, 500, 4, 4, 16,
                                 SFC_AUG_SFC, 0, 0, 1};
    struct sfc_schedule s;
    T_CHECK(sfc_schedule_build(&p, &s) == 0);
    double cnt[C] = {0}, n = 0;
    for (long st = 0; st < s.steps; st++)
        for (int d = 4; d < 8; d++) cnt[s.slot[st * 8 + d].bank_class]++, n++;
    double chi = 0;
    for (int c = 0; c < C; c++)
        chi += (cnt[c] - n / C) * (cnt[c] - n / C) / (n / C);
    T_CHECK_MSG(chi < 18.5, "chi-square %g (4 dof, p=1e-3 at 18.47)", chi);
    sfc_schedule_release(&s);
    p.batch = 41;
    T_CHECK(sfc_schedule_build(&p, &s) == -1);
}

int main(int argc, char **argv)
{
    (void)argc;
    sfc_proginit(argv[0]);
    test_dc_voc();
    test_schedule(SFC_AUG_SFC);
    test_schedule(SFC_AUG_IRN);
    test_draw_uniform();
    return test_summary();
}
