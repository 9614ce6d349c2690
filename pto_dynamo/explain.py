"""`pto_dynamo.explain(fn, *args, **kwargs)`: what the backend decided for one call of `fn`.

Compiles `fn` afresh through backend="pto" (the user's own compiled functions are left alone),
calls it once, and reports for every graph: the DynDims with their binding sources, each device
region with its nodes and planned kernels, each host node with its reason, and the counters of
that call.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from pto_dynamo.graph.dims import produced_text
from pto_dynamo.graph.printer import meta_text, target_text
from pto_dynamo.lowering.registry import RUNTIME_CHECK
from pto_dynamo.pipeline import CompiledGraph, add_listener, remove_listener
from pto_dynamo.stats import stats


@dataclass
class GraphReport:
    name: str
    compiled: CompiledGraph

    @property
    def host_nodes(self) -> list[tuple[str, str]]:
        """(node, reason) of every op on the host (runtime shape checks are listed apart)."""
        return [(n, r) for n, r in self.compiled.partition.host_reasons if r != RUNTIME_CHECK]

    @property
    def regions(self):
        return self.compiled.partition.regions

    def text(self) -> str:
        g, p = self.compiled.graph, self.compiled.partition
        lines = [f"graph {self.name}  (signature {self.compiled.signature[:12]}, "
                 f"{len(g.nodes)} nodes: {sum(len(r.nodes) for r in p.regions)} on the device, "
                 f"{len(self.host_nodes)} ops on the host, {len(p.host_reasons) - len(self.host_nodes)} runtime checks)"]
        lines.append("  dynamic dims:" if g.dyndims else "  dynamic dims: none")
        for d in g.dyndims:
            if d.sources:
                where = ", ".join(_source_text(g, s) for s in d.sources)
            else:
                where = f"{produced_text(d.produced_by)} (data-dependent, bound where it is produced)"
            lines.append(f"    {d.name} <- {where}")
        lines.append(f"  device regions: {len(p.regions)}")
        for r in p.regions:
            lines.append(f"    region {r.index}: {len(r.nodes)} nodes: {', '.join(r.nodes)}")
            lines.append(f"      kernels: {', '.join(self.compiled.kernels_of(r.index)) or 'none'}")
            fallback = getattr(self.compiled.runners[r.index], "fallback_reason", None)
            if fallback:
                lines.append(f"      runs on the ATen reference runner: {fallback}")
        lines.append(f"  host nodes: {len(self.host_nodes)}")
        for name, reason in self.host_nodes:
            node = g.node_by_name[name]
            lines.append(f"    {name:<24} {meta_text(node.meta):<22} {target_text(node.target):<36} {reason}")
        return "\n".join(lines)


def _source_text(graph, source) -> str:
    inp = graph.inputs[source.input_index]
    who = f"input {source.input_index} ({inp.label or inp.name})"
    return who if source.axis is None else f"{who} axis {source.axis}"


@dataclass
class Explanation:
    """The graphs one call compiled (or found in a cache) and the counters of that call."""

    graphs: list[GraphReport] = field(default_factory=list)
    counters: dict = field(default_factory=dict)
    result: object = None

    @property
    def host_nodes(self) -> list[tuple[str, str, str]]:
        """(graph, node, reason) for every node that stays on the host."""
        return [(g.name, n, r) for g in self.graphs for n, r in g.host_nodes]

    def __str__(self) -> str:
        parts = [f"pto explain: {len(self.graphs)} graph(s)"] + [g.text() for g in self.graphs]
        parts.append("counters of this call: " + ", ".join(f"{k}={v}" for k, v in self.counters.items()))
        return "\n".join(parts)


def _counter_diff(before: dict, after: dict) -> dict:
    out = {}
    for key, value in after.items():
        if isinstance(value, (int, float)):
            out[key] = round(value - before.get(key, 0), 4) if isinstance(value, float) else value - before.get(key, 0)
    return out


def explain(fn, *args, options: dict | None = None, print_report: bool = True, **kwargs) -> Explanation:
    """Compile and run `fn(*args, **kwargs)` once through backend="pto"; return (and print) an
    `Explanation`. Dims marked with `pto_dynamo.mark_dynamic` on the arguments are honoured."""
    from pto_dynamo.backend import pto_backend

    report = Explanation()

    def listener(compiled: CompiledGraph, name: str) -> None:
        report.graphs.append(GraphReport(name, compiled))
    add_listener(listener)

    def backend(gm, example_inputs):           # a fresh backend object: Dynamo compiles anew
        return pto_backend(gm, example_inputs, options=options)

    before = stats()
    try:
        report.result = torch.compile(fn, backend=backend)(*args, **kwargs)
    finally:
        remove_listener(listener)
    report.counters = _counter_diff(before, stats())
    if print_report:
        print(report)
    return report
