/* SPDX-License-Identifier: MIT */
/* trainer.h: what the training tools (sfc-trainstep, sfc-irn train,
 * sfc-segtrain train) share around their loops.
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

/* Guard run (>= 1) of the db at path (the path the tool opened it by).
 * One guard per process; a second call replaces the first. Returns 0, or
 * -1 with the error slot set (no thread or pipe). */
int sfc_trainer_guard_run(const char *path, int64_t run);
/* Restore the signals' default actions and stop the thread (call before
 * the run's row is ended normally, or let the process exit). */
void sfc_trainer_unguard(void);

#endif
