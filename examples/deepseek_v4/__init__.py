"""DeepSeek-V4 decode and prefill in plain PyTorch (random weights), for `torch.compile(backend="pto")`."""
from .config import FLASH, SMALL, TINY, DeepSeekV4Config
from .model import Block, DeepSeekV4, make_caches, param_count
from .steps import Session, build_meta

__all__ = ["DeepSeekV4Config", "FLASH", "SMALL", "TINY", "DeepSeekV4", "Block", "make_caches",
           "param_count", "Session", "build_meta"]
