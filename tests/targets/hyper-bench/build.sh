#!/bin/sh
# Build the memscoped HTTP benchmark target, offline, and copy it to OUTDIR/hyper-bench
# (src/main.rs: a hyper 0.14 HTTP/1 server on tokio; scripts/bench/http.py drives it).
#
# Needs cargo+rustc (rustup, ~/.cargo/bin) and the apt packages librust-hyper-dev
# librust-tokio-dev (sources in /usr/share/cargo/registry). No network. Artefacts go to
# $CARGO_TARGET_DIR (default: <repo>/build/hyper-bench), never into the source tree.
#
# usage: tests/targets/hyper-bench/build.sh OUTDIR
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
OUTDIR=$1

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
TD=${CARGO_TARGET_DIR:-$REPO/build/hyper-bench}
mkdir -p "$OUTDIR" "$TD"
OUTDIR=$(cd "$OUTDIR" && pwd)

. "$HERE/../offline-cargo.sh"
offline_cargo "librust-hyper-dev librust-tokio-dev" hyper-0.14.19

cd "$HERE" # .cargo/config.toml here selects the offline Debian source
# Do not let a caller's environment change the build (RUSTFLAGS would replace the config's).
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS RUSTC_WRAPPER 2>/dev/null || true
t0=$(date +%s)
CARGO_TARGET_DIR=$TD cargo build --locked --offline --release
# Rename into place: a running copy must not block the update.
cp "$TD/release/hyper-bench" "$OUTDIR/hyper-bench.tmp"
mv -f "$OUTDIR/hyper-bench.tmp" "$OUTDIR/hyper-bench"
echo "build.sh: $OUTDIR/hyper-bench ($(($(date +%s) - t0)) s)"
