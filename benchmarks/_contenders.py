"""What the benchmarks of this folder share: timing one contender, checking every contender
against eager before timing, and interleaved rounds (every contender at every case in turn)."""
from __future__ import annotations

import time

import torch

import pto_dynamo


def seconds_per_call(fn, args, min_seconds=0.05, min_calls=3) -> float:
    n, total = 0, 0.0
    while n < min_calls or total < min_seconds:
        t = time.perf_counter()
        fn(*args)
        total += time.perf_counter() - t
        n += 1
    return total / n


def check_against_eager(cases, compiled, tol) -> bool:
    """First call of every compiled contender at every case (label, fn, inputs, _, dynamic dim or
    None), compared with eager; prints mismatches and slow first calls; True if all match."""
    ok = True
    for label, fn, inputs, _, dyn in cases:
        ref = fn(*inputs)
        if dyn is not None:
            pto_dynamo.mark_dynamic(inputs[0], dyn, name="T")
        for who in ("pto", "inductor"):
            t = time.perf_counter()
            out = compiled[(who, fn)](*inputs)
            cold = time.perf_counter() - t
            try:
                torch.testing.assert_close(out, ref, **tol[inputs[0].dtype])
            except AssertionError as e:
                print(f"MISMATCH {who} {label}: {e}")
                ok = False
            if cold > 1.0:
                print(f"  first call {who:8s} {label}: {cold:.1f} s")
    return ok


def interleaved_times(cases, compiled, rounds: int) -> dict:
    """(label, contender) -> seconds per call of each round, eager/inductor/pto interleaved."""
    times = {(c[0], who): [] for c in cases for who in ("eager", "inductor", "pto")}
    for _ in range(rounds):
        for label, fn, inputs, _, _ in cases:
            for who in ("eager", "inductor", "pto"):
                call = fn if who == "eager" else compiled[(who, fn)]
                times[(label, who)].append(seconds_per_call(call, inputs))
    return times
