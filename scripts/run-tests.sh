#!/usr/bin/env bash
# Runs the unit tests (cmocka), the end-to-end tests (root), both again with the daemon and
# unit tests built with ASan+UBSan (in $ASAN_BUILD, when it exists), and a short smoke run of
# every fuzzer; ends with one line "N passed, N failed".
# Usage: run-tests.sh [unit|e2e|sanitize|fuzz] (default: all of them).
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

ASAN_BUILD=${ASAN_BUILD:-build-asan}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}

unit_tests() { # build dir
	for t in "$1"/tests/test_*; do
		[ -x "$t" ] || continue
		echo "# unit: $t"
		out=$(CMOCKA_MESSAGE_OUTPUT=TAP FIXTURE_SO="$1/fixtures/fixture.so" "$t" 2>&1)
		rc=$?
		echo "$out"
		tally "$t" "$out" "$rc"
	done
}

e2e_tests() { # daemon binary
	local log
	echo "# e2e: tests/e2e with $1 (as root, real BPF)"
	log=$(mktemp)
	# Shown as it runs; a file rather than /dev/stderr, which would truncate a redirected log.
	BUILD="$BUILD" MEMSCOPED="$1" python3 tests/e2e/run.py 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	tally "e2e ($1)" "$(cat "$log")" "$rc"
	rm -f "$log"
}

if [ "$what" = all ] || [ "$what" = unit ]; then
	unit_tests "$BUILD"
fi
if [ "$what" = all ] || [ "$what" = e2e ]; then
	e2e_tests "$BUILD/memscoped"
fi
if [ "$what" = all ] || [ "$what" = sanitize ]; then
	if [ ! -x "$ASAN_BUILD/memscoped" ]; then
		echo "not ok - no sanitizer build in $ASAN_BUILD (make SANITIZE=1 BUILD=$ASAN_BUILD)"
		failed=$((failed + 1))
	else
		# A leak or an undefined behaviour fails the program, hence its test.
		export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
		unit_tests "$ASAN_BUILD"
		e2e_tests "$ASAN_BUILD/memscoped"
		unset ASAN_OPTIONS UBSAN_OPTIONS
	fi
fi
if [ "$what" = all ] || [ "$what" = fuzz ]; then
	echo "# fuzz: every harness for ${FUZZ_SECONDS}s"
	out=$(BUILD="$BUILD" scripts/fuzz.sh "$FUZZ_SECONDS" 2>&1)
	rc=$?
	echo "$out"
	tap=$(sed -n 's/^\(fuzz_[a-z_]*\): ok,.*/ok - \1/p; s/^\(fuzz_[a-z_]*\): \(FAIL\|crash\|fail\).*/not ok - \1/p' <<<"$out")
	tally fuzz "$tap" "$rc"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
