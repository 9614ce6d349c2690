"""User-chosen DynDim names: `pto_dynamo.mark_dynamic(x, 0, name="T")` and how the backend finds them.

The marked tensor carries `{axis: name}`; at backend entry, Dynamo's example inputs are the user's
tensors, and its placeholders' fake values hold the symbols of those axes.
"""
from __future__ import annotations

import torch

NAME_ATTR = "_pto_dim_names"


def mark_dynamic(t: torch.Tensor, dim, name: str | None = None, shape_id: str | None = None) -> torch.Tensor:
    """Mark dim(s) of `t` dynamic for every size from 1 up, with one compile.

    Built on `torch._dynamo.decorators.mark_unbacked(t, dim, min=1)`: unlike
    `torch._dynamo.mark_dynamic`, size 1 is not specialised, so T=1 shares the graph of T=2..N;
    `min=1` lets `x.view(n, -1)` infer -1 without a guard. A dim whose size is 0 when marked is
    left unmarked: an empty batch compiles a graph of its own with that size static (as Dynamo
    specialises 0); marked, Dynamo would fail it with an internal guard error.
    `name` names the DynDim in printed graphs and generated code (default: the ShapeEnv symbol,
    `u0`). Tensors marked with the same `shape_id` share one dim (Dynamo checks it at run time),
    which keeps one DynDim when the graph itself never relates their sizes, and lets ops that
    compare the sizes (`x + y`, a loss of `x` against `y`) trace: two unrelated marked dims would
    stop Dynamo with "Could not guard on data-dependent expression Eq(u1, u0)". A `name` without a
    `shape_id` is the shape_id too: dims marked with one name are one dim. Returns `t`.
    """
    dims = [d for d in ([dim] if isinstance(dim, int) else list(dim)) if t.shape[d] != 0]
    if not dims:
        return t
    if shape_id is None and name is not None:
        shape_id = f"pto_dim_{name}"
    torch._dynamo.decorators.mark_unbacked(t, dims, min=1, shape_id=shape_id)
    if name is not None:
        if len(dims) != 1:
            raise ValueError("pto.mark_dynamic: name= needs exactly one dim")
        names = dict(getattr(t, NAME_ATTR, {}))
        names[dims[0] % t.dim()] = name
        setattr(t, NAME_ATTR, names)
    return t


def user_dim_names(gm: torch.fx.GraphModule, example_inputs) -> dict:
    """ShapeEnv symbol -> user name, for every named dim of the example inputs."""
    out = {}
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for ph, example in zip(placeholders, example_inputs):
        names = getattr(example, NAME_ATTR, None)
        fake = ph.meta.get("example_value")
        if not names or not isinstance(fake, torch.Tensor):
            continue
        for axis, name in names.items():
            size = fake.shape[axis]
            if isinstance(size, torch.SymInt):
                out[size.node.expr] = name
    return out
