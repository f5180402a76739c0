/* SPDX-License-Identifier: MIT */
/* progress.h: progress of long work on stderr. On a terminal, a bar
 * redrawn in place (at most 10 times a second); otherwise one line every
 * `interval` seconds and one at the end, so logs stay readable.
 * SFC_PROGRESS=lines in the environment asks for the lines on a terminal
 * too (several processes sharing one, as under make -j). */
#ifndef SFC_PROGRESS_H
#define SFC_PROGRESS_H

struct sfc_progress {
    const char *what; /* "cam", "train step", ... */
    long total, done;
    double t0, last, interval;
    int tty, quiet;
};

void sfc_progress_start(struct sfc_progress *p, const char *what, long total,
                        int quiet);
/* Set the count of finished items; prints when due. */
void sfc_progress_update(struct sfc_progress *p, long done);
/* Final line (count, elapsed seconds, rate). */
void sfc_progress_end(struct sfc_progress *p);

#endif
