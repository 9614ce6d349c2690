"""DeepSeek-V4 chunked prefill: eager and torch.compile(model, backend="pto") side by side.

Each of `--batch` requests is prefilled from position 0 in chunks whose lengths cycle through
`--chunks` until `--tokens` tokens (default 300: crosses the ratio-128 window ends at 127 and 255,
wraps the 128-slot ring, and many ratio-4 window ends); with several requests a step packs one
chunk of every request (T = batch x chunk). One compile serves every chunk length.

Pass 1 (checked): every chunk's logits, every cache and compressor state and the top-k
selections are compared with eager; pto's first chunk compiles. Pass 2 (timed): the same schedule
replayed from empty caches; per chunk length latency. Peak memory: a fresh subprocess per
contender replays pass 2 (see harness.py).

  python examples/deepseek_v4/prefill.py --check                # small config, fp32, 1 thread
  python examples/deepseek_v4/prefill.py --dtype bf16 --chunks 128,64,1,37
"""
from __future__ import annotations

import json
import pathlib
import sys
import time
from collections import defaultdict

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

import pto_dynamo  # noqa: E402
from examples.deepseek_v4 import harness as H  # noqa: E402


def parse(argv):
    p = H.common_args(__doc__)
    p.add_argument("--chunks", default="64,128,1,37,100", help="chunk lengths, cycled")
    p.add_argument("--tokens", type=int, default=300, help="tokens prefilled per request")
    args = p.parse_args(argv)
    if args.batch is None:
        args.batch = 1
    args.chunk_list = [int(x) for x in args.chunks.split(",")]
    return args


def schedule(args) -> list[tuple[int, int]]:
    """[(start, length)] of every step, the same for every request."""
    out, pos, i = [], 0, 0
    while pos < args.tokens:
        n = min(args.chunk_list[i % len(args.chunk_list)], args.tokens - pos)
        out.append((pos, n))
        pos, i = pos + n, i + 1
    return out


def prompts(args) -> torch.Tensor:
    cfg = H.make_cfg(args)
    assert args.tokens <= cfg.max_seq_len, "--tokens exceeds max_seq_len"
    g = torch.Generator().manual_seed(args.seed)
    return torch.randint(0, cfg.vocab_size, (args.batch, args.tokens), generator=g)


def chunk_fn(args, ids, start, n):
    runs = [(r, start, n) for r in range(args.batch)]
    return lambda sess: sess.run(runs, ids[:, start:start + n])


def memory_child(args) -> None:
    H.setup_threads(args)
    (c,) = H.make_contenders(args, [args.memory_child])
    ids, sched = prompts(args), schedule(args)
    c.new_session(args.batch)
    start_peak = H.process_peak_kb()
    rss0 = H.peak_reset()
    for start, n in sched:                                       # warm-up pass (compiles)
        c.step(chunk_fn(args, ids, start, n), timed=False)
    first = H.peak_since(rss0)
    c.new_session(args.batch)
    H.memory_child_setup()
    before = H.peak_reset()
    for start, n in sched:
        c.step(chunk_fn(args, ids, start, n), timed=False)
    print("MEMORY " + json.dumps(H.memory_record(start_peak, rss0, first, before)))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.memory_child:
        memory_child(args)
        return 0
    H.setup_threads(args)
    cfg = H.make_cfg(args)
    ids, sched = prompts(args), schedule(args)
    lengths = sorted({n for _, n in sched})
    print(f"DeepSeek-V4 chunked prefill, {args.config} config ({cfg.n_layers} layers {cfg.compress_ratios}, "
          f"dim {cfg.dim}), {args.dtype}, {args.batch} request(s) x {args.tokens} tokens in "
          f"{len(sched)} chunks of lengths {[n for _, n in sched]}, {torch.get_num_threads()} thread(s)")
    pto_dynamo.reset_stats()
    conts = H.make_contenders(args)
    by = {c.name: c for c in conts}
    checker = H.Checker(cfg.dtype)
    for c in conts:
        c.new_session(args.batch)
    first_ms = {}
    for i, (start, n) in enumerate(sched):                      # pass 1: checked
        for c in conts:
            t0 = time.perf_counter()
            c.step(chunk_fn(args, ids, start, n), timed=False)
            if i == 0:
                first_ms[c.name] = (time.perf_counter() - t0) * 1e3
        for c in conts:
            if c.name not in ("eager", "ref"):
                checker.compare(f"chunk {i} ({start}+{n})", c, by["eager"], by.get("ref"))
    print("first chunk (includes the compile): " + ", ".join(f"{k} {v / 1e3:.2f} s" for k, v in first_ms.items()))
    counters = H.print_counters("after pass 1")

    per_len: dict[str, dict[int, list[float]]] = {c.name: defaultdict(list) for c in conts}
    for c in conts:                                             # pass 2: timed, fresh caches
        c.new_session(args.batch)
    for start, n in sched:
        for c in conts:
            c.step(chunk_fn(args, ids, start, n))
            per_len[c.name][n].append(c.wall[-1])
    timed = [c for c in conts if c.name != "ref"]
    print(f"prefill latency per chunk length (ms, median wall; T = {args.batch} x length):")
    print("  length " + "".join(f"{c.name:>12}" for c in timed) + "   pto/eager")
    for n in lengths:
        row = [H.median(per_len[c.name][n]) for c in timed]
        print(f"  {n:>6} " + "".join(f"{v:12.2f}" for v in row) + f"   {row[1] / row[0]:8.2f}x")
    total = {c.name: sum(c.wall) for c in timed}
    cpu = {c.name: sum(c.cpu) for c in timed}
    print(f"whole prefill ({args.batch * args.tokens} tokens): " + ", ".join(
        f"{k} {v:.1f} ms wall / {cpu[k]:.1f} ms cpu ({args.batch * args.tokens / v * 1e3:.0f} tok/s)"
        for k, v in total.items()))
    for k in total:
        if k != "eager":
            print(f"  ratio {k}/eager: wall {total[k] / total['eager']:.2f}x cpu {cpu[k] / cpu['eager']:.2f}x")
    if "inductor" in total:
        print(f"  ratio pto/inductor: wall {total['pto'] / total['inductor']:.2f}x "
              f"cpu {cpu['pto'] / cpu['inductor']:.2f}x")
    print("agreement with eager (every chunk: logits, every cache and compressor state, top-k selections):")
    checker.report()
    after = H.print_counters("after both passes")
    one_compile = counters["graphs_received"] >= 1 and H.signatures_obtained(counters) == 1 and \
        H.signatures_obtained(after) == 1
    print(f"one compile for chunk lengths {lengths}: {'yes' if one_compile else 'NO'}")
    if args.memory:
        script = str(pathlib.Path(__file__).resolve())
        H.memory_table(H.run_memory_children(script, H.child_argv(argv), [c.name for c in timed], timeout=1800))
    ok = checker.ok("pto") and one_compile
    print("CHECK " + ("PASSED" if ok else "FAILED"))
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
