#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz/ (ASan + UBSan) into $BUILD/fuzz/ and runs each
# for SECONDS (default 60) on its corpus in $BUILD/fuzz/corpus/NAME, seeded from
# tests/fuzz/seeds/NAME and, for fuzz_elf, small ELF objects built here. Prints one line per
# harness; exits non-zero if any crashed, leaked or timed out. Usage: fuzz.sh [SECONDS]
# FUZZ_CFLAGS adds compiler flags (e.g. -fsanitize-recover=undefined with a UBSan suppressions
# file in UBSAN_OPTIONS, to look past a known report).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
CLANG=${CLANG:-clang}
seconds=${1:-60}
out=$BUILD/fuzz
harnesses=(fuzz_elf fuzz_insn fuzz_tokio_scan fuzz_http fuzz_maps fuzz_census fuzz_api fuzz_unwind fuzz_retained)

read -ra extra <<<"${FUZZ_CFLAGS:-}"
CFLAGS=(-g -O1 -fno-omit-frame-pointer "-fsanitize=address,undefined"
	-fno-sanitize-recover=undefined -D_GNU_SOURCE -Iinclude -Isrc
	-Wall -Wextra -Wno-missing-field-initializers "${extra[@]}")
LIBS=(-ldw -lelf -lz -ljson-c -lmicrohttpd -liberty -lpthread -lm)

# src/ but main.c as an archive: a harness links only the objects it calls, so no libbpf.
rm -rf "$out/obj" "$out/libmemscoped.a"
mkdir -p "$out/obj" "$out/seeds/fuzz_elf" "$out/artifacts"
for src in src/*.c; do
	[ "$src" = src/main.c ] && continue
	"$CLANG" "${CFLAGS[@]}" -fsanitize=fuzzer-no-link -c "$src" \
		-o "$out/obj/$(basename "$src" .c).o"
done
ar rcs "$out/libmemscoped.a" "$out"/obj/*.o
for h in "${harnesses[@]}"; do
	"$CLANG" "${CFLAGS[@]}" -fsanitize=fuzzer "tests/fuzz/$h.c" "$out/libmemscoped.a" \
		"${LIBS[@]}" -o "$out/$h"
done

# ELF seeds: the unit tests' fixture and a tokio-shaped PIE, with and without symbols.
"$CLANG" -O1 -shared -fPIC -Wl,-z,separate-code -Wl,--build-id tests/unit/fixture_elf.c \
	-o "$out/seeds/fuzz_elf/fixture.so"
"$CLANG" -Os -fPIE -pie -nostdlib -fcf-protection=full -Wl,--build-id -Wl,-z,noseparate-code \
	-Wl,-z,norelro tests/fuzz/elf_seed.c -o "$out/seeds/fuzz_elf/tokio.pie"
strip -o "$out/seeds/fuzz_elf/tokio-stripped.pie" "$out/seeds/fuzz_elf/tokio.pie"

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
failed=0
for h in "${harnesses[@]}"; do
	corpus=$out/corpus/$h
	mkdir -p "$corpus"
	for seeds in "tests/fuzz/seeds/$h" "$out/seeds/$h"; do
		if [ -d "$seeds" ]; then
			cp -n "$seeds"/* "$corpus"/
		fi
	done
	log=$out/$h.log
	rc=0
	"$out/$h" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$out/artifacts/$h-" "$corpus" \
		>"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ]; then
		echo "$h: ok, ${execs:-0} execs in ${seconds}s, corpus $(find "$corpus" -type f | wc -l)"
	else
		failed=1
		artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		echo "$h: FAILED (exit $rc) after ${execs:-?} execs: ${artifact:-no artifact}, see $log"
	fi
done
exit "$failed"
