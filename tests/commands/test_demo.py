"""``fob demo`` end to end on both samples: with the shipped FoB model, and without it."""

from __future__ import annotations

import json

import pytest

from napari_fob.cli import main
from napari_fob.commands import demo


def _run(tmp_path, capsys) -> tuple[str, dict]:
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    for name in ("mni-brain", "abdomen-phantom", "liver", "lateral ventricles", "timings"):
        assert name in out
    assert "random-walker fallback" in out  # no SAM checkpoint here, and the demo says so
    for name in ("mni-brain", "abdomen-phantom"):
        assert (tmp_path / name / "result" / "labels.nii.gz").exists()
    return out, json.loads((tmp_path / "demo.json").read_text())


@pytest.mark.slow
@pytest.mark.usefixtures("without_shipped_model")
def test_demo_without_a_shipped_model_says_it_uses_the_baseline(tmp_path, capsys):
    assert not demo.shipped_fob().exists()
    out, summary = _run(tmp_path, capsys)
    assert "FoB weights: none" in out and "NOT FoB predictions" in out
    assert "prompts used for the masks: mask-ring" in out
    assert summary["prompts"] == "mask-ring" and summary["fob_weights"] is None
    assert summary["segmenter"]["kind"] == "random-walker"
    phantom = summary["samples"]["abdomen-phantom"]["structures"]
    assert set(phantom) == {"1", "2", "3", "4"}
    for s in phantom.values():
        assert list(s["prompts"]) == ["mask-ring"]  # no FoB numbers without FoB weights
        assert list(s["dice"]) == ["mask-ring"] and s["dice"]["mask-ring"] > 0.5
        assert s["prompts"]["mask-ring"]["all"]["n"] > s["prompts"]["mask-ring"]["dz>=5"]["n"] > 0


@pytest.mark.slow
def test_demo_with_the_shipped_model_compares_fob_with_the_baseline(tmp_path, capsys):
    assert demo.shipped_fob().exists()
    out, summary = _run(tmp_path, capsys)
    assert f"FoB weights: {demo.shipped_fob()}" in out
    assert "prompts used for the masks: fob" in out and "NOT FoB" not in out
    assert summary["prompts"] == "fob" and summary["fob_weights"] == str(demo.shipped_fob())
    for sample in ("mni-brain", "abdomen-phantom"):
        for s in summary["samples"][sample]["structures"].values():
            assert set(s["dice"]) == set(s["prompts"]) == {"fob", "mask-ring"}
            assert all(0.0 <= d <= 1.0 for d in s["dice"].values())
            for buckets in s["prompts"].values():
                assert buckets["all"]["n"] >= buckets["dz>=5"]["n"] > 0
        assert (tmp_path / sample / "result-mask-ring" / "labels.nii.gz").exists()
