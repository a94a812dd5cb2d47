#!/usr/bin/env bash
# `sudo make demo`: starts the bundled tokio demo service (tasks that finish, tasks that keep
# their buffers while sleeping forever, aborted tasks, parents and children, a churn of short
# tasks), attaches memscoped before it gets going, and prints the report after 5 seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: memscoped loads BPF programs: run 'sudo make demo'" >&2
	exit 1
fi
dir=$(mktemp -d)
"$BUILD/tokio-out/tokio-target-v0" all --rt multi --go-file "$dir/go" >"$dir/target.log" &
target=$!
trap 'kill $target 2>/dev/null || true; rm -rf "$dir"' EXIT
# The service starts its work a second after memscoped attached.
(sleep 1 && touch "$dir/go") &
echo "demo: tracing the tokio demo service (pid $target) for 5 seconds..." >&2
"$BUILD/memscoped" --pid "$target" --duration 5 --interval 1 --stuck-after 2 \
	--report "$BUILD/demo-report.json"
echo "demo: JSON report written to $BUILD/demo-report.json" >&2
