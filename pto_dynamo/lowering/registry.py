"""Device claims: a per-op registry of checkers saying whether the device can take a node.

    @device_rule(aten.add.Tensor, aten.mul.Tensor)
    def _pointwise(node, graph):
        return None if node.meta.dtype in SUPPORTED else f"dtype {node.meta.dtype} not supported"

A checker returns None when the device takes the node, or the reason it cannot. Ops without a
rule stay on the host with the reason "no device rule". Later issues fill the registry.
"""
from __future__ import annotations

from typing import Callable

import torch

from pto_dynamo.graph.ir import Graph, Node
from pto_dynamo.graph.printer import target_text
from pto_dynamo.lowering.effects import CHECK_OPS, is_mutating

DeviceChecker = Callable[[Node, Graph], "str | None"]

_DEVICE_RULES: dict[object, DeviceChecker] = {}

# Host reasons, as `explain` prints them.
NO_DEVICE_RULE = "no device rule"
COLLECTIVE = "collective"
DATA_DEPENDENT = "data-dependent"
RUNTIME_CHECK = "runtime check"
MUTATION = "mutates a graph input"
HOST_ONLY = "host_only option"


def device_rule(*targets) -> Callable[[DeviceChecker], DeviceChecker]:
    """Register `checker` as the device claim of each op overload in `targets`."""
    def register(checker: DeviceChecker) -> DeviceChecker:
        for target in targets:
            if target in _DEVICE_RULES:
                raise ValueError(f"pto: a device rule for {target} is already registered")
            _DEVICE_RULES[target] = checker
        return checker
    return register


def unregister_device_rule(target) -> None:
    """Remove the rule of `target` (tests register temporary rules)."""
    _DEVICE_RULES.pop(target, None)


def host_reason(node: Node, graph: Graph) -> str | None:
    """None if the device takes `node`, else why it stays on the host."""
    target = node.target
    if node.name in graph.dims_produced_by:
        return DATA_DEPENDENT                          # produces a size the host must know
    if isinstance(target, torch._ops.OpOverload):
        if target.namespace in ("_c10d_functional", "c10d_functional", "c10d"):
            return COLLECTIVE
        if target in CHECK_OPS:
            return RUNTIME_CHECK
        if torch.Tag.data_dependent_output in target.tags:
            return DATA_DEPENDENT
    checker = _DEVICE_RULES.get(target)
    if checker is None:
        if is_mutating(node):
            return MUTATION
        return f"{NO_DEVICE_RULE} for {target_text(target)}"
    return checker(node, graph)
