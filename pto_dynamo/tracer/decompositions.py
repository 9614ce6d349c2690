"""The project's decomposition table: core ATen, minus the ops the device wants whole.

Keeping `_softmax`/`_log_softmax` whole lets the lowering emit one online-softmax kernel instead of
recognising max/sub/exp/sum/div again; matmul-family ops stay whole for the cube lowering; `silu`
stays one TSILU (x / (1 + exp(-x)), ATen's own formula) instead of TSIGMOID and a TMUL pass.
The project's own decompositions (`OWN`): float `div(..., rounding_mode="trunc")` as ATen rounds
it, float32 floor division exactly as ATen's, `repeat` as an expand and one copy, `cat`
without its legacy empty parts, `var_mean` as a mean and the squared deviations from it, a
stable sort of short float lines by ranking, `isnan` as `x != x`, BatchNorm in eval mode as a
per-channel scale and shift; argmax/argmin and max/min (arg_reductions.py), flip and constant
padding (layout_decompositions.py), complex64 products as real arithmetic (complex_arith.py).
`native_layer_norm` and the ops in DECOMPOSE_ALSO, which core ATen keeps, are decomposed all the
same (ATen's decompositions; with that var_mean a LayerNorm is one kernel).
"""
from __future__ import annotations

import functools
import math

import torch
from torch._decomp import core_aten_decompositions, get_decompositions
from torch._prims_common import reduction_dims

from pto_dynamo.tracer import arg_reductions, complex_arith, layout_decompositions, transformer_decompositions

aten = torch.ops.aten

# Core ATen ops decomposed all the same (ATen's own decompositions): the device runs their parts.
# Each goes down to ops the device claims (the activations to where/mul/expm1, the norms to
# reductions and pointwise math).
DECOMPOSE_ALSO = (aten.native_layer_norm.default, aten.native_group_norm.default, aten.leaky_relu.default,
                  aten.hardtanh.default, aten.elu.default, aten.linalg_vector_norm.default, aten.isinf.default,
                  aten.nan_to_num.default)

# Ops kept whole even if core ATen would decompose them.
KEEP_WHOLE = (
    aten._softmax.default,
    aten._log_softmax.default,
    aten.silu.default,
    aten.addmm.default,
    aten.mm.default,
    aten.bmm.default,
)


def _div_trunc_floats(a, b, rounding_mode=None):
    """`div(a, b, rounding_mode="trunc")` of floats: trunc of the quotient, as ATen's CPU kernel
    computes it: by a tensor, the quotient rounded to the result dtype first (a bf16 19.94 is 20
    before the trunc), by a Python number in fp32 (16.98 truncates to 16). Without this the fused
    kernel would keep every quotient in fp32. Anything else (floor division, integers) stays whole."""
    dtype = torch.result_type(a, b)
    if rounding_mode != "trunc" or not dtype.is_floating_point:
        return NotImplemented
    wide = torch.promote_types(dtype, torch.float32)
    q = torch.div(a.to(wide) if isinstance(a, torch.Tensor) else a, b.to(wide) if isinstance(b, torch.Tensor) else b)
    if isinstance(b, torch.Tensor):
        q = q.to(dtype)
    return torch.trunc(q).to(dtype)


def _fma(a, b, c):
    """Dynamo's `prims.fma(a, b, c)` (its `addcmul_`/`addcdiv_` with a value, `add_` with a tensor
    alpha: optimizer steps) as a multiply and an add, which the device runs; fma's own
    implementation computes the same `(a * b) + c`."""
    return a * b + c


# Ops that exist only once something registers them: Dynamo registers torch._inductor's prims
# (importing that module costs a second) when it traces code that uses one.
LATE_PRIMS = {"fma": _fma}


def _isnan(x):
    """`x != x`, a compare the device runs (ATen's decomposition is prims.ne)."""
    return x != x


def _hi(v):
    """The upper 12 bits of an f32's significand (Veltkamp's split: v = hi + (v - hi) exactly)."""
    c = v * 4097.0
    return c - (c - v)


def _div_floor_f32(a, b):
    """`div(a, b, rounding_mode="floor")` of float32: ATen's result is the floor of the exact
    quotient (through fmod). floor(a / b) is it unless the rounded quotient lands on an integer
    from below; then the sign of the exact residual a - f * b (Dekker's product f * b = p + e,
    exact without an FMA) decides f or f - 1. ATen's special values: an infinite a gives nan, an
    infinite b -1 where a and b have opposite signs (else a signed 0), b == 0 gives a / b."""
    q = a / b
    f = torch.floor(q)
    p = f * b
    fh, bh = _hi(f), _hi(b)
    fl, bl = f - fh, b - bh
    e = ((fh * bh - p) + fh * bl + fl * bh) + fl * bl
    r = torch.where(f == 0, a, (a - p) - e)                 # f == 0: the residual is a itself
    below = (f == q) & (r != 0) & ((r < 0) != (b < 0))
    out = torch.where(below, f - 1, f)
    inf_a, inf_b = a.abs() == math.inf, b.abs() == math.inf      # comparisons: device ops
    out = torch.where(inf_b & (a.abs() < math.inf), torch.where((a != 0) & ((a < 0) != (b < 0)), -1.0, q), out)
    return torch.where(inf_a & (b != 0), math.nan, out)


def _div_rounding(a, b, rounding_mode=None):
    """Float division with a rounding mode the device computes as ATen does (float32 floor
    division, trunc division of any float); anything else stays whole."""
    if rounding_mode == "floor" and isinstance(a, torch.Tensor) and torch.result_type(a, b) == torch.float32:
        b = b.float() if isinstance(b, torch.Tensor) else torch.scalar_tensor(b, dtype=torch.float32)
        return _div_floor_f32(a.float(), b)
    return _div_trunc_floats(a, b, rounding_mode)


def _repeat(x, repeats):
    """`x.repeat(r0, r1, ..)`: each dim of x (padded with leading 1s) as (1, s) expanded to (r, s),
    then one copy (a device kernel reading x through stride-0 dims) viewed as (r * s, ..).
    ATen's own decomposition builds it from as_strided unfolds, which the device does not take."""
    repeats = list(repeats)
    if len(repeats) < x.dim() or any(isinstance(r, int) and r == 0 for r in repeats):
        return NotImplemented                             # ATen's error / an empty result
    padded = [1] * (len(repeats) - x.dim()) + list(x.shape)
    lined = [n for s in padded for n in (1, s)]
    wide = [n for r, s in zip(repeats, padded) for n in (r, s)]
    return x.reshape(lined).expand(wide).clone().reshape([r * s for r, s in zip(repeats, padded)])


def _cat(tensors, dim=0):
    """`torch.cat` with its legacy empty parts (1-d tensors of size 0 beside parts of another rank,
    which ATen skips) left out, so that the device's cat sees parts of one rank."""
    def legacy_empty(t):
        return t.dim() == 1 and isinstance(t.shape[0], int) and t.shape[0] == 0
    kept = [t for t in tensors if not legacy_empty(t)]
    if len(kept) == len(tensors) or not kept or any(t.dim() == 1 for t in kept):
        return NotImplemented                             # nothing skipped, or ATen's own rules
    out = torch.cat(kept, dim)
    dtype = functools.reduce(torch.promote_types, (t.dtype for t in tensors))
    return out if out.dtype == dtype else out.to(dtype)    # the skipped parts still promote


def _var_mean(x, dim=None, *, correction=None, keepdim=False):
    """`torch.var_mean` (layer_norm's statistics) in two passes that share the mean: mean, then the
    sum of squared deviations from it over max(0, N - correction), in f32 for 16-bit x (as ATen
    accumulates). One kernel with what follows (ATen's own decomposition goes down to prims, and
    a var beside a separate mean of the same rows made two kernels)."""
    if not x.is_floating_point():
        return NotImplemented
    dims = list(reduction_dims(x.shape, (dim,) if isinstance(dim, int) else dim))     # None, (): all
    n = math.prod(x.shape[d] for d in dims)
    xf = x.float() if x.dtype in (torch.bfloat16, torch.float16) else x
    mean = torch.mean(xf, dims, keepdim=True)
    dev = xf - mean
    dof = torch.sym_max(n - (1 if correction is None else correction), 0)   # no guard on a dynamic n
    var = torch.sum(dev * dev, dims, keepdim=True) / dof
    if not keepdim:
        var, mean = var.squeeze(dims), mean.squeeze(dims)
    return var.to(x.dtype), mean.to(x.dtype)


def _batch_norm_inference(x, weight, bias, running_mean, running_var, momentum, eps):
    """BatchNorm in eval mode as ATen's CPU kernel computes it: x * alpha + beta per channel (dim 1),
    alpha = w / sqrt(var + eps), beta = b - mean * alpha, in f32. (ATen's decomposition calls the
    training op, which updates the running stats in place.)"""
    shape = [1, -1] + [1] * (x.dim() - 2)
    alpha = 1.0 / torch.sqrt(running_var.float() + eps)
    if weight is not None:
        alpha = alpha * weight.float()
    beta = -running_mean.float() * alpha
    if bias is not None:
        beta = beta + bias.float()
    out = x.float() * alpha.view(shape) + beta.view(shape)
    return out.to(x.dtype), running_mean.new_zeros(0), running_mean.new_zeros(0)   # ATen's empty saved stats


# The widest line a stable sort is ranked over on the device: N^2 comparisons per line.
SORT_MAX_WIDTH = 128


def _sort_stable(x, *, stable=None, dim=-1, descending=False):
    """A stable sort of lines of at most SORT_MAX_WIDTH floats (static width) by ranking: element
    i goes to position rank_i = #{j before i} (j's key orders first, or ties and j < i; nan orders
    as the largest, as ATen sorts), indices[k] = the i whose rank is k, values[k] = its x (a max
    over one selected element and -infs: exact, signed zeros and nans included). Compares,
    selects and row reductions, so the device runs it (DeepSeek-V4's indexer sorts 128 scores)."""
    n = x.shape[dim] if x.dim() else 1
    if not stable or x.dtype not in (torch.float32, torch.bfloat16, torch.float16) or x.dim() == 0 or \
            not isinstance(n, int) or not 0 < n <= SORT_MAX_WIDTH:
        return NotImplemented                             # ATen's sort (on the host)
    last = dim in (-1, x.dim() - 1)
    xs = x if last else x.movedim(dim, -1)
    a, b = xs.unsqueeze(-1), xs.unsqueeze(-2)                       # element i (rows), j (columns)
    a_nan, b_nan = a != a, b != b
    if descending:
        first = (b > a) | (b_nan & ~a_nan)
    else:
        first = (b < a) | (a_nan & ~b_nan)
    iota = torch.arange(n, device=x.device)
    tie = ((b == a) | (a_nan & b_nan)) & (iota.unsqueeze(0) < iota.unsqueeze(1))
    rank = (first | tie).sum(-1)                                    # [..., n]
    at = rank.unsqueeze(-2) == iota.unsqueeze(-1)                   # [..., k, i]: i goes to k
    indices = torch.where(at, iota, 0).sum(-1)
    values = torch.where(at, b, float("-inf")).amax(-1)
    return (values, indices) if last else (values.movedim(-1, dim), indices.movedim(-1, dim))


# Project decompositions (returning NotImplemented where they do not apply).
OWN = {aten.div.Tensor_mode: _div_rounding, aten.repeat.default: _repeat, aten.cat.default: _cat,
       aten.var_mean.correction: _var_mean, aten.sort.stable: _sort_stable, aten.isnan.default: _isnan,
       aten._native_batch_norm_legit_no_training.default: _batch_norm_inference,
       **arg_reductions.DECOMPOSITIONS, **layout_decompositions.DECOMPOSITIONS, **complex_arith.DECOMPOSITIONS,
       **transformer_decompositions.DECOMPOSITIONS}


@functools.lru_cache(maxsize=1)
def _base_table() -> dict:
    table = dict(core_aten_decompositions())
    table.update(get_decompositions(DECOMPOSE_ALSO))
    for op in KEEP_WHOLE:
        table.pop(op, None)
    table.update(OWN)
    return table


# Decompositions that are wrong under autograd: ATen's decomposition of the CPU flash attention
# returns the attention weights where the op returns the logsumexp, and the op's backward formula
# (the native flash backward) reads that second result as the logsumexp: gradients came out wrong
# by orders of magnitude. Training graphs keep the op (inductor excludes this decomposition too).
NOT_UNDER_AUTOGRAD = (aten._scaled_dot_product_flash_attention_for_cpu.default,)


@functools.lru_cache(maxsize=2)
def _table(training: bool) -> dict:
    table = dict(_base_table())
    if training:
        for op in NOT_UNDER_AUTOGRAD:
            table.pop(op, None)
    return table


def decomposition_table(training: bool = False) -> dict:
    """op overload -> decomposition, as aot_autograd takes it (with the LATE_PRIMS registered by
    now); `training`: for a graph aot_autograd differentiates (NOT_UNDER_AUTOGRAD stay whole)."""
    table = _table(training)
    for name, fn in LATE_PRIMS.items():
        packet = getattr(torch.ops.prims, name, None)
        if packet is not None:
            table.setdefault(packet.default, fn)
    return table
