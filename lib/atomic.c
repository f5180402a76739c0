/* SPDX-License-Identifier: MIT */
/* atomic.c: write-to-temporary, fsync, rename (after redis rdbSave), with
 * the temporaries of killed writers removed: on SIGINT/SIGTERM/SIGHUP by
 * a handler, after anything else by the next writer into the directory
 * (atomic.h says how a dead writer is recognised). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic.h"
#include "err.h"
#include "util.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* The open temporaries of this process, for the signal handler: a slot's
 * path is complete before its flag is set, and the flag is cleared before
 * the slot is given out again. A temporary whose path does not fit a
 * slot (or when all are taken) is left to the next writer's sweep. */
#define NSLOTS 64
static char slot_path[NSLOTS][PATH_MAX];
static volatile sig_atomic_t slot_used[NSLOTS];
static const int cleanup_signals[] = {SIGINT, SIGTERM, SIGHUP};

static void on_signal(int sig)
{
    int saved = errno;
    for (int i = 0; i < NSLOTS; i++)
        if (__atomic_load_n(&slot_used[i], __ATOMIC_ACQUIRE))
            unlink(slot_path[i]);
    errno = saved;
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Install the handler for the signals whose action is still the default
 * (a program's own handlers are left alone); once per process. */
static void install_handlers(void)
{
    static int done;
    int first = 0;
#pragma omp critical(sfc_atomic)
    if (!done) done = first = 1;
    if (!first) return;
    for (size_t k = 0; k < sizeof cleanup_signals / sizeof *cleanup_signals;
         k++) {
        struct sigaction old, sa;
        if (sigaction(cleanup_signals[k], NULL, &old) != 0 ||
            old.sa_handler != SIG_DFL)
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        for (size_t j = 0;
             j < sizeof cleanup_signals / sizeof *cleanup_signals; j++)
            sigaddset(&sa.sa_mask, cleanup_signals[j]);
        sigaction(cleanup_signals[k], &sa, NULL);
    }
}

/* The slot of path plus one, or 0 when none is free. */
static int slot_take(const char *path)
{
    if (strlen(path) >= PATH_MAX) return 0;
    int got = 0;
#pragma omp critical(sfc_atomic)
    for (int i = 0; i < NSLOTS && !got; i++)
        if (!slot_used[i]) {
            strcpy(slot_path[i], path);
            __atomic_store_n(&slot_used[i], 1, __ATOMIC_RELEASE);
            got = i + 1;
        }
    return got;
}

static void slot_give(int slot)
{
    if (slot > 0) __atomic_store_n(&slot_used[slot - 1], 0, __ATOMIC_RELEASE);
}

/* A temporary's name: ".<base>.tmp.<pid>.XXXXXX". Returns the pid, or 0
 * when name is not one. */
static long tmp_pid(const char *name)
{
    size_t n = strlen(name);
    if (name[0] != '.' || n < 14 || name[n - 7] != '.') return 0;
    size_t e = n - 7, b = e;
    while (b > 0 && name[b - 1] >= '0' && name[b - 1] <= '9') b--;
    if (b == e || e - b > 10 || b < 6 || memcmp(name + b - 5, ".tmp.", 5))
        return 0;
    return strtol(name + b, NULL, 10);
}

/* Is the writer of the temporary at path gone? Its pid is no live
 * process here, and its lock is free (a writer elsewhere holds it). */
static int writer_gone(const char *path, long pid)
{
    if (pid <= 0 || pid > INT_MAX) return 0;
    if ((pid_t)pid == getpid()) return 0;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) return 0;
    int fd = open(path, O_RDWR | O_NOFOLLOW);
    if (fd < 0) return 0;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int gone = fcntl(fd, F_SETLK, &fl) == 0;
    close(fd); /* releases the lock taken for the test */
    return gone;
}

/* Remove the dead writers' temporaries in dir (with its trailing slash,
 * or "" for "."), the first time this process writes there. */
static void sweep_dir(const char *dir, int dirlen)
{
    static struct seen {
        struct seen *next;
        char dir[];
    } *seen;
    int fresh = 1;
#pragma omp critical(sfc_atomic)
    {
        for (struct seen *s = seen; s && fresh; s = s->next)
            if ((int)strlen(s->dir) == dirlen &&
                !memcmp(s->dir, dir, (size_t)dirlen))
                fresh = 0;
        if (fresh) {
            struct seen *s = sfc_xmalloc(sizeof *s + (size_t)dirlen + 1);
            memcpy(s->dir, dir, (size_t)dirlen);
            s->dir[dirlen] = 0;
            s->next = seen;
            seen = s;
        }
    }
    if (!fresh) return;
    char *d = dirlen ? sfc_xasprintf("%.*s", dirlen, dir) : sfc_xstrdup(".");
    DIR *dp = opendir(d);
    if (dp) {
        struct dirent *de;
        while ((de = readdir(dp))) {
            long pid = tmp_pid(de->d_name);
            if (!pid) continue;
            char *p = sfc_xasprintf("%s/%s", d, de->d_name);
            if (writer_gone(p, pid)) unlink(p);
            free(p);
        }
        closedir(dp);
    }
    free(d);
}

static void release(struct sfc_atomic *a)
{
    slot_give(a->slot);
    free(a->path);
    free(a->tmp);
    a->path = a->tmp = NULL;
    a->fp = NULL;
    a->slot = 0;
}

FILE *sfc_atomic_open(struct sfc_atomic *a, const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    int dirlen = slash ? (int)(slash - path + 1) : 0;

    memset(a, 0, sizeof *a);
    if (!*base) {
        sfc_error(path, "not a file name");
        return NULL;
    }
    install_handlers();
    sweep_dir(path, dirlen);
    a->path = sfc_xstrdup(path);
    a->tmp = sfc_xasprintf("%.*s.%s.tmp.%ld.XXXXXX", dirlen, path, base,
                           (long)getpid());
    /* the name is registered before the file exists, so a signal at any
     * point after mkstemp finds it */
    sigset_t block, old;
    sigemptyset(&block);
    for (size_t k = 0; k < sizeof cleanup_signals / sizeof *cleanup_signals;
         k++)
        sigaddset(&block, cleanup_signals[k]);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int fd = mkstemp(a->tmp);
    if (fd >= 0) a->slot = slot_take(a->tmp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (fd < 0) {
        sfc_error(path, "cannot create temporary file:");
        release(a);
        return NULL;
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    /* the lock that says "its writer is alive" (atomic.h); where the file
     * system has no locks, the pid alone says it */
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    (void)fcntl(fd, F_SETLK, &fl);
    /* mkstemp gives 0600; outputs are ordinary files. */
    mode_t um = umask(0);
    umask(um);
    (void)fchmod(fd, 0666 & ~um);
    a->fp = fdopen(fd, "wb");
    if (!a->fp) {
        sfc_error(path, "cannot open temporary file:");
        close(fd);
        unlink(a->tmp);
        release(a);
        return NULL;
    }
    return a->fp;
}

void sfc_atomic_abort(struct sfc_atomic *a)
{
    int saved = errno;
    if (a->fp) fclose(a->fp);
    if (a->tmp) unlink(a->tmp);
    release(a);
    errno = saved;
}

static void fsync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? sfc_xasprintf("%.*s", (int)(slash - path + 1), path)
                      : sfc_xstrdup(".");
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd); /* best effort: some file systems refuse it on dirs */
        close(fd);
    }
    free(dir);
}

int sfc_atomic_commit(struct sfc_atomic *a)
{
    if (!a->fp) return sfc_error(a->path, "atomic write was not opened");
    if (fflush(a->fp) == EOF || ferror(a->fp)) {
        sfc_error(a->path, "write error:");
        goto fail;
    }
    if (fsync(fileno(a->fp)) != 0 && errno != EINVAL) {
        sfc_error(a->path, "fsync failed:");
        goto fail;
    }
    FILE *fp = a->fp;
    a->fp = NULL;
    /* (the lock goes with the close; until the rename, the live pid in
     * the name keeps a sweep on this host away) */
    if (fclose(fp) == EOF) {
        sfc_error(a->path, "close failed:");
        goto fail;
    }
    if (rename(a->tmp, a->path) != 0) {
        sfc_error(a->path, "cannot rename temporary file:");
        goto fail;
    }
    fsync_dir(a->path);
    release(a);
    return 0;
fail:
    sfc_atomic_abort(a);
    return -1;
}

int sfc_atomic_write(const char *path, const void *buf, size_t n)
{
    struct sfc_atomic a;
    FILE *fp = sfc_atomic_open(&a, path);
    if (!fp) return -1;
    if (n && fwrite(buf, 1, n, fp) != n) {
        sfc_error(path, "write error:");
        sfc_atomic_abort(&a);
        return -1;
    }
    return sfc_atomic_commit(&a);
}
