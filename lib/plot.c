/* SPDX-License-Identifier: MIT */
/* plot.c: the gnuplot driver of sfc-report (see plot.h). Figures come from
 * gnuplot's svg terminal; nothing here draws. gnuplot runs as a child
 * process (posix_spawnp) with its output and errors in a log file of the
 * session folder, so a failure can be reported in one line. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "plot.h"
#include "util.h"

extern char **environ;

int sfc_plot_init(struct sfc_plot *p, const char *gnuplot)
{
    memset(p, 0, sizeof *p);
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    char *dir = sfc_xasprintf("%s/sfc-report-XXXXXX", tmp);
    if (strchr(dir, '\'') || strchr(dir, '"')) {
        sfc_error(tmp, "temporary folder name has a quote");
        free(dir);
        return -1;
    }
    if (!mkdtemp(dir)) {
        sfc_error(dir, "cannot create folder:");
        free(dir);
        return -1;
    }
    p->dir = dir;
    p->gnuplot = gnuplot;
    return 0;
}

void sfc_plot_release(struct sfc_plot *p)
{
    for (int i = 0; i < p->nfiles; i++) {
        char *path = sfc_path_join(p->dir, p->files[i]);
        unlink(path);
        free(path);
        free(p->files[i]);
    }
    free(p->files);
    if (p->dir) rmdir(p->dir);
    free(p->dir);
    memset(p, 0, sizeof *p);
}

static int plain_name(const char *name)
{
    if (!*name) return 0;
    for (const char *s = name; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' ||
              *s == '_'))
            return 0;
    return 1;
}

FILE *sfc_plot_file(struct sfc_plot *p, const char *name)
{
    if (!plain_name(name)) {
        sfc_error(name, "not a plain file name");
        return NULL;
    }
    for (int i = 0; i < p->nfiles; i++)
        if (!strcmp(p->files[i], name)) {
            sfc_error(name, "plot file written twice");
            return NULL;
        }
    char *path = sfc_path_join(p->dir, name);
    FILE *fp = fopen(path, "w");
    if (!fp) sfc_error(path, "cannot create:");
    free(path);
    if (!fp) return NULL;
    p->files = sfc_xrealloc(p->files, (p->nfiles + 1) * sizeof *p->files);
    p->files[p->nfiles++] = sfc_xstrdup(name);
    return fp;
}

char *sfc_plot_quote(const char *s)
{
    size_t n = strlen(s);
    char *q = sfc_xmalloc(2 * n + 3), *o = q;
    *o++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') *o++ = '\\';
        *o++ = (*s == '\n' || *s == '\r') ? ' ' : *s;
    }
    *o++ = '"';
    *o = '\0';
    return q;
}

/* The line of the log that names the error (gnuplot prints the script
 * line, a caret line, then '"file" line N: message'), else its first
 * non-empty line. */
static void first_error_line(const char *log, char *line, size_t n)
{
    size_t size = 0;
    char *text = sfc_read_file(log, &size);
    line[0] = '\0';
    if (!text) return;
    const char *best = NULL;
    for (char *s = strtok(text, "\n"); s; s = strtok(NULL, "\n")) {
        if (!best && strspn(s, " ^\t") < strlen(s)) best = s;
        if (strstr(s, " line ") || strstr(s, "rror")) {
            best = s;
            break;
        }
    }
    if (best) snprintf(line, n, "%s", best);
    free(text);
}

int sfc_plot_render(struct sfc_plot *p, const char *name, int w, int h,
                    const char *script, char **svg_out, size_t *n_out)
{
    char *gp = sfc_xasprintf("%s.gp", name);
    char *svg = sfc_xasprintf("%s.svg", name);
    char *logname = sfc_xasprintf("%s.log", name);
    char *gp_path = NULL, *log_path = NULL, *svg_path = NULL;
    int rc = -1;
    FILE *fp = sfc_plot_file(p, gp);
    if (!fp) goto out;
    fprintf(fp,
            "cd '%s'\n"
            "set terminal svg size %d,%d font 'sans,11' background "
            "'#ffffff' noenhanced\n"
            "set output '%s'\n"
            "%s\n"
            "set output\n",
            p->dir, w, h, svg, script);
    if (fclose(fp) != 0) {
        sfc_error(gp, "cannot write:");
        goto out;
    }
    /* register the output and log names so release removes them */
    FILE *f2 = sfc_plot_file(p, svg);
    if (!f2) goto out;
    fclose(f2);
    f2 = sfc_plot_file(p, logname);
    if (!f2) goto out;
    fclose(f2);
    gp_path = sfc_path_join(p->dir, gp);
    log_path = sfc_path_join(p->dir, logname);
    svg_path = sfc_path_join(p->dir, svg);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_path,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    char *argv[] = {(char *)p->gnuplot, gp_path, NULL};
    pid_t pid;
    int err = posix_spawnp(&pid, p->gnuplot, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err) {
        errno = err;
        sfc_error(p->gnuplot, "cannot run (install gnuplot-nox):");
        goto out;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            sfc_error(p->gnuplot, "cannot wait:");
            goto out;
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        sfc_error(p->gnuplot, "cannot run (install gnuplot-nox)");
        goto out;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char line[200];
        first_error_line(log_path, line, sizeof line);
        sfc_error(p->gnuplot, "failed on '%s': %s", gp,
                  line[0] ? line : "no message");
        goto out;
    }
    size_t n = 0;
    char *data = sfc_read_file(svg_path, &n);
    if (!data) goto out;
    if (n < 5 || !strstr(data, "<svg")) {
        free(data);
        sfc_error(p->gnuplot, "drew no SVG for '%s'", gp);
        goto out;
    }
    *svg_out = data;
    *n_out = n;
    rc = 0;
out:
    free(gp);
    free(svg);
    free(logname);
    free(gp_path);
    free(log_path);
    free(svg_path);
    return rc;
}
