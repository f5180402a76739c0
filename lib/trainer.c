/* SPDX-License-Identifier: MIT */
/* trainer.c: helpers the training tools share (lib/trainer.h): the image
 * set of a command (read on rank 0, broadcast), its hash, the --blocks
 * parser, and the guard that marks a run's row 'failed' when the process
 * is stopped by a signal (the self-pipe pattern: the handler writes the
 * signal number to a pipe, a thread reads it and does what a handler may
 * not: SQLite). */
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "dist.h"
#include "err.h"
#include "trainer.h"
#include "util.h"

/* ---- image sets --------------------------------------------------------- */

int sfc_trainer_ids_get(struct sfc_trainer_ids *s, int npos, char **pos,
                        const char *list, struct sfc_db *db, const char *split,
                        const char *images, const char *ext)
{
    memset(s, 0, sizeof *s);
    if (sfc_ids_get(&s->l, npos, pos, list, db, split)) return -1;
    s->n = s->l.n;
    s->ids = s->l.v;
    s->paths = sfc_ids_image_paths(&s->l, db, images, ext);
    if (!s->paths) {
        sfc_ids_release(&s->l);
        memset(s, 0, sizeof *s);
        return -1;
    }
    return 0;
}

void sfc_trainer_ids_release(struct sfc_trainer_ids *s)
{
    sfc_db_strv_free(s->paths, s->n);
    sfc_ids_release(&s->l);
    memset(s, 0, sizeof *s);
}

void sfc_trainer_ids_bcast(struct sfc_trainer_ids *s)
{
    if (sfc_dist_size() == 1) return;
    long n = s->n, np = s->n;
    char **ids = sfc_dist_bcast_strv(s->ids, &n);
    char **paths = sfc_dist_bcast_strv(s->paths, &np);
    sfc_trainer_ids_release(s);
    s->n = s->l.n = s->l.cap = n;
    s->l.v = s->ids = ids;
    s->paths = paths;
}

uint64_t sfc_trainer_ids_hash(const struct sfc_trainer_ids *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (long i = 0; i < s->n; i++)
        for (const char *c = s->ids[i];; c++) {
            h = (h ^ (unsigned char)*c) * 1099511628211ULL;
            if (!*c) break;
        }
    return h;
}

int sfc_trainer_parse_blocks(const char *what, const char *s, int blocks[4])
{
    const char *s0 = s;
    for (int i = 0; i < 4; i++) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 1000 || (i < 3 ? *end != ',' : *end != 0))
            return sfc_error(what, "expected 4 comma-separated block counts, "
                                   "got '%s'", s0);
        blocks[i] = (int)v;
        s = end + 1;
    }
    return 0;
}

/* ---- the run guard ------------------------------------------------------ */

static const int g_sigs[] = {SIGTERM, SIGINT, SIGHUP};
#define NSIGS ((int)(sizeof g_sigs / sizeof *g_sigs))

static struct {
    int on;
    int fd[2];
    pthread_t th;
    char *path;
    int64_t run;
} g;

static void on_signal(int sig)
{
    int e = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(g.fd[1], &b, 1);
    (void)w;
    errno = e;
}

static void mark_failed(void)
{
    struct sfc_db *db = sfc_db_open(g.path, 0);
    if (!db) return;
    if (sfc_db_begin(db) == 0) {
        if (sfc_db_execv(db,
                         "UPDATE runs SET status = 'failed', ended = "
                         "strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = "
                         "?1 AND status = 'running'",
                         "I", g.run) == 0)
            sfc_db_commit(db);
        else
            sfc_db_rollback(db);
    }
    sfc_db_close(db);
}

static void *watch(void *arg)
{
    (void)arg;
    unsigned char b;
    for (;;) {
        ssize_t r = read(g.fd[0], &b, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r != 1 || b == 0) return NULL; /* unguard */
        break;
    }
    mark_failed();
    /* end as the signal would have ended us */
    int sig = b;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    kill(getpid(), sig);
    for (;;) pause();
}

int sfc_trainer_guard_run(const char *path, int64_t run)
{
    sfc_trainer_unguard();
    if (pipe(g.fd)) return sfc_error("guard", "pipe: %s", strerror(errno));
    g.path = sfc_xstrdup(path);
    g.run = run;
    int e = pthread_create(&g.th, NULL, watch, NULL);
    if (e) {
        close(g.fd[0]);
        close(g.fd[1]);
        free(g.path);
        g.path = NULL;
        return sfc_error("guard", "thread: %s", strerror(e));
    }
    g.on = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int i = 0; i < NSIGS; i++) sigaction(g_sigs[i], &sa, NULL);
    return 0;
}

void sfc_trainer_unguard(void)
{
    if (!g.on) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < NSIGS; i++) sigaction(g_sigs[i], &sa, NULL);
    unsigned char b = 0;
    ssize_t w = write(g.fd[1], &b, 1);
    (void)w;
    pthread_join(g.th, NULL);
    close(g.fd[0]);
    close(g.fd[1]);
    free(g.path);
    memset(&g, 0, sizeof g);
}

int sfc_trainer_start(const char *tool, const char *out, int *quiet)
{
    sfc_dist_init();
    int root = sfc_dist_rank() == 0;
    if (!root) *quiet = 1;
    int done = root && sfc_file_exists(out);
    sfc_dist_bcast(&done, sizeof done, 0);
    if (done && !*quiet)
        fprintf(stderr, "%s: '%s' exists; nothing to do\n", tool, out);
    return done;
}
