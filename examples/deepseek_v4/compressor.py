"""KV compressors (ratio 4 with overlap, ratio 128) and the lightning indexer.

Layout (flat per-request, the degenerate case of the golden's paged layout with one page per
request): compressor state row `req * max_seq_len + pos` holds `[kv (coff*d) | score (coff*d)]` in
fp32 for every position ever seen; compressed-cache row `req * (max_seq_len // ratio) + pos // ratio`.
Every token's state is scattered *before* pooling, which is safe because the state is per position
(the golden's decode order); a chunk therefore reads its own fresh rows through the state.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import DeepSeekV4Config
from .layers import Linear, apply_rope, hadamard, int8_fake_quant, randn, rms_norm


def slot_rows(slots: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Host slot mapping (-1 = skip) -> rows of `table`; skipped writes land in its last (trash) row.

    A trash row instead of a masked scatter keeps the write a plain static-shape `index_copy_`.
    """
    return torch.where(slots >= 0, slots, table.shape[0] - 1)


class Compressor(nn.Module):
    """Softmax-pools `ratio` (x2 with overlap) positions of projected KV into one compressed row.

    For every token, as if it ended a window (`p_end = p_t`), it gathers the window from the state,
    pools per channel with a softmax over the slots, RMS-normalises, ropes at the window start
    `p_end + 1 - ratio`, optionally Hadamard-rotates, and writes the row where the host's
    `cmp_slot_<ratio>` says (only window-end tokens get a real row; the rest go to the trash row).
    Computing the pool for all tokens keeps shapes static; the reference does the same per token.
    """

    def __init__(self, cfg: DeepSeekV4Config, ratio: int, head_dim: int, rotate: bool) -> None:
        super().__init__()
        self.cfg, self.ratio, self.d = cfg, ratio, head_dim
        self.overlap = ratio == 4
        self.coff = 2 if self.overlap else 1
        width = self.coff * head_dim
        self.wkv = Linear(cfg.dim, width, cfg.dtype, fp32=True)
        self.wgate = Linear(cfg.dim, width, cfg.dtype, fp32=True)
        self.ape = nn.Parameter(randn(ratio, width, std=0.5), requires_grad=False)  # bias by slot-in-window
        self.norm = nn.Parameter(torch.ones(head_dim), requires_grad=False)
        self.rotate = rotate
        if rotate:
            self.register_buffer("hadamard", hadamard(head_dim), persistent=False)

    def forward(self, x_normed: torch.Tensor, meta: dict[str, torch.Tensor], state: torch.Tensor,
                cache: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> None:
        """Update `state` and `cache` in place. `cos`/`sin` are the layer's full RoPE tables."""
        pos = meta["positions"]
        kv = self.wkv(x_normed)
        score = self.wgate(x_normed) + self.ape[pos % self.ratio]
        state.index_copy_(0, meta["state_slot"], torch.cat((kv, score), dim=-1))
        c = rms_norm(self.pool(state, meta), self.norm, self.cfg.norm_eps)
        start = (pos + 1 - self.ratio).clamp(min=0)   # window-start position (clamped: non-ends are discarded)
        c = apply_rope(c, cos[start], sin[start], self.cfg.rope_dim)
        if self.rotate:
            c = c @ self.hadamard
        cache.index_copy_(0, slot_rows(meta[f"cmp_slot_{self.ratio}"], cache), c.to(cache.dtype))

    def pool(self, state: torch.Tensor, meta: dict[str, torch.Tensor]) -> torch.Tensor:
        """`[T, d]`: softmax-over-slots pooling of the window ending at each token's position."""
        r, d = self.ratio, self.d
        n = 2 * r if self.overlap else r
        pos = meta["positions"]
        back = torch.arange(n - 1, -1, -1, device=pos.device)          # slot j holds position p - back[j]
        valid = (pos[:, None] - back) >= 0                                # [T, n]
        rows = torch.where(valid, meta["state_slot"][:, None] - back, 0)  # row = req*max_seq + pos
        kv, score = state[rows].split(self.coff * d, dim=-1)              # [T, n, coff*d] each
        if self.overlap:
            # previous window uses channel half [0:d], the current window half [d:2d]
            kv = torch.cat((kv[:, :r, :d], kv[:, r:, d:]), dim=1)
            score = torch.cat((score[:, :r, :d], score[:, r:, d:]), dim=1)
        mask = valid.unsqueeze(-1)
        score = score.masked_fill(~mask, float("-inf"))
        kv = kv.masked_fill(~mask, 0.0)
        return (torch.softmax(score, dim=1) * kv).sum(1)


class Indexer(nn.Module):
    """Lightning indexer of CSA layers: scores the ratio-4 compressed rows and picks a static top-k.

    Returns raw sparse-attention indices `[T, index_width]`: `window + T + c` for compressed row `c`
    of the token's request, `-1` where fewer than `index_width` rows are causally visible.
    """

    def __init__(self, cfg: DeepSeekV4Config) -> None:
        super().__init__()
        self.cfg = cfg
        h, d = cfg.index_n_heads, cfg.index_head_dim
        self.wq_b = Linear(cfg.q_lora_rank, h * d, cfg.dtype, quant=cfg.w8a8)
        self.weights_proj = Linear(cfg.dim, h, cfg.dtype, fp32=True)
        self.compressor = Compressor(cfg, 4, d, rotate=True)
        self.register_buffer("hadamard", hadamard(d), persistent=False)

    def forward(self, x_normed: torch.Tensor, qr: torch.Tensor, meta: dict[str, torch.Tensor],
                cache: dict[str, torch.Tensor], cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        h, d, n_rows = cfg.index_n_heads, cfg.index_head_dim, cfg.n_compressed(4)
        pos, t = meta["positions"], x_normed.shape[0]
        self.compressor(x_normed, meta, cache["idx_state"], cache["idx_kv"], cos, sin)

        q = self.wq_b(qr).view(t, h, d)
        q = apply_rope(q, cos[pos].unsqueeze(1), sin[pos].unsqueeze(1), cfg.rope_dim)
        q = q.to(cfg.dtype).float() @ self.hadamard                       # [T, h, d]
        w = self.weights_proj(x_normed) * (d ** -0.5 * h ** -0.5)         # [T, h]

        # every compressed row of the token's own request; visibility is a mask, not a shape
        c = torch.arange(n_rows, device=pos.device)
        keys = cache["idx_kv"][meta["req_idx"][:, None] * n_rows + c].float()   # [T, n_rows, d]
        if cfg.w8a8:   # the pypto path: per-row int8 q and k, int32 dot, dequant
            q, keys = int8_fake_quant(q), int8_fake_quant(keys)
        score = (torch.relu(torch.einsum("thd,tcd->thc", q, keys)) * w.unsqueeze(-1)).sum(1)
        n_visible = (pos + 1) // 4
        score = score.masked_fill(c >= n_visible[:, None], float("-inf"))
        # stable sort: exact ties (relu zeros) break by row index, the same in every step shape;
        # visible rows (finite) rank before masked ones
        idx = torch.argsort(score, dim=-1, descending=True, stable=True)[:, :cfg.index_width]
        return torch.where(idx < n_visible[:, None], cfg.window + t + idx, -1)
