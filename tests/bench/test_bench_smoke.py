"""Smoke test of bench/prompt_quality.py --quick: valid JSON with every method and metric."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
METHODS = {
    "fob",
    "fob-noprior",
    "fob-fine",
    "fob-chain",
    "fob-chain-own",
    "mask-ring",
    "mask-ring-chain",
    "mask-ring-chain-own",
    "copy",
}
METRICS = {"bg_inside", "fg_outside", "ring_error", "ring_coverage", "dice", "n_slices"}


@pytest.mark.slow
def test_prompt_quality_quick_writes_valid_json(tmp_path):
    script = ROOT / "bench" / "prompt_quality.py"
    cmd = [sys.executable, str(script), "--quick", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "prompt_quality_quick.json").read_text())
    assert set(report["methods"]) == METHODS
    for method, entry in report["methods"].items():
        assert set(entry["overall"]) == METRICS, method
        assert set(entry["by_dz"]) == {"1-2", "3-4", "5-9", "10+", ">=5"}
        assert entry["overall"]["n_slices"] > 0
        for key in METRICS - {"n_slices"}:
            value = entry["overall"][key]
            assert value is not None and math.isfinite(value), (method, key)
            if key != "ring_error":
                assert 0.0 <= value <= 1.0, (method, key, value)
    # copy and fixed mask-ring use the same support ring: identical prompt metrics
    assert report["methods"]["copy"]["overall"] == report["methods"]["mask-ring"]["overall"]
    scopes = [(t["scope"], t["model"], tuple(t["baselines"])) for t in report["target"]]
    fixed, chain = ("mask-ring", "copy"), ("mask-ring-chain",)
    runnable = fixed + ("mask-ring-chain-own",)
    assert scopes == [
        ("all", "fob", runnable),
        ("phantom", "fob", runnable),
        ("all", "fob-noprior", fixed),
        ("all", "fob-fine", fixed),
        ("all", "fob", chain),
        ("all", "fob-chain", chain),
        ("phantom", "fob-chain", chain),
        ("all", "fob-chain-own", ("mask-ring-chain-own",)),
        ("phantom", "fob-chain-own", ("mask-ring-chain-own",)),
    ]
    assert report["settings"]["fob"]["location_prior"] == [0.5, 0.0]
    assert report["settings"]["fob"]["prior_source"] == "registration"
    assert report["settings"]["checkpoint"] == "default"
    assert "| fob |" in done.stdout


def test_run_all_replaces_only_the_first_table_of_its_section():
    sys.path.insert(0, str(ROOT / "bench"))
    import run_all

    doc = "# B\n\n## Pipeline\n\ntext\n\n| a |\n|---|\n| 1 |\n\nprose\n\n## Other\n\n| x |\n"
    new = run_all.replace_first_table(doc, "Pipeline", ["| a |", "|---|", "| 2 |"])
    assert new == doc.replace("| 1 |", "| 2 |")
    assert run_all.replace_first_table(doc, "Missing", ["| z |"]) == doc
    assert run_all.last_table("| a |\nx\n| b |\n| c |\n") == ["| b |", "| c |"]
    assert {p.stem for p in run_all.scripts()} >= {"prompt_quality", "pipeline", "segmenters"}


@pytest.mark.slow
def test_prompt_quality_adds_sam_dice_beside_the_random_walker(tmp_path):
    # SAM's Dice comes on top of the random walker's when a SAM is there: a tiny random SAM
    # built from segment-anything's classes stands in for a checkpoint (its Dice means nothing)
    import argparse

    sys.path.insert(0, str(ROOT / "bench"))
    import prompt_quality
    from napari_fob.segmenters.sam import SamSegmenter, build_tiny_sam

    sam = SamSegmenter.from_model(build_tiny_sam(0), model_id="tiny-0", device="cpu")
    args = argparse.Namespace(
        checkpoint="default",
        max_slices=2,
        segmenter="auto",
        quick=True,
        sam_model="vit_b",
        sam_checkpoint=None,
    )
    report = prompt_quality.run(args, sam=sam)
    for method, entry in report["methods"].items():
        for key in ("dice", "dice_sam"):
            value = entry["overall"][key]
            assert value is not None and 0.0 <= value <= 1.0, (method, key, value)
    assert report["settings"]["segmenter"]["kind"] == "random-walker"
    assert report["settings"]["sam"]["model_id"] == "tiny-0"
    text = prompt_quality.markdown(report)
    assert "dice_sam" in text.splitlines()[2]  # a column of the first table
    assert "`dice_sam`: SAM `tiny-0`" in prompt_quality.docs_section(report)


def test_make_bench_leaves_the_long_scripts_and_the_fitting_script_out():
    """`make bench` stays near 20 minutes on 2 cores: the real-anatomy benchmark at stride 2,
    the long scripts only with --all, and a script that fits constants never."""
    sys.path.insert(0, str(ROOT / "bench"))
    import run_all

    names = dict(run_all.plan(run_all.parse([])))
    assert "real_anatomy" in names and names["real_anatomy"][-2:] == ["--stride", "2"]
    assert not set(run_all.LONG) & set(names) and "fit_confidence" not in names
    every = dict(run_all.plan(run_all.parse(["--all"])))
    assert set(run_all.LONG) <= set(every) and "fit_confidence" not in every
    assert every["real_anatomy"][-1].endswith("real_anatomy.py")  # --all: every slice
    assert list(dict(run_all.plan(run_all.parse(["--only", "confidence"])))) == ["confidence"]
