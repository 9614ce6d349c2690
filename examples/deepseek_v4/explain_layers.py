"""`pto_dynamo.explain` on one decoder layer of each kind (SWA, CSA, HCA): which nodes stay on the
host and why, summarised as counts per reason (the per-op "no device rule" reasons are also
grouped by op family).

  python examples/deepseek_v4/explain_layers.py                   # small config, fp32
  python examples/deepseek_v4/explain_layers.py --config tiny --full   # + explain's whole report
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
import re
import sys
from collections import Counter

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

import pto_dynamo  # noqa: E402
from examples.deepseek_v4 import SMALL, TINY, DeepSeekV4, build_meta, make_caches  # noqa: E402


def step_inputs(cfg, n_tokens: int = 5):
    """A decode-like step: request 0 one token at position 255 (a ratio-128 window end), request 1
    the rest from position 126 (crossing the ring)."""
    g = torch.Generator().manual_seed(0)
    runs = [(0, 255, 1), (1, 126, n_tokens - 1)]
    x_hc = torch.randn(n_tokens, cfg.hc_mult, cfg.dim, generator=g).to(cfg.dtype)
    ids = torch.randint(0, cfg.vocab_size, (n_tokens,), generator=g)
    meta = build_meta(cfg, runs)
    for t in (x_hc, ids, *meta.values()):
        pto_dynamo.mark_dynamic(t, 0, name="T")
        # One symbol for all of them. Without shape_id, a layer with hash routing gets a second
        # DynDim for input_ids (nothing in the layer ties its length to x_hc's). pto_dynamo's
        # mark_dynamic has no shape_id yet (see docs/notes_deepseek_pto.md), so call Dynamo's
        # decorator directly; calls are additive.
        torch._dynamo.decorators.mark_unbacked(t, 0, min=1, shape_id="T")
    return x_hc, ids, meta


def family(reason: str) -> str:
    m = re.match(r"no device rule for aten\.(\w+)", reason)
    return f"no device rule ({m.group(1)})" if m else reason


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", choices=["tiny", "small"], default="small")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--full", action="store_true", help="also print explain's whole report")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = dataclasses.replace({"tiny": TINY, "small": SMALL}[args.config],
                              dtype=torch.bfloat16 if args.dtype == "bf16" else torch.float32)
    model = DeepSeekV4(cfg).eval()
    caches = make_caches(cfg, 2)
    totals = {}
    for kind in ("SWA", "CSA", "HCA"):
        block = model.layer(kind)
        x_hc, ids, meta = step_inputs(cfg)
        torch._dynamo.reset()
        with torch.no_grad():
            ex = pto_dynamo.explain(block, x_hc, ids, meta, caches[block.layer_id], print_report=args.full)
        n_nodes = sum(len(g.compiled.graph.nodes) for g in ex.graphs)
        n_dev = sum(len(r.nodes) for g in ex.graphs for r in g.regions)
        dims = sorted({d.name for g in ex.graphs for d in g.compiled.graph.dyndims})
        reasons = Counter(r for _, _, r in ex.host_nodes)
        generic, ops = Counter(), Counter()
        for r, n in reasons.items():
            generic["no device rule for <op>" if r.startswith("no device rule") else r] += n
            if r.startswith("no device rule"):
                ops[family(r)] += n
        print(f"{kind} layer {block.layer_id}: {len(ex.graphs)} graph(s), {n_nodes} nodes, {n_dev} on the device "
              f"in {sum(len(g.regions) for g in ex.graphs)} region(s), {len(ex.host_nodes)} on the host; "
              f"dynamic dims {dims}")
        for r, n in generic.most_common():
            print(f"  {n:5d}  {r}")
        print("  no device rule, by op: " + ", ".join(f"{r[16:-1]} {n}" for r, n in ops.most_common()))
        totals[kind] = (n_nodes, len(ex.host_nodes))
    print("summary: " + ", ".join(f"{k} {h}/{n} nodes on the host" for k, (n, h) in totals.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
