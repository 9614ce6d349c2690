"""A host op's result reaches device regions as the traced graph describes it (host_program.conform):
device kernels read memory by the traced dtype and strides, and an ATen kernel may disagree with
its own meta function."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pto_dynamo.ascend_backend.host_program import conform
from tests.conftest import VERIFY


def test_bf16_batch_norm_training_updates_running_stats_as_eager(fresh):
    """torch 2.13: the CPU `_native_batch_norm_legit_functional` returns bf16 running stats where its
    meta says f32; the device cast back to bf16 read them as f32 and wrote garbage (1e21) into them."""
    def fn(x, rm, rv, w, b):
        return F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 4, generator=g).bfloat16()
    stats = [torch.randn(3, generator=g).bfloat16(), (torch.rand(3, generator=g) + 0.5).bfloat16()]
    affine = [torch.randn(3, generator=g).bfloat16() for _ in range(2)]
    mine, theirs = [s.clone() for s in stats], [s.clone() for s in stats]
    got = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(x, *mine, *affine)
    want = fn(x, *theirs, *affine)
    torch.testing.assert_close(got, want)
    for m, t in zip(mine, theirs):
        torch.testing.assert_close(m, t, rtol=0, atol=0)
    assert fresh.stats()["graphs_received"] == 1


def test_conform_passes_matching_tensors_through_and_copies_the_rest():
    t = torch.randn(4, 1, 3)
    assert conform(t, torch.float32, (3, 3, 1)) is t
    assert conform(t, torch.float32, (3, 99, 1)) is t             # a size-1 dim's stride is never used
    wide = conform(t.bfloat16(), torch.float32, (3, 3, 1))
    assert wide.dtype == torch.float32 and wide.stride() == (3, 3, 1)
    torch.testing.assert_close(wide, t.bfloat16().float())
    cols = conform(t.transpose(0, 2).contiguous().transpose(0, 2), torch.float32, (3, 3, 1))
    assert cols.stride() == (3, 3, 1) and torch.equal(cols, t)
