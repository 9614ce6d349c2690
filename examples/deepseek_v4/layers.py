"""Shared building blocks: RMSNorm, interleaved RoPE tables, Hadamard, W8A8 simulation, linears,
hyper-connections with Sinkhorn normalisation.

Everything is token-major (`[T, ...]`) and free of data-dependent shapes so that one traced graph
serves every token count.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import DeepSeekV4Config


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """`x * rsqrt(mean(x^2) + eps) * weight` over the last dim, in fp32."""
    x = x.float()
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y if weight is None else y * weight


def int8_fake_quant(x: torch.Tensor, group: int | None = None) -> torch.Tensor:
    """Per-row (or per-`group` columns) symmetric int8 quantise-dequantise, as the W8A8 kernels do.

    `amax` is floored at 1e-4 and `torch.round` rounds half to even, like the goldens.
    """
    x = x.float()
    shape = x.shape
    if group is not None:
        x = x.reshape(*shape[:-1], shape[-1] // group, group)
    amax = x.abs().amax(-1, keepdim=True).clamp(min=1e-4)
    q = torch.round(x * 127.0 / amax)
    return (q * (amax / 127.0)).reshape(shape)


def randn(*shape: int, std: float = 1.0) -> torch.Tensor:
    """Seeded random init (the caller controls the RNG, see `DeepSeekV4.__init__`)."""
    return torch.randn(*shape) * std


class Linear(nn.Module):
    """`y = x @ W^T` with random weights; optionally W8A8-simulated.

    `quant=True` (only when the config enables W8A8) stores the per-output-channel int8 weight
    dequantised in fp32 and fake-quantises each activation row before the product: the same values
    as the int8 x int8 -> int32 dot followed by the two scales. `fp32=True` keeps the product in
    fp32 for paths the reference kernels run in fp32 (compressor, gate scores). `act_group` makes
    the activation quantisation per group of columns instead of per row (the decode o-projection).
    """

    def __init__(self, in_features: int, out_features: int, dtype: torch.dtype,
                 quant: bool = False, fp32: bool = False, act_group: int | None = None) -> None:
        super().__init__()
        w = randn(out_features, in_features, std=in_features ** -0.5)
        self.quant, self.act_group = quant, act_group
        if quant:
            w = int8_fake_quant(w)          # per output channel
            dtype = torch.float32           # int8 values x fp32 scales are not bf16-exact
        elif fp32:
            dtype = torch.float32
        self.weight = nn.Parameter(w.to(dtype), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.quant:
            x = int8_fake_quant(x, self.act_group)
        return F.linear(x.to(self.weight.dtype), self.weight)


# ----------------------------------------------------------------------------------------------
# RoPE: real-valued, interleaved pairs (2i, 2i+1), tables indexed by absolute positions.

def rope_tables(cfg: DeepSeekV4Config, compressed: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables `[max_seq_len, rope_dim // 2]` (fp32).

    SWA layers use `rope_theta`; compressed layers use `compress_rope_theta` with YaRN.
    """
    dim = cfg.rope_dim
    base = cfg.compress_rope_theta if compressed else cfg.rope_theta
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    if compressed and cfg.original_seq_len > 0:
        def correction_dim(rotations: float) -> float:
            return dim * math.log(cfg.original_seq_len / (rotations * 2 * math.pi)) / (2 * math.log(base))
        low = max(math.floor(correction_dim(cfg.beta_fast)), 0)
        high = min(math.ceil(correction_dim(cfg.beta_slow)), dim - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
        smooth = 1 - ramp
        inv_freq = inv_freq / cfg.rope_factor * (1 - smooth) + inv_freq * smooth
    angle = torch.outer(torch.arange(cfg.max_seq_len, dtype=torch.float32), inv_freq)
    return angle.cos(), angle.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, rope_dim: int,
               inverse: bool = False) -> torch.Tensor:
    """Rotate the last `rope_dim` dims of `x` (fp32 out); `cos`/`sin` broadcast to `[..., rope_dim//2]`.

    `y0 = x0 cos - x1 sin, y1 = x0 sin + x1 cos` per interleaved pair; `inverse` rotates by -angle
    (used on the attention output, whose values carry the keys' rotation).
    """
    x = x.float()
    nope, rope = x[..., :-rope_dim], x[..., -rope_dim:]
    x0, x1 = rope[..., 0::2], rope[..., 1::2]
    if inverse:
        sin = -sin
    y = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)
    return torch.cat((nope, y), dim=-1)


def hadamard(d: int) -> torch.Tensor:
    """Walsh-Hadamard matrix `[d, d]` (Sylvester order) scaled by d^-0.5, so it is orthonormal."""
    h = torch.ones(1, 1)
    while h.shape[0] < d:
        h = torch.cat((torch.cat((h, h), 1), torch.cat((h, -h), 1)), 0)
    return h * d ** -0.5


# ----------------------------------------------------------------------------------------------
# Hyper-connections: the residual stream is `hc_mult` copies `[T, hc, D]` mixed around each sublayer.

def sinkhorn(logits: torch.Tensor, iters: int, eps: float) -> torch.Tensor:
    """Doubly-stochastic `[..., n, n]` from logits: softmax over rows, then alternate
    column/row normalisation (`iters` column steps in total), each with `+eps` like the reference."""
    c = torch.softmax(logits, dim=-1) + eps
    c = c / (c.sum(-2, keepdim=True) + eps)
    for _ in range(iters - 1):
        c = c / (c.sum(-1, keepdim=True) + eps)
        c = c / (c.sum(-2, keepdim=True) + eps)
    return c


class HyperConnection(nn.Module):
    """hc_pre / hc_post around one sublayer (attention or MoE)."""

    def __init__(self, cfg: DeepSeekV4Config) -> None:
        super().__init__()
        n, d = cfg.hc_mult, cfg.dim
        self.cfg = cfg
        # mixes: n pre weights, n post weights, n*n comb logits
        self.fn = nn.Parameter(randn(n * (n + 2), n * d, std=(n * d) ** -0.5), requires_grad=False)
        self.base = nn.Parameter(randn(n * (n + 2), std=0.5), requires_grad=False)
        self.scale = nn.Parameter(1.0 + randn(3, std=0.1), requires_grad=False)

    def pre(self, x_hc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`x_hc [T, n, D]` -> (sublayer input `[T, D]` in cfg.dtype, post `[T, n]`, comb `[T, n, n]`)."""
        cfg, n = self.cfg, self.cfg.hc_mult
        x = x_hc.flatten(1).float()
        # RMS over the whole n*D vector, no gamma; applied after the projection (same value).
        m = (x @ self.fn.t()) * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg.norm_eps)
        pre = torch.sigmoid(m[:, :n] * self.scale[0] + self.base[:n]) + cfg.hc_eps
        post = 2 * torch.sigmoid(m[:, n:2 * n] * self.scale[1] + self.base[n:2 * n])
        comb = (m[:, 2 * n:] * self.scale[2] + self.base[2 * n:]).view(-1, n, n)   # [T, in, out]
        comb = sinkhorn(comb, cfg.hc_sinkhorn_iters, cfg.hc_eps)
        x_mixed = (pre.unsqueeze(-1) * x_hc.float()).sum(1).to(cfg.dtype)
        return x_mixed, post, comb

    def post(self, out: torch.Tensor, x_hc: torch.Tensor, post: torch.Tensor,
             comb: torch.Tensor) -> torch.Tensor:
        """`y[out] = post[out] * sublayer_out + sum_in comb[in, out] * x_hc[in]`, rounded to cfg.dtype."""
        y = post.unsqueeze(-1) * out.float().unsqueeze(1) + torch.einsum("tio,tid->tod", comb, x_hc.float())
        return y.to(self.cfg.dtype)


class HyperHead(nn.Module):
    """hc_head: collapse the n streams with sigmoid weights (no post, no comb) before the final norm."""

    def __init__(self, cfg: DeepSeekV4Config) -> None:
        super().__init__()
        n, d = cfg.hc_mult, cfg.dim
        self.cfg = cfg
        self.fn = nn.Parameter(randn(n, n * d, std=(n * d) ** -0.5), requires_grad=False)
        self.base = nn.Parameter(randn(n, std=0.5), requires_grad=False)
        self.scale = nn.Parameter(1.0 + randn(1, std=0.1), requires_grad=False)

    def forward(self, x_hc: torch.Tensor) -> torch.Tensor:
        x = x_hc.flatten(1).float()
        m = (x @ self.fn.t()) * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.cfg.norm_eps)
        pre = torch.sigmoid(m * self.scale + self.base) + self.cfg.hc_eps
        return (pre.unsqueeze(-1) * x_hc.float()).sum(1)
