/* SPDX-License-Identifier: MIT */
/* progress.c: see progress.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "progress.h"
#include "util.h"

void sfc_progress_start(struct sfc_progress *p, const char *what, long total,
                        int quiet)
{
    p->what = what;
    p->total = total;
    p->done = 0;
    p->t0 = p->last = sfc_now();
    const char *how = getenv("SFC_PROGRESS");
    p->tty = isatty(2) && !(how && !strcmp(how, "lines"));
    p->interval = p->tty ? 0.1 : 10.0;
    p->quiet = quiet;
}

static void draw(struct sfc_progress *p, double now, int final)
{
    double el = now - p->t0;
    double rate = el > 0 ? (double)p->done / el : 0;
    double eta = rate > 0 ? (double)(p->total - p->done) / rate : 0;
    if (p->tty && !final) {
        int width = 30, fill = p->total > 0
                                   ? (int)(width * p->done / p->total) : 0;
        char bar[64];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r%s: %s: [%s] %ld/%ld %.1f/s eta %.0fs ",
                sfc_progname(), p->what, bar, p->done, p->total, rate, eta);
    } else {
        fprintf(stderr, "%s%s: %s: %ld/%ld done, %.1fs elapsed, %.2f/s%s\n",
                p->tty ? "\r" : "", sfc_progname(), p->what, p->done,
                p->total, el, rate, final ? "" : "");
    }
    fflush(stderr);
}

void sfc_progress_update(struct sfc_progress *p, long done)
{
    p->done = done;
    if (p->quiet) return;
    double now = sfc_now();
    if (now - p->last < p->interval) return;
    p->last = now;
    draw(p, now, 0);
}

void sfc_progress_end(struct sfc_progress *p)
{
    if (p->quiet) return;
    draw(p, sfc_now(), 1);
}
