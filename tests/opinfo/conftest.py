"""The OpInfo conformance suite's report: per (op, dtype) sample counts and where each sample ran.

Every (op, dtype) test records one row through the `opinfo_report` fixture. At the end of the
session the rows are written as JSON to `$PTO_OPINFO_REPORT` (default `build/opinfo_report.json`
in the repository root; `build/` is gitignored) and a compact table is printed in the terminal
summary. A sample "ran on the device" when every graph compiled for it has 0 host nodes
(`pto_dynamo.stats()["host_nodes"]`); otherwise it ran (at least partly) on the host.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REPORT = ROOT / "build" / "opinfo_report.json"


@dataclass
class OpRow:
    """One (op, dtype): what the suite did with its OpInfo samples."""

    op: str                       # op_db name, with ".variant" when the OpInfo has a variant
    dtype: str                    # "float32" / "bfloat16"
    samples: int = 0              # samples op_db yields for this op and dtype
    selected: int = 0             # samples this run tried (all unless a subset was asked for)
    passed: int = 0
    on_device: int = 0            # passed samples whose every compiled graph has 0 host nodes
    on_host: int = 0              # passed samples with at least one host node
    skipped: int = 0              # samples listed in the skip table (or the whole op / dtype)
    xfailed: int = 0              # samples listed as known pto_dynamo bugs (docs/notes_opinfo.md)
    failed: int = 0
    fp32_reference: int = 0       # bf16 samples that matched only eager-in-fp32-cast-back
    seconds: float = 0.0
    skip_reasons: list[str] = field(default_factory=list)


class OpinfoReport:
    """The rows of this session, in the order the tests ran."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], OpRow] = {}
        self.started = time.monotonic()

    def row(self, op: str, dtype: str) -> OpRow:
        key = (op, dtype)
        if key not in self.rows:
            self.rows[key] = OpRow(op, dtype)
        return self.rows[key]

    def totals(self) -> dict[str, int]:
        names = ("samples", "selected", "passed", "on_device", "on_host", "skipped", "xfailed",
                 "failed", "fp32_reference")
        return {n: sum(getattr(r, n) for r in self.rows.values()) for n in names}

    def to_json(self) -> dict:
        return {
            "backend": "pto",
            "torch": torch.__version__,
            "python": platform.python_version(),
            "subset": (None if os.environ.get("PTO_OPINFO_FULL") == "1"
                       else os.environ.get("PTO_OPINFO_MAX_SAMPLES", "3")),   # samples per (op, dtype)
            "wall_seconds": round(time.monotonic() - self.started, 1),
            "totals": self.totals(),
            "ops": [dict(asdict(r), seconds=round(r.seconds, 2)) for r in self.rows.values()],
        }


_REPORT = OpinfoReport()


@pytest.fixture(scope="session")
def opinfo_report() -> OpinfoReport:
    return _REPORT


def report_path() -> Path:
    return Path(os.environ.get("PTO_OPINFO_REPORT") or DEFAULT_REPORT)


def _cell(r: OpRow | None) -> str:
    """`pass/n dev host skip` of one (op, dtype), 24 columns; "!k" marks k failed samples."""
    if r is None:
        return f"{'-':>9}{'':15}"
    if r.selected == 0:
        return f"{'skipped':>9}{'':15}"
    passed = f"{r.passed}/{r.selected}" + (f"!{r.failed}" if r.failed else "")
    return f"{passed:>9} {r.on_device:>4} {r.on_host:>4} {r.skipped + r.xfailed:>4}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _REPORT.rows:
        return
    path = report_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_REPORT.to_json(), indent=1) + "\n")
        where = str(path)
    except OSError as e:                       # a read-only checkout must not fail the session
        where = f"not written ({e})"
    t = _REPORT.totals()
    tr = terminalreporter
    tr.section("OpInfo conformance (backend='pto')")
    dev_pct = 100.0 * t["on_device"] / t["passed"] if t["passed"] else 0.0
    tr.write_line(
        f"{t['selected']} samples tried of {t['samples']}: {t['passed']} passed, {t['failed']} failed, "
        f"{t['skipped']} skipped, {t['xfailed']} xfailed; on device {t['on_device']} ({dev_pct:.1f}%), "
        f"on host {t['on_host']}; bf16 matched only the fp32 reference: {t['fp32_reference']}")
    tr.write_line(f"report: {where}")
    ops = list(dict.fromkeys(op for op, _ in _REPORT.rows))
    head = f"{'pass/n':>9} {'dev':>4} {'host':>4} {'skip':>4}"
    tr.write_line(f"{'op':<34} {'float32':^24}   {'bfloat16':^24}")
    tr.write_line(f"{'':<34} {head}   {head}")
    for op in ops:
        tr.write_line(f"{op:<34} {_cell(_REPORT.rows.get((op, 'float32')))}   "
                      f"{_cell(_REPORT.rows.get((op, 'bfloat16')))}")
