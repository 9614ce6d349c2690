"""On-disk cache entries, one directory per dynamic-shape signature.

    <cache_root>/graphs/<signature>/
        meta.json              format version, pto source hash, torch version, signature,
                               and the sha256 of every other file
        graph.txt              graph IR after the passes
        partition.txt          placement of every node
        host_program.py        the generated host program
        kernels/*.cpp, *.so    kernel sources and built libraries (device regions)

An entry is written into a private temporary directory beside its final place and renamed into
place in one step, so readers see either no entry or a complete one; when two processes race,
the first rename wins and the loser discards its copy. An entry whose meta is missing, unreadable,
of another format or source version, or whose files do not match their recorded hashes (truncated,
flipped bytes) is moved aside and rebuilt, never loaded.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

from pto_dynamo.cache_dir import cache_root, check_private_dir

ENTRY_FORMAT = 1
META = "meta.json"


@dataclass(frozen=True)
class CacheEntry:
    """A verified entry: its directory, its metadata and the text/bytes of its files."""

    path: Path
    meta: dict
    files: dict[str, bytes]

    def text(self, name: str) -> str:
        return self.files[name].decode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def graphs_dir() -> Path:
    path = cache_root() / "graphs"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _expected_header(signature: str, source_hash: str) -> dict:
    return {"format": ENTRY_FORMAT, "signature": signature, "pto_source_hash": source_hash,
            "torch": torch.__version__}


def load_entry(signature: str, source_hash: str) -> CacheEntry | None:
    """The verified entry for `signature`, or None (absent, or invalid and moved aside)."""
    path = graphs_dir() / signature
    if not path.exists():
        return None
    try:
        check_private_dir(path)
        meta = json.loads((path / META).read_text())
        for key, value in _expected_header(signature, source_hash).items():
            if meta.get(key) != value:
                raise ValueError(f"{key} is {meta.get(key)!r}, expected {value!r}")
        files = {}
        for name, digest in meta["files"].items():
            data = (path / name).read_bytes()
            if _sha256(data) != digest:
                raise ValueError(f"{name} does not match its recorded hash")
            files[name] = data
        return CacheEntry(path, meta, files)
    except Exception as err:                               # noqa: BLE001 - any defect means rebuild
        _discard(path, reason=str(err))
        return None


def _discard(path: Path, reason: str) -> None:
    """Move a bad entry aside (atomically, so a concurrent reader never sees half of it), then delete."""
    aside = path.with_name(f".bad-{path.name}-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, aside)
    except OSError:
        return                                             # someone else already moved it
    (aside / "DISCARDED").write_text(reason)
    shutil.rmtree(aside, ignore_errors=True)


def store_entry(signature: str, source_hash: str, files: dict[str, bytes], extra_meta: dict) -> Path:
    """Write an entry atomically; returns its final directory (ours, or the racing winner's)."""
    root = graphs_dir()
    final = root / signature
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{signature[:16]}-", dir=root))     # mode 0700
    try:
        for name, data in files.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        meta = dict(_expected_header(signature, source_hash), **extra_meta,
                    files={name: _sha256(data) for name, data in files.items()})
        (tmp / META).write_text(json.dumps(meta, indent=1, sort_keys=True))
        _fsync_dir(tmp)
        os.rename(tmp, final)                              # atomic; fails if final exists
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.exists():
            raise
    return final


def _fsync_dir(path: Path) -> None:
    for p in path.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
