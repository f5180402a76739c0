# t0001: every tool answers --help on stdout with status 0, --version,
# and rejects an unknown option with exit 2 and one stderr line.
. tests/cli/lib.sh
for tool in "$SFC_BIN"/sfc-*; do
    [ -x "$tool" ] || continue
    name=$(basename "$tool")
    expect_ok "$tool" --help
    check "$name --help prints usage" grep -q '^usage: ' "$T/.out"
    expect_ok "$tool" --version
    check "$name --version" grep -q "^$name " "$T/.out"
    expect_fail 2 "$tool" --no-such-option
done
finish
