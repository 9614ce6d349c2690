"""DeepSeek-V4 decode loop: eager and torch.compile(model, backend="pto") side by side.

Every request slot is first prefilled eagerly with a prefix (request r: `--prefix + r` tokens, so
the slots sit at different positions); each contender then gets its own copy of those caches and
runs `--steps` decode steps of `B x S` tokens (`S = 2` with `--mtp`), which cross the window end
at position 255 (ratio-128 and ratio-4 compressed rows, ring wrap) with the default prefix.
Every step's logits, every cache and compressor state and the top-k selections (experts of every
layer, indexer of every CSA layer) are compared with eager; the first step compiles, the others
are timed. Peak memory is measured per contender in a fresh subprocess (see harness.py).

  python examples/deepseek_v4/decode.py --check                 # small config, fp32, 1 thread
  python examples/deepseek_v4/decode.py --dtype bf16 --mtp --steps 6
  python examples/deepseek_v4/decode.py --inductor              # + inductor (cold compile: minutes)
"""
from __future__ import annotations

import json
import pathlib
import sys
import time

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

import pto_dynamo  # noqa: E402
from examples.deepseek_v4 import Session  # noqa: E402
from examples.deepseek_v4 import harness as H  # noqa: E402


def parse(argv):
    p = H.common_args(__doc__)
    p.add_argument("--steps", type=int, default=8, help="decode steps (the first one compiles)")
    p.add_argument("--mtp", action="store_true", help="2 tokens per request per step (MTP verify)")
    p.add_argument("--prefix", type=int, default=250, help="prefilled tokens of request 0 (request r: +r)")
    args = p.parse_args(argv)
    if args.batch is None:
        args.batch = min(4, H.CONFIGS[args.config].max_batch)
    return args


def prefixed_sessions(args, conts):
    """Prefill the prefix eagerly once per model and copy it into every contender's caches."""
    cfg = H.make_cfg(args)
    s = 2 if args.mtp else 1
    assert args.prefix + args.batch - 1 + args.steps * s <= cfg.max_seq_len, "prefix + steps exceed max_seq_len"
    g = torch.Generator().manual_seed(args.seed)
    prompts = torch.randint(0, cfg.vocab_size, (args.batch, args.prefix + args.batch), generator=g)
    steps = [torch.randint(0, cfg.vocab_size, (args.batch, s), generator=g) for _ in range(args.steps)]
    done = {}
    for c in conts:
        c.new_session(args.batch)
        key = id(c.model)
        if key not in done:
            src = Session(c.model, batch=args.batch)
            with torch.no_grad():
                for r in range(args.batch):
                    src.prefill(r, prompts[r, :args.prefix + r])
            done[key] = src
        H.copy_session(done[key], c.session)
    return steps


def memory_child(args) -> None:
    H.setup_threads(args)
    (c,) = H.make_contenders(args, [args.memory_child])
    steps = prefixed_sessions(args, [c])
    start_peak = H.process_peak_kb()
    rss0 = H.peak_reset()
    c.step(lambda s: s.decode_step(steps[0]), timed=False)        # warm-up / compile
    first = H.peak_since(rss0)
    H.memory_child_setup()
    before = H.peak_reset()
    for ids in steps[1:]:
        c.step(lambda s: s.decode_step(ids), timed=False)
    print("MEMORY " + json.dumps(H.memory_record(start_peak, rss0, first, before)))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.memory_child:
        memory_child(args)
        return 0
    H.setup_threads(args)
    cfg = H.make_cfg(args)
    s = 2 if args.mtp else 1
    print(f"DeepSeek-V4 decode, {args.config} config ({cfg.n_layers} layers {cfg.compress_ratios}, dim {cfg.dim}), "
          f"{args.dtype}, batch {args.batch} x {s} token(s) per step, {args.steps} steps after a "
          f"{args.prefix}..{args.prefix + args.batch - 1}-token prefix, {torch.get_num_threads()} thread(s)")
    pto_dynamo.reset_stats()
    conts = H.make_contenders(args)
    by = {c.name: c for c in conts}
    steps = prefixed_sessions(args, conts)
    checker = H.Checker(cfg.dtype)
    first_ms = {}
    for i, ids in enumerate(steps):
        for c in conts:
            t0 = time.perf_counter()
            c.step(lambda sess: sess.decode_step(ids), timed=i > 0)
            if i == 0:
                first_ms[c.name] = (time.perf_counter() - t0) * 1e3
        for c in conts:
            if c.name not in ("eager", "ref"):
                checker.compare(f"step {i}", c, by["eager"], by.get("ref"))
        if i == 0:
            after_first = pto_dynamo.stats()
    print("first step (includes the compile): " + ", ".join(f"{k} {v / 1e3:.2f} s" for k, v in first_ms.items()))
    H.latency_table(conts, f"decode step (T = {args.batch * s})")
    print("agreement with eager (every step: logits, every cache and compressor state, top-k selections):")
    checker.report()
    counters = H.print_counters("after all decode steps")
    one_compile = counters["graphs_received"] >= 1 and H.signatures_obtained(counters) == 1 and \
        H.signatures_obtained(counters) == H.signatures_obtained(after_first)
    print(f"one compile for all {args.steps} decode steps: {'yes' if one_compile else 'NO'}")
    if args.memory:
        names = [c.name for c in conts if c.name != "ref"]
        script = str(pathlib.Path(__file__).resolve())
        H.memory_table(H.run_memory_children(script, H.child_argv(argv), names, timeout=1800))
    ok = checker.ok("pto") and one_compile
    print("CHECK " + ("PASSED" if ok else "FAILED"))
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
