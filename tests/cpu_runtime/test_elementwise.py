"""Element-wise PTO instructions, activations and casts on the CPU target, against torch."""
from __future__ import annotations


import pytest
import torch

from pto_dynamo.ascend_backend.cpu import load_region
from tests.cpu_runtime.conftest import build_kernels

SHAPES = [(1, 1), (16, 64), (37, 100), (129, 513), (3, 700)]


@pytest.fixture(scope="module")
def lib(cache_dir):
    return build_kernels("elementwise")


@pytest.mark.parametrize("rows,cols", SHAPES)
@pytest.mark.parametrize("block_num", [1, 3, 64])
def test_vadd_ragged(lib, num_threads, rows, cols, block_num):
    x, y = torch.randn(rows, cols), torch.randn(rows, cols)
    z = torch.full((rows, cols), float("nan"))
    load_region(lib, "region_vadd", block_num)([x, y, z], [rows, cols])
    torch.testing.assert_close(z, x + y, rtol=0, atol=0)


def wide_inputs() -> torch.Tensor:
    """Values over the whole float range, including specials, as a 2-D tensor with ragged width."""
    g = torch.Generator().manual_seed(0)
    parts = [
        torch.linspace(-30, 30, 4001),
        torch.linspace(-1, 1, 2001),
        torch.randn(3000, generator=g) * 5,
        torch.logspace(-30, 30, 500), -torch.logspace(-30, 30, 500),
        torch.linspace(-110, 110, 1001),
        torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"), 1e-45, -1e-45, 3.4e38, -3.4e38,
                      88.7, 88.8, -87.3, -103.9, -104.5, 0.5, -0.5, 1.0, -1.0, 0.84, 2.5, -2.5]),
    ]
    flat = torch.cat(parts).float()
    cols = 97
    pad = (-flat.numel()) % cols
    flat = torch.cat([flat, torch.zeros(pad)])
    return flat.view(-1, cols).contiguous()


UNARY = {
    "exp": (0, torch.exp), "log": (1, torch.log), "tanh": (2, torch.tanh), "erf": (3, torch.erf),
    "sigmoid": (4, torch.sigmoid), "gelu": (5, torch.nn.functional.gelu), "silu": (6, torch.nn.functional.silu),
    "sqrt": (7, torch.sqrt), "rsqrt": (8, torch.rsqrt), "recip": (9, torch.reciprocal), "abs": (10, torch.abs),
    "neg": (11, torch.neg), "relu": (12, torch.relu), "log1p": (13, torch.log1p), "expm1": (14, torch.expm1),
    "sin": (15, torch.sin), "cos": (16, torch.cos), "floor": (17, torch.floor), "ceil": (18, torch.ceil),
    "round": (19, torch.round), "sign": (20, torch.sign), "pow2": (21, lambda x: torch.pow(x, 2.0)),
    "pow1.7": (22, lambda x: torch.pow(x, 1.7)), "trunc": (23, torch.trunc),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_against_torch(lib, name):
    op, ref_fn = UNARY[name]
    x = wide_inputs()
    if name in ("sin", "cos"):
        x = x.clamp(-1e4, 1e4)   # documented range of the CPU reduction
    if name == "gelu":
        # torch's gelu is nan at +-inf and overflows near FLT_MAX; ours returns the limits
        x = x.masked_fill(x.abs() > 1e38, 0.0)
    out = torch.empty_like(x)
    load_region(lib, "region_unary", 3)([x, out], [x.shape[0], x.shape[1], op])
    torch.testing.assert_close(out, ref_fn(x), rtol=1.3e-6, atol=1e-5, equal_nan=True)


def test_exp_underflow(lib):
    """exp through the subnormal range to 0: within one subnormal step of torch, and exactly 0
    from -103.98 down (-inf included, a masked score), where the kernel skips the scaling that
    would underflow through a subnormal product (a microcode assist per lane on Intel cores)."""
    x = torch.cat([torch.linspace(-104.5, -86.0, 4001), torch.tensor([-103.97, -103.98, -103.99, -1e30, -float("inf")])])
    x = torch.cat([x, torch.zeros((-x.numel()) % 97)]).view(-1, 97).contiguous()
    out = torch.empty_like(x)
    load_region(lib, "region_unary", 3)([x, out], [x.shape[0], x.shape[1], UNARY["exp"][0]])
    torch.testing.assert_close(out, torch.exp(x), rtol=1.3e-6, atol=2e-45)
    assert (out[x < -103.98] == 0).all()


def test_exp_paths_agree_bitwise(lib):
    """TEXP's AVX-512 form (vexp16: vscalefps, masked zero lanes) and the generic engine's
    vectorisation of vexp give the same bits for every input (a sweep of float bit patterns, the
    wide inputs with their specials); without AVX-512 both are the generic engine."""
    sweep = torch.arange(0, 1 << 32, 4099, dtype=torch.int64).to(torch.int32).view(torch.float32)
    x = torch.cat([wide_inputs().flatten(), sweep])
    x = torch.cat([x, torch.zeros((-x.numel()) % 131)]).view(-1, 131).contiguous()
    fast, generic = torch.empty_like(x), torch.empty_like(x)
    load_region(lib, "region_unary", 3)([x, fast], [x.shape[0], x.shape[1], UNARY["exp"][0]])
    load_region(lib, "region_unary", 3)([x, generic], [x.shape[0], x.shape[1], 24])
    same = (fast.view(torch.int32) == generic.view(torch.int32)) | (fast.isnan() & generic.isnan())
    assert same.all(), x[~same][:8]


@pytest.mark.parametrize("op,ref", [(0, torch.add), (1, torch.sub), (2, torch.mul), (3, torch.div),
                                    (4, torch.maximum), (5, torch.minimum), (6, torch.pow)])
def test_binary(lib, op, ref):
    rows, cols = 45, 130
    x, y = torch.randn(rows, cols), torch.randn(rows, cols)
    if op == 6:
        x = x.abs() + 0.1
    x[0, 0], y[1, 1] = float("nan"), float("nan")
    out = torch.empty_like(x)
    load_region(lib, "region_binary", 3)([x, y, out], [rows, cols, op])
    torch.testing.assert_close(out, ref(x, y), rtol=1.3e-6, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("op,ref", [(0, lambda x: x + 1.5), (1, lambda x: x - 1.5), (2, lambda x: x * 1.5),
                                    (3, lambda x: x / 1.5), (4, lambda x: torch.clamp(x, min=1.5)),
                                    (5, lambda x: torch.clamp(x, max=1.5)), (6, lambda x: 1.5 / x)])
def test_scalar(lib, op, ref):
    rows, cols = 20, 77
    x = torch.randn(rows, cols) * 3
    out = torch.empty_like(x)
    load_region(lib, "region_scalar", 64)([x, out], [rows, cols, op])
    torch.testing.assert_close(out, ref(x), rtol=1.3e-6, atol=1e-5)


def cast_inputs() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(33, 150, generator=g) * 100
    # exact ties in bf16 (and fp16): the low half of the float bits is exactly 0x8000
    ties = (torch.randint(0, 1 << 15, (33, 150), generator=g, dtype=torch.int32) << 16) | 0x8000
    x[:, :50] = ties[:, :50].view(torch.float32)
    x[0, :6] = torch.tensor([float("inf"), -float("inf"), float("nan"), 0.0, -0.0, 3.4e38])
    x[1, :3] = torch.tensor([1e-40, -1e-42, 70000.0])
    return x


@pytest.mark.parametrize("region,dtype", [("region_cast_bf16", torch.bfloat16), ("region_cast_f16", torch.float16)])
def test_cast_round_to_nearest_even(lib, region, dtype):
    x = cast_inputs()
    low = torch.empty(x.shape, dtype=dtype)
    back = torch.empty_like(x)
    load_region(lib, region, 3)([x, low, back], list(x.shape))
    expected = x.to(dtype)
    assert torch.equal(low.view(torch.int16)[~expected.isnan()], expected.view(torch.int16)[~expected.isnan()])
    assert torch.equal(low.isnan(), expected.isnan())
    torch.testing.assert_close(back, expected.float(), rtol=0, atol=0, equal_nan=True)


def test_bf16_silu_mul(lib):
    rows, cols = 50, 200
    x = torch.randn(rows, cols).bfloat16()
    y = torch.randn(rows, cols).bfloat16()
    out = torch.empty_like(x)
    load_region(lib, "region_silu_mul_bf16", 3)([x, y, out], [rows, cols])
    expected = (torch.nn.functional.silu(x.float()) * y.float()).bfloat16()
    torch.testing.assert_close(out, expected, rtol=1.6e-2, atol=1e-5)
    mismatched = (out != expected).sum().item()
    assert mismatched <= max(1, rows * cols // 1000), mismatched  # only 1-ulp double-rounding ties may differ
