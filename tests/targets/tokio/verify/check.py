#!/usr/bin/env python3
"""Compare bpftrace probe output (poll_vtable.bt + alloc.bt) with the
target's ground truth. usage: check.py truth.jsonl probe.txt"""
import json, re, sys
from collections import Counter, defaultdict

truth = [json.loads(l) for l in open(sys.argv[1])]
tasks = [d for d in truth if d["type"] == "task"]
polls, allocs = [], []
for l in open(sys.argv[2]):
    if l.startswith("POLL ") or l.startswith("ALLOC "):
        kv = dict(x.split("=", 1) for x in l.split()[1:] if "=" in x)
        (polls if l.startswith("POLL") else allocs).append(kv)
h = lambda s: int(s, 16)
fails = []
# polls grouped by (header address, probed function): addresses are reused
# by later tasks, so expected counts are summed over tasks sharing a key
seen = Counter((h(p["hdr"]), h(p["ip"])) for p in polls)
want = Counter()
exact = defaultdict(lambda: True)
for t in tasks:
    k = (h(t["hdr"]), h(t["poll_fn"]))
    if t["polls"] is None:
        exact[k] = False
    else:
        want[k] += t["polls"]
for k in set(want) | set(k for k in exact):
    if exact[k] and seen[k] != want[k]:
        fails.append(f"hdr 0x{k[0]:x} poll_fn 0x{k[1]:x}: {seen[k]} polls seen, {want[k]} expected")
    if not exact[k] and seen[k] < want[k]:
        fails.append(f"hdr 0x{k[0]:x} poll_fn 0x{k[1]:x}: {seen[k]} polls seen, >= {want[k]} expected")
alloc_by_ptr = defaultdict(list)
alloc_by_size = defaultdict(list)
for a in allocs:
    alloc_by_ptr[h(a["ptr"])].append(a)
    alloc_by_size[(a["fn"], int(a["size"]))].append(a)
known = set()
nchk = 0
for t in tasks:
    hdr, tid = h(t["hdr"]), t["id"]
    known.add((hdr, h(t["poll_fn"])))
    cell = [a for a in alloc_by_ptr.get(hdr, []) if int(a["size"]) == t["cell_size"]
            and a["fn"] == t["cell_fn"]
            and (a["fn"] != "posix_memalign" or int(a["align"]) == t["cell_align"])]
    if not cell:
        fails.append(f"task {tid} {t['kind']}: no {t['cell_fn']}({t['cell_size']}) returning hdr {t['hdr']}")
    for a in t["allocs"]:
        if not alloc_by_size.get((a["fn"], a["size"])):
            fails.append(f"task {tid}: no {a['fn']}({a['size']}) seen")
    nchk += 1
other = Counter(p["ip"] for p in polls if (h(p["hdr"]), h(p["ip"])) not in known)
pm = Counter((a["align"], a["size"]) for a in allocs if a["fn"] == "posix_memalign")
print(f"tasks checked: {nchk}; poll calls: {len(polls)}; "
      f"allocator calls: {len(allocs)} {dict(Counter(a['fn'] for a in allocs))}")
print(f"polls of tasks not in ground truth (runtime, e.g. worker BlockingTask): {dict(other)}")
# live tasks: read their header/vtable from /proc/PID/mem (if still alive)
if len(sys.argv) > 3:
    import struct
    mem = open(f"/proc/{sys.argv[3]}/mem", "rb")
    def rd(a, n=8):
        mem.seek(a)
        return struct.unpack("<Q", mem.read(8))[0]
    nlive = 0
    owners = set()
    for t in tasks:
        if t["completes"]:
            continue
        hdr = h(t["hdr"])
        vt = rd(hdr + 0x10)
        slots = [rd(vt + 8 * i) for i in range(10)]
        idv = rd(hdr + slots[9])
        st = rd(hdr)
        ok = (vt == h(t["vtable"]) and slots[0] == h(t["poll_fn"]) and idv == t["id"]
              and slots[7:] == [t["trailer_offset"], t["scheduler_offset"], t["id_offset"]]
              and slots[8] <= slots[9] < slots[7])
        if not ok:
            fails.append(f"task {t['id']}: live header/vtable mismatch")
        # idle: RUNNING|COMPLETE|NOTIFIED|CANCELLED clear; refs: 1 (owned
        # list) + 1 per JoinHandle (children held by their parent: also
        # JOIN_INTEREST 0x8) + 1 per stored waker (a timer holds one)
        if st & 0x27 or not 1 <= st >> 6 <= 3:
            fails.append(f"task {t['id']}: unexpected live state 0x{st:x}")
        owners.add(rd(hdr + 0x18))
        if rd(hdr + 0x08) != 0:
            fails.append(f"task {t['id']}: queue_next of an idle task not NULL")
        nlive += 1
    if nlive and (len(owners) != 1 or 0 in owners):
        fails.append(f"owner ids at +0x18 not one nonzero value: {owners}")
    print(f"live tasks read from /proc/PID/mem: {nlive} (vtable slot0 == poll_fn, id at id_offset, "
          f"offsets ok; owner_id(+0x18)={sorted(owners)}; queue_next(+0x08)=0)")
print("live task states:", dict(Counter(hex(rd(h(t["hdr"]))) for t in tasks if not t["completes"])) if len(sys.argv) > 3 else "")
print(f"posix_memalign (align,size): {dict(pm)}")
print("FAIL:\n  " + "\n  ".join(fails[:30]) if fails else "OK: probes agree with ground truth")
sys.exit(1 if fails else 0)
