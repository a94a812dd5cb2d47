#!/bin/sh
# Runs one target binary under bpftrace (poll + allocator probes) and checks
# the probe data against the target's printed ground truth (check.py).
# usage: verify/check.sh BINARY SCENARIO [current|multi]   (root; bpftrace)
set -eu
BIN=$(readlink -f "$1"); SC=$2; RT=${3:-current}
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d /tmp/tokio-verify.XXXXXX)
"$BIN" "$SC" --rt "$RT" --go-file "$W/go" --per-task > "$W/truth.jsonl" &
TP=$!
sleep 0.3
# two bpftrace processes: bpftrace 0.17 garbles the poll printf when both
# scripts run in one process
UNSAFE=
if readelf -SW "$BIN" | grep -q ' \.symtab'; then
    sed "s|BIN|$BIN|" "$HERE/poll_vtable.bt" > "$W/poll.bt"
else
    # stripped: probe the poll functions found by the vtable scan. bpftrace
    # 0.17 takes a numeric uprobe address on a stripped binary as a FILE
    # OFFSET (not a vaddr); --unsafe because it cannot check the boundary.
    UNSAFE=--unsafe
    python3 "$HERE/vtables.py" "$BIN" 2>/dev/null | sed 's/.*poll_file_offset=\(0x[0-9a-f]*\).*/\1/' | sort -u |
        while read -r a; do
            printf 'uprobe:%s:%s /pid == $1/ { printf("POLL tid=%%d ip=0x%%lx hdr=0x%%lx\\n", tid, reg("ip"), arg0); }\n' "$BIN" "$a"
        done > "$W/poll.bt"
fi
bpftrace $UNSAFE "$W/poll.bt" "$TP" > "$W/poll.txt" 2>"$W/bpftrace-poll.err" &
BP1=$!
bpftrace "$HERE/alloc.bt" "$TP" > "$W/alloc.txt" 2>"$W/bpftrace-alloc.err" &
BP2=$!
for f in poll alloc; do
    i=0
    until grep -q Attaching "$W/$f.txt" 2>/dev/null; do
        sleep 0.2; i=$((i + 1))
        [ $i -lt 150 ] || { echo "bpftrace did not attach" >&2; cat "$W"/bpftrace-*.err >&2; kill $TP $BP1 $BP2; exit 1; }
    done
done
sleep 0.5
touch "$W/go"
i=0
until grep -q '"type":"done"' "$W/truth.jsonl"; do
    sleep 0.2; i=$((i + 1))
    [ $i -lt 300 ] || { echo "target did not finish" >&2; kill $TP $BP1 $BP2; exit 1; }
done
sleep 1
kill -INT $BP1 $BP2
# bpftrace 0.17 sometimes hangs on exit here: give it 10 s, then SIGKILL
i=0
while kill -0 $BP1 2>/dev/null || kill -0 $BP2 2>/dev/null; do
    sleep 0.2; i=$((i + 1))
    [ $i -lt 50 ] || { echo "bpftrace hung on exit: killed" >&2; kill -9 $BP1 $BP2 2>/dev/null || true; break; }
done
wait $BP1 2>/dev/null || true; wait $BP2 2>/dev/null || true
cat "$W/poll.txt" "$W/alloc.txt" > "$W/probe.txt"
rc=0
python3 "$HERE/check.py" "$W/truth.jsonl" "$W/probe.txt" "$TP" || rc=1
kill $TP; wait $TP 2>/dev/null || true
echo "(files in $W)"
exit $rc
