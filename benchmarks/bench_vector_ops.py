"""Vector ops on one CPU thread: eager vs backend="inductor" vs backend="pto", at D=4096 and a range of T.

    rmsnorm   h = x + r;  y = h * rsqrt(mean(h^2) + 1e-6) * w;  return h, y    (x, r: [T, D], w: [D])
    silu_mul  silu(a) * b                                                     (a, b: [T, D])
    softmax   softmax(x, dim=-1)                                              (x: [T, D])

Each op is computed in its input dtype (float32, bfloat16), as a user would write it. Contenders, all
with torch.set_num_threads(1) (the pto backend runs on torch's thread count):
  eager     the plain function
  inductor  torch.compile(fn, backend="inductor", dynamic=True)
  pto       torch.compile(fn, backend="pto", fullgraph=True), the token dim of each [T, D] input marked
            with pto_dynamo.mark_dynamic(x, 0), so one compile serves every T

Per (op, dtype): the first call of each compiled contender (cold: PTO_CACHE_DIR and
TORCHINDUCTOR_CACHE_DIR are fresh temporary directories, set before pto_dynamo is imported; the
first (op, dtype) also pays process-wide one-time work such as pto's precompiled header and
inductor's imports), the pto_dynamo.stats() counters of that compile, and the checks that pto left
no host nodes in its graphs and compiled at most one signature. Each case is checked against eager
with torch.testing.assert_close before timing.

Timing: interleaved rounds (each round times every contender at every case in turn, after a STREAM
triad measurement), each measurement a loop of >= 4 calls and >= 20 ms; medians are printed with
pto/inductor, pto/eager and pto's achieved bandwidth (bytes the op must move: inputs read once,
outputs written once) as % of the single-thread STREAM triad bandwidth of the same run. Rows are
marked against the targets: at T >= 256 pto <= 1.05x inductor, <= 0.5x eager and >= 80% of triad;
at T <= 16 pto <= 1.1x inductor. Exits 1 if a check or a pto compile failed (targets missed do not).

    .venv/bin/python benchmarks/bench_vector_ops.py [--rounds 5] [--T 1,16,256,2048]
        [--ops rmsnorm,silu_mul,softmax] [--dtypes float32,bfloat16] [--quick]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

D = 4096
EPS = 1e-6
TRIAD_ELEMENTS = 1 << 24          # 3 x 64 MB float32 arrays: well outside the caches
TOLERANCES = {torch.float32: {"rtol": 1e-5, "atol": 1e-5}, torch.bfloat16: {"rtol": 1.6e-2, "atol": 1e-2}}


def rmsnorm(x, r, w):
    h = x + r
    y = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + EPS) * w
    return h, y


def silu_mul(a, b):
    return torch.nn.functional.silu(a) * b


def softmax(x):
    return torch.softmax(x, dim=-1)


@dataclass(frozen=True)
class Op:
    fn: Callable
    token_inputs: int     # [T, D] inputs, first
    has_weight: bool      # a trailing [D] input
    outputs: int          # [T, D] outputs

    def bytes_moved(self, T: int, dtype: torch.dtype) -> int:
        return ((self.token_inputs + self.outputs) * T * D + (D if self.has_weight else 0)) * dtype.itemsize


OPS = {"rmsnorm": Op(rmsnorm, 2, True, 2), "silu_mul": Op(silu_mul, 2, False, 1), "softmax": Op(softmax, 1, False, 1)}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass
class Case:
    op: str
    dtype: str
    T: int
    calls: dict[str, Callable[[], object]]     # contender -> zero-argument call
    seconds: dict[str, list[float]] = field(init=False)   # contender -> seconds per call, one per round

    def __post_init__(self):
        self.seconds = {name: [] for name in self.calls}


@dataclass
class Compile:
    """What compiling one (op, dtype) cost and produced."""
    first_call_s: dict[str, float] = field(default_factory=dict)    # contender -> first call at the first T
    later_first_s: dict[str, float] = field(default_factory=dict)   # contender -> first calls at the other Ts
    pto_stats: dict = field(default_factory=dict)                   # pto_dynamo.stats() delta
    inductor_graphs: int = 0
    problems: list[str] = field(default_factory=list)


def make_inputs(op: Op, T: int, dtype: torch.dtype, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(T, D)] * op.token_inputs + ([(D,)] if op.has_weight else [])
    return [torch.randn(s, generator=g).to(dtype) for s in shapes]


def mark_tokens(op: Op, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Clones of `inputs` with the token dim of each [T, D] input marked dynamic for pto (the
    plain tensors stay unmarked, so the mark does not change inductor's compile)."""
    import pto_dynamo
    clones = [t.clone() for t in inputs]
    for t in clones[:op.token_inputs]:
        pto_dynamo.mark_dynamic(t, 0)
    return clones


def stats_delta(before: dict, after: dict) -> dict:
    """Counter increments between two pto_dynamo.stats() snapshots; per-graph counters
    (host_nodes, fallback_regions): the graphs added."""
    delta = {}
    for k, v in after.items():
        if isinstance(v, dict):
            delta[k] = {g: n for g, n in v.items() if g not in before[k]}
        else:
            delta[k] = v - before[k]
    return delta


def timed_call(fn: Callable, *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def compile_and_check(op_name: str, dtype_name: str, Ts: list[int]) -> tuple[list[Case], Compile]:
    """Compile (op, dtype) for pto and inductor, check every T against eager, and return the cases
    to time. A pto failure is recorded (with its error text) and pto left out of the cases."""
    import pto_dynamo
    op, dtype = OPS[op_name], DTYPES[dtype_name]
    compiled = {"inductor": torch.compile(op.fn, backend="inductor", dynamic=True),
                "pto": torch.compile(op.fn, backend="pto", fullgraph=True)}
    info = Compile(later_first_s={name: 0.0 for name in compiled})
    pto_before, graphs_before = pto_dynamo.stats(), torch._dynamo.utils.counters["stats"]["unique_graphs"]
    cases = []
    for i, T in enumerate(Ts):
        plain = make_inputs(op, T, dtype, seed=T)
        args = {"eager": plain, "inductor": plain, "pto": mark_tokens(op, plain)}
        expected = op.fn(*plain)
        calls = {"eager": lambda a=plain: op.fn(*a)}
        for name, fn in compiled.items():
            if name == "pto" and info.problems:
                continue
            try:
                seconds, out = timed_call(fn, *args[name])
                torch.testing.assert_close(out, expected, **TOLERANCES[dtype])
            except Exception:     # pto's is reported with its traceback, not hidden
                if name != "pto":
                    raise
                info.problems.append(f"T={T}:\n{traceback.format_exc()}")
                continue
            if i == 0:
                info.first_call_s[name] = seconds
            else:
                info.later_first_s[name] += seconds
            calls[name] = lambda fn=fn, a=args[name]: fn(*a)
        cases.append(Case(op_name, dtype_name, T, calls))
    info.pto_stats = stats_delta(pto_before, pto_dynamo.stats())
    # Dynamo counts the graphs of both backends; pto's are the ones it received
    info.inductor_graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs_before \
        - info.pto_stats["graphs_received"]
    host = {g: n for g, n in info.pto_stats["host_nodes"].items() if n}
    if host:
        info.problems.append(f"pto graphs with host nodes: {host}")
    fallback = {g: n for g, n in info.pto_stats["fallback_regions"].items() if n}
    if fallback:
        info.problems.append(f"pto graphs with regions on the ATen fallback: {fallback}")
    if info.pto_stats["signatures_compiled"] > 1:
        info.problems.append(f"pto compiled {info.pto_stats['signatures_compiled']} signatures (expected <= 1)")
    return cases, info


def seconds_per_call(call: Callable, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - t0) / n


def calls_per_measurement(call: Callable, min_seconds: float) -> int:
    """The smallest power of two of calls, 4 at least, that takes >= min_seconds."""
    n = 4
    while seconds_per_call(call, n) * n < min_seconds:
        n *= 2
    return n


def run_rounds(cases: list[Case], rounds: int, min_seconds: float) -> list[float]:
    """Time every contender of every case once per round, interleaved; returns the triad GB/s per round."""
    from pto_dynamo.ascend_backend.cpu.stream import triad_gbps
    reps = {(id(c), name): calls_per_measurement(call, min_seconds) for c in cases for name, call in c.calls.items()}
    triads = []
    for _ in range(rounds):
        triads.append(triad_gbps(TRIAD_ELEMENTS, threads=1, repeats=3))
        for case in cases:
            for name, call in case.calls.items():
                case.seconds[name].append(seconds_per_call(call, reps[(id(case), name)]))
    return triads


def target_misses(T: int, vs_inductor: float, vs_eager: float, of_triad: float) -> str:
    """The issue's targets this row misses ('ok' if none, '-' where no target applies)."""
    if T >= 256:
        misses = ["pto/ind>1.05" * (vs_inductor > 1.05), "pto/eager>0.5" * (vs_eager > 0.5),
                  "triad<80%" * (of_triad < 0.8)]
    elif T <= 16:
        misses = ["pto/ind>1.1" * (vs_inductor > 1.1)]
    else:
        return "-"
    return " ".join(m for m in misses if m) or "ok"


def print_compiles(compiles: dict[tuple[str, str], Compile], Ts: list[int]) -> None:
    print(f"\ncold compiles (first call at T={Ts[0]}; 'other T' = first calls at the other Ts, recompiles show there)")
    print(f"{'op':9s} {'dtype':9s} {'pto s':>7s} {'other T':>7s} {'ind s':>7s} {'other T':>7s} {'ind graphs':>10s}  "
          f"pto: signatures native_builds backend_s host_nodes")
    for (op, dtype), c in compiles.items():
        s = c.pto_stats
        pto_first = f"{c.first_call_s['pto']:7.2f}" if "pto" in c.first_call_s else f"{'FAILED':>7s}"
        print(f"{op:9s} {dtype:9s} {pto_first} {c.later_first_s['pto']:7.2f} {c.first_call_s['inductor']:7.2f} "
              f"{c.later_first_s['inductor']:7.2f} {c.inductor_graphs:10d}  {s['signatures_compiled']:10d} "
              f"{s['native_builds']:13d} {s['backend_seconds']:9.2f} {s['host_nodes']}")


def print_timings(cases: list[Case], triad: float) -> None:
    print(f"\nmedians, us per call; single-thread STREAM triad {triad:.2f} GB/s")
    print(f"{'op':9s} {'dtype':9s} {'T':>5s} {'eager':>9s} {'inductor':>9s} {'pto':>9s} {'pto/ind':>7s} "
          f"{'pto/eag':>7s} {'pto GB/s':>8s} {'%triad':>6s}  targets")
    for c in cases:
        med = {name: statistics.median(s) for name, s in c.seconds.items()}
        head = f"{c.op:9s} {c.dtype:9s} {c.T:5d} {med['eager'] * 1e6:9.1f} {med['inductor'] * 1e6:9.1f}"
        if "pto" not in med:
            print(f"{head} {'FAILED':>9s}")
            continue
        gbps = OPS[c.op].bytes_moved(c.T, DTYPES[c.dtype]) / med["pto"] / 1e9
        vs_ind, vs_eager = med["pto"] / med["inductor"], med["pto"] / med["eager"]
        print(f"{head} {med['pto'] * 1e6:9.1f} {vs_ind:7.2f} {vs_eager:7.2f} {gbps:8.2f} {gbps / triad:6.0%}  "
              f"{target_misses(c.T, vs_ind, vs_eager, gbps / triad)}")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; 2 with --quick)")
    ap.add_argument("--T", default=None, help="token counts (default 1,16,256,2048; 1,256 with --quick)")
    ap.add_argument("--ops", default=",".join(OPS), help=f"comma-separated subset of {','.join(OPS)}")
    ap.add_argument("--dtypes", default=",".join(DTYPES), help=f"comma-separated subset of {','.join(DTYPES)}")
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 rounds, T=1,256, >= 5 ms per measurement")
    args = ap.parse_args()
    args.rounds = args.rounds or (2 if args.quick else 5)
    args.T = [int(t) for t in (args.T or ("1,256" if args.quick else "1,16,256,2048")).split(",")]
    args.ops, args.dtypes = args.ops.split(","), args.dtypes.split(",")
    for names, known in ((args.ops, OPS), (args.dtypes, DTYPES)):
        if set(names) - set(known):
            ap.error(f"unknown {sorted(set(names) - set(known))}; choose from {','.join(known)}")
    args.min_seconds = 0.005 if args.quick else 0.02
    return args


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="pto_bench_") as pto_cache, \
            tempfile.TemporaryDirectory(prefix="inductor_bench_") as inductor_cache:
        os.environ["PTO_CACHE_DIR"], os.environ["TORCHINDUCTOR_CACHE_DIR"] = pto_cache, inductor_cache
        import pto_dynamo  # noqa: F401 - after PTO_CACHE_DIR is set, so native builds are cold
        torch.set_num_threads(1)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, D={D}, T={args.T}, "
              f"{args.rounds} interleaved rounds, >= 4 calls and >= {args.min_seconds * 1e3:.0f} ms per measurement")
        cases, compiles = [], {}
        for op in args.ops:
            for dtype in args.dtypes:
                op_cases, compiles[(op, dtype)] = compile_and_check(op, dtype, args.T)
                cases += op_cases
        print_compiles(compiles, args.T)
        triads = run_rounds(cases, args.rounds, args.min_seconds)
        print_timings(cases, statistics.median(triads))
    problems = [(key, p) for key, c in compiles.items() for p in c.problems]
    for (op, dtype), p in problems:
        print(f"\nPTO PROBLEM {op} {dtype}: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
