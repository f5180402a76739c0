/* SPDX-License-Identifier: MIT */
/* dist.c: data-parallel primitives over MPI (lib/dist.h), or their
 * one-process no-ops when built without MPI (SFC_MPI undefined) or run
 * without a launcher. The gradient sum is MPI_Reduce_scatter followed by
 * MPI_Allgatherv, the ring algorithm's two halves: each slice is reduced
 * on one rank, so every rank ends with the same bits (MPI_Allreduce does
 * not promise that). */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "dist.h"
#include "err.h"
#include "util.h"

#ifdef SFC_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_done = 0;
static struct sfc_dist_stats g_st;

int sfc_dist_rank(void) { return g_rank; }
int sfc_dist_size(void) { return g_size; }

void sfc_dist_stats(struct sfc_dist_stats *st) { *st = g_st; }

void sfc_dist_report(long steps, double seconds)
{
    if (g_rank != 0 || g_size == 1 || steps < 1) return;
    fprintf(stderr,
            "%s: %d ranks, %ld steps in %.3f s: gradient sum %.3f MB in "
            "%.3f ms per step\n",
            sfc_progname(), g_size, steps, seconds,
            g_st.bytes / (double)g_st.calls / 1e6,
            1e3 * g_st.seconds / (double)steps);
}

#ifdef SFC_MPI

static int g_on = 0; /* MPI_Init done */

int sfc_dist_compiled(void) { return 1; }

/* exit without sfc_dist_finalize: an error on this rank; take the job
 * down instead of leaving the others blocked in a collective */
static void dist_atexit(void)
{
    if (g_on && !g_done) MPI_Abort(MPI_COMM_WORLD, 1);
}

static int launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") ||
           getenv("PMI_RANK") || getenv("PMI_SIZE");
}

void sfc_dist_init(void)
{
    if (g_on || g_done || !launched()) return;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS)
        sfc_die("MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_on = 1;
    atexit(dist_atexit);
}

void sfc_dist_finalize(void)
{
    if (!g_on || g_done) return;
    g_done = 1;
    MPI_Finalize();
}

void sfc_dist_sum_float(float *v, size_t n)
{
    if (!g_on || g_size == 1) return;
    SFC_ASSERT(n <= (size_t)INT_MAX);
    double t0 = sfc_now();
    int *cnt = sfc_xmalloc(sizeof(int) * 2 * (size_t)g_size);
    int *dsp = cnt + g_size;
    for (int r = 0; r < g_size; r++) {
        int lo, hi;
        sfc_batch_split((int)n, g_size, r, &lo, &hi);
        cnt[r] = hi - lo;
        dsp[r] = lo;
    }
    /* in place: my summed slice lands at the start of v */
    MPI_Reduce_scatter(MPI_IN_PLACE, v, cnt, MPI_FLOAT, MPI_SUM,
                       MPI_COMM_WORLD);
    if (dsp[g_rank] && cnt[g_rank])
        memmove(v + dsp[g_rank], v, sizeof(float) * (size_t)cnt[g_rank]);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, v, cnt, dsp, MPI_FLOAT,
                   MPI_COMM_WORLD);
    free(cnt);
    g_st.calls++;
    g_st.bytes += 4.0 * (double)n;
    g_st.seconds += sfc_now() - t0;
}

void sfc_dist_sum_double(double *v, size_t n)
{
    if (!g_on || g_size == 1) return;
    SFC_ASSERT(n <= (size_t)INT_MAX);
    MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_DOUBLE, MPI_SUM,
                  MPI_COMM_WORLD);
}

void sfc_dist_bcast(void *buf, size_t bytes, int root)
{
    if (!g_on || g_size == 1) return;
    char *p = buf;
    while (bytes) {
        size_t k = SFC_MIN(bytes, (size_t)1 << 30);
        MPI_Bcast(p, (int)k, MPI_BYTE, root, MPI_COMM_WORLD);
        p += k;
        bytes -= k;
    }
}

void sfc_dist_barrier(void)
{
    if (g_on && g_size > 1) MPI_Barrier(MPI_COMM_WORLD);
}

#else /* one process */

int sfc_dist_compiled(void) { return 0; }

/* N copies of a build without MPI would each train alone on the whole
 * batch and overwrite each other's files: refuse */
void sfc_dist_init(void)
{
    const char *v[] = {getenv("OMPI_COMM_WORLD_SIZE"), getenv("PMI_SIZE")};
    for (int i = 0; i < 2; i++)
        if (v[i] && atol(v[i]) > 1)
            sfc_die("started as one of %ld ranks, but built without MPI "
                    "(rebuild with MPI installed, config.mk MPI=1)",
                    atol(v[i]));
}
void sfc_dist_finalize(void) { g_done = 1; }
void sfc_dist_sum_float(float *v, size_t n) { (void)v, (void)n; }
void sfc_dist_sum_double(double *v, size_t n) { (void)v, (void)n; }
void sfc_dist_bcast(void *buf, size_t bytes, int root)
{
    (void)buf, (void)bytes, (void)root;
}
void sfc_dist_barrier(void) {}

#endif

char **sfc_dist_bcast_strv(char *const *v, long *n)
{
    /* rank 0 packs the strings, NUL-terminated, one after another */
    uint64_t hdr[2] = {0, 0}; /* count, bytes */
    char *blob = NULL;
    if (g_rank == 0) {
        hdr[0] = (uint64_t)*n;
        for (long i = 0; i < *n; i++) hdr[1] += strlen(v[i]) + 1;
        blob = sfc_xmalloc(hdr[1] + 1);
        size_t o = 0;
        for (long i = 0; i < *n; i++) {
            size_t k = strlen(v[i]) + 1;
            memcpy(blob + o, v[i], k);
            o += k;
        }
    }
    sfc_dist_bcast(hdr, sizeof hdr, 0);
    if (g_rank != 0) blob = sfc_xmalloc(hdr[1] + 1);
    sfc_dist_bcast(blob, hdr[1], 0);
    *n = (long)hdr[0];
    char **out = sfc_xmalloc(sizeof(char *) * (size_t)(*n ? *n : 1));
    size_t o = 0;
    for (long i = 0; i < *n; i++) {
        out[i] = sfc_xstrdup(blob + o);
        o += strlen(blob + o) + 1;
    }
    free(blob);
    return out;
}
