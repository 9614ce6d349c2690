"""Warm start: the first call of a compiled transformer block in a new process, with the pto disk
cache warm, against backend="aot_eager"'s first call (same tracing work, no code generation).

Every measurement runs in its own fresh process (import and Dynamo state cold); rounds are
interleaved; medians are printed with the difference pto_warm - aot_eager (target <= 0.3 s) and
the time spent inside the pto backend on the warm start.
Usage: python benchmarks/bench_warm_start.py [--rounds N]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time, torch
torch.set_num_threads(1)
sys.path.insert(0, {root!r})
import pto_dynamo
from examples.transformer_block import make_block
block = make_block()
x = torch.randn(64, 64)
pto_dynamo.mark_dynamic(x, 0, name="T")
compiled = torch.compile(block, backend={backend!r}, fullgraph=True)
with torch.no_grad():
    t0 = time.perf_counter()
    compiled(x)
    first = time.perf_counter() - t0
print("RESULT" + json.dumps(dict(first_call=first, **pto_dynamo.stats())))
"""


def run_child(backend: str, cache: str) -> dict:
    env = dict(os.environ, PTO_CACHE_DIR=cache)
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), backend=backend)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads([l for l in out.stdout.splitlines() if l.startswith("RESULT")][-1][6:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rows: dict[str, list[dict]] = {"aot_eager": [], "pto_cold": [], "pto_warm": []}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as cache:
            os.chmod(cache, 0o700)
            rows["aot_eager"].append(run_child("aot_eager", cache))
            rows["pto_cold"].append(run_child("pto", cache))
            rows["pto_warm"].append(run_child("pto", cache))
    med = {k: statistics.median(r["first_call"] for r in v) for k, v in rows.items()}
    for k, v in med.items():
        print(f"{k:10s} first call: {v:6.3f} s (median of {args.rounds})")
    warm = rows["pto_warm"]
    print(f"pto_warm - aot_eager: {med['pto_warm'] - med['aot_eager']:+.3f} s   (target <= 0.3 s)")
    print(f"pto_warm time inside the backend: {statistics.median(r['backend_seconds'] for r in warm):.3f} s")
    print(f"pto_warm counters: disk_hits={warm[-1]['disk_hits']} signatures_compiled={warm[-1]['signatures_compiled']} "
          f"native_builds={warm[-1]['native_builds']}")


if __name__ == "__main__":
    main()
