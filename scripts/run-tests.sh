#!/usr/bin/env bash
# Runs the unit tests (cmocka) and then the end-to-end tests (root), and ends with one
# line "N passed, N failed". Usage: run-tests.sh [unit|e2e] (default: both).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
what=${1:-all}
passed=0
failed=0

# Counts TAP lines of one test program's output; a program that dies mid-way is a failure.
tally() {
	local name=$1 out=$2 rc=$3 ok bad
	ok=$(grep -c '^ok ' <<<"$out")
	bad=$(grep -c '^not ok ' <<<"$out")
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		echo "not ok - $name exited with status $rc"
		bad=1
	fi
	passed=$((passed + ok))
	failed=$((failed + bad))
}

if [ "$what" = all ] || [ "$what" = unit ]; then
	for t in "$BUILD"/tests/test_*; do
		[ -x "$t" ] || continue
		echo "# unit: $t"
		out=$(CMOCKA_MESSAGE_OUTPUT=TAP FIXTURE_SO="$BUILD/fixtures/fixture.so" "$t" 2>&1)
		rc=$?
		echo "$out"
		tally "$t" "$out" "$rc"
	done
fi

if [ "$what" = all ] || [ "$what" = e2e ]; then
	echo "# e2e: tests/e2e (as root, real BPF)"
	out=$(BUILD="$BUILD" python3 tests/e2e/run.py 2>&1 | tee /dev/stderr)
	rc=$?
	tally e2e "$out" "$rc"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
