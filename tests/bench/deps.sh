# shellcheck shell=bash
# Sourced by tests/bench/run and tests/bench/make-photos: install what the
# benchmark needs when it is missing. Nothing here is fatal: a peer that
# cannot be installed is reported by the benchmark and skipped.

bench_log() { printf '%s\n' "bench: $*" >&2; }

if [ "$(id -u)" = 0 ]; then BENCH_SUDO=; else BENCH_SUDO=sudo; fi
BENCH_APT_UPDATED=

# bench_apt PKG...: install the Debian packages that have a candidate,
# running apt-get update once first. Packages apt does not know are named
# and skipped.
bench_apt() {
    command -v apt-get >/dev/null 2>&1 || { bench_log "no apt-get: install $* yourself"; return 0; }
    if [ -n "$BENCH_SUDO" ] && ! command -v sudo >/dev/null 2>&1; then
        bench_log "not root and no sudo: cannot install $*"; return 0
    fi
    if [ -z "$BENCH_APT_UPDATED" ]; then
        bench_log "apt-get update"
        $BENCH_SUDO apt-get update -qq >/dev/null 2>&1 || bench_log "apt-get update failed"
        BENCH_APT_UPDATED=1
    fi
    local pkg have=()
    for pkg in "$@"; do
        if apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [^(]'; then
            have+=("$pkg")
        else
            bench_log "Debian has no package $pkg here: skipped"
        fi
    done
    [ ${#have[@]} -gt 0 ] || return 0
    bench_log "apt-get install ${have[*]}"
    if ! DEBIAN_FRONTEND=noninteractive $BENCH_SUDO apt-get install -y -qq "${have[@]}" >/dev/null 2>&1; then
        # One package that fails must not keep the others out.
        for pkg in "${have[@]}"; do
            DEBIAN_FRONTEND=noninteractive $BENCH_SUDO apt-get install -y -qq "$pkg" >/dev/null 2>&1 \
                || bench_log "apt-get install $pkg failed"
        done
    fi
}

bench_has_pil() { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import PIL' 2>/dev/null; }

# The tools make-photos needs: vips and Debian's python3.
bench_need_make_photos() {
    local want=()
    command -v vips >/dev/null 2>&1 || want+=(libvips-tools)
    [ -x /usr/bin/python3 ] || want+=(python3)
    [ ${#want[@]} -eq 0 ] || bench_apt "${want[@]}"
}

# Every peer, and Pillow, which the harness itself uses to check outputs.
bench_need_peers() {
    local want=()
    [ -x /usr/bin/python3 ] || want+=(python3)
    bench_has_pil || want+=(python3-pil)
    command -v vipsthumbnail >/dev/null 2>&1 || want+=(libvips-tools)
    [ -x /usr/bin/mogrify ] || want+=(imagemagick)
    command -v gm >/dev/null 2>&1 || want+=(graphicsmagick)
    [ -x /usr/bin/imgp ] || want+=(imgp)
    command -v xargs >/dev/null 2>&1 || want+=(findutils)
    command -v node >/dev/null 2>&1 || want+=(nodejs)
    command -v npm >/dev/null 2>&1 || want+=(npm)
    [ ${#want[@]} -eq 0 ] || bench_apt "${want[@]}"
}

# sharp into an npm prefix of its own (default tests/bench/.node). Its
# prebuilt libvips comes inside registry packages (@img/sharp-*).
bench_need_sharp() {
    local prefix=$1
    command -v node >/dev/null 2>&1 || return 0
    if NODE_PATH="$prefix/node_modules" node -e "require('sharp')" >/dev/null 2>&1; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 || { bench_log "no npm: sharp skipped"; return 0; }
    # sharp 0.35 wants node >= 20.9; Debian 12's node 18 gets 0.34.
    local spec=${IMGBATCH_BENCH_SHARP:-}
    if [ -z "$spec" ]; then
        if node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=9)?0:1)'; then
            spec=sharp@0.35
        else
            spec=sharp@0.34
        fi
    fi
    bench_log "npm install --prefix $prefix $spec"
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "$spec" >&2 \
        || bench_log "npm install $spec failed: sharp skipped"
}

# A release build of this checkout, outside the source tree; ninja makes it
# incremental. Prints the binary's path.
bench_build_imgbatch() {
    local repo=$1 build=$2 libvips=${3:-bundled}
    if ! command -v meson >/dev/null 2>&1 || ! command -v ninja >/dev/null 2>&1 \
        || ! pkg-config --exists vips libpng libjpeg 2>/dev/null; then
        bench_apt meson ninja-build pkg-config gcc libc6-dev libvips-dev libpng-dev libjpeg62-turbo-dev libdeflate-dev
    fi
    if [ ! -f "$build/build.ninja" ]; then
        bench_log "meson setup $build --buildtype=release -Dtests=false -Dlibvips=$libvips"
        meson setup "$build" "$repo" --buildtype=release -Dtests=false -Dlibvips="$libvips" >&2 \
            || return 1
    else
        meson configure "$build" -Dlibvips="$libvips" >&2 || return 1
    fi
    bench_log "ninja -C $build"
    ninja -C "$build" >&2 || return 1
    printf '%s\n' "$build/app/imgbatch"
}
