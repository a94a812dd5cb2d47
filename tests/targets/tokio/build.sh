#!/bin/sh
# Build every variant of the tokio test target, offline, and copy them to
#   OUTDIR/tokio-target-{release,strip,lto,v0,selfcheck,debuglink,shared}
#   OUTDIR/tokio-target-{jemalloc,mimalloc}[-strip]   (#[global_allocator] over Debian's libs)
#   OUTDIR/libtokio_target.so   (all of tokio-target-shared but a C main)
#   OUTDIR/debug/.build-id/xx/yyyy.debug   (debug file of tokio-target-debuglink)
#
# Needs: cargo+rustc (rustup, ~/.cargo/bin), apt packages librust-tokio-dev
# librust-libc-dev (sources in /usr/share/cargo/registry), binutils (objcopy,
# readelf). No network. Build artefacts go to $CARGO_TARGET_DIR
# (default: <repo>/build/tokio), never into the source tree.
#
# usage: tests/targets/tokio/build.sh OUTDIR [variant...]
#   variants: release strip lto v0 selfcheck debuglink shared jemalloc jemalloc-strip
#             mimalloc mimalloc-strip (default: all)
set -eu

if [ $# -lt 1 ]; then
    echo "usage: $0 OUTDIR [release|strip|lto|v0|selfcheck|debuglink|shared|jemalloc|jemalloc-strip|mimalloc|mimalloc-strip ...]" >&2
    exit 2
fi
OUTDIR=$1
shift
VARIANTS=${*:-release strip lto v0 selfcheck debuglink shared jemalloc jemalloc-strip mimalloc mimalloc-strip}

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
TD=${CARGO_TARGET_DIR:-$REPO/build/tokio}
mkdir -p "$OUTDIR" "$TD"
OUTDIR=$(cd "$OUTDIR" && pwd)

. "$HERE/../offline-cargo.sh"
offline_cargo "librust-tokio-dev librust-libc-dev" tokio-1.24.2

cd "$HERE" # .cargo/config.toml here selects the offline Debian source
# RUSTFLAGS (env) replaces config build.rustflags: always pass the full set.
BASEFLAGS="--cfg tokio_unstable"
# Do not let a caller's environment change the build.
unset CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS RUSTC_WRAPPER 2>/dev/null || true

build() { # name profile subdir rustflags [cargo args...]
    name=$1 profile=$2 sub=$3 flags=$4
    shift 4
    t0=$(date +%s)
    RUSTFLAGS=$flags CARGO_TARGET_DIR=$TD/$sub \
        cargo build --locked --offline --profile "$profile" --bin tokio-target "$@"
    dir=$profile
    [ "$profile" = dev ] && dir=debug
    # Rename into place: a running copy (a test target) must not block the update.
    cp "$TD/$sub/$dir/tokio-target" "$OUTDIR/tokio-target-$name.tmp"
    mv -f "$OUTDIR/tokio-target-$name.tmp" "$OUTDIR/tokio-target-$name"
    echo "build.sh: $OUTDIR/tokio-target-$name ($(($(date +%s) - t0)) s)"
}

for v in $VARIANTS; do
    case $v in
    release) build release release legacy "$BASEFLAGS" ;;
    strip) build strip strip legacy "$BASEFLAGS" ;;
    lto) build lto lto legacy "$BASEFLAGS" ;;
    v0) build v0 release v0 "$BASEFLAGS -C symbol-mangling-version=v0" ;;
    selfcheck) build selfcheck release selfcheck "$BASEFLAGS" --features selfcheck ;;
    # #[global_allocator] over Debian's libjemalloc2 / libmimalloc2.0 through FFI.
    jemalloc) build jemalloc release jemalloc "$BASEFLAGS" --features jemalloc ;;
    jemalloc-strip) build jemalloc-strip strip jemalloc "$BASEFLAGS" --features jemalloc ;;
    mimalloc) build mimalloc release mimalloc "$BASEFLAGS" --features mimalloc ;;
    mimalloc-strip) build mimalloc-strip strip mimalloc "$BASEFLAGS" --features mimalloc ;;
    debuglink)
        build debuglink-full dbgfile legacy "$BASEFLAGS"
        full=$OUTDIR/tokio-target-debuglink-full
        bid=$(readelf -n "$full" | sed -n 's/.*Build ID: *\([0-9a-f]*\).*/\1/p' | head -n1)
        [ -n "$bid" ] || { echo "build.sh: no GNU build-id in $full" >&2; exit 1; }
        dbg=$OUTDIR/debug/.build-id/$(echo "$bid" | cut -c1-2)/$(echo "$bid" | cut -c3-).debug
        mkdir -p "$(dirname "$dbg")"
        objcopy --only-keep-debug "$full" "$dbg"
        objcopy --strip-all --add-gnu-debuglink="$dbg" "$full" "$OUTDIR/tokio-target-debuglink.tmp"
        mv -f "$OUTDIR/tokio-target-debuglink.tmp" "$OUTDIR/tokio-target-debuglink"
        rm -f "$full"
        echo "build.sh: $OUTDIR/tokio-target-debuglink (stripped) + $dbg"
        ;;
    shared)
        t0=$(date +%s)
        RUSTFLAGS=$BASEFLAGS CARGO_TARGET_DIR=$TD/shared \
            cargo build --locked --offline --release --lib
        cp "$TD/shared/release/libtokio_target.so" "$OUTDIR/libtokio_target.so.tmp"
        mv -f "$OUTDIR/libtokio_target.so.tmp" "$OUTDIR/libtokio_target.so"
        ${CC:-cc} -O2 -o "$OUTDIR/tokio-target-shared.tmp" "$HERE/host.c" -L"$OUTDIR" \
            -ltokio_target -Wl,-rpath,'$ORIGIN'
        mv -f "$OUTDIR/tokio-target-shared.tmp" "$OUTDIR/tokio-target-shared"
        echo "build.sh: $OUTDIR/tokio-target-shared + libtokio_target.so ($(($(date +%s) - t0)) s)"
        ;;
    *)
        echo "build.sh: unknown variant $v" >&2
        exit 2
        ;;
    esac
done
