# t1103: a launcher that starts several tasks which MPI does not join into
# one job (srun -n 3 without --mpi=pmix, or a build without MPI) would run
# 3 independent one-process trainings that overwrite each other's
# checkpoints and db rows. Each training tool must refuse with one line
# naming the fix, before it touches a file: the db keeps its bytes and no
# output appears. The launcher is imitated by its environment (srun sets
# SLURM_STEP_NUM_TASKS in each task; the MPI=0 build also reads
# OMPI_COMM_WORLD_SIZE and PMI_SIZE, which the MPI build cannot fake
# without a real launcher); t1310 does it with a real srun. One task
# (SLURM_STEP_NUM_TASKS=1, or only an allocation's SLURM_NTASKS) runs.
# Needs: nothing beyond the tools.
. tests/cli/lib.sh

expect_ok sfc-toygen --out "$T/toy" --size 32 --train 8 --val 2 \
    --classes 3 --seed 3 -q
expect_ok sfc-ingest --db "$T/db" -q "$T/toy"
expect_ok sfc-sample --db "$T/db" --split train --epochs 1 --batch 4 \
    --draws 0 --crop 32 --seed 1 -q
cp "$T/db" "$T/db.before"
D="$T/toy"
NET="--blocks 1,1,1,1 --width 4"
if [ "${SFC_MPI:-1}" = 0 ]; then
    fix="built without MPI: each task would train alone and overwrite the others' files; rebuild with MPI"
    vars="SLURM_STEP_NUM_TASKS OMPI_COMM_WORLD_SIZE PMI_SIZE"
else
    fix="MPI sees one rank: each task would train alone and overwrite the others' files; start it with mpirun -np 3, or srun --mpi=pmix"
    vars=SLURM_STEP_NUM_TASKS
fi
for v in $vars; do
    export "$v=3"
    expect_fail 1 sfc-trainstep --db "$T/db" --out "$T/cls" $NET
    stderr_has "sfc-trainstep: started as one of 3 tasks ($v=3), but $fix"
    expect_fail 1 sfc-irn train --db "$T/db" --split train \
        --labels "$T/none" --out "$T/irn.st" --width 4
    stderr_has "sfc-irn: started as one of 3 tasks ($v=3), but $fix"
    expect_fail 1 sfc-segtrain train --images "$D/JPEGImages" \
        --labels "$D/SegmentationClass" --db "$T/db" --out "$T/seg.st" \
        --classes 4 --width 4 --blocks 1,1,1,1
    stderr_has "sfc-segtrain: started as one of 3 tasks ($v=3), but $fix"
    unset "$v"
done
same_bytes "$T/db.before" "$T/db"
check "no output written" test ! -e "$T/cls" -a ! -e "$T/irn.st" \
    -a ! -e "$T/irn.st.ckpt" -a ! -e "$T/seg.st" -a ! -e "$T/seg.st.ckpt"
check "no -wal or -journal beside the db" test ! -e "$T/db-wal" \
    -a ! -e "$T/db-journal"

# one task, or an allocation's shell (SLURM_NTASKS without a step): runs
expect_ok env SLURM_STEP_NUM_TASKS=1 SLURM_NTASKS=3 sfc-trainstep \
    --db "$T/db" --out "$T/cls" $NET --steps 1 -q
check "one task trains" test -s "$T/cls/ckpt.safetensors"
finish
