"""The KV compressors against a naive per-window loop written independently here
(python loops over positions, complex-number RoPE, Hadamard from its bit-parity definition)."""
from __future__ import annotations

import pytest
import torch

from examples.deepseek_v4 import TINY, build_meta, make_caches
from examples.deepseek_v4.compressor import Compressor
from examples.deepseek_v4.layers import rope_tables

L = 300


def naive_hadamard(d: int) -> torch.Tensor:
    h = torch.tensor([[(-1.0) ** bin(i & j).count("1") for j in range(d)] for i in range(d)])
    return h / d ** 0.5


def naive_compress(comp: Compressor, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> dict[int, torch.Tensor]:
    """Compressed row index -> row, for every complete window of the sequence `x [L, D]`."""
    r, d, cfg = comp.ratio, comp.d, comp.cfg
    kv = x @ comp.wkv.weight.t()
    score = x @ comp.wgate.weight.t() + comp.ape[torch.arange(len(x)) % r]
    rows = {}
    for end in range(r - 1, len(x), r):
        slots = []   # (kv, score) per contributing position
        if r == 4:
            slots += [(kv[p, :d], score[p, :d]) for p in range(end - 7, end - 3) if p >= 0]
            slots += [(kv[p, d:], score[p, d:]) for p in range(end - 3, end + 1)]
        else:
            slots += [(kv[p], score[p]) for p in range(end - r + 1, end + 1)]
        k = torch.stack([s[0] for s in slots])
        w = torch.softmax(torch.stack([s[1] for s in slots]), dim=0)
        pooled = (w * k).sum(0)
        c = pooled / torch.sqrt(pooled.pow(2).mean() + cfg.norm_eps) * comp.norm
        start = end + 1 - r
        rot = torch.complex(cos[start], sin[start])
        tail = torch.view_as_real(torch.view_as_complex(c[-cfg.rope_dim:].reshape(-1, 2).contiguous()) * rot)
        c = torch.cat((c[:-cfg.rope_dim], tail.flatten()))
        if comp.rotate:
            c = c @ naive_hadamard(d)
        rows[end // r] = c
    return rows


@pytest.mark.parametrize("ratio,head_dim,rotate", [(4, TINY.head_dim, False), (4, TINY.index_head_dim, True),
                                                   (128, TINY.head_dim, False)])
@pytest.mark.parametrize("chunk", [1, 37, L])
def test_compressor_matches_naive_loop(ratio, head_dim, rotate, chunk):
    torch.manual_seed(0)
    comp = Compressor(TINY, ratio, head_dim, rotate)
    cos, sin = rope_tables(TINY, compressed=True)
    x = torch.randn(L, TINY.dim)
    req = 1                                           # a non-zero request slot checks the row offsets
    coff = 2 if ratio == 4 else 1
    state = torch.zeros(TINY.max_batch * TINY.max_seq_len, 2 * coff * head_dim)
    cache = torch.zeros(TINY.max_batch * TINY.n_compressed(ratio) + 1, head_dim)
    with torch.no_grad():
        for i in range(0, L, chunk):
            n = min(chunk, L - i)
            comp(x[i:i + n], build_meta(TINY, [(req, i, n)]), state, cache, cos, sin)
        want = naive_compress(comp, x, cos, sin)
    base = req * TINY.n_compressed(ratio)
    assert len(want) == L // ratio
    got = cache[base:base + len(want)]
    torch.testing.assert_close(got, torch.stack([want[c] for c in range(len(want))]), rtol=1e-5, atol=1e-5)
    assert cache[:base].eq(0).all() and cache[base + len(want):-1].eq(0).all()   # nothing else written


def test_make_caches_layout():
    caches = make_caches(TINY)
    assert [sorted(c) for c in caches] == [["kv"], ["cmp_kv", "cmp_state", "idx_kv", "idx_state", "kv"],
                                           ["cmp_kv", "cmp_state", "kv"]]
    assert caches[1]["cmp_state"].shape == (TINY.max_batch * TINY.max_seq_len, 4 * TINY.head_dim)
    assert caches[2]["cmp_kv"].shape == (TINY.max_batch * TINY.max_seq_len // 128 + 1, TINY.head_dim)
