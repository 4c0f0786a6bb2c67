"""bench/confidence.py: the automatic-extent walk it simulates, the threshold chosen on the tune
split only, and a --quick run on real anatomy writing valid JSON."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location("confidence", ROOT / "bench" / "confidence.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "bench"))
    spec.loader.exec_module(module)
    return module


def test_walk_stops_at_the_first_slice_below_the_threshold():
    conf = _module()
    evidence = {8: 0.1, 9: 0.9, 11: 0.8, 12: 0.7, 13: 0.2, 14: 0.9}
    assert conf.extent_end(evidence, 10, +1, 0.5) == 12  # 13 is below: 14 is never reached
    assert conf.extent_end(evidence, 10, -1, 0.5) == 9
    assert conf.extent_end(evidence, 10, +1, 0.1) == 14  # the last slice prompted
    unit = {"evidence": {str(k): v for k, v in evidence.items()}, "support": 10}
    assert conf.unit_errors({**unit, "first": 9, "last": 12}, 0.5) == (0, 0)
    assert conf.unit_errors({**unit, "first": 7, "last": 12}, 0.5) == (2, 0)
    assert conf.spearman([1, 2, 3, 4], [2, 4, 6, 9]) == pytest.approx(1.0)
    assert conf.spearman([1, 1, 1], [1, 2, 3]) is None


def test_threshold_is_chosen_on_the_tune_split_and_test_is_only_scored():
    conf = _module()
    base = {"method": "fob", "plane": "axial", "support": 10, "pairs": [(0.9, 0.8)] * 3}
    ev = {9: 0.9, 11: 0.9, 12: 0.35, 13: 0.25}  # 0.2 would walk on to 13
    tune = {**base, "split": "tune", "structure": "a", "first": 9, "last": 12, "evidence": ev}
    # on test the structure ends at 11: a threshold of 0.4 would fit it, 0.3 fits tune
    test = {**base, "split": "test", "structure": "b", "first": 9, "last": 11, "evidence": ev}
    summary = conf.summarise([tune, test])["fob"]
    assert summary["threshold"] == 0.3
    assert summary["tune"]["extent_error_mean"] == 0.0
    assert summary["test"]["extent_error_mean"] == 0.5
    assert summary["test"]["within_2_both_ends"] == 1.0


@pytest.mark.slow
def test_quick_run_writes_valid_json(tmp_path):
    cmd = [sys.executable, str(ROOT / "bench" / "confidence.py"), "--quick", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "confidence_quick.json").read_text())
    summary = report["summary"]
    assert set(summary) == {"thresholds", "fob", "registration", "mask-ring"}
    for method in ("fob", "registration", "mask-ring"):
        assert summary[method]["threshold"] in conf_thresholds()
        for split in ("test", "tune"):
            entry = summary[method][split]
            assert entry["n_units"] == 1 and entry["n_slices"] >= 3
            assert -1.0 <= entry["spearman_pooled"] <= 1.0
    assert {u["split"] for u in report["units"]} == {"test", "tune"}


def conf_thresholds():
    return set(_module().THRESHOLDS)
