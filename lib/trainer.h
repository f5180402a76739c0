/* SPDX-License-Identifier: MIT */
/* trainer.h: what the training tools (sfc-trainstep, sfc-irn train,
 * sfc-segtrain train; their inference commands use the image sets too)
 * share around their loops.
 *
 * A stopped run's row. A training run is usually ended from outside: the
 * launcher (mpirun, srun) ends every rank with SIGTERM when one rank
 * failed, scancel sends SIGTERM, a user presses Ctrl-C. Without help the
 * row of such a run would stay 'running' forever. sfc_trainer_guard_run
 * makes SIGTERM, SIGINT and SIGHUP mark the run's row 'failed' (with its
 * end time) in one transaction on a connection of its own, then end the
 * process by the same signal, as it would have ended without the guard.
 * The signal handler only writes a byte to a pipe; a thread waiting on
 * that pipe does the db work, so the main thread may be anywhere (a BLAS
 * call, an MPI collective that will never complete). SIGKILL cannot be
 * caught: such a run's row stays 'running' (ended NULL), as documented
 * in db/schema.sql. A row that is no longer 'running' (the run ended) is
 * left alone. */
#ifndef SFC_TRAINER_H
#define SFC_TRAINER_H

#include <stdint.h>

#include "db.h"
#include "ids.h"

/* The images a command works on: ids from the first source given
 * (lib/ids.h: positional ids, a list file, a db split, stdin) and their
 * image paths (images DIR + <id> + ext, else the db's paths). */
struct sfc_trainer_ids {
    long n;
    char **ids;   /* = l.v */
    char **paths; /* n image paths */
    struct sfc_ids l;
};
/* Fill s (zeroed first). -1 with the error slot set (s left empty). */
int sfc_trainer_ids_get(struct sfc_trainer_ids *s, int npos, char **pos,
                        const char *list, struct sfc_db *db,
                        const char *split, const char *images,
                        const char *ext);
/* Data-parallel (lib/dist.h, collective): rank 0's set replaces every
 * other rank's (only rank 0 reads the ids: they may come from stdin or
 * the db, which only rank 0 opens). A no-op on one rank. */
void sfc_trainer_ids_bcast(struct sfc_trainer_ids *s);
void sfc_trainer_ids_release(struct sfc_trainer_ids *s);
/* FNV-1a (64 bit) over the ids in order, each with its NUL: the part of a
 * checkpoint's fingerprint that refuses a resume on other images. */
uint64_t sfc_trainer_ids_hash(const struct sfc_trainer_ids *s);

/* "A,B,C,D" -> blocks[4] (bottlenecks per ResNet layer, each 1..1000);
 * -1 with the error slot set (domain what) if malformed. */
int sfc_trainer_parse_blocks(const char *what, const char *s, int blocks[4]);

/* Joins the data-parallel job (sfc_dist_init) and says whether the
 * training output `out` already exists, as rank 0 sees it, on every rank:
 * returns 1 (after telling so on stderr as `tool`, unless *quiet) when
 * there is nothing to do, else 0. Ranks other than 0 get *quiet = 1. */
int sfc_trainer_start(const char *tool, const char *out, int *quiet);

/* Guard run (>= 1) of the db at path (the path the tool opened it by).
 * One guard per process; a second call replaces the first. Returns 0, or
 * -1 with the error slot set (no thread or pipe). */
int sfc_trainer_guard_run(const char *path, int64_t run);
/* Restore the signals' default actions and stop the thread (call before
 * the run's row is ended normally, or let the process exit). */
void sfc_trainer_unguard(void);

#endif
