"""bench/adapt.py: refuses test structures, and a short real run writes a complete report whose
docs section replaces itself in place."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "adapt.py"


def run_script(tmp_path, *args):
    cmd = [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--no-docs", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)


def load_bench():
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("bench_adapt", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_test_structure_is_refused_before_any_work(tmp_path):
    done = run_script(tmp_path, "--structures", "Primary_Motor_Cortex_L,Caudate_L")
    assert done.returncode != 0
    assert "'Caudate_L' is a test structure" in done.stderr
    assert not (tmp_path / "adapt.json").exists()


def test_the_docs_section_is_appended_once_then_replaced(tmp_path):
    bench = load_bench()
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\n## Earlier\n\ntext\n")
    bench.write_last_section(docs, f"{bench.TITLE}\n\nfirst\n")
    bench.write_last_section(docs, f"{bench.TITLE}\n\nsecond\n")
    text = docs.read_text()
    assert text.count(bench.TITLE) == 1 and "second" in text and "first" not in text
    assert text.startswith("# Benchmarks\n\n## Earlier\n\ntext\n")


@pytest.mark.slow
def test_a_short_run_writes_every_budget_and_method(tmp_path):
    done = run_script(tmp_path, "--budgets", "0,2", "--structures", "Area_TG_dorsal_L",
                      "--stride", "12")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "adapt.json").read_text())
    entry = report["structures"]["Area_TG_dorsal_L"]
    assert set(entry["budgets"]) == {"0", "2"} and entry["budgets"]["0"]["steps"] == 0
    for budget in entry["budgets"].values():
        for method in ("fob", "fob-paper"):
            assert 0.0 <= budget[method]["all"]["dice"] <= 1.0
    assert set(report["summary"]) == {"0", "2"}
    assert report["summary"]["0"]["fob_far_dice_gain"] == 0.0
    assert "| 2 |" in load_bench().docs_section(report)
