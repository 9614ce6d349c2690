"""Tensor constants of an ATen graph become graph inputs.

Dynamo keeps some tensors it builds while tracing as attributes of the graph module, read by
`get_attr` nodes (`x[:, [0, 2]]` indexes with `_tensor_constant0 = tensor([0, 2])`); aot_autograd
lifts parameters and buffers to inputs but leaves these. The graph IR has no constants of tensor
type, so each one becomes a placeholder after the graph's own inputs, and the compiled function is
called with the constant values appended to its arguments. The values never enter the compiled
code or the cache key: two graphs that differ only in a constant's values share one compile, and
each passes its own values at run time.
"""
from __future__ import annotations

import torch
from torch import fx


def lift_tensor_constants(gm: fx.GraphModule) -> list[tuple[str, torch.Tensor]]:
    """Replace every `get_attr` node of a tensor in `gm` by a new last placeholder; returns
    (attribute name, value) of each in placeholder order. Non-tensor attributes raise TypeError."""
    getattrs = [n for n in gm.graph.nodes if n.op == "get_attr"]
    if not getattrs:
        return []
    last_placeholder = None
    for n in gm.graph.nodes:
        if n.op == "placeholder":
            last_placeholder = n
    lifted: list[tuple[str, torch.Tensor]] = []
    for n in getattrs:
        value = _attribute(gm, n.target)
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"graph attribute {n.target} is a {type(value).__name__}, not a tensor constant")
        insert = gm.graph.inserting_after(last_placeholder) if last_placeholder is not None \
            else gm.graph.inserting_before(next(iter(gm.graph.nodes)))
        with insert:
            ph = gm.graph.placeholder(f"const_{n.target.replace('.', '_')}")
        ph.meta.update(n.meta)
        ph.meta["val"] = n.meta.get("val", value)
        n.replace_all_uses_with(ph)
        gm.graph.erase_node(n)
        last_placeholder = ph
        lifted.append((n.target, value))
    gm.graph.lint()
    gm.recompile()
    return lifted


def _attribute(gm: fx.GraphModule, target: str):
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj
