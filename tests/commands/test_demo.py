"""``fob demo`` end to end on both samples (offline, random-walker fallback, no shipped FoB)."""

from __future__ import annotations

import json

import pytest

from napari_fob.cli import main
from napari_fob.commands import demo


@pytest.mark.slow
def test_demo_end_to_end_states_weights_segmenter_and_scores(tmp_path, capsys):
    assert not demo.shipped_fob().exists()  # until a model ships, the demo must say so
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "FoB weights: none" in out
    assert "NOT FoB predictions" in out and "random-walker fallback" in out
    assert "prompts used for the masks: mask-ring" in out
    for name in ("mni-brain", "abdomen-phantom", "liver", "lateral ventricles", "timings"):
        assert name in out
    summary = json.loads((tmp_path / "demo.json").read_text())
    assert summary["prompts"] == "mask-ring" and summary["fob_weights"] is None
    assert summary["segmenter"]["kind"] == "random-walker"
    phantom = summary["samples"]["abdomen-phantom"]["structures"]
    assert set(phantom) == {"1", "2", "3", "4"}
    for s in phantom.values():
        assert list(s["prompts"]) == ["mask-ring"]  # no FoB numbers without FoB weights
        assert s["dice"] > 0.5
        assert s["prompts"]["mask-ring"]["all"]["n"] > s["prompts"]["mask-ring"]["dz>=5"]["n"] > 0
    for name in ("mni-brain", "abdomen-phantom"):
        assert (tmp_path / name / "result" / "labels.nii.gz").exists()
