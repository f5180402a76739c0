/* SPDX-License-Identifier: MIT */
/* atomic.c: write-to-temporary, fsync, rename (after redis rdbSave). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic.h"
#include "err.h"
#include "util.h"

static void release(struct sfc_atomic *a)
{
    free(a->path);
    free(a->tmp);
    a->path = a->tmp = NULL;
    a->fp = NULL;
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
    a->path = sfc_xstrdup(path);
    a->tmp = sfc_xasprintf("%.*s.%s.tmp.XXXXXX", dirlen, path, base);
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        sfc_error(path, "cannot create temporary file:");
        release(a);
        return NULL;
    }
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
