"""``fob demo`` end to end on both samples: with the shipped FoB model, and without it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_fob.cli import main
from napari_fob.commands import demo, demo_anatomy


def _run(tmp_path, capsys, *extra: str) -> tuple[str, dict]:
    assert main(["demo", "--out", str(tmp_path), "--quiet", *extra]) == 0
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
    out, summary = _run(tmp_path, capsys, "--no-real-anatomy")
    assert summary["real_anatomy"] is None and "== real anatomy" not in out
    assert "FoB weights: none" in out and "NOT FoB predictions" in out
    assert "prompts used for the masks: mask-ring" in out
    assert summary["prompts"] == "mask-ring" and summary["fob_weights"] is None
    assert summary["segmenter"]["kind"] == "random-walker"
    phantom = summary["samples"]["abdomen-phantom"]["structures"]
    assert set(phantom) == {"1", "2", "3", "4"}
    for s in phantom.values():
        runs = ["mask-ring", "mask-ring-chain"]  # no FoB numbers without FoB weights
        assert list(s["prompts"]) == list(s["dice"]) == runs
        # real masks on every organ; the chain carries each commit's error to the next slice.
        # Automatic extent from the right kidney runs on into the liver, which has its
        # intensity (docs/benchmarks.md, "Confidence and automatic extent"): 0.49 there
        assert s["dice"]["mask-ring"] > 0.4 and s["dice"]["mask-ring-chain"] > 0.3
        assert s["prompts"]["mask-ring"]["all"]["n"] > s["prompts"]["mask-ring"]["dz>=5"]["n"] > 0
    assert np.mean([s["dice"]["mask-ring"] for s in phantom.values()]) > 0.6
    assert summary["far_dz5"] is None and summary["fob_beats_both_baselines_dz5"] is None


@pytest.mark.slow
def test_demo_with_the_shipped_model_compares_fob_with_the_baseline(tmp_path, capsys):
    assert demo.shipped_fob().exists()
    out, summary = _run(tmp_path, capsys)
    assert f"FoB weights: {demo.shipped_fob()}" in out
    assert "prompts used for the masks: fob" in out and "NOT FoB" not in out
    assert summary["prompts"] == "fob" and summary["fob_weights"] == str(demo.shipped_fob())
    for sample in ("mni-brain", "abdomen-phantom"):
        for s in summary["samples"][sample]["structures"].values():
            assert set(s["dice"]) == set(s["prompts"]) == {"fob", "mask-ring", "mask-ring-chain"}
            assert all(0.0 <= d <= 1.0 for d in s["dice"].values())
            for buckets in s["prompts"].values():
                assert buckets["all"]["n"] >= buckets["dz>=5"]["n"] > 0
        for run in ("mask-ring", "mask-ring-chain"):
            assert (tmp_path / sample / f"result-{run}" / "labels.nii.gz").exists()
    # the target of the default model, printed and saved: FoB against both baselines
    far = summary["far_dz5"]
    assert set(far) == {"fob", "mask-ring", "mask-ring-chain"}
    for gen in far.values():
        assert gen["ring_error"] >= 0 and 0 <= gen["bg_inside"] <= 1
    assert ": FoB beats both baselines on ring_error and bg_inside: " in out
    assert "not the yardstick" in out and "Real anatomy" in out
    assert isinstance(summary["fob_beats_both_baselines_dz5"], bool)
    # real anatomy leads: the held-out subset comes before the samples, with every method
    assert out.index("== real anatomy") < out.index("== mni-brain")
    anatomy = summary["real_anatomy"]
    assert list(anatomy["mean_dz5"]) == ["fob", "registration", "mask-ring"]
    for method, rows in anatomy["per_structure"].items():
        assert list(rows) == list(demo_anatomy.SUBSET)
        for row in rows.values():
            assert row["n_slices"] >= 5 and 0.0 <= row["dice"] <= 1.0, (method, row)
    assert "the registration baseline's on this subset" in out


def test_demo_says_how_to_get_real_anatomy_without_its_packages(monkeypatch, capsys):
    from napari_fob.samples import real_anatomy

    monkeypatch.setattr(real_anatomy, "available", lambda: False)
    assert demo.real_anatomy({"mask-ring": object()}, segmenter=object()) is None
    out = capsys.readouterr().out
    assert "real anatomy: skipped" in out and "pip install 'napari-fob[bench]'" in out


def test_chain_source_follows_the_committed_slices_from_the_support():
    import numpy as np

    committed = np.zeros(12, bool)
    committed[[3, 4, 5, 6, 8]] = True  # support at 5; slice 7 was never committed
    assert demo.chain_source(6, [5], committed) == 5
    assert demo.chain_source(9, [5], committed) == 8
    assert demo.chain_source(2, [5], committed) == 3
    assert demo.chain_source(10, [5, 11], committed) is None  # nearest support 11, nothing between
