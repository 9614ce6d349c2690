"""The compile pipeline of one ATen graph, as one readable list of named passes.

    graph IR ─▶ GRAPH_PASSES (cse, reinplace, dce) ─▶ partition ─▶ host program (+ region runners)

Each stage is dumped under PTO_DEBUG_DIR when set, and the graph verifier runs after every pass
when `verify=True` (tests).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pto_dynamo.stats import bump, record_host_nodes
from pto_dynamo.ascend_backend.host_program import HostProgram, generate_host_program, region_scalars
from pto_dynamo.ascend_backend.reference_region import ReferenceRegion
from pto_dynamo.cache import MEMORY_CACHE, signature
from pto_dynamo.debug import DebugDump
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
    """Compile a graph IR, or take it from the in-memory cache by signature."""
    if verify:
        verify_graph(graph)
    dump.write("ir", graph_text(graph))
    graph = run_graph_passes(graph, options, dump, verify)
    key = signature(graph, options)
    cached = MEMORY_CACHE.get(key)
    if cached is not None:
        bump("memory_hits")
        record_host_nodes(graph.name, len(cached.partition.host_reasons))
        return cached
    partition = partition_graph(graph, host_only=options.host_only)
    dump.write("partition", partition_text(graph, partition))
    host_program = generate_host_program(graph, partition)
    dump.write("host_program", host_program.source, "py")
    runners = [ReferenceRegion(graph, r, region_scalars(graph, r)) for r in partition.regions]
    compiled = CompiledGraph(graph, partition, host_program, host_program.load(runners))
    bump("signatures_compiled")
    record_host_nodes(graph.name, len(partition.host_reasons))
    MEMORY_CACHE.put(key, compiled)
    return compiled


def partition_text(graph: Graph, partition: Partition) -> str:
    """The graph text annotated with each node's placement."""
    region_of = {n: r.index for r in partition.regions for n in r.nodes}
    reasons = dict(partition.host_reasons)

    def where(node):
        return f"device region {region_of[node.name]}" if node.name in region_of else f"host: {reasons[node.name]}"
    return graph_text(graph, annotate=where)
