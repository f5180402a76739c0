#!/bin/sh
# Run every C test program and every CLI test script; print one line per
# test and end with "N passed, N failed". Exit status 1 if any failed.
#
# Environment: SFC_BIN (tools), SFC_TESTBIN (test programs). SFC_ORACLE is
# set to Debian's python3 when it has torch and numpy, so tests that have
# an oracle script under tests/ref/ also check against fresh random cases.
# Pass a pattern as $1 to run only the tests whose name contains it.
# Logs of failed tests are printed; all logs stay in $SFC_TESTLOG. A test
# program that drew fresh random cases names their seed at the end of a
# failed run; SFC_TEST_SEED=S replays it (tests/test.h test_fresh_seed).

: "${SFC_BIN:=bin}"
: "${SFC_TESTBIN:=build/tests}"
mkdir -p "$SFC_BIN"
SFC_BIN=$(cd "$SFC_BIN" && pwd)
SFC_TESTBIN=$(cd "$SFC_TESTBIN" 2>/dev/null && pwd)
export SFC_BIN SFC_TESTBIN
if [ -z "${SFC_ORACLE+x}" ]; then
    if /usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1; then
        SFC_ORACLE=/usr/bin/python3
    else
        SFC_ORACLE=
        echo "note: no python3-torch oracle; using tests/golden/ only" >&2
    fi
fi
export SFC_ORACLE
# Idle OpenMP threads sleep instead of spinning: spinning OpenMP and
# OpenBLAS thread pools starve each other on a busy 2-core machine.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
# Tests that run make themselves (pipelines) start their own: the outer
# make's jobserver (make -j2 test) is not passed down to a plain recipe.
unset MAKEFLAGS MFLAGS MAKELEVEL
SFC_TESTLOG=${SFC_TESTLOG:-$(mktemp -d "${TMPDIR:-/tmp}/sfc-testlog-XXXXXX")}
export SFC_TESTLOG
pattern="$1"
pass=0
fail=0
failed=""

run_one() {
    name=$1
    shift
    case "$name" in *"$pattern"*) ;; *) return ;; esac
    log="$SFC_TESTLOG/$name.log"
    t0=$(date +%s)
    if "$@" >"$log" 2>&1; then
        pass=$((pass + 1))
        echo "ok   $name ($(($(date +%s) - t0))s)"
    else
        fail=$((fail + 1))
        failed="$failed $name"
        echo "FAIL $name ($(($(date +%s) - t0))s)"
        sed 's/^/    | /' "$log" | tail -40
    fi
}

for t in "$SFC_TESTBIN"/test-*; do
    [ -x "$t" ] || continue
    run_one "$(basename "$t")" "$t"
done
for s in tests/cli/t[0-9]*.sh; do
    [ -f "$s" ] || continue
    run_one "$(basename "$s" .sh)" sh "$s"
done
[ -n "$failed" ] && echo "failed:$failed"
echo "logs: $SFC_TESTLOG"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
