#!/usr/bin/env python3
"""Find tokio 1.24 task vtables in a (possibly stripped) PIE/ELF x86_64
binary with the DESIGN.md rule: 7 consecutive R_X86_64_RELATIVE relocations
whose addends lie in .text, followed by 3 unrelocated words with
scheduler_offset <= id_offset < trailer_offset. Uses readelf only.
usage: vtables.py BINARY [--loose]  -> one line per vtable:
   vtable=0x.. poll=0x.. poll_file_offset=0x.. trailer_offset=.. scheduler_offset=.. id_offset=.. [sym=..]
(sym: the symbol at slot 0, if the binary has a symtab; for validation)"""
import re, struct, subprocess, sys

b = [a for a in sys.argv[1:] if not a.startswith("--")][0]
sec = []
for l in subprocess.run(["readelf", "-SW", b], capture_output=True, text=True).stdout.splitlines():
    m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", l)
    if m:
        sec.append((m.group(1), int(m.group(2), 16), int(m.group(3), 16), int(m.group(4), 16)))
text = [s for s in sec if s[0] == ".text"][0]
rel = {}
for l in subprocess.run(["readelf", "-rW", b], capture_output=True, text=True).stdout.splitlines():
    f = l.split()
    if len(f) >= 4 and f[2] == "R_X86_64_RELATIVE":
        rel[int(f[0], 16)] = int(f[3], 16)
data = open(b, "rb").read()

def word(va):
    for name, addr, off, size in sec:
        if addr <= va < addr + size and name not in (".bss", ".tbss"):
            return struct.unpack_from("<Q", data, off + va - addr)[0]
    return None

syms = {}
try:
    for l in subprocess.run(["nm", b], capture_output=True, text=True).stdout.splitlines():
        f = l.split()
        if len(f) == 3:
            syms.setdefault(int(f[0], 16), f[2])
except FileNotFoundError:
    pass
in_text = lambda a: text[1] <= a < text[1] + text[3]
n = 0
for r in sorted(rel):
    if not all(r + 8 * i in rel and in_text(rel[r + 8 * i]) for i in range(7)):
        continue
    if any(r + 8 * i in rel for i in range(7, 10)):
        continue
    tr, sc, idf = (word(r + 8 * i) for i in range(7, 10))
    if None in (tr, sc, idf) or not (sc <= idf < tr) or tr > 1 << 24:
        continue
    # the DESIGN rule alone also accepts a core::fmt table (0, 0, 835144) in
    # these binaries; the task header is 32 bytes and Core starts at
    # round_up(32, align): scheduler_offset is a power of two >= 32
    if "--loose" not in sys.argv and (sc < 32 or sc & (sc - 1) or idf % 8 or tr % 8):
        continue
    n += 1
    s = syms.get(rel[r], "")
    poll_off = rel[r] - text[1] + text[2]  # file offset: what a uprobe needs
    print(f"vtable=0x{r:x} poll=0x{rel[r]:x} poll_file_offset=0x{poll_off:x} trailer_offset={tr} scheduler_offset={sc} id_offset={idf}"
          + (f" sym={s}" if s else ""))
print(f"# {n} vtables", file=sys.stderr)
