"""Decode-style loop updating a [B, S, 512] cache in place with index_copy_: through
backend="pto" the step time must not grow with S (the mutation is not a copy).

Compares S=4096 with S=256, eager and pto, interleaved rounds, medians; prints ratios.
Usage: python benchmarks/bench_cache_update.py [--rounds N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pto_dynamo  # noqa: E402


def step(x, cache, pos):
    cache.index_copy_(1, pos, x)
    return cache[:, :4].sum()


def time_call(fn, *args, iters: int) -> float:
    t0 = time.perf_counter()
    for _ in range(iters):
        fn(*args)
    return (time.perf_counter() - t0) / iters


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--iters", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    B, D, T = 4, 512, 2
    contenders = {
        "eager": step,
        "pto": torch.compile(step, backend="pto", fullgraph=True),
        # the functional graph as aot_autograd gives it: index_put (a copy) + copy_ back
        "pto-noreinplace": torch.compile(step, backend="pto", fullgraph=True, options={"reinplace": False}),
        "aot_eager": torch.compile(step, backend="aot_eager", fullgraph=True),
    }
    setups = {}
    for S in (256, 4096):
        cache = torch.zeros(B, S, D)
        x, pos = torch.randn(B, T, D), torch.tensor([5, 6])
        pto_dynamo.mark_dynamic(x, 1)
        pto_dynamo.mark_dynamic(pos, 0)
        torch._dynamo.mark_dynamic(cache, 1)
        for fn in contenders.values():
            fn(x, cache, pos)
        setups[S] = (x, cache, pos)
    times = {(k, S): [] for k in contenders for S in setups}
    for _ in range(args.rounds):
        for S, (x, cache, pos) in setups.items():
            for name, fn in contenders.items():
                times[(name, S)].append(time_call(fn, x, cache, pos, iters=args.iters))
    med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
    for (k, S), us in sorted(med.items()):
        print(f"{k:16s} S={S:5d}: {us:9.1f} us/step")
    for name in contenders:
        print(f"{name:16s} step time S=4096 / S=256: {med[(name, 4096)] / med[(name, 256)]:.2f}x")
    print("counters:", pto_dynamo.stats())


if __name__ == "__main__":
    main()
