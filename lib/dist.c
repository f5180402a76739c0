/* SPDX-License-Identifier: MIT */
/* dist.c: data-parallel primitives over MPI (lib/dist.h), or their
 * one-process no-ops when built without MPI (SFC_MPI undefined) or run
 * without a launcher. The gradient sum cuts the vector into fixed chunks;
 * each chunk is one nonblocking all-to-all (rank j receives every rank's
 * copy of the chunk's j-th slice), a sum of those copies in rank order on
 * rank j, and one nonblocking allgather of the summed slices. Each float
 * is summed by one rank in one fixed order, so every rank ends with the
 * same bits, and the chunking (hence overlapping the sum with the
 * backward pass or not) does not change them (MPI_Allreduce promises
 * neither). Chunks start from the end of the vector, where a backward
 * pass finishes first. */
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
static int g_overlap = 1;                  /* SFC_DIST_OVERLAP, rank 0's */
static struct sfc_dist_stats g_st;
static int g_ready_seen = 0; /* a backward reported readiness */

int sfc_dist_rank(void) { return g_rank; }
int sfc_dist_size(void) { return g_size; }
int sfc_dist_overlap(void) { return g_size > 1 && g_overlap; }

void sfc_dist_stats(struct sfc_dist_stats *st) { *st = g_st; }

void sfc_dist_report(long steps, double seconds)
{
    if (g_rank != 0 || g_size == 1 || steps < 1) return;
    fprintf(stderr,
            "%s: %d ranks, %ld steps in %.3f s: gradient sum %.3f MB in "
            "%.3f ms per step",
            sfc_progname(), g_size, steps, seconds,
            g_st.bytes / (double)g_st.calls / 1e6,
            1e3 * g_st.seconds / (double)steps);
    if (g_ready_seen)
        fprintf(stderr, " (overlapped with backward: %.0f%% started early)",
                100 * g_st.early / g_st.bytes);
    fputc('\n', stderr);
}

/* The task count a launcher announced in the environment (> 1), naming
 * the variable; 0 if none did. SLURM_STEP_NUM_TASKS is set by srun for
 * its tasks only (not in an allocation's shell), so a tool run plainly
 * inside salloc or sbatch is one process as it should be. */
static long launcher_tasks(const char **var)
{
    static const char *const vars[] = {"SLURM_STEP_NUM_TASKS",
                                       "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && atol(v) > 1) {
            *var = vars[i];
            return atol(v);
        }
    }
    return 0;
}

/* A launcher started several tasks but this process is rank 0 of 1: the
 * tasks would each train alone on every image and overwrite each other's
 * checkpoints and rows. Refuse, before any file is touched. */
static void check_alone(void)
{
    const char *var = NULL;
    long n = launcher_tasks(&var);
    if (!n) return;
    if (!sfc_dist_compiled())
        sfc_die("started as one of %ld tasks (%s=%ld), but built without "
                "MPI: each task would train alone and overwrite the others' "
                "files; rebuild with MPI (libopenmpi-dev, config.mk MPI=1) "
                "or start one task",
                n, var, n);
    sfc_die("started as one of %ld tasks (%s=%ld), but MPI sees one rank: "
            "each task would train alone and overwrite the others' files; "
            "start it with mpirun -np %ld, or srun --mpi=pmix (an MPI the "
            "launcher can wire up; see srun --mpi=list)",
            n, var, n, n);
}

#ifdef SFC_MPI

static int g_on = 0; /* MPI_Init done */
static MPI_Comm g_c1, g_c2; /* the sum's all-to-alls, its allgathers */
static size_t g_chunk = (size_t)1 << 20; /* floats; SFC_DIST_CHUNK */

/* rank 0's SFC_DIST_OVERLAP and SFC_DIST_CHUNK for every rank (a cluster
 * launcher need not forward the environment) */
static void read_env(void)
{
    const char *o = getenv("SFC_DIST_OVERLAP"), *c = getenv("SFC_DIST_CHUNK");
    g_overlap = !(o && !strcmp(o, "0"));
    if (c && atol(c) > 0) g_chunk = (size_t)atol(c);
}

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
    if (g_on || g_done) return;
    if (!launched()) {
        check_alone();
        return;
    }
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS)
        sfc_die("MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    if (g_size == 1) {
        MPI_Finalize();
        g_done = 1;
        check_alone();
        return;
    }
    g_on = 1;
    atexit(dist_atexit);
    read_env();
    uint64_t e[2] = {(uint64_t)g_overlap, (uint64_t)g_chunk};
    MPI_Bcast(e, 2, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    g_overlap = (int)e[0];
    g_chunk = (size_t)e[1];
    MPI_Comm_dup(MPI_COMM_WORLD, &g_c1);
    MPI_Comm_dup(MPI_COMM_WORLD, &g_c2);
}

void sfc_dist_finalize(void)
{
    if (!g_on || g_done) return;
    g_done = 1;
    MPI_Comm_free(&g_c1);
    MPI_Comm_free(&g_c2);
    MPI_Finalize();
}

/* ---- the chunked gradient sum ---------------------------------------- */

enum { CH_IDLE, CH_ALLTOALL, CH_GATHER, CH_DONE };

struct chunk {
    size_t a;          /* first float of the chunk in the vector */
    int state;
    MPI_Request req;
    int *cnt, *dsp;    /* per rank: slice length and start in the chunk */
    int *rcnt, *rdsp;  /* the all-to-all's receive side */
    float *tmp;        /* every rank's copy of my slice, rank by rank */
};

static struct {
    float *v;
    size_t n;
    int nchunk, next1, next2; /* next to start / to move to its gather */
    struct chunk *c;
    double t0;                /* sfc_now() at start */
    double pending;           /* bytes started by the last ready report */
    int open;
} g_sum;

static void chunk_start(int i)
{
    struct chunk *c = &g_sum.c[i];
    int len = (int)(SFC_MIN(g_sum.n, c->a + g_chunk) - c->a), R = g_size;
    c->cnt = sfc_xmalloc(sizeof(int) * 4 * (size_t)R);
    c->dsp = c->cnt + R;
    c->rcnt = c->dsp + R;
    c->rdsp = c->rcnt + R;
    for (int r = 0; r < R; r++) {
        int lo, hi;
        sfc_batch_split(len, R, r, &lo, &hi);
        c->cnt[r] = hi - lo;
        c->dsp[r] = lo;
    }
    int mine = c->cnt[g_rank];
    for (int r = 0; r < R; r++) {
        c->rcnt[r] = mine;
        c->rdsp[r] = r * mine;
    }
    c->tmp = sfc_xmalloc(sizeof(float) * (size_t)SFC_MAX(R * mine, 1));
    MPI_Ialltoallv(g_sum.v + c->a, c->cnt, c->dsp, MPI_FLOAT, c->tmp, c->rcnt,
                   c->rdsp, MPI_FLOAT, g_c1, &c->req);
    c->state = CH_ALLTOALL;
}

/* the all-to-all of chunk i is complete: sum my slice in rank order, then
 * send it to every rank */
static void chunk_gather(int i)
{
    struct chunk *c = &g_sum.c[i];
    int mine = c->cnt[g_rank], R = g_size;
    float *dst = g_sum.v + c->a + c->dsp[g_rank];
    const float *t = c->tmp;
    for (int k = 0; k < mine; k++) {
        float s = t[k];
        for (int r = 1; r < R; r++) s += t[(size_t)r * mine + k];
        dst[k] = s;
    }
    free(c->tmp);
    c->tmp = NULL;
    MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, g_sum.v + c->a,
                    c->cnt, c->dsp, MPI_FLOAT, g_c2, &c->req);
    c->state = CH_GATHER;
}

/* Move what has arrived on. Gathers start in chunk order (descending) on
 * every rank: nonblocking collectives on a communicator must be started
 * in the same order everywhere. wait: block until all is done. */
static void sum_progress(int wait)
{
    while (g_sum.next2 > g_sum.next1) {
        struct chunk *c = &g_sum.c[g_sum.next2];
        int done = 0;
        if (wait)
            MPI_Wait(&c->req, MPI_STATUS_IGNORE), done = 1;
        else
            MPI_Test(&c->req, &done, MPI_STATUS_IGNORE);
        if (!done) break;
        chunk_gather(g_sum.next2--);
    }
    for (int i = g_sum.nchunk - 1; i > g_sum.next2; i--) {
        struct chunk *c = &g_sum.c[i];
        if (c->state != CH_GATHER) continue;
        int done = 0;
        if (wait)
            MPI_Wait(&c->req, MPI_STATUS_IGNORE), done = 1;
        else
            MPI_Test(&c->req, &done, MPI_STATUS_IGNORE);
        if (done) {
            c->state = CH_DONE;
            free(c->cnt);
            c->cnt = NULL;
        }
    }
}

void sfc_dist_sum_start(float *v, size_t n)
{
    SFC_ASSERT(!g_sum.open);
    if (!g_on || g_size == 1) return;
    double t0 = sfc_now();
    size_t nc = (n + g_chunk - 1) / g_chunk;
    SFC_ASSERT(nc <= (size_t)INT_MAX && g_chunk <= (size_t)INT_MAX / 2);
    g_sum.v = v;
    g_sum.n = n;
    g_sum.nchunk = (int)nc;
    g_sum.next1 = g_sum.next2 = (int)nc - 1;
    g_sum.c = sfc_xcalloc(SFC_MAX(nc, 1), sizeof *g_sum.c);
    for (size_t i = 0; i < nc; i++) g_sum.c[i].a = i * g_chunk;
    g_sum.open = 1;
    g_sum.t0 = t0;
    g_st.seconds += sfc_now() - t0;
}

void sfc_dist_sum_ready(const float *from)
{
    if (!g_sum.open) return;
    double t0 = sfc_now();
    g_ready_seen = 1;
    size_t r = from <= g_sum.v ? 0 : (size_t)(from - g_sum.v);
    /* the previous report's chunks had this stretch of backward to run */
    g_st.early += g_sum.pending;
    g_sum.pending = 0;
    while (g_sum.next1 >= 0 && g_sum.c[g_sum.next1].a >= r &&
           r < g_sum.n) {
        struct chunk *c = &g_sum.c[g_sum.next1];
        g_sum.pending +=
            4.0 * (double)(SFC_MIN(g_sum.n, c->a + g_chunk) - c->a);
        chunk_start(g_sum.next1--);
    }
    sum_progress(0);
    g_st.seconds += sfc_now() - t0;
}

void sfc_dist_grad_ready(void *ctx, const float *from)
{
    (void)ctx;
    sfc_dist_sum_ready(from);
}

void sfc_dist_sum_finish(void)
{
    if (!g_sum.open) return;
    double t0 = sfc_now();
    while (g_sum.next1 >= 0) chunk_start(g_sum.next1--);
    sum_progress(1);
    for (int i = 0; i < g_sum.nchunk; i++) SFC_ASSERT(!g_sum.c[i].cnt);
    free(g_sum.c);
    g_st.calls++;
    g_st.bytes += 4.0 * (double)g_sum.n;
    g_st.seconds += sfc_now() - t0;
    memset(&g_sum, 0, sizeof g_sum);
}

void sfc_dist_sum_float(float *v, size_t n)
{
    sfc_dist_sum_start(v, n);
    sfc_dist_sum_finish();
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
    if (!g_done) check_alone();
}
void sfc_dist_finalize(void) { g_done = 1; }
void sfc_dist_sum_start(float *v, size_t n) { (void)v, (void)n; }
void sfc_dist_sum_ready(const float *from) { (void)from; }
void sfc_dist_grad_ready(void *ctx, const float *from)
{
    (void)ctx, (void)from;
}
void sfc_dist_sum_finish(void) {}
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
