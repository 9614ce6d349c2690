"""Element types of tiles and global tensors, and how each maps to torch.

The C++ spelling of a type belongs to the renderers, not here.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ElemType:
    """An element type: short name (`f32`), size in bytes, torch dtype, and whether it is a float."""

    name: str
    itemsize: int
    torch_dtype: torch.dtype
    is_float: bool

    def __str__(self) -> str:
        return self.name


F32 = ElemType("f32", 4, torch.float32, True)
F16 = ElemType("f16", 2, torch.float16, True)
BF16 = ElemType("bf16", 2, torch.bfloat16, True)
I8 = ElemType("i8", 1, torch.int8, False)
U8 = ElemType("u8", 1, torch.uint8, False)
I16 = ElemType("i16", 2, torch.int16, False)
I32 = ElemType("i32", 4, torch.int32, False)
I64 = ElemType("i64", 8, torch.int64, False)

ALL_TYPES = (F32, F16, BF16, I8, U8, I16, I32, I64)
_BY_TORCH = {t.torch_dtype: t for t in ALL_TYPES}
_BY_NAME = {t.name: t for t in ALL_TYPES}


def elem_type(value: "ElemType | torch.dtype | str") -> ElemType:
    """The ElemType of a torch dtype, a short name (`"bf16"`) or an ElemType."""
    if isinstance(value, ElemType):
        return value
    if isinstance(value, torch.dtype):
        if value == torch.bool:
            return U8
        if value in _BY_TORCH:
            return _BY_TORCH[value]
    elif isinstance(value, str) and value in _BY_NAME:
        return _BY_NAME[value]
    raise TypeError(f"tile IR: unsupported element type {value!r}; supported: "
                    f"{', '.join(t.name for t in ALL_TYPES)}")


def compute_dtype(t: ElemType) -> torch.dtype:
    """The dtype arithmetic is done in: fp32 for every float type (fp16/bf16 are storage types)."""
    return torch.float32 if t.is_float else t.torch_dtype
