#!/usr/bin/env bash
# `sudo make demo`: starts the bundled demo service, attaches memscoped for a few seconds,
# and prints its report.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: memscoped loads BPF programs: run 'sudo make demo'" >&2
	exit 1
fi
"$BUILD/targets/demo_alloc" &
target=$!
trap 'kill $target 2>/dev/null || true' EXIT
sleep 0.5
echo "demo: tracing the demo service (pid $target) for 5 seconds..." >&2
"$BUILD/memscoped" --pid "$target" --duration 5 --interval 1 --report "$BUILD/demo-report.json"
echo "demo: JSON report written to $BUILD/demo-report.json" >&2
