"""bench/gui_stall.py runs through napari's plugin path and every action stays responsive.

Only a loose bound is asserted here (several seconds: a regression of the kind that froze the
annotator for minutes); the benchmark reports the numbers against the 100 ms target.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOOSE_BOUND_MS = 8000.0


@pytest.mark.gui
@pytest.mark.slow
def test_gui_stall_bench_measures_every_action(tmp_path):
    out = tmp_path / "stall.json"
    cmd = [sys.executable, str(ROOT / "bench" / "gui_stall.py"), "--samples", "abdomen-phantom",
           "--prompts", "mask-ring", "--gallery-slices", "40", "--json", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = report["results"]["abdomen-phantom"]
    assert list(rows) == [
        "open sample",
        "open annotator",
        "predict",
        "commit range",
        "gallery",
        "drag",
        "undo",
        "save",
    ]
    for action, row in rows.items():
        assert 0 < row["stall_ms"] < LOOSE_BOUND_MS, (action, row)
    assert "| predict |" in done.stdout and "Target 100 ms" in done.stdout
    big = report["gallery_large"]
    assert big["slices"] >= 20 and 0 < big["stall_ms"] < LOOSE_BOUND_MS
