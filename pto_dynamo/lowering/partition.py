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

import torch

from pto_dynamo.graph.ir import Graph, Ref
from pto_dynamo.lowering.effects import CHECK_OPS, is_mutating
from pto_dynamo.lowering.registry import HOST_ONLY, RUNTIME_CHECK, host_reason


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

    @property
    def host_op_count(self) -> int:
        """Host nodes that compute something (runtime shape checks are plain Python, not ops)."""
        return sum(1 for _, reason in self.host_reasons if reason != RUNTIME_CHECK)


def ordering_inputs(graph: Graph) -> dict[str, list[str]]:
    """node -> the nodes it must run after: its producers, and the memory-order edges of in-place
    updates: a node reading a buffer (or a view of it) runs after the last in-place update of that
    buffer before it (read after write), and an in-place update runs after every earlier reader and
    writer of the buffer (write after read / write) and after every earlier runtime check (a
    failing check leaves the inputs as eager leaves them)."""
    alias_root: dict[str, str] = {}
    readers: dict[str, list[str]] = {}
    last_writer: dict[str, str] = {}
    checks: list[str] = []
    out: dict[str, list[str]] = {}
    for node in graph.nodes:
        producers = [p for p in node.inputs() if p in graph.node_by_name]
        roots = {alias_root.get(p, p) for p in node.inputs()}
        producers += [last_writer[r] for r in roots if r in last_writer]
        if is_mutating(node) and node.args and isinstance(node.args[0], Ref):
            root = alias_root.get(node.args[0].name, node.args[0].name)
            producers += [r for r in readers.get(root, []) if r in graph.node_by_name]
            producers += checks
            last_writer[root] = node.name
            alias_root[node.name] = root                # in-place ops return their argument
        if node.target in CHECK_OPS:
            checks.append(node.name)
        for r in roots:
            readers.setdefault(r, []).append(node.name)
        if _is_view(node) and isinstance(node.args[0], Ref):
            src = node.args[0].name
            alias_root[node.name] = alias_root.get(src, src)
        out[node.name] = [p for p in dict.fromkeys(producers) if p != node.name]
    return out


def _is_view(node) -> bool:
    t = node.target
    if not isinstance(t, torch._ops.OpOverload) or not t._schema.returns:
        return False
    info = t._schema.returns[0].alias_info
    return info is not None and not info.is_write


def partition_graph(graph: Graph, host_only: bool = False) -> Partition:
    """Split `graph` into host nodes (with reasons) and device regions (see module doc)."""
    region_of: dict[str, int] = {}
    members: list[list[str]] = []
    reasons: list[tuple[str, str]] = []
    order_ins = ordering_inputs(graph)
    for node in graph.nodes:
        ins = order_ins[node.name]
        reason = _reason(node, graph, region_of, host_only)
        if reason is not None:
            reasons.append((node.name, reason))
            continue
        region = _choose_region(order_ins, ins, region_of, members)
        if region == len(members):
            members.append([])
        members[region].append(node.name)
        region_of[node.name] = region
    regions = tuple(_region(graph, i, names) for i, names in enumerate(members))
    return Partition(regions, tuple(reasons), _schedule(graph, order_ins, region_of))


def _reason(node, graph, region_of, host_only) -> str | None:
    if host_only:
        return HOST_ONLY
    if node.target is operator.getitem:
        src = node.args[0].name
        return None if src in region_of else "unpacks a host value"
    return host_reason(node, graph)


def _reaches(order_ins, start: list[str], target: int, region_of, members) -> bool:
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
            todo.extend(order_ins[n])
    return False


def _choose_region(order_ins, ins, region_of, members) -> int:
    """A region the node can join without creating a cycle between units, else a new one."""
    new_index = len(members)
    candidates = [region_of[p] for p in ins if p in region_of] + ([new_index - 1] if new_index else [])
    for r in dict.fromkeys(candidates):
        outside = [p for p in ins if region_of.get(p) != r]
        if not _reaches(order_ins, outside, r, region_of, members):
            return r
    return new_index


def _region(graph: Graph, index: int, names: list[str]) -> DeviceRegion:
    inside = set(names)
    inputs: dict[str, None] = {}
    for name in names:
        for p in graph.node_by_name[name].inputs():
            if p not in inside:
                inputs.setdefault(p, None)
    outputs = tuple(n for n in names if n in graph.output_names
                    or any(u not in inside for u in graph.users[n]))
    return DeviceRegion(index, tuple(names), tuple(inputs), outputs)


def _schedule(graph: Graph, order_ins: dict[str, list[str]], region_of: dict[str, int]):
    """Topological order of host nodes and regions (Kahn), keeping the original order where free."""
    def unit(name):
        return ("region", region_of[name]) if name in region_of else ("node", name)
    position: dict = {}
    deps: dict = {}
    for i, node in enumerate(graph.nodes):
        u = unit(node.name)
        position.setdefault(u, i)
        deps.setdefault(u, set()).update(unit(p) for p in order_ins[node.name])
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
