# t0002: a tool killed in the middle of writing an output (here by the
# kernel: SIGXFSZ from a file size limit, as uncatchable for the tool as
# SIGKILL) leaves its temporary ".<name>.tmp.<pid>.XXXXXX" beside the
# output and no output of that name; the next run writing into that
# folder removes the temporary (its writer is dead, lib/atomic.h) and
# writes the same bytes as a run never killed. The handler of SIGINT and
# SIGTERM is tested in test-core.c (a writer killed while its temporary
# is open leaves nothing).
# Needs: sfc-toygen, find, cmp.
. tests/cli/lib.sh
A="--size 64 --train 3 --val 1 -q"
expect_ok sfc-toygen --out "$T/ref" $A
# 2 blocks (1 or 2 KiB by the shell's unit): less than an image
(ulimit -f 2 && exec sfc-toygen --out "$T/k" $A) >/dev/null 2>&1
st=$?
check "killed by SIGXFSZ (status $st)" test "$st" -gt 128
left=$(find "$T/k" -name '.*.tmp.*' | wc -l)
check "the killed run left a temporary ($left)" test "$left" = 1
tmp=$(find "$T/k" -name '.*.tmp.*')
out=$(dirname "$tmp")/$(basename "$tmp" | sed 's/^\.\(.*\)\.tmp\.[0-9]*\.[^.]*$/\1/')
check "no output where it was killed ($out)" test ! -e "$out"
expect_ok sfc-toygen --out "$T/k" $A
check "the next run removed it" test -z "$(find "$T/k" -name '.*.tmp.*')"
for f in $(cd "$T/ref" && find . -type f); do
    same_bytes "$T/ref/$f" "$T/k/$f"
done
check "the same files" test "$(cd "$T/ref" && find . | sort)" = \
    "$(cd "$T/k" && find . | sort)"
finish
