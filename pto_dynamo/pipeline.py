"""The compile pipeline of one ATen graph, as one readable list of named passes.

    graph IR ─▶ GRAPH_PASSES (cse, reinplace, dce) ─▶ signature ─▶ [memory / disk cache]
             ─▶ partition ─▶ per device region: vector lowering ─▶ PTO-ISA C++ ─▶ native build
                             (or the ATen reference runner, with the reason, if it cannot be lowered)
             ─▶ host program ─▶ disk cache entry

Each stage is dumped under PTO_DEBUG_DIR when set, and the graph verifier runs after every pass
when `verify=True` (tests).
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Callable

from pto_dynamo.stats import bump, record_host_nodes
from pto_dynamo.ascend_backend.cpu import build_libraries, memory as cpu_memory
from pto_dynamo.ascend_backend.host_program import HostProgram, generate_host_program, region_scalars
from pto_dynamo.ascend_backend.native_region import NativeRegion, render_region
from pto_dynamo.ascend_backend.reference_region import ReferenceRegion
from pto_dynamo.cache import MEMORY_CACHE, signature, source_hash
from pto_dynamo.debug import DebugDump
from pto_dynamo.disk_cache import load_entry, store_entry
from pto_dynamo.graph.ir import Graph
from pto_dynamo.graph.printer import graph_text
from pto_dynamo.graph.verify import verify_graph
from pto_dynamo.lowering.gathers import rewrite_gathers
from pto_dynamo.lowering.scatters import rewrite_scatters
from pto_dynamo.lowering.index_checks import add_index_checks
from pto_dynamo.lowering.partition import DeviceRegion, Partition, partition_graph
from pto_dynamo.lowering.reinplace import reinplace_input_mutations
from pto_dynamo.lowering.simplify import eliminate_common_subexpressions, eliminate_dead_code
from pto_dynamo.lowering.splits import split_into_views
# The cpu target tiles within the A2A3 capacities (CPU_CAPACITY: the same bytes, L1-sized tiles),
# so the same kernels stay legal for the NPU.
from pto_dynamo.lowering.tile import CPU_CAPACITY, TileVerificationError, print_program
from pto_dynamo.lowering.tile.planner import PlanningError
from pto_dynamo.lowering.vector import claims  # noqa: F401  (registers the vector device claims)
from pto_dynamo.lowering.cube import claims as cube_claims, expand as cube_expand  # noqa: F401  (cube claims)
from pto_dynamo.lowering.attention import claims as attention_claims  # noqa: F401  (the attention claim)
from pto_dynamo.lowering.attention.out_layout import store_attention_as_read
from pto_dynamo.lowering.attention.pattern import recognise_attention
from pto_dynamo.lowering.vector.fusion import FusionError
from pto_dynamo.lowering.vector.lower import lower_vector_region
from pto_dynamo.lowering.vector.tile_rules import TilingError
from pto_dynamo.options import PtoOptions

# Expected reasons a region cannot be lowered (yet); any other error is a bug that `verify=True` raises
# and that otherwise, like these, sends the region to the ATen reference runner.
LOWERING_ERRORS = (FusionError, TilingError, PlanningError, TileVerificationError, NotImplementedError)


@dataclass(frozen=True)
class GraphPass:
    name: str
    run: Callable[[Graph], Graph]
    enabled: Callable[[PtoOptions], bool] = lambda options: True


GRAPH_PASSES = (
    GraphPass("index_checks", add_index_checks),
    GraphPass("gathers", rewrite_gathers, lambda o: not o.host_only),     # after the checks
    GraphPass("scatters", rewrite_scatters, lambda o: not o.host_only),
    GraphPass("splits", split_into_views, lambda o: not o.host_only),
    GraphPass("cse", eliminate_common_subexpressions, lambda o: o.cse),
    GraphPass("reinplace", reinplace_input_mutations, lambda o: o.reinplace),
    GraphPass("attention", recognise_attention, lambda o: not o.host_only),
    GraphPass("attention_layout", store_attention_as_read, lambda o: not o.host_only),
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
        record_host_nodes(graph.name, cached.partition.host_op_count, _fallbacks(cached.runners))
        _notify(cached, graph.name)
        return cached
    partition = partition_graph(graph, host_only=options.host_only)
    dump.write("partition", partition_text(graph, partition))
    entry = load_entry(key, source_hash())
    if entry is not None:
        host_program = HostProgram(entry.meta["function"], entry.text("host_program.py"))
        runners = [_runner_from_entry(graph, r, entry, options) for r in partition.regions]
        bump("disk_hits")
    else:
        host_program = generate_host_program(graph, partition)
        runners = _build_runners(graph, partition, key, options, dump)
        store_entry(key, source_hash(), _entry_files(graph, partition, host_program, runners),
                    {"function": host_program.graph_name, "host_nodes": partition.host_op_count,
                     "regions": [_runner_meta(r) for r in runners]})
        bump("signatures_compiled")
    dump.write("host_program", host_program.source, "py")
    function = host_program.load(runners, cpu_memory.empty_strided)     # region outputs: the cpu target's memory
    compiled = CompiledGraph(graph, partition, host_program, function, key, runners)
    record_host_nodes(graph.name, partition.host_op_count, _fallbacks(runners))
    MEMORY_CACHE.put(key, compiled)
    _notify(compiled, graph.name)
    return compiled


def _fallbacks(runners) -> int:
    return sum(isinstance(r, ReferenceRegion) for r in runners)


def _build_runners(graph: Graph, partition: Partition, key: str, options: PtoOptions, dump: DebugDump) -> list:
    """The runner of every device region; their native libraries build concurrently."""
    lowered = [_lower_region(graph, r, key, options, dump) for r in partition.regions]
    build_libraries([(source, symbol) for source, symbol, _ in (x for x in lowered if isinstance(x, tuple))])
    return [NativeRegion(*x, options.core_num) if isinstance(x, tuple) else x for x in lowered]


def _lower_region(graph: Graph, region: DeviceRegion, key: str, options: PtoOptions, dump: DebugDump):
    """(source, entry symbol, kernel names) of a device region's translation unit, or the ATen
    reference runner (with the reason) when the region cannot be lowered: compilation never fails
    because of one region."""
    scalars = region_scalars(graph, region)
    try:
        tile_region = lower_vector_region(graph, region, scalars, f"s{key[:10]}", CPU_CAPACITY)
        source, symbol, kernel_names = render_region(tile_region)
    except Exception as err:                                  # noqa: BLE001 - never fail a model
        if options.verify and not isinstance(err, LOWERING_ERRORS):
            raise                                             # tests: an unexpected error is a bug
        runner = ReferenceRegion(graph, region, scalars)
        runner.fallback_reason = f"{type(err).__name__}: {err}"
        dump.write(f"region{region.index}_fallback", f"{runner.fallback_reason}\n\n{traceback.format_exc()}")
        return runner
    for program in tile_region.kernels():
        dump.write(f"region{region.index}_tile_{program.name}", print_program(program))
    dump.write(f"region{region.index}_source", source, "cpp")
    return source, symbol, kernel_names


def _runner_meta(runner) -> dict:
    if isinstance(runner, NativeRegion):
        return {"kind": "native", "symbol": runner.symbol, "kernels": list(runner.kernel_names)}
    return {"kind": "reference", "reason": getattr(runner, "fallback_reason", "")}


def _runner_from_entry(graph: Graph, region: DeviceRegion, entry, options: PtoOptions):
    info = entry.meta["regions"][region.index]
    if info["kind"] == "native":
        return NativeRegion(entry.text(f"regions/region{region.index}.cpp"), info["symbol"], info["kernels"],
                            options.core_num)
    runner = ReferenceRegion(graph, region, region_scalars(graph, region))
    runner.fallback_reason = info["reason"]
    return runner


def _entry_files(graph: Graph, partition: Partition, host_program: HostProgram, runners) -> dict[str, bytes]:
    files = {"graph.txt": graph_text(graph).encode(), "partition.txt": partition_text(graph, partition).encode(),
             "host_program.py": host_program.source.encode()}
    for i, runner in enumerate(runners):
        if isinstance(runner, NativeRegion):
            files[f"regions/region{i}.cpp"] = runner.source.encode()
            files[f"regions/region{i}.so"] = runner.library.path.read_bytes()
    return files


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
