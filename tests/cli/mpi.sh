# tests/cli/mpi.sh: sourced after lib.sh by the data-parallel tests.
#   need_mpi          exit 0 with "skip: ..." unless mpirun is installed
#                     (under CI=1 a missing mpirun fails);
#                     with tools built without MPI (SFC_MPI=0, set by make
#                     test from config.mk's MPI) check that they refuse to
#                     run as several ranks, then finish
#   mpi N CMD...      CMD as N ranks on this machine, one thread each
#   close A B         safetensors A and B equal within 1e-5 relative per
#                     tensor (tests/cli/st-close.py); far A B: not close
#   killed_then_resumed KN RN REF CMD...
#                     CMD (sfc-irn train or sfc-segtrain train with its
#                     options, 20 steps) writing $T/k.st with a checkpoint
#                     every 2 steps on KN ranks, SIGKILL injected (strace)
#                     into rank 0 at its 5th checkpoint rename (mpirun then
#                     ends the others); resumed on RN ranks: it must resume
#                     at step 8 and end within 1e-5 of REF
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

close() { /usr/bin/python3 tests/cli/st-close.py "$@"; }
far() { ! close "$@" >/dev/null; }

killed_then_resumed() {
    kn=$1 rn=$2 ref=$3
    shift 3
    strace -f -o /dev/null -e trace=rename,renameat,renameat2 \
        -e inject=rename,renameat,renameat2:signal=KILL:when=5 \
        mpirun --oversubscribe --bind-to none -np "$kn" \
        "$@" -q --out "$T/k.st" --checkpoint-every 2 >/dev/null 2>&1
    check "killed before the end" test ! -e "$T/k.st"
    check "a checkpoint survived" test -s "$T/k.st.ckpt"
    expect_ok mpi "$rn" "$@" --out "$T/k.st" --checkpoint-every 2
    stderr_has "resuming at step 8 of 20"
    check "killed on $kn ranks, resumed on $rn: weights within 1e-5" \
        close "$ref" "$T/k.st"
}
