"""`PTO_DEBUG_DIR=dir`: one readable folder per compiled graph with every stage, numbered in order."""
from __future__ import annotations

import os
from pathlib import Path


class DebugDump:
    """Writes stage files `NN_<stage>.<ext>` into `<debug_dir>/<graph_name>/`; a no-op without a dir."""

    def __init__(self, debug_dir: str | None, graph_name: str):
        self.dir = Path(debug_dir) / graph_name if debug_dir else None
        self.count = 0

    @property
    def enabled(self) -> bool:
        return self.dir is not None

    def write(self, stage: str, text: str, ext: str = "txt") -> None:
        if self.dir is None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{self.count:02d}_{stage}.{ext}"
        self.count += 1
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
