"""Shared machinery of `decode.py` and `prefill.py`: contenders (eager, pto, inductor) that run the
same steps side by side on their own copies of the caches, the agreement checks, latency and
peak-memory measurement, and the report.

Agreement (what `--check` enforces, for pto; inductor is reported only):
* fp32: logits and every cache / compressor state within `rtol=1e-4, atol=1e-4 * max|eager|`;
* bf16: the error of pto against an eager fp32 run of the same weights is at most twice eager
  bf16's error against it (for logits and for every cache and state);
* fp32: the top-k selections (experts of every layer, indexer rows of every CSA layer) are
  identical to eager's, step by step (bf16: the number of differing rows is reported).

Peak memory (measured honestly, and only what can be measured on CPU without the profiler): each
contender runs the same workload again in a fresh subprocess; after its warm-up (prefix, first
step, i.e. the compile) the kernel's peak-RSS mark is reset (`/proc/self/clear_refs`, "5") and
`VmHWM - VmRSS(before)` after the timed steps is the *step peak*: resident memory a step needs on
top of what is already live (weights, caches, compiled code). Before the timed steps, glibc is
told to serve every allocation of 4 KiB or more with its own mmap (`mallopt(M_MMAP_THRESHOLD)`)
and to return its free heap (`malloc_trim`), so freed tensors
leave the resident set and a later step cannot hide its peak in memory an earlier step left in
the heap; smaller allocations come from the heap and count once it grows. The same is measured,
with glibc's default allocator settings, for the first step (`first-step peak`, which for
compiled contenders is the compile), and
`RSS before` (weights, caches, compiled code and Python state) and `process peak` (VmHWM since exec,
eager prefix prefill included) are printed too.
"""
from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch

if __package__ in (None, ""):   # run as a script: make `examples` and the project importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

import pto_dynamo  # noqa: E402
from examples.deepseek_v4 import SMALL, TINY, DeepSeekV4, Session  # noqa: E402
from examples.deepseek_v4.config import DeepSeekV4Config  # noqa: E402

CONFIGS = {"tiny": TINY, "small": SMALL}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
RTOL = 1e-4          # fp32: rtol, and atol relative to max|eager|
BF16_FACTOR = 2.0    # bf16: pto's error vs eager-fp32 <= this x eager-bf16's


def common_args(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=sorted(CONFIGS), default="small")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    p.add_argument("--batch", type=int, default=None, help="request slots (default: see script)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads for every contender (default 1)")
    p.add_argument("--check", action="store_true", help="exit non-zero on any mismatch or extra compile")
    p.add_argument("--inductor", action="store_true",
                   help="also run backend='inductor' (its cold compile takes minutes)")
    p.add_argument("--no-memory", dest="memory", action="store_false",
                   help="skip the peak-memory subprocesses")
    p.add_argument("--seed", type=int, default=0, help="seed of the token ids")
    p.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    return p


def make_cfg(args) -> DeepSeekV4Config:
    return dataclasses.replace(CONFIGS[args.config], dtype=DTYPES[args.dtype])


def mark_tokens(ids: torch.Tensor, meta: dict[str, torch.Tensor]) -> None:
    """The token dim T of every token-major input: one compile for every T >= 1.

    `pto_dynamo.mark_dynamic` gives each tensor its own unbacked symbol; in the whole model Dynamo
    unifies them through the model's own broadcasts (one DynDim T). `shape_id` says so up front
    (and is needed when a layer is compiled alone, see explain_layers.py); pto_dynamo's
    mark_dynamic has no shape_id yet (docs/notes_deepseek_pto.md), so Dynamo's decorator is called
    directly; the calls are additive."""
    for t in (ids, *meta.values()):
        pto_dynamo.mark_dynamic(t, 0, name="T")
        torch._dynamo.decorators.mark_unbacked(t, 0, min=1, shape_id="T")


def compiled_forward(model: DeepSeekV4, backend: str) -> Callable:
    compiled = torch.compile(model, backend=backend, fullgraph=True)

    def forward(ids, meta, caches, *rest):
        mark_tokens(ids, meta)
        return compiled(ids, meta, caches, *rest)
    return forward


@dataclasses.dataclass
class Contender:
    name: str
    model: DeepSeekV4
    forward: Callable
    session: Session | None = None
    wall: list[float] = dataclasses.field(default_factory=list)   # ms per step
    cpu: list[float] = dataclasses.field(default_factory=list)
    out: torch.Tensor | None = None

    def new_session(self, batch: int) -> Session:
        self.session = Session(self.model, batch=batch, forward=self.forward, record=True)
        return self.session

    def step(self, fn: Callable[[Session], torch.Tensor], timed: bool = True) -> torch.Tensor:
        w0, c0 = time.perf_counter(), time.process_time()
        with torch.no_grad():
            self.out = fn(self.session)
        if timed:
            self.wall.append((time.perf_counter() - w0) * 1e3)
            self.cpu.append((time.process_time() - c0) * 1e3)
        return self.out


def make_contenders(args, names: list[str] | None = None) -> list[Contender]:
    """eager, pto (+ inductor with --inductor) on one model; with bf16 also `ref`, eager fp32 with
    the same (unrounded) weights, which the bf16 errors are measured against."""
    cfg = make_cfg(args)
    model = DeepSeekV4(cfg).eval()
    want = names or (["eager", "pto"] + (["inductor"] if args.inductor else [])
                     + (["ref"] if cfg.dtype != torch.float32 else []))
    out = []
    for name in want:
        if name == "eager":
            out.append(Contender("eager", model, model))
        elif name == "pto":
            out.append(Contender("pto", model, compiled_forward(model, "pto")))
        elif name == "inductor":
            out.append(Contender("inductor", model, compiled_forward(model, "inductor")))
        elif name == "ref":
            ref = DeepSeekV4(dataclasses.replace(cfg, dtype=torch.float32)).eval()
            out.append(Contender("ref", ref, ref))
    return out


def copy_session(src: Session, dst: Session) -> None:
    for cs, cd in zip(src.caches, dst.caches):
        for k in cs:
            cd[k].copy_(cs[k])
    dst.seq_lens = list(src.seq_lens)


# ---------------------------------------------------------------------------------------------
# agreement

def cache_rows(name: str, t: torch.Tensor) -> torch.Tensor:
    """Drop the trash row (last) of caches that have one; states have none."""
    return t if name.endswith("state") else t[:-1]


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item() if a.numel() else 0.0


class Checker:
    """Accumulates the agreement of every contender with eager (and, in bf16, with `ref`)."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.bf16 = dtype != torch.float32
        self.worst: dict[str, dict[str, float]] = {}   # contender -> measure -> worst value
        self.failures: dict[str, list[str]] = {}

    def _note(self, who: str, measure: str, value: float, ok: bool, where: str) -> None:
        w = self.worst.setdefault(who, {})
        w[measure] = max(w.get(measure, 0.0), value)
        if not ok:
            self.failures.setdefault(who, []).append(f"{where}: {measure} = {value:.3g}")

    def _tensor(self, who: str, kind: str, got, want, ref, where: str) -> None:
        if not self.bf16:
            err, scale = max_err(got, want), want.float().abs().max().item()
            bound = RTOL * want.float().abs() + RTOL * scale
            ok = bool(((got.float() - want.float()).abs() <= bound).all())
            self._note(who, f"{kind} max|err|/max|eager|", err / max(scale, 1e-30), ok, where)
        else:
            e_c, e_e = max_err(got, ref), max_err(want, ref)
            ratio = e_c / e_e if e_e > 0 else (0.0 if e_c == 0 else float("inf"))
            ok = e_c <= BF16_FACTOR * e_e + 1e-6 * ref.float().abs().max().item()
            self._note(who, f"{kind} err_vs_fp32 / eager_bf16_err", ratio, ok, where)
            self._note(who, f"{kind} max|err| vs eager bf16", max_err(got, want), True, where)

    def compare(self, where: str, cont: Contender, eager: Contender, ref: Contender | None) -> None:
        self._tensor(cont.name, "logits", cont.out, eager.out, ref.out if ref else None, where)
        for layer, (cc, ce) in enumerate(zip(cont.session.caches, eager.session.caches)):
            for k in ce:
                cr = ref.session.caches[layer][k] if ref else None
                self._tensor(cont.name, "caches", cache_rows(k, cc[k]), cache_rows(k, ce[k]),
                             cache_rows(k, cr) if cr is not None else None, f"{where} layer {layer} {k}")
        sel_c, sel_e = cont.session.last_selections, eager.session.last_selections
        bad_rows = 0
        for k in sel_e:
            if k not in sel_c or sel_c[k].shape != sel_e[k].shape:
                bad_rows += sel_e[k].shape[0]
            else:   # compare as sets per row (the order of equal scores is not part of the contract)
                bad_rows += int((sel_c[k].sort(-1).values != sel_e[k].sort(-1).values).any(-1).sum())
        # fp32: must be identical. bf16: reported only; a near-tie at bf16 resolution may flip when
        # the compiled graph rounds one intermediate differently (its error bound is checked above)
        self._note(cont.name, "selection rows differing", float(bad_rows), bad_rows == 0 or self.bf16, where)

    def report(self) -> None:
        for who, measures in self.worst.items():
            print(f"  {who} vs eager (worst over steps):")
            for m, v in measures.items():
                print(f"    {m:<40} {v:.3g}")
            for f in self.failures.get(who, [])[:8]:
                print(f"    MISMATCH {f}")

    def ok(self, who: str) -> bool:
        return who not in self.failures


# ---------------------------------------------------------------------------------------------
# latency and memory

def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def latency_table(conts: list[Contender], label: str) -> None:
    eager = next(c for c in conts if c.name == "eager")
    print(f"{label} latency (median ms over {len(eager.wall)} timed steps, wall | process cpu):")
    for c in conts:
        if c.name == "ref":
            continue
        ratio = "" if c is eager else \
            f"   ratio {c.name}/eager: wall {median(c.wall) / median(eager.wall):.2f}x cpu {median(c.cpu) / median(eager.cpu):.2f}x"
        print(f"  {c.name:<9} {median(c.wall):9.2f} | {median(c.cpu):9.2f}{ratio}")
    ind = next((c for c in conts if c.name == "inductor"), None)
    pto = next((c for c in conts if c.name == "pto"), None)
    if ind and pto:
        print(f"  ratio pto/inductor: wall {median(pto.wall) / median(ind.wall):.2f}x "
              f"cpu {median(pto.cpu) / median(ind.cpu):.2f}x")


def _status_kb(field: str) -> int:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def memory_child_setup() -> None:
    """From now on, allocations >= 4 KiB get their own mapping, returned on free, so the resident
    set follows the live tensors to the page; free heap memory is returned first. Called after
    the warm-up (the compile would crawl through millions of mmaps) and before the timed steps
    (whose timings the children do not report)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 4 * 1024)      # M_MMAP_THRESHOLD (also disables the dynamic threshold)
        libc.mallopt(-1, 64 * 1024)     # M_TRIM_THRESHOLD
        libc.malloc_trim(0)
    except OSError:
        pass


def peak_reset() -> int:
    """Reset the kernel's peak-RSS mark; returns the current RSS in KiB."""
    pathlib.Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS")


def peak_since(rss_before_kb: int) -> float:
    """MiB of peak RSS above `rss_before_kb` since the last `peak_reset`."""
    return (_status_kb("VmHWM") - rss_before_kb) / 1024


def process_peak_kb() -> int:
    """Peak RSS of this process so far (VmHWM; call before the first `peak_reset`). Not
    `ru_maxrss`: Linux carries that over `execve` from the forked parent."""
    return _status_kb("VmHWM")


def memory_record(start_peak_kb: int, rss0_kb: int, first_peak_mb: float, rss_before_kb: int) -> dict:
    step = peak_since(rss_before_kb)
    peak_kb = max(start_peak_kb, rss0_kb + first_peak_mb * 1024, rss_before_kb + step * 1024)
    return {"first_peak_mb": first_peak_mb, "rss_before_mb": rss_before_kb / 1024,
            "step_peak_mb": step, "maxrss_mb": peak_kb / 1024}


def run_memory_children(script: str, argv: list[str], names: list[str], timeout: float) -> dict[str, dict]:
    """One fresh interpreter per contender running the same workload; each prints one JSON line."""
    out = {}
    for name in names:
        cmd = [sys.executable, script, *argv, "--memory-child", name, "--no-memory"]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            out[name] = {"error": f"timed out after {timeout:.0f} s"}
            continue
        lines = [ln for ln in res.stdout.splitlines() if ln.startswith("MEMORY ")]
        out[name] = json.loads(lines[-1][7:]) if res.returncode == 0 and lines else \
            {"error": f"rc {res.returncode}: {res.stderr.strip().splitlines()[-1:]}"}
    return out


def memory_table(mem: dict[str, dict]) -> None:
    print("peak memory (fresh process per contender; step peak = peak RSS during the timed steps above "
          "the RSS before them; see harness.py):")
    eager = mem.get("eager", {})
    for name, m in mem.items():
        if "error" in m:
            print(f"  {name:<9} {m['error']}")
            continue
        ratio = ""
        if name != "eager" and "step_peak_mb" in eager and eager["step_peak_mb"] > 0:
            ratio = f"   ratio {name}/eager: step peak {m['step_peak_mb'] / eager['step_peak_mb']:.2f}x," \
                    f" RSS before {m['rss_before_mb'] / eager['rss_before_mb']:.2f}x"
        print(f"  {name:<9} step peak {m['step_peak_mb']:8.2f} MiB  RSS before {m['rss_before_mb']:7.1f} MiB"
              f"  first-step peak {m['first_peak_mb']:7.1f} MiB  process peak {m['maxrss_mb']:7.1f} MiB{ratio}")


def print_counters(label: str) -> dict:
    s = pto_dynamo.stats()
    print(f"pto counters ({label}): " + ", ".join(f"{k}={v}" for k, v in s.items()))
    return s


def signatures_obtained(counters: dict) -> int:
    """Signatures compiled from scratch or loaded from the disk cache (a warm PTO_CACHE_DIR, e.g.
    a second run of the script): "one compile" means exactly one of either, whatever the cache."""
    return counters["signatures_compiled"] + counters["disk_hits"]


def child_argv(argv: list[str]) -> list[str]:
    """The parent's arguments minus those that only concern the parent."""
    return [a for a in argv if a not in ("--check", "--inductor")]


def setup_threads(args) -> None:
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
