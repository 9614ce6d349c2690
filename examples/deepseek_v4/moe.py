"""MoE: `sqrtsoftplus` gate, bias for selection only, route scale, hash routing on the first layers,
routed and shared SwiGLU experts with the clamp.

Experts run dense and masked: every expert sees every token and its output is weighted by a
`[T, E]` combine matrix that is zero off the top-k. Shapes stay static (no bincount / nonzero /
`.tolist()`), which is what lets one graph serve every token count; at the small config sizes the
extra FLOPs are cheap. Top-k *selection* semantics are kept exactly.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import DeepSeekV4Config
from .layers import Linear, int8_fake_quant, randn


def sqrt_softplus(z: torch.Tensor) -> torch.Tensor:
    """`sqrt(softplus(z))` with the reference's softplus `relu(z) + log1p(exp(-|z|))`."""
    return torch.sqrt(torch.relu(z) + torch.log1p(torch.exp(-z.abs())))


def expert_weights(out_f: int, in_f: int, quant_group: int, quant: bool, dtype: torch.dtype) -> nn.Parameter:
    """`[out_f, in_f]` random weights; under W8A8 int8 per output channel of each expert, i.e. per
    row in groups of `quant_group` columns (the experts are laid side by side)."""
    w = randn(out_f, in_f, std=quant_group ** -0.5)
    if quant:
        return nn.Parameter(int8_fake_quant(w, quant_group), requires_grad=False)   # fp32 dequantised
    return nn.Parameter(w.to(dtype), requires_grad=False)


class DenseExperts(nn.Module):
    """`n` SwiGLU experts computed for every token; `combine [T, n]` weights the hidden rows before w2.

    The experts are stacked so that each projection is one plain matmul: w1/w3 `[n*inter, D]`
    (expert-major rows) and w2 `[D, n*inter]`, whose product with the weighted hidden `[T, n*inter]`
    also sums over the experts.
    """

    def __init__(self, cfg: DeepSeekV4Config, n: int, inter: int) -> None:
        super().__init__()
        self.cfg, self.n, self.inter = cfg, n, inter
        self.w1 = expert_weights(n * inter, cfg.dim, cfg.dim, cfg.w8a8, cfg.dtype)
        self.w3 = expert_weights(n * inter, cfg.dim, cfg.dim, cfg.w8a8, cfg.dtype)
        self.w2 = expert_weights(cfg.dim, n * inter, inter, cfg.w8a8, cfg.dtype)

    def forward(self, x: torch.Tensor, combine: torch.Tensor) -> torch.Tensor:
        """`x [T, D]` (already int8-simulated under W8A8) -> `[T, D]` fp32."""
        limit, wdt = self.cfg.swiglu_limit, self.w1.dtype
        x = x.to(wdt)
        gate = F.linear(x, self.w1).float().view(-1, self.n, self.inter)
        up = F.linear(x, self.w3).float().view(-1, self.n, self.inter)
        h = F.silu(gate.clamp(max=limit)) * up.clamp(-limit, limit)
        h = h * combine.unsqueeze(-1)              # routed rows scaled by their weight before w2
        if self.cfg.w8a8:
            h = int8_fake_quant(h)                 # per (token, expert) row
        return F.linear(h.flatten(1).to(wdt), self.w2).float()


class MoE(nn.Module):
    """Gate + routed experts + shared expert(s) of one layer."""

    def __init__(self, cfg: DeepSeekV4Config, layer_id: int) -> None:
        super().__init__()
        self.cfg, self.layer_id = cfg, layer_id
        self.hash_routing = layer_id < cfg.n_hash_layers
        self.gate = Linear(cfg.dim, cfg.n_routed_experts, cfg.dtype, fp32=True)
        if self.hash_routing:
            # token id -> k distinct experts, fixed at init
            table = torch.rand(cfg.vocab_size, cfg.n_routed_experts).argsort(-1)[:, :cfg.n_activated_experts]
            self.register_buffer("tid2eid", table, persistent=False)
        else:
            self.gate_bias = nn.Parameter(randn(cfg.n_routed_experts, std=0.1), requires_grad=False)
        self.experts = DenseExperts(cfg, cfg.n_routed_experts, cfg.moe_inter_dim)
        self.shared = DenseExperts(cfg, 1, cfg.n_shared_experts * cfg.moe_inter_dim)

    def route(self, x: torch.Tensor, input_ids: torch.Tensor,
              selections: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Combine matrix `[T, E]`: normalised gate scores of the selected experts times route_scale.

        `selections`, when given, receives the selected experts `[T, k]` as `"<layer>.experts"`."""
        cfg = self.cfg
        scores = sqrt_softplus(self.gate(x))                                   # [T, E] fp32
        if self.hash_routing:
            idx = self.tid2eid[input_ids]
        else:   # the bias only affects which experts are picked, not their weights
            idx = torch.argsort(scores + self.gate_bias, dim=-1, descending=True, stable=True)
            idx = idx[:, :cfg.n_activated_experts]
        if selections is not None:
            selections[f"{self.layer_id}.experts"] = idx
        w = scores.gather(1, idx)
        w = w / w.sum(-1, keepdim=True) * cfg.route_scale
        return torch.zeros_like(scores).scatter(1, idx, w)

    def forward(self, x: torch.Tensor, input_ids: torch.Tensor,
                selections: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """`x` = normed FFN input `[T, D]` -> `[T, D]` in cfg.dtype."""
        combine = self.route(x, input_ids, selections)
        xq = int8_fake_quant(x) if self.cfg.w8a8 else x        # one activation quant reused by all experts
        ones = torch.ones_like(combine[:, :1])
        return (self.shared(xq, ones) + self.experts(xq, combine)).to(self.cfg.dtype)
