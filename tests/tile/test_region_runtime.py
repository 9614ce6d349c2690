"""Orchestration on the CPU target: one build per source whatever the sizes, one launch per kernel
whatever block_num, workspaces for intermediates between kernels."""
from __future__ import annotations

import uuid

import pytest
import torch

import pto_dynamo
from pto_dynamo.lowering.tile import (BF16, F32, DeviceRegion, Launch, RegionTensor, Workspace,
                                      interpret_region, sym)
from pto_dynamo.lowering.tile import handbuilt as hb
from pto_dynamo.lowering.tile.region import single_kernel_region


def _load(region):
    from pto_dynamo.ascend_backend.cpu import load_library, load_region
    from pto_dynamo.ascend_backend.render import render_translation_unit
    return load_region(load_library(render_translation_unit(region), region.name), region.name)


def test_one_build_serves_every_size():
    program = hb.elementwise_chain()
    # a graph name nobody else uses, so this source has never been built in this process
    region = single_kernel_region(program, graph=f"sizes_{uuid.uuid4().hex[:8]}")
    pto_dynamo.reset_stats()
    for rows in (1, 17, 4096):
        call = _load(region)
        x, y = torch.randn(rows, 64), torch.randn(rows, 64)
        z = torch.full((rows, 64), float("nan"))
        call([x, y, z], [rows, 64, 64, 64, 64], 3)
        torch.testing.assert_close(z, torch.nn.functional.silu(x * y + 0.5) - 2 * torch.sqrt(x.abs()))
    assert pto_dynamo.stats()["native_builds"] == 1
    assert pto_dynamo.stats()["launches"] == 3


def _roundtrip_region() -> DeviceRegion:
    """x -> bf16 workspace -> f32 workspace -> z = silu(...) : three kernels, two workspaces."""
    rows, cols = sym("rows"), sym("cols")
    to_bf16, to_f32, chain = hb.cast(F32, BF16), hb.cast(BF16, F32), hb.elementwise_chain()
    return DeviceRegion(
        "roundtrip", 0,
        (RegionTensor("x", F32, (rows, cols)), RegionTensor("y", F32, (rows, cols)),
         RegionTensor("z", F32, (rows, cols), is_output=True)),
        (rows, cols),
        (Launch(to_bf16, ("x", "xb"), (rows, cols)),
         Launch(to_f32, ("xb", "xr"), (rows, cols)),
         Launch(chain, ("xr", "y", "z"), (rows, cols, cols, cols, cols))),
        (Workspace("xb", BF16, rows * cols), Workspace("xr", F32, rows * cols)),
    )


@pytest.mark.parametrize("block_num", [1, 3, 64])
def test_launch_count_is_kernel_count(block_num, num_threads):
    region = _roundtrip_region()
    call = _load(region)
    rows, cols = 45, 70
    x, y = torch.randn(rows, cols), torch.randn(rows, cols)
    z, z_ref = torch.full((rows, cols), float("nan")), torch.full((rows, cols), float("nan"))
    pto_dynamo.reset_stats()
    call([x, y, z], [rows, cols], block_num)
    assert pto_dynamo.stats()["launches"] == 3
    assert interpret_region(region, [x, y, z_ref], [rows, cols], block_num) == 3
    xr = x.to(torch.bfloat16).float()
    torch.testing.assert_close(z, torch.nn.functional.silu(xr * y + 0.5) - 2 * torch.sqrt(xr.abs()))
    torch.testing.assert_close(z, z_ref, rtol=2e-6, atol=2e-6)


def test_workspace_grows_with_dynamic_size():
    call = _load(_roundtrip_region())
    for rows, cols in ((2, 8), (300, 129), (3, 5)):
        x, y = torch.randn(rows, cols), torch.randn(rows, cols)
        z = torch.full((rows, cols), float("nan"))
        call([x, y, z], [rows, cols], 5)
        xr = x.to(torch.bfloat16).float()
        torch.testing.assert_close(z, torch.nn.functional.silu(xr * y + 0.5) - 2 * torch.sqrt(xr.abs()))
