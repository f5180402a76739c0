/* SPDX-License-Identifier: MIT */
/* atomic.h: every output file goes through here. Data is written to a
 * hidden temporary beside the final path (".<name>.tmp.<pid>.XXXXXX"),
 * then flushed, fsynced, closed with a check, renamed over the final
 * name, and the directory fsynced. On any failure the temporary is
 * unlinked, so no reader ever sees half a file and "final file exists"
 * means "complete".
 *
 * Killed writers: the writer holds a POSIX write lock on its temporary
 * while it is open. SIGINT, SIGTERM and SIGHUP (when their action is the
 * default at the first open) remove the process's open temporaries before
 * the signal takes its default action. What an uncatchable kill (SIGKILL,
 * a resource limit) leaves is removed by the next process that writes
 * into the same directory: the first sfc_atomic_open there in a process
 * removes every temporary of this pattern whose writer is gone (its pid
 * is not a live process here, and nobody holds its lock, which also
 * covers writers on other hosts of a shared file system). */
#ifndef SFC_ATOMIC_H
#define SFC_ATOMIC_H

#include <stddef.h>
#include <stdio.h>

struct sfc_atomic {
    char *path; /* final name */
    char *tmp;  /* temporary name */
    FILE *fp;
    int slot; /* the signal handler's slot of tmp, plus one; 0 none */
};

/* Create the temporary and open it for writing. Returns the stream, or
 * NULL with the error slot set. */
FILE *sfc_atomic_open(struct sfc_atomic *a, const char *path);
/* Flush, fsync, close, rename, fsync the directory. 0, or -1 with the
 * error slot set and the temporary removed. Releases a in both cases. */
int sfc_atomic_commit(struct sfc_atomic *a);
/* Close and remove the temporary; releases a. Safe after a failed open. */
void sfc_atomic_abort(struct sfc_atomic *a);

/* Write a whole buffer to path atomically. */
int sfc_atomic_write(const char *path, const void *buf, size_t n);

#endif
