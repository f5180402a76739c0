# t0700: sfc-irn train on the tiny fixture (tests/golden/irnnet/cli: four
# 64x64 toy images with their masks as IR labels) with a width-4 ResNet-50
# of random weights: writes the model (head keys fc_edge*, backbone keys
# resnet50.*), leaves no checkpoint, logs one train_log row per step with
# finite losses and a poly lr, records a finished runs row; a second run
# finds the model and does nothing; two runs give the same bytes, also
# with one thread.
# Needs: sqlite3.
. tests/cli/lib.sh
F=tests/golden/irnnet/cli
A="--images $F/images --ext .png --labels $F/labels --list $F/list.txt
   --width 4 --batch 2 --micro 1 --epochs 2 --crop 64 --radius 5 -q"

expect_ok sfc-irn train $A --out "$T/irn.safetensors" --db "$T/sfc.db"
check "model written" test -s "$T/irn.safetensors"
check "no checkpoint left" test ! -e "$T/irn.safetensors.ckpt"
check "head keys" grep -q '"fc_edge6.bias"' "$T/irn.safetensors"
check "backbone keys" grep -q '"resnet50.layer4.2.bn3.running_var"' "$T/irn.safetensors"
check "4 steps logged" test "$(sqlite3 "$T/sfc.db" \
    'SELECT count(*) FROM train_log WHERE loss > 0 AND loss < 100
       AND abs(loss - (loss_pos + loss_neg) / 2) < 1e-9')" = 4
check "poly lr" test "$(sqlite3 "$T/sfc.db" \
    'SELECT count(*) FROM train_log WHERE step = 0 AND lr = 0.1')" = 1
check "lr decays" test "$(sqlite3 "$T/sfc.db" \
    'SELECT count(*) FROM train_log a JOIN train_log b ON b.step = a.step + 1
      WHERE b.lr < a.lr')" = 3
check "run finished" test "$(sqlite3 "$T/sfc.db" \
    "SELECT status FROM runs WHERE tool = 'sfc-irn train'")" = ok

cp "$T/irn.safetensors" "$T/first"
expect_ok sfc-irn train $A --out "$T/irn.safetensors"
same_bytes "$T/first" "$T/irn.safetensors"

expect_ok sfc-irn train $A --out "$T/again.safetensors"
same_bytes "$T/first" "$T/again.safetensors"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
    expect_ok sfc-irn train $A --out "$T/one.safetensors"
same_bytes "$T/first" "$T/one.safetensors"
finish
