"""Complex products as real arithmetic on the device (tracer/complex_arith.py): Meta's Llama rotary
embedding, `view_as_real(view_as_complex(x) * freqs_cis)`, computes on the device; only the
complex views stay on the host."""
from __future__ import annotations

import torch

from tests.conftest import VERIFY, compiled_graphs


def rope_complex(x, freqs_cis):
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(xc * freqs_cis).flatten(-2).type_as(x)


def test_llama_complex_rotary_embedding_on_the_device(fresh):
    compiled = torch.compile(rope_complex, backend="pto", fullgraph=True, options=VERIFY)
    g = torch.Generator().manual_seed(0)
    for T in (1, 6, 33):
        x = torch.randn(T, 4, 16, generator=g).bfloat16()
        freqs = torch.polar(torch.ones(T, 1, 8), torch.randn(T, 1, 8, generator=g))
        for t in (x, freqs):
            fresh.mark_dynamic(t, 0)
        torch.testing.assert_close(compiled(x, freqs), rope_complex(x, freqs))
    s = fresh.stats()
    assert s["signatures_compiled"] == 1 and all(n == 0 for n in s["fallback_regions"].values()), s
    (c,) = compiled_graphs()
    host = [n.target for n in c.graph.nodes if c.partition.host_reason_of(n.name) not in (None, "runtime check")]
    assert host and all("view" in str(t) for t in host), host             # only views on the host
    assert any(k.startswith("pto_vec_mul_sub_add") for r in c.runners for k in r.kernel_names)


def test_complex_products_with_other_operands_keep_atens_op(fresh):
    """A complex times a real tensor or a number, and complex128, are not rewritten (and match)."""
    def fn(z, r, w):
        return torch.view_as_real(z * r * 2.5), torch.view_as_real(w * w)
    z = torch.polar(torch.rand(3, 5), torch.randn(3, 5))
    args = (z, torch.randn(3, 5), z.to(torch.complex128))
    for g, want in zip(torch.compile(fn, backend="pto", fullgraph=True, options=VERIFY)(*args), fn(*args)):
        torch.testing.assert_close(g, want)
