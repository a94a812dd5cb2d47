"""Runs every test_* function of tests/e2e/test_*.py and prints TAP lines.

End-to-end tests need root and BPF; without them every test fails (never skips)."""
import glob
import importlib.util
import os
import sys
import time
import traceback

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)


def main():
    only = sys.argv[1:]
    tests = []
    for path in sorted(glob.glob(os.path.join(here, "test_*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for attr in sorted(vars(mod)):
            if attr.startswith("test_") and callable(getattr(mod, attr)):
                if not only or any(o in f"{name}.{attr}" for o in only):
                    tests.append((f"{name}.{attr}", getattr(mod, attr)))
    print(f"1..{len(tests)}")
    failed = 0
    for i, (name, fn) in enumerate(tests, 1):
        t0 = time.monotonic()
        try:
            if os.geteuid() != 0:
                raise AssertionError("end-to-end tests need root (CAP_BPF, CAP_PERFMON): run 'sudo make check'")
            fn()
            print(f"ok {i} - {name} ({time.monotonic() - t0:.1f}s)", flush=True)
        except Exception as e:  # a failing test must not stop the others
            failed += 1
            print(f"not ok {i} - {name}: {e}", flush=True)
            for line in traceback.format_exc().splitlines()[-6:]:
                print(f"#   {line}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
