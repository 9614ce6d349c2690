"""Host side: build step metadata from Python-side sequence lengths and run decode / prefill steps.

Everything here runs outside the traced graph; the model only sees tensors. A step is a list of
`(request slot, first position, token count)` runs laid out token-major and back to back.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .config import DeepSeekV4Config
from .model import DeepSeekV4, LayerCache, Meta, make_caches


def build_meta(cfg: DeepSeekV4Config, runs: Sequence[tuple[int, int, int]]) -> Meta:
    """Metadata tensors `[T]` (int64) for a step made of `runs = [(req, start_pos, n_tokens), ...]`.

    * `positions`, `req_idx`, `tok_in_req` (index of the token within its run, for the overlay);
    * `state_slot`: compressor-state row `req*max_seq + pos`;
    * `swa_slot`: ring row `req*window + pos%window`, -1 when a later token of the same run
      overwrites that slot in this step (last writer wins, without duplicate scatter indices);
    * `cmp_slot_<r>` per ratio: compressed row `req*max_seq/r + pos//r` on window-end tokens, else -1.
    """
    cols: dict[str, list[int]] = {k: [] for k in ("positions", "req_idx", "tok_in_req", "state_slot", "swa_slot")}
    ratios = sorted({r for r in cfg.compress_ratios if r})
    for r in ratios:
        cols[f"cmp_slot_{r}"] = []
    for req, start, n in runs:
        assert 0 <= req < cfg.max_batch and start + n <= cfg.max_seq_len, (req, start, n)
        for i in range(n):
            pos = start + i
            cols["positions"].append(pos)
            cols["req_idx"].append(req)
            cols["tok_in_req"].append(i)
            cols["state_slot"].append(req * cfg.max_seq_len + pos)
            cols["swa_slot"].append(req * cfg.window + pos % cfg.window if i + cfg.window >= n else -1)
            for r in ratios:
                end = (pos + 1) % r == 0
                cols[f"cmp_slot_{r}"].append(req * (cfg.max_seq_len // r) + pos // r if end else -1)
    return {k: torch.tensor(v, dtype=torch.int64) for k, v in cols.items()}


class Session:
    """Caches for `batch` request slots plus their sequence lengths.

    `forward` is the callable run per step; swap in `torch.compile(model, ...)` to compile it.
    With `record=True` every step also passes a fresh `selections` dict to `forward` and keeps it
    in `last_selections` (the top-k expert and indexer choices, see `DeepSeekV4.forward`).
    """

    def __init__(self, model: DeepSeekV4, batch: int | None = None,
                 forward: Callable[..., torch.Tensor] | None = None, record: bool = False) -> None:
        cfg = model.cfg
        self.cfg = cfg
        self.batch = cfg.max_batch if batch is None else batch
        self.caches: list[LayerCache] = make_caches(cfg, self.batch)
        self.seq_lens = [0] * self.batch
        self.forward = model if forward is None else forward
        self.record = record
        self.last_selections: dict[str, torch.Tensor] = {}

    def run(self, runs: Sequence[tuple[int, int, int]], input_ids: torch.Tensor) -> torch.Tensor:
        """One step over `runs` (see `build_meta`); `input_ids [T]` token-major. Advances seq_lens."""
        for req, start, _ in runs:
            assert start == self.seq_lens[req], "runs must continue each request where it stopped"
        meta = build_meta(self.cfg, runs)
        # contiguous: a strided view (e.g. one column of [B, L] prompts) would trip a stride guard
        args = (input_ids.reshape(-1).contiguous(), meta, self.caches)
        if self.record:
            self.last_selections = {}
            logits = self.forward(*args, self.last_selections)
        else:
            logits = self.forward(*args)
        for req, start, n in runs:
            self.seq_lens[req] = start + n
        return logits

    def prefill(self, req: int, input_ids: torch.Tensor) -> torch.Tensor:
        """Append a chunk of any length to request `req`; returns logits `[len, vocab]`."""
        return self.run([(req, self.seq_lens[req], input_ids.numel())], input_ids.reshape(-1))

    def decode_step(self, input_ids: torch.Tensor) -> torch.Tensor:
        """`input_ids [B, S]` (S = 1, or 2 as MTP verifies) for request slots 0..B-1 -> `[B*S, vocab]`."""
        b, s = input_ids.shape
        return self.run([(r, self.seq_lens[r], s) for r in range(b)], input_ids.reshape(-1))
