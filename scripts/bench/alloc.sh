#!/usr/bin/env bash
# `make bench`, allocator families: memscoped's added cost per malloc+free pair on the malloc
# benchmark linked to each allocator (glibc, jemalloc, mimalloc, tcmalloc), next to the
# same-run uprobe floor: memscoped --empty-programs, the same probes at the same placement
# with programs that return at once. Untraced, floor and memscoped runs are interleaved in a
# rotating order within each of BENCH_REPS repetitions (default 5), 1 thread, BENCH_SECONDS
# (default 1) each. Times are the benchmark thread's CPU time per pair (the probes' traps and
# programs count there, waiting for a CPU does not). Prints the medians; bar: added <= 1.2 x
# floor's added, 0 lost events.
set -euo pipefail

BUILD=${BUILD:-build}
REPS=${BENCH_REPS:-5}
MEMSCOPED=$BUILD/memscoped
MODES=(baseline floor memscoped)
MAX_PAIRS=20000000
SECONDS_PER_RUN=${BENCH_SECONDS:-1}
FAMILIES=(glibc jemalloc mimalloc tcmalloc)

die() {
	echo "alloc.sh: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
[ -x "$MEMSCOPED" ] || die "build first: make $MEMSCOPED"

tmp=$(mktemp -d /tmp/memscoped-alloc-bench.XXXXXX)
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

bench_of() {
	[ "$1" = glibc ] && echo "$BUILD/bench/malloc_bench" || echo "$BUILD/bench/malloc_bench_$1"
}

wait_for() {
	local i
	for ((i = 0; i < $4 * 20; i++)); do
		grep -qsE "$2" "$1" && return 0
		kill -0 "$3" 2>/dev/null || break
		sleep 0.05
	done
	grep -qsE "$2" "$1" && return 0
	echo "alloc.sh: no '$2' from pid $3 in $4 s; its output:" >&2
	cat "$1" >&2
	return 1
}

# run_one FAMILY MODE: appends "family mode ns lost" to results.
run_one() {
	local family=$1 mode=$2 bench tracer="" rc ns pairs lost=0 tracked
	local out=$tmp/bench.out log=$tmp/ms.log report=$tmp/report.json exe

	exe=$(bench_of "$family")
	[ -x "$exe" ] || die "build first: make $exe"
	rm -f "$out" "$log" "$report"
	pids=()
	"$exe" 1 "$MAX_PAIRS" "$SECONDS_PER_RUN" >"$out" &
	bench=$!
	pids+=("$bench")
	wait_for "$out" '^ready' "$bench" 10
	if [ "$mode" != baseline ]; then
		"$MEMSCOPED" -p "$bench" -r "$report" --runtime none \
			$([ "$mode" = floor ] && echo --empty-programs) >/dev/null 2>"$log" &
		tracer=$!
		pids+=("$tracer")
		wait_for "$log" "^memscoped: attached [0-9]+ probes to pid $bench " "$tracer" 30
		grep -q "allocator $family in " "$log" || { cat "$log" >&2; die "$family not probed"; }
	fi
	kill -USR1 "$bench"
	rc=0
	wait "$bench" || rc=$?
	[ "$rc" -eq 0 ] || die "$exe ($mode) exited with $rc"
	read -r ns pairs < <(awk '$1 == "ns_per_pair" { print $8, $4 }' "$out") ||
		die "$exe ($mode) printed no result"
	if [ -n "$tracer" ]; then
		kill -INT "$tracer"
		rc=0
		wait "$tracer" || rc=$?
		[ "$rc" -eq 0 ] || { cat "$log" >&2; die "memscoped exited with $rc"; }
		read -r lost tracked < <(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(r["events"]["lost"], r["processes"][0]["heap"]["allocations_total"])' "$report") ||
			die "cannot read memscoped's report"
		if [ "$mode" = memscoped ] && [ "$tracked" -lt "$pairs" ] && [ "$lost" -eq 0 ]; then
			die "memscoped tracked $tracked of $pairs allocations ($family)"
		fi
	fi
	printf '%-9s %-10s %9s ns/pair  %9s pairs  lost %s\n' "$family" "$mode" "$ns" "$pairs" \
		"$lost" >&2
	echo "$family $mode $ns $lost" >>"$tmp/results"
}

for family in "${FAMILIES[@]}"; do
	for ((rep = 0; rep < REPS; rep++)); do
		for ((m = 0; m < ${#MODES[@]}; m++)); do
			run_one "$family" "${MODES[(rep + m) % ${#MODES[@]}]}"
		done
	done
done

python3 - "$tmp/results" "$REPS" <<'PY'
import statistics, sys

runs = {}
order = []
for line in open(sys.argv[1]):
    family, mode, ns, lost = line.split()
    if family not in order:
        order.append(family)
    runs.setdefault((family, mode), []).append((float(ns), int(lost)))
ok = True
print("family    baseline  floor  memscoped | added: floor  memscoped  ratio | lost")
for family in order:
    ns = {m: [r[0] for r in runs[(family, m)]] for m in ("baseline", "floor", "memscoped")}
    added = {m: statistics.median(t - b for t, b in zip(ns[m], ns["baseline"]))
             for m in ("floor", "memscoped")}
    ratio = added["memscoped"] / added["floor"] if added["floor"] > 0 else float("inf")
    lost = sum(r[1] for r in runs[(family, "memscoped")])
    ok = ok and ratio <= 1.2 and lost == 0
    print(f"{family:<9} {statistics.median(ns['baseline']):8.1f} "
          f"{statistics.median(ns['floor']):6.1f} {statistics.median(ns['memscoped']):10.1f} "
          f"| {added['floor']:12.1f} {added['memscoped']:10.1f} {ratio:6.3f} | {lost}")
print(f"CPU ns per malloc+free pair, 1 thread, medians of {sys.argv[2]} repetitions; floor = the "
      "same probes with empty programs (--empty-programs); lost = memscoped's, summed")
print(f"bar (memscoped added <= 1.2 x floor added, lost == 0): {'PASS' if ok else 'FAIL'}")
PY
