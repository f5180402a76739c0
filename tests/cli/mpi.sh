# tests/cli/mpi.sh: sourced after lib.sh by the data-parallel tests.
#   need_mpi          exit 0 with "skip: ..." unless mpirun is installed
#                     (under CI=1 a missing mpirun fails);
#                     with tools built without MPI (SFC_MPI=0, set by make
#                     test from config.mk's MPI) check that they refuse to
#                     run as several ranks, then finish
#   mpi N CMD...      CMD as N ranks on this machine, one thread each
# Open MPI is set up for a container without a network or a login: shared
# memory between the ranks (btl self,vader, no single-copy mechanism, which
# needs ptrace rights), oversubscribed cores, root allowed.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_mpi_yield_when_idle=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# Open MPI's own allocations at exit are not ours (sanitizer build)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

need_mpi() {
    if ! command -v mpirun >/dev/null; then
        if [ -n "${CI:-}" ]; then
            fail "mpirun is not installed (CI must run the MPI tests)"
            finish
            exit
        fi
        echo "skip: mpirun is not installed (apt-get install openmpi-bin" \
            "libopenmpi-dev, then rebuild)"
        exit 0
    fi
    if [ "${SFC_MPI:-1}" = 0 ]; then
        echo "tools built without MPI: they must refuse to run as 2 ranks"
        mpi 2 sfc-segtrain train --images . --labels . x >"$T/.out" \
            2>"$T/.err"
        rc=$?
        check "refused: exit status $rc" test "$rc" -ne 0
        check "the refusal names the cause" grep -q \
            "^sfc-segtrain: started as one of 2 tasks (OMPI_COMM_WORLD_SIZE=2), but built without MPI" \
            "$T/.err"
        finish
        exit
    fi
}

mpi() {
    n=$1
    shift
    mpirun --oversubscribe --bind-to none -np "$n" "$@"
}
