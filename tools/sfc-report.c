/* SPDX-License-Identifier: MIT */
/* sfc-report: one self-contained HTML page about one or more runs, drawn
 * from their dbs and folders (lib/report.h says what it shows). */
#include "report.h"
#include "sfc.h"

static const char *const usage_lines[] = {
    "sfc-report [options] -o FILE RUN_DIR [RUN_DIR...]", NULL};

int main(int argc, char **argv)
{
    sfc_proginit(argv[0]);
    struct sfc_report_opts o = {.gnuplot = "gnuplot",
                                .db = NULL,
                                .examples = 2,
                                .tile = 160,
                                .alpha = 0.5,
                                .quiet = 0};
    const char *out = NULL;
    const struct sfc_opt opts[] = {
        {"out", 'o', SFC_OPT_STRING, &out, "FILE",
         "the page to write (required)", 0, 0, NULL},
        SFC_OPT_STRING_("db", &o.db, "FILE",
                        "db of every run (default: RUN_DIR/sfc.db, else "
                        "its parent's)"),
        SFC_OPT_INT_("examples", &o.examples, "N", 0, 100,
                     "example images of each kind (head, tail, best, "
                     "worst, gain, loss)"),
        SFC_OPT_INT_("tile", &o.tile, "PX", 16, 4096,
                     "longest side of an example tile"),
        SFC_OPT_DOUBLE_("alpha", &o.alpha, "X", 0, 1,
                        "weight of the heat colours over the image"),
        SFC_OPT_STRING_("gnuplot", &o.gnuplot, "PROG",
                        "program that draws the figures"),
        SFC_OPT_FLAG_("quiet", 'q', &o.quiet, "no summary on stderr"),
        SFC_OPT_END_,
    };
    const struct sfc_cli cli = {
        usage_lines,
        "Writes one HTML page (figures and images inlined; opens offline) "
        "with the run record, training curves, the image bank, per-class "
        "evaluation and example images of each RUN_DIR, side by side, and "
        "per-class IoU differences against the first run. A folder whose "
        "db trained several methods in sub-folders (runs/toy) stands for "
        "each of them.",
        opts};
    int npos = sfc_cli_parse(&cli, argc, argv);
    if (!out) sfc_cli_die("-o/--out is required");
    if (npos < 1) sfc_cli_die("give at least one RUN_DIR");
    if (sfc_report_write(out, npos, argv, &o)) sfc_die_errmsg();
    return sfc_fshut(stdout, "<stdout>");
}
