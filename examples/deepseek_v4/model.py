"""DeepSeek-V4 in plain PyTorch, in the pypto-golden style: token-major `[T, ...]`, caches and
compressor states passed in and updated in place, step metadata (positions, slot mappings)
built on the host. One traced graph serves every step and token count.

Block order (official): hc_pre -> attn_norm -> attention -> hc_post -> hc_pre -> ffn_norm -> MoE
-> hc_post. Model: embed -> repeat into hc streams -> blocks -> hc_head -> final norm -> LM head.

Math: /work/shared/deepseek_v4.md. Deliberate differences from the pypto goldens:
* visibility of compressed rows is causal `(p+1)//ratio` in decode too (the decode golden uses
  `kv_seq_lens//ratio`, shared by both MTP rows), so decode == prefill exactly;
* W8A8 o-projection uses the per-group activation quant in prefill too;
* HCA attends all `max_seq/128` compressed rows (no cap at 512 columns; the small configs never reach it);
* MoE experts run dense and masked (same top-k selection and weights as the reference);
* no MTP layer, no FP8/FP4 simulation of the official checkpoint.
"""
from __future__ import annotations

import torch
from torch import nn

from .attention import Attention
from .config import DeepSeekV4Config
from .layers import HyperConnection, HyperHead, randn, rms_norm
from .moe import MoE

Meta = dict[str, torch.Tensor]
LayerCache = dict[str, torch.Tensor]


class Block(nn.Module):
    """One decoder layer: `(x_hc [T, hc, D], input_ids [T], meta, cache) -> x_hc`.

    Callable on its own, so that one layer of each kind can be compiled and inspected alone.
    """

    def __init__(self, cfg: DeepSeekV4Config, layer_id: int) -> None:
        super().__init__()
        self.cfg, self.layer_id = cfg, layer_id
        self.kind = {0: "SWA", 4: "CSA", 128: "HCA"}[cfg.compress_ratios[layer_id]]
        self.hc_attn = HyperConnection(cfg)
        self.attn_norm = nn.Parameter(torch.ones(cfg.dim), requires_grad=False)
        self.attn = Attention(cfg, layer_id)
        self.hc_ffn = HyperConnection(cfg)
        self.ffn_norm = nn.Parameter(torch.ones(cfg.dim), requires_grad=False)
        self.moe = MoE(cfg, layer_id)

    def forward(self, x_hc: torch.Tensor, input_ids: torch.Tensor, meta: Meta,
                cache: LayerCache, selections: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        cfg = self.cfg
        x, post, comb = self.hc_attn.pre(x_hc)
        x = rms_norm(x, self.attn_norm, cfg.norm_eps).to(cfg.dtype)
        x = self.attn(x, meta, cache, selections)
        x_hc = self.hc_attn.post(x, x_hc, post, comb)
        x, post, comb = self.hc_ffn.pre(x_hc)
        x = rms_norm(x, self.ffn_norm, cfg.norm_eps).to(cfg.dtype)
        x = self.moe(x, input_ids, selections)
        return self.hc_ffn.post(x, x_hc, post, comb)


class DeepSeekV4(nn.Module):
    """`forward(input_ids [T], meta, caches) -> logits [T, vocab]` (fp32).

    Weights are random with a fixed seed (`cfg.seed`); construction does not disturb the global RNG.
    """

    def __init__(self, cfg: DeepSeekV4Config) -> None:
        super().__init__()
        self.cfg = cfg
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.embed = nn.Parameter(randn(cfg.vocab_size, cfg.dim).to(cfg.dtype), requires_grad=False)
            self.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
            self.hc_head = HyperHead(cfg)
            self.norm = nn.Parameter(torch.ones(cfg.dim), requires_grad=False)
            self.head = nn.Parameter(randn(cfg.vocab_size, cfg.dim, std=cfg.dim ** -0.5).to(cfg.dtype),
                                     requires_grad=False)

    def layer(self, kind: str) -> Block:
        """The first decoder layer of `kind` ("SWA", "CSA" or "HCA"), e.g. to compile one layer alone."""
        return next(block for block in self.layers if block.kind == kind)

    def forward(self, input_ids: torch.Tensor, meta: Meta, caches: list[LayerCache],
                selections: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """`input_ids [T]`, `meta` from `steps.build_meta`, `caches` from `make_caches` (updated in place).

        `selections`, when a dict is given, receives the top-k selections of the step (tensors that
        are also graph outputs under torch.compile): `"<layer>.experts"` `[T, k]` per layer and
        `"<layer>.indexer"` `[T, index_width]` raw indices per CSA layer."""
        cfg = self.cfg
        x_hc = self.embed[input_ids].unsqueeze(1).repeat(1, cfg.hc_mult, 1)
        for layer, cache in zip(self.layers, caches):
            x_hc = layer(x_hc, input_ids, meta, cache, selections)
        x = rms_norm(self.hc_head(x_hc), self.norm, cfg.norm_eps).to(cfg.dtype)
        return (x @ self.head.t()).float()


def make_caches(cfg: DeepSeekV4Config, batch: int | None = None) -> list[LayerCache]:
    """Zeroed per-layer caches for `batch` requests of up to `cfg.max_seq_len` positions.

    Per layer: `kv` ring `[batch*window + 1, head_dim]`; compressed layers add `cmp_kv`
    `[batch*max_seq/ratio + 1, head_dim]` and the fp32 per-position state `cmp_state`
    `[batch*max_seq, 2*coff*head_dim]` (`[kv | score]`); CSA layers add the indexer's `idx_kv` and
    `idx_state`. The `+ 1` row of a cache is the trash row that skipped writes go to.
    """
    batch = cfg.max_batch if batch is None else batch
    dt, s = cfg.dtype, cfg.max_seq_len
    caches = []
    for ratio in cfg.compress_ratios:
        cache = {"kv": torch.zeros(batch * cfg.window + 1, cfg.head_dim, dtype=dt)}
        if ratio:
            coff = 2 if ratio == 4 else 1
            cache["cmp_kv"] = torch.zeros(batch * (s // ratio) + 1, cfg.head_dim, dtype=dt)
            cache["cmp_state"] = torch.zeros(batch * s, 2 * coff * cfg.head_dim)
        if ratio == 4:
            cache["idx_kv"] = torch.zeros(batch * (s // 4) + 1, cfg.index_head_dim, dtype=dt)
            cache["idx_state"] = torch.zeros(batch * s, 4 * cfg.index_head_dim)
        caches.append(cache)
    return caches


def param_count(cfg: DeepSeekV4Config) -> int:
    """Number of parameters (weights only, no buffers), counted without allocating them."""
    with torch.device("meta"):
        model = DeepSeekV4(cfg)
    return sum(p.numel() for p in model.parameters())
