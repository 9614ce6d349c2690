"""DeepSeek-V4 configuration: the Flash reference values, a small faithful config and a tiny test config.

The math of every field is in /work/shared/deepseek_v4.md. Only the widths shrink between configs;
structural constants (window 128, ratios 4 and 128, 4 hyper-connection streams, 20 Sinkhorn
iterations, the RoPE/YaRN constants) stay those of the reference model.
"""
from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass(frozen=True)
class DeepSeekV4Config:
    """Model shape, routing and numerics. The default is the small faithful config."""

    vocab_size: int = 1024
    dim: int = 256
    # compress ratio per layer: 0 = sliding-window attention (SWA), 4 = compressed sparse
    # attention with the lightning indexer (CSA), 128 = heavily compressed attention (HCA).
    compress_ratios: tuple[int, ...] = (0, 0, 4, 128, 4, 0)
    n_heads: int = 4
    head_dim: int = 64            # nope + rope dims; the single KV latent has this width too
    rope_dim: int = 16            # the last rope_dim dims of q / kv get (interleaved) RoPE
    q_lora_rank: int = 64
    o_lora_rank: int = 32
    o_groups: int = 2             # grouped output projection; must divide n_heads
    window: int = 128             # sliding window = ring-cache rows per request
    # hyper-connections
    hc_mult: int = 4
    hc_sinkhorn_iters: int = 20
    hc_eps: float = 1e-6
    # MoE
    n_routed_experts: int = 8
    n_activated_experts: int = 2
    n_shared_experts: int = 1
    moe_inter_dim: int = 128
    route_scale: float = 1.5
    swiglu_limit: float = 10.0
    n_hash_layers: int = 3        # layers < n_hash_layers route by the tid2eid table
    # lightning indexer (CSA layers)
    index_n_heads: int = 4
    index_head_dim: int = 32
    index_topk: int = 16
    # RoPE: SWA layers use rope_theta without YaRN; compressed layers compress_rope_theta + YaRN
    rope_theta: float = 10000.0
    compress_rope_theta: float = 160000.0
    rope_factor: float = 16.0
    original_seq_len: int = 65536
    beta_fast: int = 32
    beta_slow: int = 1
    norm_eps: float = 1e-6
    # deployment sizes
    max_seq_len: int = 512        # positions per request held by caches and compressor states
    max_batch: int = 4
    # numerics
    dtype: torch.dtype = torch.float32   # activations / weights / caches; states are always fp32
    w8a8: bool = False            # simulate per-row int8 activations x per-channel int8 weights
    seed: int = 0

    def __post_init__(self) -> None:
        assert self.n_heads % self.o_groups == 0, "o_groups must divide n_heads"
        assert self.rope_dim % 2 == 0 and self.rope_dim <= min(self.head_dim, self.index_head_dim)
        assert self.index_head_dim & (self.index_head_dim - 1) == 0, "Hadamard needs a power of 2"
        for r in self.compress_ratios:
            assert r in (0, 4, 128), f"unsupported compress ratio {r}"
            if r:
                assert self.max_seq_len % r == 0, "max_seq_len must be a multiple of every ratio"

    @property
    def n_layers(self) -> int:
        return len(self.compress_ratios)

    def n_compressed(self, ratio: int) -> int:
        """Compressed-cache rows per request for one ratio."""
        return self.max_seq_len // ratio

    @property
    def index_width(self) -> int:
        """Static top-k width of the lightning indexer (padded with -1 when fewer are visible)."""
        return min(self.index_topk, self.n_compressed(4))

    def attn_width(self, ratio: int) -> int:
        """Static sparse-attention K width of one layer kind: window + compressed columns."""
        if ratio == 0:
            return self.window
        if ratio == 4:
            return self.window + self.index_width
        return self.window + self.n_compressed(128)


def _flash_ratios() -> tuple[int, ...]:
    # layer_id < 2 -> SWA, odd -> HCA, even -> CSA (43 layers; the 44th entry of the
    # published list, 0, is the MTP layer, which these scripts do not build).
    return tuple(0 if i < 2 else (128 if i % 2 == 1 else 4) for i in range(43))


FLASH = DeepSeekV4Config(
    vocab_size=129280,  # the V3 tokenizer size; the doc does not give V4's
    dim=4096, compress_ratios=_flash_ratios(), n_heads=64, head_dim=512, rope_dim=64,
    q_lora_rank=1024, o_lora_rank=1024, o_groups=8, window=128,
    n_routed_experts=256, n_activated_experts=6, n_shared_experts=1, moe_inter_dim=2048,
    index_n_heads=64, index_head_dim=128, index_topk=512,
    max_seq_len=8192, max_batch=64, dtype=torch.bfloat16, w8a8=True,
)

SMALL = DeepSeekV4Config()

# For tests: one layer of each kind (SWA with hash routing, CSA, HCA), narrow widths, window and
# ratios unchanged so that short sequences still cross ratio-128 windows and wrap the ring.
TINY = DeepSeekV4Config(
    vocab_size=128, dim=64, compress_ratios=(0, 4, 128), n_heads=2, head_dim=32, rope_dim=8,
    q_lora_rank=32, o_lora_rank=16, o_groups=2, n_routed_experts=4, n_activated_experts=2,
    moe_inter_dim=32, n_hash_layers=1, index_n_heads=2, index_head_dim=16, index_topk=8,
    max_seq_len=384, max_batch=2,
)
