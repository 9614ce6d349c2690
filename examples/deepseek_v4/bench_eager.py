"""Eager timings of the small DeepSeek-V4 config: parameter count, decode step, prefill chunk.

Usage (from the repository root): `python examples/deepseek_v4/bench_eager.py [--dtype bf16] [--w8a8]`.
One thread (the machine is shared, see DESIGN.md), medians over repeated runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
import statistics
import sys
import time

import torch

if __package__ in (None, ""):   # run as a script: make `examples` importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from examples.deepseek_v4 import SMALL, DeepSeekV4, Session, param_count  # noqa: E402


def median_ms(fn, repeats: int) -> str:
    """Median wall and CPU (process) time; with one thread, CPU time is what a busy shared machine
    inflates least."""
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - w0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return f"{statistics.median(wall):.1f} ms wall, {statistics.median(cpu):.1f} ms cpu (medians)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--w8a8", action="store_true")
    parser.add_argument("--prefix", type=int, default=256, help="tokens already cached before decode")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = dataclasses.replace(SMALL, dtype=torch.bfloat16 if args.dtype == "bf16" else torch.float32,
                              w8a8=args.w8a8)
    model = DeepSeekV4(cfg).eval()
    print(f"small config: {cfg.n_layers} layers {cfg.compress_ratios}, dim {cfg.dim}, "
          f"dtype {args.dtype}, w8a8 {cfg.w8a8}")
    print(f"parameters: {param_count(cfg):,}")
    vocab, batch = cfg.vocab_size, cfg.max_batch
    g = torch.Generator().manual_seed(0)

    with torch.no_grad():
        chunk = 128
        def prefill_once() -> None:
            Session(model).prefill(0, torch.randint(0, vocab, (chunk,), generator=g))
        prefill_once()   # warm-up
        print(f"prefill {chunk}-token chunk (1 request, position 0): "
              f"{median_ms(prefill_once, max(3, args.repeats // 4))}")

        for s in (1, 2):
            session = Session(model)
            for r in range(batch):
                session.prefill(r, torch.randint(0, vocab, (args.prefix,), generator=g))
            step = lambda: session.decode_step(torch.randint(0, vocab, (batch, s), generator=g))  # noqa: E731
            step()
            print(f"decode step B={batch} x S={s} (T={batch * s}, after {args.prefix} cached tokens): "
                  f"{median_ms(step, args.repeats)}")


if __name__ == "__main__":
    main()
