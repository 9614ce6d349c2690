"""Attention as one mixed kernel (flash attention in PTO terms): the pattern stage recognises SDPA's
decomposition (causal mask from arange/le/where, _safe_softmax) and the explicit
softmax(q @ k^T * s + mask) @ v, and the lowering runs QK^T on the cube stage, the online softmax
on the vector stage and PV on the cube stage, through gm-pipes. Decode shapes (one query, a long
KV) and prefill shapes, GQA/MQA, f32 and bf16, against eager; faithful mode bit for bit. DeepSeek-V4's
unnormalised form (einsums, a bool key mask, an attention-sink logit per head in the denominator, the
exp weights rounded to bf16 before P @ V) is one attention kernel too."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pto_dynamo.lowering.attention.op import ATTENTION
from tests.conftest import VERIFY, compiled_graphs

TOL = {torch.float32: {"rtol": 1e-4, "atol": 1e-4}, torch.bfloat16: {"rtol": 2e-2, "atol": 2e-2}}


def sdpa_causal(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def sdpa_mask(q, k, v, mask):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def explicit(q, k, v, mask):
    return torch.softmax(q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5 + mask, dim=-1) @ v


def explicit_no_mask(q, k, v):
    return torch.softmax((q @ k.transpose(-1, -2)) * 0.3, dim=-1) @ v


def gqa(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)


def mqa_decode(q, k, v):
    """One KV head shared by every query head, read through a broadcast (stride-0) batch dim."""
    return F.scaled_dot_product_attention(q, k.expand_as(q[..., :1, :].expand(-1, -1, k.shape[-2], -1)),
                                          v.expand(-1, q.shape[1], -1, -1))


# name: (fn, shapes of q, k, v[, mask])
CASES = {
    "causal_prefill": (sdpa_causal, [(1, 3, 150, 64), (1, 3, 150, 64), (1, 3, 150, 64)]),
    "causal_fewer_queries": (sdpa_causal, [(1, 2, 70, 32), (1, 2, 200, 32), (1, 2, 200, 32)]),
    "sdpa_bool_free_mask": (sdpa_mask, [(2, 2, 40, 32), (2, 2, 200, 32), (2, 2, 200, 32), (40, 200)]),
    "explicit_mask_ragged": (explicit, [(2, 2, 70, 128), (2, 2, 333, 128), (2, 2, 333, 128), (70, 333)]),
    "explicit_no_mask": (explicit_no_mask, [(3, 65, 48), (3, 129, 48), (3, 129, 48)]),
    "decode_long_kv": (explicit, [(2, 4, 1, 64), (2, 4, 700, 64), (2, 4, 700, 64), (1, 700)]),
    "gqa_causal": (gqa, [(1, 4, 33, 32), (1, 2, 33, 32), (1, 2, 33, 32)]),
    "mqa_decode": (mqa_decode, [(2, 8, 1, 32), (2, 1, 300, 32), (2, 1, 300, 32)]),
}


def _args(shapes, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g).to(dtype) for s in shapes]


def _check_attention_on_device(fresh):
    stats = fresh.stats()
    assert sum(stats["fallback_regions"].values()) == 0, stats
    c = compiled_graphs()[-1]
    assert any(n.target is ATTENTION for n in c.graph.nodes), "the pattern stage found no attention"
    assert not [name for name, _ in c.partition.host_reasons if "attention" in name], c.partition.host_reasons
    kernels = [k for r in c.runners for k in r.kernel_names]
    assert any(k.startswith("pto_mixed_attention") for k in kernels), kernels


BF16_CASES = ("causal_prefill", "explicit_mask_ragged", "decode_long_kv", "gqa_causal")   # bf16: a subset (time)
# SDPA's is_causal mask (arange/le/where) becomes the node's causal flag and no mask tensor: the
# kernel skips the keys after each query tile and masks the steps that cross the diagonal (top-left:
# with fewer queries than keys, query i still reads keys 0..i); a random mask is not causal.
CAUSAL = {"causal_prefill": True, "causal_fewer_queries": True, "explicit_mask_ragged": False,
          "sdpa_bool_free_mask": False, "decode_long_kv": False}


@pytest.mark.parametrize("name, dtype", [(n, torch.float32) for n in CASES] + [(n, torch.bfloat16) for n in BF16_CASES],
                         ids=str)
def test_attention_matches_eager(fresh, name, dtype):
    fn, shapes = CASES[name]
    args = _args(shapes, dtype)
    out = torch.compile(fn, backend="pto", fullgraph=True, options={**VERIFY, "core_num": 7})(*args)
    torch.testing.assert_close(out, fn(*args), **TOL[dtype])
    _check_attention_on_device(fresh)
    if name in CAUSAL:
        (node,) = [n for n in compiled_graphs()[-1].graph.nodes if n.target is ATTENTION]
        assert node.args[6] is CAUSAL[name]
        assert (node.args[3] is None) is CAUSAL[name]          # a causal mask is not built at all
        if fn is sdpa_causal:               # SDPA's pre-scaling of q and k^T folds into the node
            assert node.args[4] == pytest.approx(args[0].shape[-1] ** -0.5)


@pytest.mark.parametrize("masked", [False, True], ids=["no_mask", "causal_bool_mask"])
def test_multihead_attention_with_packed_projections(fresh, masked):
    """nn.MultiheadAttention's self-attention: q, k and v are slices of one packed projection, so
    k (and with it k^T) starts 1/3 into that buffer. Folding SDPA's pre-scale of k^T into the node
    once moved the views onto k at storage offset 0: the kernel read q's rows as keys, off by ~1
    (the graph verifier now rejects a view whose offset differs from its source's)."""
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(32, 4, batch_first=True).eval()

    def fn(x):
        mask = torch.triu(torch.ones(x.shape[1], x.shape[1], dtype=torch.bool), 1) if masked else None
        return mha(x, x, x, attn_mask=mask, need_weights=False)[0]

    x = torch.randn(2, 9, 32)
    with torch.no_grad():
        out = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(x)
        torch.testing.assert_close(out, fn(x), **TOL[torch.float32])
    _check_attention_on_device(fresh)


def test_fully_masked_rows_match_sdpa(fresh):
    """SDPA's safe softmax: a query row whose every key is masked gives zeros, not NaN."""
    q, k, v = _args([(1, 2, 9, 16)] * 3, torch.float32)
    mask = torch.zeros(9, 9)
    mask[3] = float("-inf")
    out = torch.compile(sdpa_mask, backend="pto", fullgraph=True, options=VERIFY)(q, k, v, mask)
    torch.testing.assert_close(out, sdpa_mask(q, k, v, mask))
    assert torch.all(out[:, :, 3] == 0)
    _check_attention_on_device(fresh)


@pytest.mark.parametrize("dtype", [torch.float32], ids=str)
def test_faithful_mode_bitwise(fresh, monkeypatch, dtype):
    """Cube and two vector roles on their own threads, 64 blocks, 2 threads: bit for bit the
    single-threaded fused run (bf16 faithful mode: tests/test_gm_pipe.py's SwiGLU case)."""
    fn, shapes = CASES["explicit_mask_ragged"]
    args = _args(shapes, dtype)
    outs = []
    for mode, threads, core_num in (("fused", 1, 1), ("faithful", 2, 64)):
        monkeypatch.setenv("PTO_CPU_MIXED", mode)
        torch._dynamo.reset()
        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            outs.append(torch.compile(fn, backend="pto", fullgraph=True, options={**VERIFY, "core_num": core_num})(*args))
        finally:
            torch.set_num_threads(old)
        _check_attention_on_device(fresh)
    torch.testing.assert_close(outs[0], fn(*args), **TOL[dtype])
    assert torch.equal(outs[0], outs[1])


def test_dynamic_tokens_one_compile(fresh):
    """Prefill with a dynamic token count (queries and keys): one compile, one attention launch."""
    compiled = torch.compile(sdpa_causal, backend="pto", fullgraph=True, options=VERIFY)
    for t in (1, 5, 64, 65, 200):
        q, k, v = _args([(1, 2, t, 32)] * 3, torch.float32, seed=t)
        for x in (q, k, v):
            fresh.mark_dynamic(x, 2, name="T")
        torch.testing.assert_close(compiled(q, k, v), sdpa_causal(q, k, v), **TOL[torch.float32])
    stats = fresh.stats()
    assert stats["signatures_compiled"] == 1 and stats["native_builds"] == 1, stats
    _check_attention_on_device(fresh)


def test_queries_and_keys_with_their_own_dynamic_dims(fresh):
    """Query and key lengths marked dynamic one by one (their own symbols, Dynamo's s0 among them):
    the kernel's own scalars never take a graph symbol's name, so the attention stays on the device
    (a local named s0 once made the verifier reject the kernel and the region fall back to ATen)."""
    compiled = torch.compile(sdpa_causal, backend="pto", fullgraph=True, options=VERIFY)
    for t, s in ((8, 20), (13, 40), (3, 7)):
        q, k, v = _args([(1, 2, t, 32), (1, 2, s, 32), (1, 2, s, 32)], torch.float32, seed=t)
        for x in (q, k, v):
            torch._dynamo.mark_dynamic(x, 2)
        torch.testing.assert_close(compiled(q, k, v), sdpa_causal(q, k, v), **TOL[torch.float32])
    stats = fresh.stats()
    assert stats["signatures_compiled"] == 1 and stats["native_builds"] == 1, stats
    _check_attention_on_device(fresh)


@pytest.mark.parametrize("fn", [sdpa_causal, gqa], ids=["causal", "gqa"])
def test_bf16_sdpa_runs_on_bf16_operands(fresh, fn):
    """SDPA on bf16 decomposes into f32 attention between casts; the pattern stage drops the casts,
    so the kernel reads bf16 q, k, v in place and writes bf16, computing as ATen's CPU flash
    attention does (f32 scores, probabilities rounded to bf16 for P @ V)."""
    shapes = CASES["causal_prefill" if fn is sdpa_causal else "gqa_causal"][1]
    args = _args(shapes, torch.bfloat16)
    out = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(*args)
    torch.testing.assert_close(out, fn(*args), **TOL[torch.bfloat16])
    _check_attention_on_device(fresh)
    graph = compiled_graphs()[-1].graph
    (node,) = [n for n in graph.nodes if n.target is ATTENTION]
    assert node.meta.dtype == torch.bfloat16
    assert all(graph.meta_of(a.name).dtype == torch.bfloat16 for a in node.args[:3])
    assert not [n.name for n in graph.nodes if n.target is torch.ops.aten._to_copy.default]


@pytest.mark.parametrize("then", ["returned", "projected", "read_twice"])
def test_sdpa_result_stored_in_its_callers_layout(fresh, then):
    """SDPA's decomposition copies its result into ATen's flash-attention layout ([B, H, T, D]
    values in [T, B, H, D] memory: permute, clone, permute back). The attention node returns that
    layout itself (rows_first) and the clone becomes a view: one kernel, no copy, the traced
    strides; readers of the result (a projection, a reduction) read it through its views."""
    w = torch.randn(2 * 32, 24, generator=torch.Generator().manual_seed(1))

    def fn(q, k, v):
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        if then == "projected":              # the o-projection reads the result through its views
            return o.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1) @ w
        if then == "read_twice":
            return o, o.flatten(0, 1).sum(-1)
        return o
    args = _args([(1, 2, 77, 32)] * 3, torch.float32)
    out = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(*args)
    ref = fn(*args)
    torch.testing.assert_close(out, ref, **TOL[torch.float32])
    _check_attention_on_device(fresh)
    c = compiled_graphs()[-1]
    (node,) = [n for n in c.graph.nodes if n.target is ATTENTION]
    kernels = [k for r in c.runners for k in r.kernel_names]
    assert node.args[9] is True and tuple(node.meta.shape) == (77, 2, 32)
    assert not [n.name for n in c.graph.nodes if n.target is torch.ops.aten.clone.default]
    if then == "returned":                    # the traced layout, written by the kernel itself
        assert out.stride() == (64, 32, 64, 1)
        assert kernels == [k for k in kernels if k.startswith("pto_mixed_attention")]


def test_scores_used_elsewhere_stay_unfused(fresh):
    """When the probabilities are also returned, the pattern does not apply; results still match."""
    def fn(q, k, v):
        p = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
        return p @ v, p
    args = _args([(2, 9, 16)] * 3, torch.float32)
    out, p = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(*args)
    ref_out, ref_p = fn(*args)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(p, ref_p)
    assert not any(n.target is ATTENTION for n in compiled_graphs()[-1].graph.nodes)


def test_interpreter_runs_the_attention_kernel(fresh):
    """The reference interpreter (the tile IR's semantics) runs the lowered attention region, V2C
    pipe included, and agrees with eager."""
    from pto_dynamo.ascend_backend.host_program import region_scalars
    from pto_dynamo.lowering.tile import CPU_CAPACITY, interpret_region
    from pto_dynamo.lowering.vector.lower import lower_vector_region
    fn = explicit_no_mask
    q, k, v = _args([(3, 65, 48), (3, 129, 48), (3, 129, 40)], torch.float32)     # told apart by shape
    torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(q, k, v)
    c = compiled_graphs()[-1]
    part = c.partition.regions[0]
    region = lower_vector_region(c.graph, part, region_scalars(c.graph, part), "attn_interp", CPU_CAPACITY)
    assert any(launch.kernel.name.startswith("pto_mixed_attention") for launch in region.launches)
    by_shape = {tuple(x.shape): x for x in (q, k, v)}
    inputs = [by_shape[tuple(c.graph.meta_of(n).shape)] for n in part.inputs]
    out = torch.full((3, 65, 40), float("nan"))
    interpret_region(region, inputs + [out], [], 3)
    torch.testing.assert_close(out, fn(q, k, v), **TOL[torch.float32])


def sink_attention(q, kv, valid, sink, round_to):
    """DeepSeek-V4's sparse attention over gathered rows (examples/deepseek_v4/attention.py):
    q [T, H, d], kv [T, K, d] (K = V), valid [T, K], sink [H] -> [T, H, d]."""
    s = torch.einsum("thd,tkd->thk", q, kv) * q.shape[-1] ** -0.5
    s = s.masked_fill(~valid.unsqueeze(1), float("-inf"))
    m = s.amax(-1, keepdim=True)
    e = torch.exp(s - m)
    denom = e.sum(-1, keepdim=True) + torch.exp(sink.view(1, -1, 1) - m)
    return torch.einsum("thk,tkd->thd", e.to(round_to).float(), kv) / denom


def unnormalised_no_sink(q, kv, valid, sink, round_to):
    s = torch.einsum("thd,tkd->thk", q, kv) * 0.2 + torch.where(valid, 0.0, float("-inf")).unsqueeze(1)
    e = torch.exp(s - s.amax(-1, keepdim=True))
    return torch.einsum("thk,tkd->thd", e, kv) / e.sum(-1, keepdim=True)


@pytest.mark.parametrize("fn, round_to", [(sink_attention, torch.bfloat16), (sink_attention, torch.float32),
                                          (unnormalised_no_sink, torch.float32)], ids=["sink_bf16_p", "sink", "no_sink"])
def test_unnormalised_attention_with_sink(fresh, fn, round_to):
    """The sink form with a dynamic token count, 300 keys (several KV steps): one compile, one
    attention kernel, no host nodes, eager's results (the bf16-rounded weights within bf16 steps)."""
    compiled = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)
    H, K, d = 4, 300, 64
    sink = torch.randn(H, generator=torch.Generator().manual_seed(1))
    for t in (1, 6, 17):
        q, kv = _args([(t, H, d), (t, K, d)], torch.float32, seed=t)
        valid = torch.rand(t, K, generator=torch.Generator().manual_seed(t)) > 0.4
        valid[:, 0] = True                            # a token always sees itself
        for x in (q, kv, valid):
            fresh.mark_dynamic(x, 0, name="T")
        tol = TOL[torch.float32] if round_to == torch.float32 else {"rtol": 1e-2, "atol": 1e-2}
        torch.testing.assert_close(compiled(q, kv, valid, sink, round_to), fn(q, kv, valid, sink, round_to), **tol)
    stats = fresh.stats()
    assert stats["signatures_compiled"] == 1 and list(stats["host_nodes"].values()) == [0], stats
    _check_attention_on_device(fresh)
    (node,) = [n for n in compiled_graphs()[-1].graph.nodes if n.target is ATTENTION]
    assert (node.args[7] is not None) == (fn is sink_attention)
    assert node.args[8] == (torch.bfloat16 if round_to == torch.bfloat16 else None)


def test_sink_rows_that_see_nothing_are_zero(fresh):
    """A row whose every key is dropped: the sink alone fills the denominator, the result is 0
    (eager's explicit form gives NaN there: exp(-inf - -inf)); the other rows match eager."""
    q, kv = _args([(3, 4, 16), (3, 20, 16)], torch.float32)
    valid = torch.ones(3, 20, dtype=torch.bool)
    valid[1] = False
    sink = torch.randn(4)
    out = torch.compile(sink_attention, backend="pto", fullgraph=True, options=VERIFY)(q, kv, valid, sink, torch.float32)
    ref = sink_attention(q, kv, valid, sink, torch.float32)
    assert torch.all(out[1] == 0) and torch.isnan(ref[1]).all()
    torch.testing.assert_close(out[[0, 2]], ref[[0, 2]], **TOL[torch.float32])
    _check_attention_on_device(fresh)


@pytest.mark.parametrize("q_shape, kv_len, dv", [((1, 2, 1, 512), 300, 512), ((1, 2, 70, 320), 70, 320),
                                                 ((2, 40, 192), 90, 512)],
                         ids=["decode_d512", "causal_d320", "d192_dv512"])
def test_wide_heads_run_in_head_dim_panels(fresh, q_shape, kv_len, dv):
    """Heads wider than A2A3's L0A/L0B/L0C (DeepSeek-V4's 512; a ragged 320; a value head wider
    than the query head): planned for that target, QK^T accumulates over head-dim panels
    (TEXTRACT from the q and k^T Mat tiles, TMATMUL then TMATMUL_ACC) and PV computes the value
    head panel by panel into one pipe slot; the cpu target's larger memories take whole heads.
    Both kernels run natively here and match eager; the interpreter agrees with the panel one."""
    from pto_dynamo.ascend_backend.cpu import load_library, load_region
    from pto_dynamo.ascend_backend.render import render_translation_unit
    from pto_dynamo.lowering.tile import A2A3_CAPACITY, interpret_region
    from pto_dynamo.lowering.vector.lower import lower_vector_region

    *lead, tq, d = q_shape
    causal = tq == kv_len
    fn = sdpa_causal if causal else explicit_no_mask
    q, k, v = _args([q_shape, (*lead, kv_len, d), (*lead, kv_len, dv)], torch.float32)
    out = torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(q, k, v)
    ref = fn(q, k, v)
    torch.testing.assert_close(out, ref, **TOL[torch.float32])
    _check_attention_on_device(fresh)
    c = compiled_graphs()[-1]
    assert "TEXTRACT(" not in c.runners[0].source          # whole heads on the cpu target

    part = next(p for p in c.partition.regions if any(n.startswith("pto_mixed_attention")
                                                       for r in c.runners for n in r.kernel_names))
    region = lower_vector_region(c.graph, part, (), f"attn_panels_{d}_{dv}", A2A3_CAPACITY)
    source = render_translation_unit(region)
    assert "TMATMUL_ACC(" in source and "TEXTRACT(" in source, "no head-dim panels on A2A3"
    runner, seen = c.runners[0], []       # seen: the tensors the host program hands the region
    call = runner._call

    def spy(tensors, scalars):
        seen.append(list(tensors))
        call(tensors, scalars)
    runner._call = spy
    torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(q, k, v)
    (*inputs, cpu_out), = seen
    native, interp = torch.full_like(cpu_out, float("nan")), torch.full_like(cpu_out, float("nan"))
    load_region(load_library(source, region.name), region.name)(inputs + [native], [], 5)
    interpret_region(region, inputs + [interp], [], 5)
    torch.testing.assert_close(native, cpu_out, **TOL[torch.float32])    # cpu_out: what matched eager above
    torch.testing.assert_close(interp, native, rtol=1e-5, atol=1e-5)
