"""The one options object of the backend.

`torch.compile(model, backend="pto", options={...})` and `mode="..."` both end up here. Every field
that changes generated code is part of the cache key (`PtoOptions.cache_key`).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from typing import Any, Mapping

TARGETS = ("cpu",)


@dataclass(frozen=True)
class PtoOptions:
    """Options of one compilation.

    target:      code-generation target ("cpu": the embedded CPU implementation of PTO).
    core_num:    SPMD blocks per kernel launch; None = the target's default.
    host_only:   keep every op on the host (eager ATen), for debugging and baselines.
    cse:         run common-subexpression elimination on the ATen graph.
    reinplace:   turn functionalised input mutations (`copy_(x, index_copy(x, ...))`) back into
                 in-place updates so a mutated cache is never copied whole.
    verify:      run the graph verifier after every pass (tests turn it on).
    debug_dir:   dump every stage of every graph there; default: $PTO_DEBUG_DIR.
    """

    target: str = "cpu"
    core_num: int | None = None
    host_only: bool = False
    cse: bool = True
    reinplace: bool = True
    verify: bool = False
    debug_dir: str | None = None

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"pto: unknown target {self.target!r}; valid targets: {', '.join(TARGETS)}")
        if self.core_num is not None and (not isinstance(self.core_num, int) or self.core_num < 1):
            raise ValueError(f"pto: core_num must be a positive int or None, got {self.core_num!r}")

    def resolved_debug_dir(self) -> str | None:
        """The debug dump directory: the option, else $PTO_DEBUG_DIR, else None."""
        return self.debug_dir or os.environ.get("PTO_DEBUG_DIR") or None

    def cache_key(self) -> str:
        """The fields that change generated code, as stable text (debug_dir and verify do not)."""
        items = [(f.name, getattr(self, f.name)) for f in fields(self) if f.name not in ("debug_dir", "verify")]
        return ";".join(f"{k}={v!r}" for k, v in items)


# `mode=` presets: torch.compile(model, backend="pto", mode="host-only").
MODES: dict[str, dict[str, Any]] = {
    "default": {},
    "host-only": {"host_only": True},
}


def parse_options(options: Mapping[str, Any] | PtoOptions | None = None, mode: str | None = None) -> PtoOptions:
    """Build the options from torch.compile's `options=` dict or `mode=` string (not both).

    Unknown keys and unknown modes raise a ValueError listing the valid ones.
    """
    if isinstance(options, PtoOptions):
        return options
    values: dict[str, Any] = {}
    if mode is not None:
        if mode not in MODES:
            raise ValueError(f"pto: unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
        values.update(MODES[mode])
    if options:
        valid = [f.name for f in fields(PtoOptions)]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ValueError(f"pto: unknown option(s) {', '.join(map(repr, unknown))}; valid options: {', '.join(valid)}")
        values.update(options)
    return dataclasses.replace(PtoOptions(), **values)
