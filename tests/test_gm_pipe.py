"""Mixed cube/vector kernels and their gm-pipe buffer sharded per block.

A matmul with a pointwise epilogue (bias, activation, residual, the SwiGLU gate) is one mixed
kernel: the cube stage stores each output tile into a slot of this block's slice of the gm-pipe
buffer, the vector stage reads it back and runs the epilogue. In faithful mode
(PTO_CPU_MIXED=faithful) every block runs its cube stage and its two vector stages (AIV0/AIV1,
half the rows each) on three threads exchanging slots through a real ring. These tests run that
with block_num far above the thread count, compare bit for bit with a single-threaded run, and
show that a program whose blocks share one slice is rejected by the verifier and, built anyway,
trips the runtime ownership check instead of corrupting results.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import VERIFY, compiled_graphs

TOL = {torch.float32: {"rtol": 1e-4, "atol": 1e-4}, torch.bfloat16: {"rtol": 1.6e-2, "atol": 5e-2}}


def swiglu(x, w1, w3):
    return F.silu(x @ w1.t()) * (x @ w3.t())


def linear_gelu_residual(x, w, b, r):
    return F.gelu(F.linear(x, w, b)) + r


def bmm_scale_tanh(a, b):
    return torch.tanh(torch.bmm(a, b) * 0.25)


CASES = {
    "swiglu": (swiglu, [(300, 96), (200, 96), (200, 96)]),
    "linear_gelu_residual": (linear_gelu_residual, [(600, 64), (1100, 64), (1100,), (600, 1100)]),   # 3 x 3 tiles
    "bmm_scale_tanh": (bmm_scale_tanh, [(3, 40, 24), (3, 24, 33)]),
}


def _args(shapes, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g).to(dtype) for s in shapes]


def _kernels():
    return [k for c in compiled_graphs() for r in c.runners for k in getattr(r, "kernel_names", ())]


def _set_threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    return old


@pytest.mark.parametrize("name, dtype", [(n, torch.float32) for n in CASES] + [("swiglu", torch.bfloat16)], ids=str)
def test_mixed_kernel_faithful_mode_is_bitwise_the_single_threaded_result(fresh, monkeypatch, name, dtype):
    """core_num = 64 blocks on 2 threads, each block a cube thread and two vector threads."""
    fn, shapes = CASES[name]
    args = _args(shapes, dtype)
    expected = fn(*args)
    runs = {}
    for mode, threads, core_num in (("fused", 1, 1), ("faithful", 2, 64), ("faithful", 1, 7)):
        monkeypatch.setenv("PTO_CPU_MIXED", mode)
        fresh.reset_stats()
        torch._dynamo.reset()
        compiled = torch.compile(fn, backend="pto", fullgraph=True, options={**VERIFY, "core_num": core_num})
        old = _set_threads(threads)
        try:
            runs[(mode, threads, core_num)] = compiled(*args)
        finally:
            torch.set_num_threads(old)
        stats = fresh.stats()
        assert sum(stats["fallback_regions"].values()) == 0
        assert sum(stats["host_nodes"].values()) == 0
        assert stats["launches"] == 1, _kernels()                # matmul(s) + epilogue: one mixed kernel
    assert any(k.startswith("pto_mixed_") for k in _kernels()), _kernels()
    reference = runs[("fused", 1, 1)]
    torch.testing.assert_close(reference, expected, **TOL[dtype])
    for key, out in runs.items():
        assert torch.equal(out, reference), f"{key} differs from the single-threaded run"


def test_dynamic_tokens_one_compile(fresh, monkeypatch):
    """A dynamic token count through the mixed SwiGLU kernel, faithful mode: one compile; 1, 2 and
    16 run its few-rows tile loop, 17 and 300 the big tiles' loop (cube/tiling.py)."""
    monkeypatch.setenv("PTO_CPU_MIXED", "faithful")
    # >= FEW_ROWS_MIN_BYTES each; scaled so that a product is O(1) like the other cases' (K = 1400)
    w1, w3 = (w / 1400 ** 0.5 for w in _args([(200, 1400), (200, 1400)], torch.float32, seed=1))
    compiled = torch.compile(swiglu, backend="pto", fullgraph=True, options={**VERIFY, "core_num": 24})
    for t in (1, 2, 16, 17, 300):
        x = torch.randn(t, 1400)
        fresh.mark_dynamic(x, 0, name="T")
        torch.testing.assert_close(compiled(x, w1, w3), swiglu(x, w1, w3), **TOL[torch.float32])
    stats = fresh.stats()
    assert stats["signatures_compiled"] == 1 and stats["native_builds"] <= 1
    assert sum(stats["fallback_regions"].values()) == 0
    assert sum(stats["host_nodes"].values()) == 0
    assert stats["launches"] == 5
    (c,) = compiled_graphs()
    assert all("t_accd_count" in r.source for r in c.runners), "no few-rows tile loop"


# ---- the sharding proof: verifier and runtime ------------------------------------------------------

def _mixed_region(fresh):
    """The DeviceRegion of `linear_gelu_residual` (inputs of distinct shapes, so they are told
    apart by shape below), lowered again from its compiled graph."""
    from pto_dynamo.ascend_backend.host_program import region_scalars
    from pto_dynamo.lowering.tile import CPU_CAPACITY
    from pto_dynamo.lowering.vector.lower import lower_vector_region
    fn, shapes = CASES["linear_gelu_residual"]
    args = _args(shapes, torch.float32)
    torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(*args)
    c = compiled_graphs()[-1]
    part = c.partition.regions[0]
    region = lower_vector_region(c.graph, part, region_scalars(c.graph, part), "gm_pipe_test", CPU_CAPACITY)
    (launch,) = region.launches
    assert launch.kernel.kind == "mixed" and launch.kernel.pipes
    return region, args


def _unsharded(region):
    """The same region with every block's pipe at offset 0 of the gm-pipe buffer (sharding removed)."""
    launch = region.launches[0]
    pipes = tuple(dataclasses.replace(p, base=0) for p in launch.kernel.pipes)
    kernel = dataclasses.replace(launch.kernel, pipes=pipes)
    return dataclasses.replace(region, launches=(dataclasses.replace(launch, kernel=kernel),))


def _run_native(region, args, block_num):
    from pto_dynamo.ascend_backend.cpu import load_library, load_region
    from pto_dynamo.ascend_backend.render import render_translation_unit
    call = load_region(load_library(render_translation_unit(region), region.name), region.name)
    out = torch.full(tuple(args[-1].shape), float("nan"))
    call(_inputs_for(region, args) + [out], [], block_num)
    return out


def _inputs_for(region, args):
    """The region's inputs (the graph's placeholders, in traced order), told apart by shape."""
    by_shape = {tuple(a.shape): a for a in args}
    return [by_shape[tuple(int(s) for s in t.shape)] for t in region.tensors if not t.is_output]


def test_verifier_rejects_unsharded_gm_pipe(fresh):
    from pto_dynamo.lowering.tile import TileVerificationError, verify_program
    region, _ = _mixed_region(fresh)
    verify_program(region.launches[0].kernel)                          # the lowered program is legal
    with pytest.raises(TileVerificationError, match="two blocks could touch the same slot"):
        verify_program(_unsharded(region).launches[0].kernel)


@pytest.mark.parametrize("threads", [1, 2])
def test_runtime_ownership_check_trips_without_sharding(fresh, monkeypatch, threads):
    from pto_dynamo.ascend_backend.cpu.region import RegionError
    region, args = _mixed_region(fresh)
    expected = linear_gelu_residual(*args)
    monkeypatch.setenv("PTO_CPU_MIXED", "faithful")
    old = _set_threads(threads)
    try:
        torch.testing.assert_close(_run_native(region, args, 16), expected, **TOL[torch.float32])
        with pytest.raises(RegionError, match="gm-pipe ownership violation: .* in block 0's slice"):
            _run_native(_unsharded(region), args, 16)
        monkeypatch.setenv("PTO_CPU_MIXED", "fused")
        with pytest.raises(RegionError, match="gm-pipe ownership violation"):
            _run_native(_unsharded(region), args, 16)
    finally:
        torch.set_num_threads(old)


def test_interpreter_checks_ownership_and_matches(fresh):
    from pto_dynamo.lowering.tile import InterpreterError, interpret_region
    region, args = _mixed_region(fresh)
    inputs = _inputs_for(region, args)
    out = torch.full(tuple(args[-1].shape), float("nan"))
    interpret_region(region, inputs + [out], [], 5)
    torch.testing.assert_close(out, linear_gelu_residual(*args), **TOL[torch.float32])
    with pytest.raises(InterpreterError, match="ownership violation"):
        interpret_region(_unsharded(region), inputs + [out], [], 5)


# ---- the verifier's stage and slot rules ------------------------------------------------------------

def _tiny_mixed(*, vec_in_cube=False, view_outside=False, direct_view=False):
    from pto_dynamo.lowering.tile import CPU_CAPACITY, F32, GmView, KernelBuilder, Role, TileLoc
    kb = KernelBuilder("pto_mixed_tiny", kind="mixed")
    kb.tensor("z", F32, (16, 16), (16, 1), output=True)
    pipe = kb.pipe("pipe0", F32, 256)
    with kb.tile_loop("t", 1):
        with kb.stage(Role.CUBE):
            kb.tile("acc", TileLoc.Vec if vec_in_cube else TileLoc.Acc, F32, 16, 16, 16, 16)
            kb.emit("TALLOC", pipe="pipe0")
            kb.emit("TSTORE", GmView(pipe.slot(Role.CUBE), 0, 16, 16, 16), "acc")
            kb.emit("TPUSH", pipe="pipe0")
        with kb.stage(Role.VECTOR):
            kb.tile("v", TileLoc.Vec, F32, 16, 16, 16, 16)
            if not view_outside:
                kb.emit("TPOP", pipe="pipe0")
            src = GmView("gm_pipe0", 0, 16, 16, 16) if direct_view else GmView(pipe.slot(Role.VECTOR), 0, 16, 16, 16)
            kb.emit("TLOAD", "v", src)
            kb.emit("TSTORE", kb.view("z", 0, 16, 16, 16), "v")
            if not view_outside:
                kb.emit("TFREE", pipe="pipe0")
    return kb.build(CPU_CAPACITY, verify=False), CPU_CAPACITY


@pytest.mark.parametrize("fault, message", [
    ("vec_in_cube", "Vec tile acc in the cube stage"),
    ("view_outside", "holds no slot"),
    ("direct_view", "use TALLOC/TPOP slots, not a direct view"),
])
def test_verifier_stage_and_slot_rules(fault, message):
    from pto_dynamo.lowering.tile import TileVerificationError, verify_program
    program, cap = _tiny_mixed()
    verify_program(program, cap)
    bad, cap = _tiny_mixed(**{fault: True})
    with pytest.raises(TileVerificationError, match=message):
        verify_program(bad, cap)
