"""On-disk cache: warm start in a second process, corrupt entries rebuilt, concurrent writers,
unsafe directories refused."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from pto_dynamo.cache_dir import CacheDirError, cache_root
from pto_dynamo.disk_cache import ENTRY_FORMAT

SCRIPT = textwrap.dedent("""
    import json, torch, pto_dynamo
    def norm(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w
    compiled = torch.compile(norm, backend="pto", fullgraph=True)
    x, w = torch.randn(7, 64), torch.randn(64)
    pto_dynamo.mark_dynamic(x, 0, name="T")
    torch.testing.assert_close(compiled(x, w), norm(x, w))
    print("STATS" + json.dumps(pto_dynamo.stats()))
""")


def _run_process(cache: Path) -> dict:
    env = dict(os.environ, PTO_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    line = [l for l in out.stdout.splitlines() if l.startswith("STATS")][-1]
    return json.loads(line[len("STATS"):])


def _entries(cache: Path) -> list[Path]:
    return [p for p in (cache / "graphs").iterdir() if not p.name.startswith(".")]


@pytest.fixture
def cache(tmp_path, _session_native_dir) -> Path:
    """A private cache folder whose graph entries start empty; its native/ folder (the
    content-addressed libraries and the PCH) is the session's, as for every test (conftest.py), so
    each process here does not precompile the headers again."""
    path = tmp_path / "cache"
    path.mkdir(mode=0o700)
    (path / "native").symlink_to(_session_native_dir, target_is_directory=True)
    return path


@pytest.mark.slow
def test_second_process_compiles_nothing(cache):
    cold = _run_process(cache)
    assert cold["signatures_compiled"] == 1 and cold["disk_hits"] == 0
    warm = _run_process(cache)
    assert warm["disk_hits"] >= 1 and warm["signatures_compiled"] == 0 and warm["native_builds"] == 0, warm
    (entry,) = _entries(cache)
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["format"] == ENTRY_FORMAT and {"graph.txt", "partition.txt", "host_program.py"} <= set(meta["files"])
    assert oct(entry.stat().st_mode & 0o777) == "0o700"


def _corrupt_truncate(entry: Path):
    p = entry / "host_program.py"
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])


def _corrupt_flip(entry: Path):
    p = entry / "host_program.py"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x20
    p.write_bytes(bytes(data))


def _corrupt_version(entry: Path):
    meta = json.loads((entry / "meta.json").read_text())
    meta["format"] = ENTRY_FORMAT + 99
    (entry / "meta.json").write_text(json.dumps(meta))


def _corrupt_meta(entry: Path):
    (entry / "meta.json").write_text("{not json")


def _norm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w


def _compile_in_process(fresh) -> dict:
    from pto_dynamo.cache import MEMORY_CACHE
    torch._dynamo.reset()
    MEMORY_CACHE.clear()
    fresh.reset_stats()
    x, w = torch.randn(7, 64), torch.randn(64)
    fresh.mark_dynamic(x, 0, name="T")
    torch.testing.assert_close(torch.compile(_norm, backend="pto", fullgraph=True)(x, w), _norm(x, w))
    return fresh.stats()


@pytest.mark.parametrize("corrupt", [_corrupt_truncate, _corrupt_flip, _corrupt_version, _corrupt_meta])
def test_corrupt_entry_is_rebuilt_not_loaded(cache, corrupt, monkeypatch, fresh):
    monkeypatch.setenv("PTO_CACHE_DIR", str(cache))
    assert _compile_in_process(fresh)["signatures_compiled"] == 1
    assert _compile_in_process(fresh)["disk_hits"] == 1              # the entry is used when intact
    (entry,) = _entries(cache)
    corrupt(entry)
    again = _compile_in_process(fresh)
    assert again["disk_hits"] == 0 and again["signatures_compiled"] == 1, again
    (rebuilt,) = _entries(cache)                                      # rebuilt, valid again
    assert _compile_in_process(fresh)["disk_hits"] == 1


@pytest.mark.slow
def test_two_concurrent_processes_share_one_valid_entry(cache):
    env = dict(os.environ, PTO_CACHE_DIR=str(cache))
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    assert len(_entries(cache)) == 1
    assert not [p for p in (cache / "graphs").iterdir() if p.name.startswith(".tmp")]
    warm = _run_process(cache)
    assert warm["disk_hits"] >= 1 and warm["signatures_compiled"] == 0


def test_cache_dir_writable_by_others_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "shared"
    bad.mkdir()
    bad.chmod(0o777)
    monkeypatch.setenv("PTO_CACHE_DIR", str(bad))
    with pytest.raises(CacheDirError, match=r"writable by group or others \(mode 777\).*chmod 700"):
        cache_root()


def test_cache_dir_refusal_reaches_torch_compile(tmp_path, monkeypatch, fresh):
    bad = tmp_path / "shared"
    bad.mkdir()
    bad.chmod(0o775)
    monkeypatch.setenv("PTO_CACHE_DIR", str(bad))
    with pytest.raises(Exception, match="writable by group or others"):
        torch.compile(lambda x: x * 2, backend="pto", fullgraph=True)(torch.randn(3))


def test_missing_cache_dir_is_created_private(tmp_path, monkeypatch):
    target = tmp_path / "a" / "b"
    monkeypatch.setenv("PTO_CACHE_DIR", str(target))
    assert cache_root() == target
    assert oct(target.stat().st_mode & 0o777) == "0o700"
