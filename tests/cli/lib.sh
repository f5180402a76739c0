# tests/cli/lib.sh: helpers for the CLI test scripts (sourced, POSIX sh).
#   expect_ok CMD...        run, fail the test unless the exit status is 0
#   expect_fail N CMD...    run, fail unless the exit status is N and stderr
#                           is exactly one line naming the program
#   same_bytes A B          fail unless files A and B are identical
#   check COND-CMD... MSG   fail with MSG unless the command succeeds
# Every script ends with `finish`, whose status is the verdict. Tools are
# run from $SFC_BIN; $T is a fresh scratch directory removed at exit.
set -u
: "${SFC_BIN:?SFC_BIN must point at the tools}"
PATH="$SFC_BIN:$PATH"
T=$(mktemp -d "${TMPDIR:-/tmp}/sfc-cli-XXXXXX")
trap 'rm -rf "$T"' EXIT
nfail=0
nchecks=0

fail() {
    echo "FAIL: $*" >&2
    nfail=$((nfail + 1))
}

expect_ok() {
    nchecks=$((nchecks + 1))
    if ! "$@" >"$T/.out" 2>"$T/.err"; then
        fail "expected success: $*"
        sed 's/^/    /' "$T/.err" >&2
    fi
}

expect_fail() {
    want=$1
    shift
    nchecks=$((nchecks + 1))
    "$@" >"$T/.out" 2>"$T/.err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        fail "expected exit $want, got $got: $*"
        sed 's/^/    /' "$T/.err" >&2
        return
    fi
    lines=$(wc -l <"$T/.err")
    prog=$(basename "$1")
    if [ "$lines" -ne 1 ] || ! grep -q "^$prog: " "$T/.err"; then
        fail "expected one stderr line starting '$prog: ', got:"
        sed 's/^/    /' "$T/.err" >&2
    fi
}

# stderr of the last expect_* contains a string
stderr_has() {
    nchecks=$((nchecks + 1))
    grep -q -- "$1" "$T/.err" || fail "stderr lacks '$1': $(cat "$T/.err")"
}

same_bytes() {
    nchecks=$((nchecks + 1))
    cmp -s "$1" "$2" || fail "files differ: $1 $2"
}

check() {
    msg=$1
    shift
    nchecks=$((nchecks + 1))
    "$@" || fail "$msg"
}

finish() {
    echo "$nchecks checks, $nfail failed"
    [ "$nfail" -eq 0 ]
}
