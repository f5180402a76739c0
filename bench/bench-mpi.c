/* SPDX-License-Identifier: MIT */
/* bench-mpi: the data-parallel gradient sum alone (lib/dist.h's
 * sfc_dist_sum_float: reduce-scatter + allgather over MPI).
 *   mpirun -np R bench-mpi N REPS
 * sums a block of N floats REPS times after one warm-up, each call after a
 * barrier (so it times the sum, not a late rank), checks the result (rank
 * r contributes r + 1 + i mod 7 at element i) and prints on rank 0:
 *   ranks N median_ms min_ms */
#include <stdio.h>
#include <stdlib.h>

#include "dist.h"
#include "sfc.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    sfc_proginit(argv[0]);
    if (argc != 3) sfc_die_status(2, "usage: bench-mpi N REPS");
    long n = atol(argv[1]);
    int reps = atoi(argv[2]);
    if (n < 1 || reps < 1) sfc_die_status(2, "N and REPS must be positive");
    sfc_dist_init();
    int rank = sfc_dist_rank(), size = sfc_dist_size();
    float *v = sfc_xmalloc(sizeof(float) * (size_t)n);
    double *ms = sfc_xmalloc(sizeof(double) * (size_t)reps);
    for (int r = -1; r < reps; r++) {
        for (long i = 0; i < n; i++) v[i] = (float)(rank + 1 + i % 7);
        sfc_dist_barrier();
        double t0 = sfc_now();
        sfc_dist_sum_float(v, (size_t)n);
        double t = sfc_now() - t0;
        if (r >= 0) ms[r] = 1e3 * t;
        for (long i = 0; i < n; i++) {
            double want = size * (size + 1) / 2.0 + (double)size * (i % 7);
            if (v[i] != (float)want)
                sfc_die("element %ld is %g, expected %g", i, v[i], want);
        }
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    if (rank == 0) printf("%d %ld %.3f %.3f\n", size, n, ms[reps / 2], ms[0]);
    free(v);
    free(ms);
    sfc_dist_finalize();
    return sfc_fshut(stdout, "<stdout>");
}
