"""Evaluation protocols with the mask-ring baseline and the random-walker segmenter."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_fob.cli import main
from napari_fob.prompting.generators import MaskRingGenerator
from napari_fob.segmenters import get_segmenter
from napari_fob.training.evaluate import (
    annotation_protocol,
    central_slice,
    dz_bin,
    label_slices,
    paper_protocol,
)
from napari_fob.training.report import markdown_table


def test_helpers():
    labels = np.zeros((6, 4, 4), int)
    labels[1:5, 1:3, 1:3] = 2
    labels[4, :, :] = 2  # more mass on slice 4 pulls the centre down
    assert label_slices(labels, 2).tolist() == [1, 2, 3, 4]
    assert central_slice(labels, 2) == 3
    assert [dz_bin(d) for d in (1, 2, 3, 5, 9, 10, 40)] == [
        "1-2", "1-2", "3-4", "5-9", "5-9", "10+", "10+"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="does not occur"):
        central_slice(labels, 7)


def test_annotation_protocol_reports_by_distance(phantom_volume):
    segmenter, _ = get_segmenter("random-walker")
    vol = phantom_volume(0)
    results = annotation_protocol(MaskRingGenerator(), segmenter, [vol], [3], max_slices=6)
    row = results["per_label"][3]
    assert row["n_slices"] == 6 and 0.0 <= row["dice"] <= 1.0
    assert 0.0 <= row["bg_inside"] <= 1.0 and row["ring_error"] >= 0.0
    assert set(results["by_dz"]) <= {"1-2", "3-4", "5-9", "10+"} and "1-2" in results["by_dz"]
    near = results["by_dz"]["1-2"]
    assert near["n_slices"] >= 2
    table = markdown_table(results, {3: "left kidney"})
    assert "| left kidney |" in table and "| abs(dz) |" in table


def test_paper_protocol_uses_three_supports_per_structure(phantom_volume):
    calls = []

    class Recording(MaskRingGenerator):
        def set_support(self, image01, mask, *, slice_index=None):
            calls.append(int(mask.sum()))
            super().set_support(image01, mask, slice_index=slice_index)

    vols = [phantom_volume(0), phantom_volume(1), phantom_volume(2)]
    results = paper_protocol(Recording(), None, vols, [2], folds=1)
    assert len(calls) == 3 * 2  # 3 support slices for each of the 2 query volumes
    row = results["per_label"][2]
    expected = sum(len(label_slices(v.labels, 2)) for v in vols[1:])
    assert row["n_slices"] == expected  # only (and all) query slices that show the organ
    assert "dice" not in row  # no segmenter, no Dice
    with pytest.raises(ValueError, match=">= 2 volumes"):
        paper_protocol(Recording(), None, vols[:1], [2])


def test_evaluate_command_with_the_mask_ring_baseline(phantom_files, tmp_path, capsys):
    manifest = tmp_path / "m.yaml"
    rows = "".join(f"  - {{image: {i}, labels: {g}}}\n" for i, g in phantom_files[:2])
    manifest.write_text("volumes:\n" + rows)
    names = tmp_path / "labels.json"
    names.write_text(json.dumps({"3": "left kidney"}))
    args = ["evaluate", "--manifest", str(manifest), "--protocol", "annotation"]
    args += ["--generator", "mask-ring", "--labels", "3", "--max-slices", "3"]
    assert main([*args, "--names", str(names), "--out", str(tmp_path / "r")]) == 0
    assert "| left kidney |" in (tmp_path / "r" / "results.md").read_text()
    data = json.loads((tmp_path / "r" / "results.json").read_text())
    assert data["settings"]["generator"]["kind"] == "mask-ring"
    assert data["per_label"]["3"]["n_slices"] > 0
    no_gt = tmp_path / "n.yaml"
    no_gt.write_text(f"volumes:\n  - {{image: {phantom_files[0][0]}}}\n")
    assert main(["evaluate", "--manifest", str(no_gt), "--out", str(tmp_path / "x")]) == 2
    assert "ground-truth" in capsys.readouterr().err
