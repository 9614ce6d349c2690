"""Attention of one layer: Q low-rank path, the single KV latent (K = V), sliding window with the
attention sink, compressed columns (CSA via the indexer, HCA deterministic), inverse RoPE and the
grouped output projection.

Raw sparse-index contract (the pypto golden's, per token `t` of a step with `T` tokens):
  -1 invalid; `[0, W)` ring slot of the token's request; `[W, W+T)` overlay = this step's fresh KV
  row `raw - W` (not yet in the ring); `>= W+T` compressed row `raw - W - T` of the request.
The ring is written *after* attention, so the overlay is what lets a chunk longer than the window
see its own earlier tokens.
"""
from __future__ import annotations

import torch
from torch import nn

from .compressor import Compressor, Indexer, slot_rows
from .config import DeepSeekV4Config
from .layers import Linear, apply_rope, randn, rms_norm, rope_tables


def window_indices(meta: dict[str, torch.Tensor], t: int, window: int) -> torch.Tensor:
    """`[T, window]` raw indices of positions `p-window+1 .. p`: overlay if the position is in this
    step (`back <= tok_in_req`), else its ring slot `pos % window`; -1 before position 0."""
    pos = meta["positions"]
    back = torch.arange(window, device=pos.device)
    p = pos[:, None] - back
    in_step = back <= meta["tok_in_req"][:, None]
    tok = torch.arange(t, device=pos.device)[:, None] - back
    return torch.where(p < 0, -1, torch.where(in_step, window + tok, p % window))


def hca_indices(meta: dict[str, torch.Tensor], t: int, cfg: DeepSeekV4Config) -> torch.Tensor:
    """`[T, max_seq/128]` raw indices of every causally complete ratio-128 row (no indexer)."""
    pos = meta["positions"]
    c = torch.arange(cfg.n_compressed(128), device=pos.device)
    return torch.where(c < ((pos + 1) // 128)[:, None], cfg.window + t + c, -1)


def gather_kv(raw: torch.Tensor, fresh: torch.Tensor, ring: torch.Tensor, cmp: torch.Tensor | None,
              req: torch.Tensor, cfg: DeepSeekV4Config, ratio: int) -> torch.Tensor:
    """Resolve raw indices `[T, K]` against the three pools -> keys/values `[T, K, head_dim]`.

    Three gathers with clamped rows and a select, instead of concatenating the pools (which would
    copy whole caches every step).
    """
    win, t = cfg.window, fresh.shape[0]
    req = req[:, None]
    in_ring = (raw >= 0) & (raw < win)
    in_fresh = (raw >= win) & (raw < win + t)
    out = ring[torch.where(in_ring, req * win + raw, 0)]
    out = torch.where(in_fresh.unsqueeze(-1), fresh[torch.where(in_fresh, raw - win, 0)], out)
    if cmp is not None:
        in_cmp = raw >= win + t
        n = cfg.n_compressed(ratio)
        out = torch.where(in_cmp.unsqueeze(-1), cmp[torch.where(in_cmp, req * n + raw - win - t, 0)], out)
    return out


def sparse_attention(q: torch.Tensor, kv: torch.Tensor, valid: torch.Tensor, sink: torch.Tensor,
                     dtype: torch.dtype) -> torch.Tensor:
    """Softmax attention over gathered rows with a per-head sink logit in the denominator.

    `q [T, H, d]`, `kv [T, K, d]` (K = V), `valid [T, K]`, `sink [H]` -> `[T, H, d]` fp32.
    The exp weights are rounded to `dtype` before P@V, as the kernel does; the denominator is fp32.
    """
    kv = kv.float()
    s = torch.einsum("thd,tkd->thk", q.float(), kv) * q.shape[-1] ** -0.5
    s = s.masked_fill(~valid.unsqueeze(1), float("-inf"))
    m = s.amax(-1, keepdim=True)            # finite: a token always sees itself
    e = torch.exp(s - m)
    denom = e.sum(-1, keepdim=True) + torch.exp(sink.view(1, -1, 1) - m)
    return torch.einsum("thk,tkd->thd", e.to(dtype).float(), kv) / denom


class Attention(nn.Module):
    """One layer's attention; its kind follows `cfg.compress_ratios[layer_id]` (0 SWA, 4 CSA, 128 HCA)."""

    def __init__(self, cfg: DeepSeekV4Config, layer_id: int) -> None:
        super().__init__()
        self.cfg, self.layer_id = cfg, layer_id
        self.ratio = ratio = cfg.compress_ratios[layer_id]
        h, d, dt = cfg.n_heads, cfg.head_dim, cfg.dtype
        self.wq_a = Linear(cfg.dim, cfg.q_lora_rank, dt)
        self.q_norm = nn.Parameter(torch.ones(cfg.q_lora_rank), requires_grad=False)
        self.wq_b = Linear(cfg.q_lora_rank, h * d, dt, quant=cfg.w8a8)
        self.wkv = Linear(cfg.dim, d, dt)
        self.kv_norm = nn.Parameter(torch.ones(d), requires_grad=False)
        self.attn_sink = nn.Parameter(randn(h, std=0.5), requires_grad=False)
        fan_in = h // cfg.o_groups * d
        self.wo_a = nn.Parameter(randn(cfg.o_groups, cfg.o_lora_rank, fan_in, std=fan_in ** -0.5).to(dt),
                                 requires_grad=False)
        # W8A8: the decode kernel's per-group activation quant, used for prefill too (the prefill
        # kernel quantises per row) so that one graph serves both
        self.wo_b = Linear(cfg.o_groups * cfg.o_lora_rank, cfg.dim, dt, quant=cfg.w8a8,
                           act_group=cfg.o_lora_rank)
        self.compressor = Compressor(cfg, ratio, d, rotate=False) if ratio else None
        self.indexer = Indexer(cfg) if ratio == 4 else None
        cos, sin = rope_tables(cfg, compressed=ratio > 0)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, x: torch.Tensor, meta: dict[str, torch.Tensor], cache: dict[str, torch.Tensor],
                selections: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """`x` = normed sublayer input `[T, D]` -> attention output `[T, D]`; updates `cache` in place.
        `selections`, when given, receives the indexer's raw top-k `[T, index_width]` (CSA layers)
        as `"<layer>.indexer"`."""
        cfg, t = self.cfg, x.shape[0]
        h, d, rd, eps = cfg.n_heads, cfg.head_dim, cfg.rope_dim, cfg.norm_eps
        pos = meta["positions"]
        cos, sin = self.cos[pos], self.sin[pos]

        qr = rms_norm(self.wq_a(x), self.q_norm, eps)
        q = rms_norm(self.wq_b(qr).view(t, h, d), None, eps)           # per-head norm, no gamma
        q = apply_rope(q, cos.unsqueeze(1), sin.unsqueeze(1), rd).to(cfg.dtype)
        kv = apply_rope(rms_norm(self.wkv(x), self.kv_norm, eps), cos, sin, rd).to(cfg.dtype)

        raw = [window_indices(meta, t, cfg.window)]
        if self.compressor is not None:   # writes this step's compressed rows before attention reads them
            self.compressor(x, meta, cache["cmp_state"], cache["cmp_kv"], self.cos, self.sin)
        if self.ratio == 4:
            raw.append(self.indexer(x, qr, meta, cache, self.cos, self.sin))
            if selections is not None:
                selections[f"{self.layer_id}.indexer"] = raw[-1]
        elif self.ratio == 128:
            raw.append(hca_indices(meta, t, cfg))
        raw = torch.cat(raw, dim=1)

        keys = gather_kv(raw, kv, cache["kv"], cache.get("cmp_kv"), meta["req_idx"], cfg, self.ratio)
        o = sparse_attention(q, keys, raw >= 0, self.attn_sink, cfg.dtype)
        o = apply_rope(o, cos.unsqueeze(1), sin.unsqueeze(1), rd, inverse=True).to(cfg.dtype)
        o = torch.einsum("tgi,goi->tgo", o.view(t, cfg.o_groups, -1), self.wo_a)
        out = self.wo_b(o.flatten(1))
        # ring write-back after attention (host maps superseded and skipped tokens to -1)
        cache["kv"].index_copy_(0, slot_rows(meta["swa_slot"], cache["kv"]), kv)
        return out
