"""Run every benchmark of this folder (`make bench`), each in its own process with its defaults.

    .venv/bin/python benchmarks/run_all.py [--only NAME ...]

Each `bench_*.py` prints its own table (ratios, medians over interleaved rounds; see its
docstring). The exit status is non-zero when any benchmark failed; the failures are listed last.
"""
from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def main(argv=None) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", choices=[s.stem for s in scripts], help="run only these benchmarks")
    args = p.parse_args(argv)
    failed = []
    for script in scripts:
        if args.only and script.stem not in args.only:
            continue
        print(f"\n=== {script.stem} ===", flush=True)
        start = time.perf_counter()
        rc = subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode
        print(f"=== {script.stem}: exit {rc}, {time.perf_counter() - start:.0f} s", flush=True)
        if rc != 0:
            failed.append(script.stem)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
