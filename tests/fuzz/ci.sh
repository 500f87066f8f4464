#!/bin/sh
# Runs the libFuzzer harnesses that tests/fuzz/build.sh made, each for a
# fixed time, as CI does: the fast decoders for a minute each, the parsers
# and the image path briefly. Any finding (crash, leak, timeout, a broken
# promise of a harness) stops it with status 1 and leaves the input in
# OUTDIR/findings/.
#
#   tests/fuzz/ci.sh [OUTDIR]      (default: build-fuzz at the top)
#
# IB_FUZZ_SECONDS sets the fast decoders' time (default 60); the others
# get a quarter and a third of it. Seeds are tests/fuzz/regress/, the
# samples, and ../shared/corpus when it is there.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:-$top/build-fuzz}
seconds=${IB_FUZZ_SECONDS:-60}
shared=$top/../shared/corpus
mkdir -p "$out/findings"

# seeds NAME FILE...: a fresh directory of seed inputs for one harness.
seeds() {
    dir="$out/seeds-$1"
    shift
    rm -rf "$dir"
    mkdir -p "$dir"
    for f in "$@"; do
        if [ -f "$f" ]; then cp "$f" "$dir/"; fi
    done
}

# run NAME SECONDS [libFuzzer options]: fuzzes from the seeds, prints the
# final figures, fails on a finding.
run() {
    name=$1
    secs=$2
    shift 2
    mkdir -p "$out/corpus-$name"
    echo "== fuzz_$name for ${secs}s"
    if ! nice -n 10 "$out/fuzz_$name" "$out/corpus-$name" "$out/seeds-$name" \
        -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="$out/findings/$name-" "$@" >"$out/fuzz_$name.log" 2>&1; then
        tail -n 60 "$out/fuzz_$name.log"
        echo "fuzz_$name: a finding, in $out/findings/ (see tests/fuzz/README.md)" >&2
        exit 1
    fi
    grep -E '^#[0-9]+[[:space:]]+DONE' "$out/fuzz_$name.log" || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
        "$out/fuzz_$name.log" | tr '\n' ' '
    echo
}

# add_jpegs NAME: the small JPEGs of the samples and the shared corpus.
add_jpegs() {
    find "$top/samples" "$shared" -iname '*.jp*g' -size -64k -exec cp {} "$out/seeds-$1/" \; \
        2>/dev/null || true
}

seeds fastpng "$here"/regress/fastpng-*
run fastpng "$seconds" -max_len=4096
seeds fastjpeg "$here"/regress/fastjpeg-*
add_jpegs fastjpeg
run fastjpeg "$seconds" -max_len=65536 -timeout=10
seeds parsers "$here"/regress/parsers-*
run parsers $((seconds / 4)) -dict="$here/parsers.dict"
seeds probe "$here"/regress/probe-* "$top"/samples/*.png
add_jpegs probe
export LSAN_OPTIONS="suppressions=$here/lsan.supp"
export ASAN_OPTIONS=malloc_context_size=4:quarantine_size_mb=16
run probe $((seconds / 3)) -max_len=65536 -timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=4096
echo "fuzzing: no findings"
