/* SPDX-License-Identifier: MIT */
/* dist.h: the only door to MPI. Data-parallel training (sfc-segtrain
 * train, sfc-irn train, sfc-trainstep) runs as N copies of the tool
 * started by a launcher (mpirun -np N, srun); each copy (a rank) computes
 * the gradient of its part of the step's batch, one sum over ranks of the
 * flat gradient block makes every rank's gradient the whole batch's, and
 * every rank takes the same optimiser step.
 *
 * Built without MPI (config.mk: MPI=0, or no MPI found), or started
 * without a launcher (no OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK in
 * the environment, so a plain run never touches MPI), this is one process:
 * rank 0 of 1, and every call below is a no-op. sfc_dist_init refuses
 * (sfc_die, before the tool touches a file) when a launcher started
 * several tasks (SLURM_STEP_NUM_TASKS, OMPI_COMM_WORLD_SIZE or PMI_SIZE
 * above 1) but this process is rank 0 of 1: srun without --mpi=pmix, an
 * MPI the launcher cannot wire up, or a build without MPI; each task
 * would train alone and overwrite the others' checkpoints and rows.
 *
 * Errors: MPI's default handler aborts the whole job on a failed call, so
 * these functions return nothing. A rank that exits before
 * sfc_dist_finalize (sfc_die, a crash) takes the job down with it
 * (MPI_Abort from an atexit handler), so no rank waits forever in a sum
 * the dead rank would never join. */
#ifndef SFC_DIST_H
#define SFC_DIST_H

#include <stddef.h>

/* Start MPI if a launcher started this process (idempotent). */
void sfc_dist_init(void);
/* End it (collective: every rank calls it once the work is done; later
 * calls are no-ops). A tool calls it before returning normally. */
void sfc_dist_finalize(void);

int sfc_dist_rank(void); /* 0 .. size-1; 0 before init */
int sfc_dist_size(void); /* 1 before init or without a launcher */
/* 1 if this build can use MPI. */
int sfc_dist_compiled(void);

/* v (n floats) <- the sum over ranks of v, bit-identical on every rank
 * (each float is summed by one rank, over the ranks in rank order, then
 * copied to the others), the same bits however the sum is cut into
 * chunks or overlapped. The gradient sum of a training step. Collective:
 * every rank calls it with the same n. */
void sfc_dist_sum_float(float *v, size_t n);
/* The same sum overlapped with the backward pass that fills v:
 *   sfc_dist_sum_start(v, n);        (before the backward; nothing ready)
 *   sfc_dist_sum_ready(from) ...     (v[from - v, n) is final: its chunks
 *                                     of SFC_DIST_CHUNK floats start
 *                                     summing; earlier ones progress)
 *   sfc_dist_sum_finish();           (sums the rest; waits: v is summed)
 * Each rank may report any readiness it likes (or none: a rank with no
 * images) in between; the chunks start from the end of v in the same
 * order everywhere. One sum at a time; v must stay untouched from a
 * ready report to the finish except by the backward writing below it.
 * sfc_dist_grad_ready(ctx, from) is sfc_dist_sum_ready(from) in the shape
 * of the networks' grad_ready callbacks (lib/resnet.h, lib/sfcnet.h). */
void sfc_dist_sum_start(float *v, size_t n);
void sfc_dist_sum_ready(const float *from);
void sfc_dist_grad_ready(void *ctx, const float *from);
void sfc_dist_sum_finish(void);
/* 1 if the tools should report readiness from the backward pass: more
 * than one rank and rank 0's environment does not have
 * SFC_DIST_OVERLAP=0 (the sum then runs after the backward, with the
 * same result). SFC_DIST_CHUNK=N (rank 0's, default 1048576) sets the
 * chunk in floats. */
int sfc_dist_overlap(void);
/* v (n doubles) <- the sum over ranks (MPI_Allreduce): small statistics
 * (label counts, which are exact integers, and losses for the log). */
void sfc_dist_sum_double(double *v, size_t n);
/* bytes of buf from rank root to every rank. */
void sfc_dist_bcast(void *buf, size_t bytes, int root);
/* Rank 0's n strings to every rank: on rank 0 v holds them, elsewhere v
 * is ignored. Returns a new array of *n heap strings on every rank (a
 * copy on rank 0; free with sfc_db_strv_free or each then the array). */
char **sfc_dist_bcast_strv(char *const *v, long *n);
void sfc_dist_barrier(void);

/* This rank's part of a step's n images: sfc_batch_split(n, size, rank,
 * ...) (lib/batch.h), contiguous ranges in rank order. */

/* Time and bytes spent in the gradient sums since init (bytes = the
 * floats summed x 4, per rank; seconds: inside the sum's calls, so with
 * overlap only the part the backward pass did not hide): for the tools'
 * closing summary and the benchmark. */
struct sfc_dist_stats {
    long calls;
    double bytes, seconds;
    double early; /* bytes whose sum started while backward blocks were
                   * still to run (before the last readiness report) */
};
void sfc_dist_stats(struct sfc_dist_stats *st);
/* On rank 0 of a run with more than one rank: one line on stderr,
 * "<prog>: R ranks, S steps in X s: gradient sum B MB in Y ms per step"
 * plus " (overlapped with backward: P% started early)" when the backward
 * reported readiness (P: early / bytes)
 * (steps and seconds: the training loop's). */
void sfc_dist_report(long steps, double seconds);

#endif
