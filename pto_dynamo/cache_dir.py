"""The private cache directory: $PTO_CACHE_DIR, else a per-user directory.

A shared library is only ever loaded from a directory owned by the current user and not writable by
others; `cache_root()` creates the directory with mode 0700 and refuses one that fails that test.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path


class CacheDirError(RuntimeError):
    """The cache directory is unsafe or unusable."""


def default_cache_root() -> Path:
    """$XDG_CACHE_HOME/pto_dynamo (or ~/.cache/pto_dynamo)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pto_dynamo"


def check_private_dir(path: Path) -> None:
    """Raise CacheDirError unless `path` is a directory owned by us and not writable by others."""
    st = path.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise CacheDirError(f"pto cache: {path} is not a directory; set PTO_CACHE_DIR to a private directory")
    if st.st_uid != os.getuid():
        raise CacheDirError(
            f"pto cache: {path} is owned by uid {st.st_uid}, not by you (uid {os.getuid()}); shared libraries are "
            f"only loaded from your own directory. Set PTO_CACHE_DIR to a directory you own (mode 0700).")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheDirError(
            f"pto cache: {path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o}); shared libraries "
            f"are only loaded from a private directory. Run `chmod 700 {path}` or set PTO_CACHE_DIR elsewhere.")


def cache_root() -> Path:
    """The cache directory, created with mode 0700 if missing, checked to be private."""
    path = Path(os.environ.get("PTO_CACHE_DIR") or default_cache_root())
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_private_dir(path)
    return path
