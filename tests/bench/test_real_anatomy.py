"""Smoke test of bench/real_anatomy.py --quick: valid JSON, both splits, every method and
metric, and the oracle above the support's ring on the far slices."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
METHODS = [
    "fob",
    "fob-support-prior",
    "fob-paper",
    "fob-chain",
    "mask-ring",
    "mask-ring-chain-own",
    "copy",
    "registration",
    "oracle",
]
KEYS = {"dice", "ring_error", "bg_inside", "fg_outside", "ring_coverage", "n_slices"}

def _module(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "bench"))
    spec.loader.exec_module(module)
    return module


def test_scored_slices_and_the_section_goes_first(tmp_path):
    ra = _module("real_anatomy")
    assert ra.evaluated([z for z in range(30) if z != 10], 10, 6) == [4, 8, 9, 11, 12, 16, 22, 28]
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nintro\n\n## Segmenters\n\nx\n")
    ra.write_first_section(docs, "Real anatomy", "table")
    ra.write_first_section(docs, "Real anatomy", "new table")
    text = docs.read_text()
    assert text.index("## Real anatomy") < text.index("## Segmenters")
    assert "new table" in text and text.count("## Real anatomy") == 1 and "intro" in text
    run_all = _module("run_all")
    assert run_all.OWN_SECTIONS["real_anatomy"] == "Real anatomy"


@pytest.mark.slow
def test_real_anatomy_quick_writes_valid_json(tmp_path):
    script = ROOT / "bench" / "real_anatomy.py"
    cmd = [sys.executable, str(script), "--quick", "--stride", "6", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "real_anatomy_quick.json").read_text())
    assert report["settings"]["segmenter"]["kind"] == "random-walker"
    for split in ("test", "tune"):
        assert list(report[split]) == METHODS
        for method, entry in report[split].items():
            assert KEYS <= set(entry), (split, method)
            assert entry["n_slices"] > 0 and entry["n_structures"] == 1
            assert set(entry["by_dz"]) == {"1-2", "3-4", "5-9", "10+", ">=5"}
            assert set(entry["by_plane"]) == {"axial"}
            assert entry["per_structure"][0]["plane"] == "axial"
            for key in KEYS - {"n_slices"}:
                assert entry[key] is None or math.isfinite(entry[key])
        oracle, ring = report[split]["oracle"], report[split]["mask-ring"]
        assert oracle["ring_error"] == 0.0 and oracle["bg_inside"] == 0.0
        assert oracle["dice"] > ring["dice"]
    out = done.stdout
    assert out.index("**test split") < out.index("**tune split")


def test_the_figure_is_drawn_from_the_committed_report(tmp_path):
    plot = _module("_ra_plot").plot
    report = json.loads((ROOT / "bench" / "results" / "real_anatomy.json").read_text())
    path = plot(report, tmp_path / "ra.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
