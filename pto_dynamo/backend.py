"""The Dynamo backend: `torch.compile(model, backend="pto")`.

Registered only through the `torch_dynamo_backends` entry point (pyproject.toml); registering it
again here would make torch fail with "duplicate name: pto".

Dynamo's graph goes through aot_autograd with the project's decomposition table; each resulting
functional ATen graph (inference, or forward and backward for training) is converted to the graph
IR and compiled by `pto_dynamo.pipeline`.
"""
from __future__ import annotations

import itertools
import time

import torch
from torch._functorch.aot_autograd import aot_module_simplified

from pto_dynamo.stats import bump
from pto_dynamo.debug import DebugDump
from pto_dynamo.options import PtoOptions, parse_options
from pto_dynamo.pipeline import compile_graph
from pto_dynamo.tracer.constants import lift_tensor_constants
from pto_dynamo.tracer.decompositions import decomposition_table
from pto_dynamo.tracer.dim_names import user_dim_names
from pto_dynamo.tracer.to_ir import fx_to_ir

_GRAPH_IDS = itertools.count()


def pto_backend(gm: torch.fx.GraphModule, example_inputs, **kwargs):
    """Compile Dynamo's graph `gm`; returns a callable taking the same inputs."""
    options = parse_options(kwargs.pop("options", None), kwargs.pop("mode", None))
    if kwargs:
        raise ValueError(f"pto: unexpected backend argument(s) {sorted(kwargs)}; use options={{...}} or mode=")
    bump("graphs_received")
    graph_id = next(_GRAPH_IDS)
    dim_names = user_dim_names(gm, example_inputs)
    labels = _input_labels(gm)
    DebugDump(options.resolved_debug_dir(), f"g{graph_id}").write("dynamo_graph", gm.print_readable(print_output=False))

    def compiler(kind: str):
        def compile_aten(fx_gm: torch.fx.GraphModule, fx_inputs):
            return _compile_aten_graph(fx_gm, f"g{graph_id}_{kind}", options, dim_names,
                                       labels if kind != "backward" else None)
        return compile_aten

    # aot_autograd's own test for a graph it differentiates (forward + backward)
    training = torch.is_grad_enabled() and any(isinstance(x, torch.Tensor) and x.requires_grad for x in example_inputs)
    start = time.perf_counter()
    try:
        return aot_module_simplified(
            gm, example_inputs,
            fw_compiler=compiler("forward"), bw_compiler=compiler("backward"),
            inference_compiler=compiler("inference"),
            decompositions=decomposition_table(training), keep_inference_input_mutations=True)
    finally:
        bump("backend_seconds", time.perf_counter() - start)


def _input_labels(gm: torch.fx.GraphModule) -> list[str | None]:
    """Dynamo's source of each placeholder (`L['x']`, `G['m']._parameters['weight']`)."""
    labels = []
    for n in gm.graph.nodes:
        if n.op == "placeholder":
            grapharg = n.meta.get("grapharg")
            labels.append(grapharg.source.name if grapharg is not None and grapharg.source is not None else None)
    return labels


def _compile_aten_graph(fx_gm: torch.fx.GraphModule, name: str, options: PtoOptions, dim_names: dict,
                        input_labels: list | None):
    dump = DebugDump(options.resolved_debug_dir(), name)
    dump.write("aten_graph", fx_gm.print_readable(print_output=False))
    shape_env = _shape_env(fx_gm)
    constants = lift_tensor_constants(fx_gm)
    if constants and input_labels is not None:
        input_labels = input_labels + [f"constant {attr}" for attr, _ in constants]
    graph = fx_to_ir(fx_gm, name, shape_env, dim_names, input_labels)
    compiled = compile_graph(graph, options, dump, verify=options.verify)
    fn = compiled.fn
    values = [value for _, value in constants]           # appended to every call, after the graph's inputs

    def run(args):
        return fn(*args, *values)
    run._boxed_call = True        # aot_autograd passes the argument list itself
    return run


def _shape_env(fx_gm: torch.fx.GraphModule):
    vals = [n.meta.get("val") for n in fx_gm.graph.nodes if n.op == "placeholder"]
    fake_mode = torch._guards.detect_fake_mode(vals)
    if fake_mode is None:
        ctx = torch._guards.TracingContext.try_get()
        fake_mode = ctx.fake_mode if ctx is not None else None
    return fake_mode.shape_env if fake_mode is not None else None
