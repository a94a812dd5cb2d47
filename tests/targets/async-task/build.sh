#!/bin/sh
# Build the async-task test targets (async-std 1.12 and smol 1.3), offline, and copy them to
#   OUTDIR/async-std-target-{release,strip,v0,debuglink}  OUTDIR/smol-target-{...}
#   OUTDIR/debug/.build-id/xx/yyyy.debug   (debug files of the debuglink variants)
# release: legacy symbols (no DWARF); strip: none; v0: v0-mangled symbols (generic arguments);
# debuglink: stripped, its symbols and DWARF in a separate debug file found by build-id.
#
# Needs: cargo+rustc (Debian's, or rustup's in ~/.cargo/bin), apt packages
# librust-async-std-dev librust-smol-dev librust-libc-dev (sources in
# /usr/share/cargo/registry). No network. Build artefacts go to $CARGO_TARGET_DIR
# (default: <repo>/build/async-task), never into the source tree.
#
# usage: tests/targets/async-task/build.sh OUTDIR [release|strip|v0|debuglink ...]
set -eu

if [ $# -lt 1 ]; then
    echo "usage: $0 OUTDIR [release|strip|v0|debuglink ...]" >&2
    exit 2
fi
OUTDIR=$1
shift
VARIANTS=${*:-release strip v0 debuglink}

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
TD=${CARGO_TARGET_DIR:-$REPO/build/async-task}
mkdir -p "$OUTDIR" "$TD"
OUTDIR=$(cd "$OUTDIR" && pwd)

. "$HERE/../offline-cargo.sh"
offline_cargo "librust-async-std-dev librust-smol-dev" async-std-1.12.0 smol-1.3.0 async-task-4.3.0

cd "$HERE" # .cargo/config.toml here selects the offline Debian source
unset CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS RUSTC_WRAPPER 2>/dev/null || true

for v in $VARIANTS; do
    case $v in
    release | strip) profile=$v sub=legacy flags= ;;
    v0) profile=release sub=v0 flags="-C symbol-mangling-version=v0" ;;
    debuglink) profile=dbgfile sub=legacy flags= ;;
    *)
        echo "build.sh: unknown variant $v" >&2
        exit 2
        ;;
    esac
    t0=$(date +%s)
    RUSTFLAGS=$flags CARGO_TARGET_DIR=$TD/$sub cargo build --locked --offline \
        --profile "$profile" --bin async-std-target --bin smol-target
    for b in async-std-target smol-target; do
        # Rename into place: a running copy (a test target) must not block the update.
        cp "$TD/$sub/$profile/$b" "$OUTDIR/$b-$v.tmp"
        if [ "$v" = debuglink ]; then
            bid=$(readelf -n "$OUTDIR/$b-$v.tmp" | sed -n 's/.*Build ID: *\([0-9a-f]*\).*/\1/p' | head -n1)
            [ -n "$bid" ] || { echo "build.sh: no GNU build-id in $b" >&2; exit 1; }
            dbg=$OUTDIR/debug/.build-id/$(echo "$bid" | cut -c1-2)/$(echo "$bid" | cut -c3-).debug
            mkdir -p "$(dirname "$dbg")"
            objcopy --only-keep-debug "$OUTDIR/$b-$v.tmp" "$dbg"
            objcopy --strip-all --add-gnu-debuglink="$dbg" "$OUTDIR/$b-$v.tmp"
        fi
        mv -f "$OUTDIR/$b-$v.tmp" "$OUTDIR/$b-$v"
    done
    echo "build.sh: $OUTDIR/{async-std,smol}-target-$v ($(($(date +%s) - t0)) s)"
done
