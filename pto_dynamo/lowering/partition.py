"""Partition a graph into host nodes and maximal acyclic device regions.

Walk nodes in order; a device node joins a region of one of its producers (else the most recent
region, else a new one) unless joining would create a cycle: region R may take node n only if no
input of n outside R depends on R, where a region counts as one unit (it runs as one call, so a
value of a region depends on everything any member of that region reads). `operator.getitem` follows the node it unpacks. Every host node
records why it stays on the host.
"""
from __future__ import annotations

import heapq
import operator
from dataclasses import dataclass

from pto_dynamo.graph.ir import Graph, iter_refs
from pto_dynamo.lowering.registry import HOST_ONLY, host_reason


@dataclass(frozen=True)
class DeviceRegion:
    """A set of nodes that runs as one native call.

    inputs:  values the region reads from outside (graph inputs, host nodes, other regions)
    outputs: values of the region read outside it (or returned by the graph)
    """

    index: int
    nodes: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Partition:
    """Where every node runs, and in which order the host program visits nodes and regions.

    schedule: ("node", name) for host nodes and ("region", index) for device regions, topologically
    sorted.
    """

    regions: tuple[DeviceRegion, ...]
    host_reasons: tuple[tuple[str, str], ...]
    schedule: tuple[tuple[str, object], ...]

    def host_reason_of(self, name: str) -> str | None:
        return dict(self.host_reasons).get(name)


def partition_graph(graph: Graph, host_only: bool = False) -> Partition:
    """Split `graph` into host nodes (with reasons) and device regions (see module doc)."""
    region_of: dict[str, int] = {}
    members: list[list[str]] = []
    reasons: list[tuple[str, str]] = []
    for node in graph.nodes:
        ins = [p for p in node.inputs() if p in graph.node_by_name]
        reason = _reason(node, graph, region_of, host_only)
        if reason is not None:
            reasons.append((node.name, reason))
            continue
        region = _choose_region(graph, ins, region_of, members)
        if region == len(members):
            members.append([])
        members[region].append(node.name)
        region_of[node.name] = region
    regions = tuple(_region(graph, i, names, region_of) for i, names in enumerate(members))
    return Partition(regions, tuple(reasons), _schedule(graph, region_of, len(regions)))


def _reason(node, graph, region_of, host_only) -> str | None:
    if host_only:
        return HOST_ONLY
    if node.target is operator.getitem:
        src = node.args[0].name
        return None if src in region_of else "unpacks a host value"
    return host_reason(node, graph)


def _reaches(graph: Graph, start: list[str], target: int, region_of, members) -> bool:
    """Does any value in `start` depend (through host nodes or whole regions, which run as one
    unit) on region `target`?"""
    seen: set = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        unit = ("r", region_of[name]) if name in region_of else ("n", name)
        if unit in seen:
            continue
        seen.add(unit)
        if unit == ("r", target):
            return True
        names = members[unit[1]] if unit[0] == "r" else [name]
        for n in names:
            todo.extend(p for p in graph.node_by_name[n].inputs() if p in graph.node_by_name)
    return False


def _choose_region(graph, ins, region_of, members) -> int:
    """A region the node can join without creating a cycle between units, else a new one."""
    new_index = len(members)
    candidates = [region_of[p] for p in ins if p in region_of] + ([new_index - 1] if new_index else [])
    for r in dict.fromkeys(candidates):
        outside = [p for p in ins if region_of.get(p) != r]
        if not _reaches(graph, outside, r, region_of, members):
            return r
    return new_index


def _region(graph: Graph, index: int, names: list[str], region_of: dict[str, int]) -> DeviceRegion:
    inside = set(names)
    inputs: dict[str, None] = {}
    for name in names:
        for p in graph.node_by_name[name].inputs():
            if p not in inside:
                inputs.setdefault(p, None)
    used_outside = {p for n in graph.nodes if n.name not in inside for p in n.inputs()}
    used_outside |= {r.name for r in iter_refs(graph.outputs)}
    outputs = tuple(n for n in names if n in used_outside)
    return DeviceRegion(index, tuple(names), tuple(inputs), outputs)


def _schedule(graph: Graph, region_of: dict[str, int], n_regions: int):
    """Topological order of host nodes and regions (Kahn), keeping the original order where free."""
    def unit(name):
        return ("region", region_of[name]) if name in region_of else ("node", name)
    position: dict = {}
    deps: dict = {}
    for i, node in enumerate(graph.nodes):
        u = unit(node.name)
        position.setdefault(u, i)
        deps.setdefault(u, set()).update(unit(p) for p in node.inputs() if p in graph.node_by_name)
    for u in deps:
        deps[u].discard(u)
    users: dict = {u: [] for u in deps}
    for u, ds in deps.items():
        for d in ds:
            users[d].append(u)
    remaining = {u: len(ds) for u, ds in deps.items()}
    ready = [(position[u], u) for u, n in remaining.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, u = heapq.heappop(ready)
        order.append(u)
        for v in users[u]:
            remaining[v] -= 1
            if remaining[v] == 0:
                heapq.heappush(ready, (position[v], v))
    if len(order) != len(deps):
        raise AssertionError(f"graph {graph.name}: partition produced a cycle between regions")
    return tuple(order)
