"""nn.TransformerEncoderLayer's inference fast path as the ops it is made of.

In eval mode without autograd, `nn.TransformerEncoderLayer` calls one fused ATen op,
`_transformer_encoder_layer_fwd`, which no decomposition covers: the whole layer ran as one host
op. Without a mask it is (ATen's transformer_encoder_layer_forward, `norm_first` as the layer's):

    h = x if not norm_first else layer_norm(x, norm1)
    h = out_proj(sdpa(split_heads(linear(h, qkv_weight, qkv_bias))))          (the packed in-proj)
    x = layer_norm(x + h, norm1) if not norm_first else x + h
    h = x if not norm_first else layer_norm(x, norm2)
    h = linear(act(linear(h, ffn_weight_1, ffn_bias_1)), ffn_weight_2, ffn_bias_2)   (act: gelu or relu)
    x = layer_norm(x + h, norm2) if not norm_first else x + h

so the device takes the norms, the matmuls and the attention. With a mask (a padding mask, a
source mask or both merged), the op stays whole on the host: its mask types and their conventions
are the native kernel's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

aten = torch.ops.aten


def _encoder_layer(src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias, use_gelu, norm_first,
                   eps, norm_weight_1, norm_bias_1, norm_weight_2, norm_bias_2, ffn_weight_1, ffn_bias_1,
                   ffn_weight_2, ffn_bias_2, mask=None, mask_type=None):
    if mask is not None or src.dim() != 3:
        return NotImplemented

    def norm(x, w, b):
        return F.layer_norm(x, (embed_dim,), w, b, eps)

    def attention(x):
        B, L, _ = x.shape
        q, k, v = F.linear(x, qkv_weight, qkv_bias).view(B, L, 3, num_heads, embed_dim // num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return F.linear(out.transpose(1, 2).reshape(B, L, embed_dim), proj_weight, proj_bias)

    def feed_forward(x):
        h = F.linear(x, ffn_weight_1, ffn_bias_1)
        return F.linear(F.gelu(h) if use_gelu else F.relu(h), ffn_weight_2, ffn_bias_2)

    x = src
    if norm_first:
        x = x + attention(norm(x, norm_weight_1, norm_bias_1))
        return x + feed_forward(norm(x, norm_weight_2, norm_bias_2))
    x = norm(x + attention(x), norm_weight_1, norm_bias_1)
    return norm(x + feed_forward(x), norm_weight_2, norm_bias_2)


DECOMPOSITIONS = {aten._transformer_encoder_layer_fwd.default: _encoder_layer}
