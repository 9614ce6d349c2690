"""pto_dynamo: `torch.compile(model, backend="pto")` for Ascend NPUs through the PTO tile ISA.

Public API: `PtoOptions`, `stats()`, `reset_stats()`, `mark_dynamic(t, dim, name=None)`,
`explain(fn, *args, **kwargs)`.
The backend itself is registered through the `torch_dynamo_backends` entry point
(`pto_dynamo.backend:pto_backend`); importing this package registers nothing.
"""
from pto_dynamo.explain import explain
from pto_dynamo.options import PtoOptions
from pto_dynamo.stats import reset_stats, stats
from pto_dynamo.tracer.dim_names import mark_dynamic

__all__ = ["PtoOptions", "stats", "reset_stats", "mark_dynamic", "explain"]
