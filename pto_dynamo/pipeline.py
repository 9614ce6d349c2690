"""The compile pipeline of one ATen graph, as one readable list of named passes.

    graph IR ─▶ GRAPH_PASSES (cse, reinplace, dce) ─▶ signature ─▶ [memory / disk cache]
             ─▶ partition ─▶ host program (+ region runners) ─▶ disk cache entry

Each stage is dumped under PTO_DEBUG_DIR when set, and the graph verifier runs after every pass
when `verify=True` (tests).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pto_dynamo.stats import bump, record_host_nodes
from pto_dynamo.ascend_backend.host_program import HostProgram, generate_host_program, region_scalars
from pto_dynamo.ascend_backend.reference_region import ReferenceRegion
from pto_dynamo.cache import MEMORY_CACHE, signature, source_hash
from pto_dynamo.debug import DebugDump
from pto_dynamo.disk_cache import load_entry, store_entry
from pto_dynamo.graph.ir import Graph
from pto_dynamo.graph.printer import graph_text
from pto_dynamo.graph.verify import verify_graph
from pto_dynamo.lowering.partition import Partition, partition_graph
from pto_dynamo.lowering.reinplace import reinplace_input_mutations
from pto_dynamo.lowering.simplify import eliminate_common_subexpressions, eliminate_dead_code
from pto_dynamo.options import PtoOptions


@dataclass(frozen=True)
class GraphPass:
    name: str
    run: Callable[[Graph], Graph]
    enabled: Callable[[PtoOptions], bool] = lambda options: True


GRAPH_PASSES = (
    GraphPass("cse", eliminate_common_subexpressions, lambda o: o.cse),
    GraphPass("reinplace", reinplace_input_mutations, lambda o: o.reinplace),
    GraphPass("dce", eliminate_dead_code),
)


@dataclass
class CompiledGraph:
    """Everything one signature compiled to; `fn(*args)` runs it."""

    graph: Graph
    partition: Partition
    host_program: HostProgram
    fn: Callable
    signature: str
    runners: list

    def kernels_of(self, region_index: int) -> list[str]:
        """Names of the kernels device region `region_index` launches."""
        return list(self.runners[region_index].kernel_names)


def run_graph_passes(graph: Graph, options: PtoOptions, dump: DebugDump, verify: bool = False) -> Graph:
    """Run GRAPH_PASSES in order (dumping and optionally verifying after each)."""
    for p in GRAPH_PASSES:
        if not p.enabled(options):
            continue
        graph = p.run(graph)
        if verify:
            verify_graph(graph)
        dump.write(f"ir_after_{p.name}", graph_text(graph))
    return graph


def compile_graph(graph: Graph, options: PtoOptions, dump: DebugDump, verify: bool = False) -> CompiledGraph:
    """Compile a graph IR, or take it from the in-memory or on-disk cache by signature."""
    if verify:
        verify_graph(graph)
    dump.write("ir", graph_text(graph))
    graph = run_graph_passes(graph, options, dump, verify)
    key = signature(graph, options)
    cached = MEMORY_CACHE.get(key)
    if cached is not None:
        bump("memory_hits")
        record_host_nodes(graph.name, len(cached.partition.host_reasons))
        _notify(cached, graph.name)
        return cached
    partition = partition_graph(graph, host_only=options.host_only)
    dump.write("partition", partition_text(graph, partition))
    entry = load_entry(key, source_hash())
    if entry is not None:
        host_program = HostProgram(entry.meta["function"], entry.text("host_program.py"))
        bump("disk_hits")
    else:
        host_program = generate_host_program(graph, partition)
        store_entry(key, source_hash(), _entry_files(graph, partition, host_program),
                    {"function": host_program.graph_name, "host_nodes": len(partition.host_reasons)})
        bump("signatures_compiled")
    dump.write("host_program", host_program.source, "py")
    runners = [ReferenceRegion(graph, r, region_scalars(graph, r)) for r in partition.regions]
    compiled = CompiledGraph(graph, partition, host_program, host_program.load(runners), key, runners)
    record_host_nodes(graph.name, len(partition.host_reasons))
    MEMORY_CACHE.put(key, compiled)
    _notify(compiled, graph.name)
    return compiled


def _entry_files(graph: Graph, partition: Partition, host_program: HostProgram) -> dict[str, bytes]:
    return {"graph.txt": graph_text(graph).encode(), "partition.txt": partition_text(graph, partition).encode(),
            "host_program.py": host_program.source.encode()}


# Observers of compiled graphs (`pto_dynamo.explain` records the graphs of one call).
_LISTENERS: list[Callable[[CompiledGraph, str], None]] = []


def add_listener(fn: Callable[[CompiledGraph, str], None]) -> None:
    _LISTENERS.append(fn)


def remove_listener(fn: Callable[[CompiledGraph, str], None]) -> None:
    _LISTENERS.remove(fn)


def _notify(compiled: CompiledGraph, graph_name: str) -> None:
    for fn in list(_LISTENERS):
        fn(compiled, graph_name)


def partition_text(graph: Graph, partition: Partition) -> str:
    """The graph text annotated with each node's placement."""
    region_of = {n: r.index for r in partition.regions for n in r.nodes}
    reasons = dict(partition.host_reasons)

    def where(node):
        return f"device region {region_of[node.name]}" if node.name in region_of else f"host: {reasons[node.name]}"
    return graph_text(graph, annotate=where)
