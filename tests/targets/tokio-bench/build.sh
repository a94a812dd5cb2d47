#!/bin/sh
# Build the memscoped benchmark targets, offline, and copy them to
#   OUTDIR/tokio-bench        churn, heap and sleepers modes (src/main.rs)
#   OUTDIR/tokio-bench-types  1000 distinct future types (src/types.rs)
#
# Needs what tests/targets/tokio/build.sh needs: cargo+rustc (rustup, ~/.cargo/bin) and the
# apt packages librust-tokio-dev librust-libc-dev (sources in /usr/share/cargo/registry).
# No network. Artefacts go to $CARGO_TARGET_DIR (default: <repo>/build/tokio-bench), never
# into the source tree. A cold build takes about 3 minutes on 2 cores, almost all of it for
# tokio-bench-types (2000 monomorphized task harnesses); a warm one a second.
#
# usage: tests/targets/tokio-bench/build.sh OUTDIR
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
OUTDIR=$1

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
TD=${CARGO_TARGET_DIR:-$REPO/build/tokio-bench}
mkdir -p "$OUTDIR" "$TD"
OUTDIR=$(cd "$OUTDIR" && pwd)

. "$HERE/../offline-cargo.sh"
offline_cargo "librust-tokio-dev librust-libc-dev" tokio-1.24.2

cd "$HERE" # .cargo/config.toml here selects the offline Debian source
# Do not let a caller's environment change the build (RUSTFLAGS would replace the config's).
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS RUSTC_WRAPPER 2>/dev/null || true
t0=$(date +%s)
CARGO_TARGET_DIR=$TD cargo build --locked --offline --release
for bin in tokio-bench tokio-bench-types; do
    # Rename into place: a running copy must not block the update.
    cp "$TD/release/$bin" "$OUTDIR/$bin.tmp"
    mv -f "$OUTDIR/$bin.tmp" "$OUTDIR/$bin"
done
echo "build.sh: $OUTDIR/tokio-bench $OUTDIR/tokio-bench-types ($(($(date +%s) - t0)) s)"
