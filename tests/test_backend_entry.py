"""The backend is reachable by name, takes options/mode, and rejects bad ones clearly."""
import subprocess
import sys
import textwrap

import pytest
import torch

from pto_dynamo.options import PtoOptions, parse_options


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_entry_point_in_fresh_interpreter_without_import():
    out = _run("""
        import sys, torch
        x = torch.randn(3)
        y = torch.compile(lambda x: x.sin() + 1, backend="pto")(x)
        torch.testing.assert_close(y, x.sin() + 1)
        assert "pto_dynamo.backend" in sys.modules       # loaded through the entry point
        print("ok")
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_entry_point_after_import():
    out = _run("""
        import torch, pto_dynamo
        x = torch.randn(3)
        y = torch.compile(lambda x: x.sin() + 1, backend="pto", fullgraph=True)(x)
        torch.testing.assert_close(y, x.sin() + 1)
        assert pto_dynamo.stats()["graphs_received"] == 1
        print("ok")
    """)
    assert out.returncode == 0, out.stderr


def test_options_and_mode(fresh):
    x = torch.randn(4)
    f = torch.compile(lambda x: x.cos() * 2, backend="pto", options={"cse": False}, fullgraph=True)
    torch.testing.assert_close(f(x), x.cos() * 2)
    g = torch.compile(lambda x: x.cos() * 3, backend="pto", mode="host-only", fullgraph=True)
    torch.testing.assert_close(g(x), x.cos() * 3)
    assert fresh.stats()["graphs_received"] == 2


def test_unknown_option_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown option\(s\) 'bogus'.*valid options: target, core_num"):
        parse_options({"bogus": 1})


def test_unknown_mode_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown mode 'turbo'; valid modes: default, host-only"):
        parse_options(None, "turbo")


def test_unknown_option_through_torch_compile(fresh):
    f = torch.compile(lambda x: x + 1, backend="pto", options={"nope": True})
    with pytest.raises(Exception, match="unknown option"):
        f(torch.randn(2))


def test_options_are_frozen_and_validated():
    o = PtoOptions()
    with pytest.raises(Exception):
        o.cse = False
    with pytest.raises(ValueError, match="unknown target"):
        PtoOptions(target="gpu")
    assert "debug_dir" not in o.cache_key() and "cse=True" in o.cache_key()
