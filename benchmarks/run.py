"""Run inertia's benchmarks: every ``benchmarks/bench_*.py`` (or those named) in turn.

Each script measures inertia and its peer in the same process and prints ratios
(ours / peer). Usage::

    python benchmarks/run.py                 # all of them
    python benchmarks/run.py optim init      # bench_optim.py and bench_init.py
    python benchmarks/run.py --quick         # smoke sizes, passed on to every script
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="benchmark names (bench_<name>.py); default: all")
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes")
    args, passthrough = parser.parse_known_args(argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    known = {p.stem[len("bench_") :]: p for p in scripts}
    if args.names:
        unknown = [n for n in args.names if n not in known]
        if unknown:
            parser.error(f"unknown benchmark(s) {unknown}; known: {sorted(known)}")
        scripts = [known[n] for n in args.names]
    print(f"# machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    failed = []
    for script in scripts:
        cmd = [sys.executable, str(script), *(["--quick"] if args.quick else []), *passthrough]
        print(f"\n## {script.name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd)
        print(f"## {script.name}: exit {rc} in {time.perf_counter() - t0:.1f} s", flush=True)
        if rc != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
