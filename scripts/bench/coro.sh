#!/usr/bin/env bash
# The cost memscoped adds to a coroutine switch and to an allocation made inside a coroutine:
# coro_bench (ucontext) untraced, under memscoped with --runtime none (allocator probes only)
# and with --runtime ucontext, interleaved BENCH_REPS times (default 5); prints the medians,
# the added cost per switch and per malloc+free pair, and the ratios to the untraced run.
# Runs as root after `make` (needs $BUILD/memscoped and $BUILD/bench/coro_bench).
set -euo pipefail

BUILD=${BUILD:-build}
REPS=${BENCH_REPS:-5}
BENCH=$BUILD/bench/coro_bench
MEMSCOPED=$BUILD/memscoped
ROUNDS=${CORO_ROUNDS:-100000}

die() {
	echo "coro.sh: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
[ -x "$BENCH" ] || die "build first: make $BENCH"
[ -x "$MEMSCOPED" ] || die "build first: make $MEMSCOPED"

tmp=$(mktemp -d /tmp/memscoped-coro-bench.XXXXXX)
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() {
	local i
	for ((i = 0; i < $4 * 20; i++)); do
		grep -qsE "$2" "$1" && return 0
		kill -0 "$3" 2>/dev/null || break
		sleep 0.05
	done
	grep -qsE "$2" "$1" && return 0
	cat "$1" >&2
	die "no '$2' from pid $3 in $4 s"
}

# run_one MODE: appends "mode ns_per_round_trip ns_per_round_trip_alloc" to results.
run_one() {
	local mode=$1 bench tracer="" out=$tmp/out log=$tmp/log

	rm -f "$out" "$log"
	pids=()
	"$BENCH" "$ROUNDS" wait >"$out" &
	bench=$!
	pids+=("$bench")
	wait_for "$out" '^ready' "$bench" 10
	if [ "$mode" != baseline ]; then
		"$MEMSCOPED" -p "$bench" --runtime "$mode" >/dev/null 2>"$log" &
		tracer=$!
		pids+=("$tracer")
		wait_for "$log" "^memscoped: attached [0-9]+ probes to pid $bench " "$tracer" 30
	fi
	kill -USR1 "$bench"
	wait "$bench" || die "coro_bench ($mode) failed"
	if [ -n "$tracer" ]; then
		kill -INT "$tracer"
		wait "$tracer" || die "memscoped ($mode) exited with an error"
	fi
	awk -v m="$mode" '$1 == "ns_per_round_trip" { r = $2 }
		$1 == "ns_per_round_trip_alloc" { a = $2 } END { print m, r, a }' "$out" \
		>>"$tmp/results"
}

for ((rep = 0; rep < REPS; rep++)); do
	for mode in baseline none ucontext; do
		run_one "$mode"
	done
done

python3 - "$tmp/results" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    mode, r, a = line.split()
    rows.setdefault(mode, []).append((float(r), float(a)))
med = {m: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
       for m, v in rows.items()}
base, none, uc = med["baseline"], med["none"], med["ucontext"]
print("coroutine round trip (2 switches), median ns: untraced %.0f, allocator probes only %.0f, "
      "ucontext tracking %.0f" % (base[0], none[0], uc[0]))
print("added per switch: %.0f ns (%.1fx the untraced switch)" %
      ((uc[0] - base[0]) / 2, uc[0] / base[0]))
print("added per malloc+free pair inside a coroutine: %.0f ns (allocator probes only: %.0f ns)" %
      ((uc[1] - uc[0]) - (base[1] - base[0]), (none[1] - none[0]) - (base[1] - base[0])))
EOF
