#!/bin/sh
# Builds the libFuzzer harnesses with clang, AddressSanitizer and UBSan,
# compiling the project's filters/ sources straight in (no meson: meson's
# build replays tests/fuzz/regress/ through the same harnesses with
# replay.c instead of libFuzzer; CI runs the fuzzers built here).
#
#   tests/fuzz/build.sh [OUTDIR]      (default: build-fuzz at the top)
#
# Needs clang and its fuzzer runtime; on Debian 12:
#   apt-get install clang libclang-rt-14-dev   (or: llvm)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:-$top/build-fuzz}
CC=${CC:-clang}

if ! command -v "$CC" >/dev/null 2>&1; then
    echo "build.sh: $CC not found: apt-get install clang libclang-rt-14-dev" >&2
    exit 1
fi
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
    "$CC" -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
    echo "build.sh: $CC cannot link -fsanitize=fuzzer: apt-get install libclang-rt-14-dev" >&2
    exit 1
fi
mkdir -p "$out"

# -fno-sanitize-recover: undefined behaviour stops the fuzzer like a crash.
# float-cast-overflow is spelled out: an out-of-range double to unsigned is
# exactly the bug size arithmetic tends to have.
flags="-g -O1 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra
    -fsanitize=fuzzer,address,undefined,float-cast-overflow -fno-sanitize-recover=all
    -I$top/filters/include -I$top/filters -I$top/util"

# The pure parsers: no libvips.
# shellcheck disable=SC2086
"$CC" $flags -o "$out/fuzz_parsers" "$here/fuzz_parsers.c" \
    "$top/filters/sniff.c" "$top/filters/geometry.c" "$top/filters/ops.c" "$top/util/clock.c" -lm

# The image path: every filters/ source (the fast decoders included), on
# the system's libvips, libjpeg and libpng (not instrumented themselves).
# Some sources want meson's ib_config.h: the same values, from pkg-config.
vips_version=$(pkg-config --modversion vips)
version=$(sed -n "s/^ *version : '\(.*\)',\$/\1/p" "$top/meson.build")
cat >"$out/ib_config.h" <<END
#define IB_VERSION "$version"
#define IB_VIPS_VERSION "$vips_version"
#define IB_JPEG_VERSION "$(pkg-config --modversion libjpeg)"
#define IB_PNG_VERSION "$(pkg-config --modversion libpng)"
#define IB_VIPS_MODULE_DIR "$(pkg-config --variable=libdir vips)/vips-modules-${vips_version%.*}"
END
cflags=$(pkg-config --cflags vips libjpeg libpng libdeflate)
libs=$(pkg-config --libs vips libjpeg libpng libdeflate)
# shellcheck disable=SC2086
"$CC" $flags -I"$out" $cflags -o "$out/fuzz_probe" "$here/fuzz_probe.c" "$top"/filters/*.c "$top"/util/*.c \
    $libs -ldl -lm

# The fast decoders on their own, with libpng and libvips as references.
fast="$top/filters/fastpath.c $top/util/fileio.c"
# shellcheck disable=SC2086
"$CC" $flags -I"$out" $cflags -o "$out/fuzz_fastpng" "$here/fuzz_fastpng.c" "$here/pngref.c" \
    "$top/filters/fastpng.c" $fast $libs -lm
# shellcheck disable=SC2086
"$CC" $flags -I"$out" $cflags -o "$out/fuzz_fastjpeg" "$here/fuzz_fastjpeg.c" \
    "$top/filters/fastjpeg.c" $fast $libs -lm

echo "built $out/fuzz_parsers, fuzz_probe, fuzz_fastpng and fuzz_fastjpeg"
