/* SPDX-License-Identifier: MIT */
/* plot.h: figures drawn by gnuplot. A plot session owns a fresh temporary
 * folder; callers write data files into it and hand gnuplot a script that
 * reads them; each figure comes back as the bytes of an SVG document. The
 * folder and everything in it are removed by sfc_plot_release.
 *
 * Scripts run with the folder as gnuplot's working directory (a `cd` is
 * put in front), after a terminal line that fixes the SVG size, the font
 * and a white background, with enhanced text off, so data file names
 * need no path and labels print as written. */
#ifndef SFC_PLOT_H
#define SFC_PLOT_H

#include <stddef.h>
#include <stdio.h>

struct sfc_plot {
    char *dir;           /* the temporary folder */
    const char *gnuplot; /* program name or path */
    int nfiles;
    char **files;        /* names created in dir, removed on release */
};

/* Create the folder (under $TMPDIR, else /tmp). gnuplot is the program
 * run by sfc_plot_render (looked up in PATH when it has no '/'). */
int sfc_plot_init(struct sfc_plot *p, const char *gnuplot);
/* Remove the files and the folder; accepts a zeroed struct. */
void sfc_plot_release(struct sfc_plot *p);

/* Open a new file name (a plain name: letters, digits, '.', '-', '_') in
 * the folder for writing; the caller fcloses it. NULL on error. */
FILE *sfc_plot_file(struct sfc_plot *p, const char *name);

/* Run the script as figure `name` (a plain name) of w x h pixels and
 * return the SVG it drew in a malloc'd buffer (*svg_out, *n_out). Errors:
 * gnuplot missing or failing ("gnuplot failed on 'name.gp': <its first
 * error line>"), no output. */
int sfc_plot_render(struct sfc_plot *p, const char *name, int w, int h,
                    const char *script, char **svg_out, size_t *n_out);

/* s as a gnuplot double-quoted string literal (with the quotes) in a
 * fresh heap string. */
char *sfc_plot_quote(const char *s);

#endif
