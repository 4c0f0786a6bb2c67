"""bench/interaction.py: the simulated annotator's gesture rule, and a run on a tiny phantom in
the `fob sample` layout (max-actions 2) whose JSON has the documented schema."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_fob.core.io import Volume
from napari_fob.samples import Sample, save_sample, support_from_labels

ROOT = Path(__file__).resolve().parents[2]


def _module(name: str):
    """A bench module, imported as the script imports its helpers (bench/ on sys.path)."""
    if str(ROOT / "bench") not in sys.path:
        sys.path.insert(0, str(ROOT / "bench"))
    return importlib.import_module(name)


def test_the_gesture_adds_foreground_where_missed_dominates_else_fixes_the_ring():
    act = _module("_interaction_actions")
    truth = np.zeros((40, 40), bool)
    truth[10:30, 10:30] = True
    half = truth.copy()
    half[:, 20:] = False  # the right half missed
    a = act.choose(3, half, truth, np.zeros((0, 2)))
    assert a.kind == "fg" and a.z == 3 and 10 <= a.rc[0] < 30 and 20 <= a.rc[1] < 30
    big = np.zeros_like(truth)
    big[10:30, 10:38] = True  # a false positive on the right
    ring = np.array([[5.0, 5.0], [5.0, 36.0], [34.0, 36.0], [34.0, 5.0]])
    a = act.choose(3, big, truth, ring)
    assert a.kind == "bg-move" and a.index in (1, 2)  # the right-hand points are nearest
    assert 32 <= a.rc[1] <= 34  # onto the true ring: 2..4 px right of the true edge
    a = act.choose(3, big, truth, np.array([[0.0, 0.0], [39.0, 0.0], [0.0, 1.0]]))
    assert a.kind == "bg-add"  # no background point near the false positive
    assert act.worst_slice({1: truth, 2: half, 4: big}, np.stack([truth] * 5)) == 2  # 200 > 160
    assert act.worst_slice({1: truth}, np.stack([truth] * 2)) is None


@pytest.fixture
def tiny(tmp_path) -> Path:
    """An ellipsoid (label 1) and a small drifting disk (label 2) on 12 slices of 40 x 40."""
    zz, yy, xx = np.mgrid[:12, :40, :40]
    one = ((zz - 6) / 4.5) ** 2 + ((yy - 18) / 9) ** 2 + ((xx - 15) / 7) ** 2 <= 1
    two = ((yy - 22 - 0.5 * zz) / 5) ** 2 + ((xx - 31) / 5) ** 2 <= 1
    two &= (zz >= 3) & (zz <= 9) & ~one
    labels = one.astype(np.int16) + 2 * two
    image = 40 + 60 * one + 90 * two + np.random.default_rng(0).normal(0, 3, one.shape)
    volume = Volume.from_array(image.astype(np.float32), affine=np.eye(4))
    sample = Sample(volume, labels, support_from_labels(labels), {1: "ellipsoid", 2: "disk"}, "")
    save_sample(sample, tmp_path / "data")
    return tmp_path / "data"


@pytest.mark.parametrize("n", [1, 2])
def test_a_run_on_a_tiny_phantom_writes_the_documented_json(tiny, tmp_path, n):
    bench = _module("interaction")
    out = tmp_path / "result.json"
    methods = ["mask-ring", "micro-sam-style", "registration", "per-slice"]
    if n == 2:
        methods = ["fob", "fob-carry-gesture", *methods]
    argv = ["--data", str(tiny), "--labels", "1,2", "--max-actions", str(n), "--target", "0.85",
            "--segmenter", "random-walker", "--window", "0,200", "--methods", ",".join(methods),
            "--out", str(out)]  # fmt: skip
    assert bench.main(argv) == 0
    report = json.loads(out.read_text())
    assert list(report["methods"]) == methods
    for name, row in report["methods"].items():
        assert set(row) == {"mean_actions", "auc", "final_dice", "per_label", "curve"}, name
        assert len(row["curve"]) == n + 1
        assert set(row["per_label"]) == {"1", "2"}
        for label in row["per_label"].values():
            curve = label["curve"]
            assert len(curve) == n + 1 and all(0.0 <= d <= 1.0 for d in curve)
            assert label["auc"] == pytest.approx(np.mean(curve))
            assert label["final_dice"] == curve[-1]
            reached = [k for k, d in enumerate(curve) if d >= 0.85]
            assert label["actions"] == (reached[0] if reached else n + 1)
        rows = row["per_label"].values()
        assert row["mean_actions"] == pytest.approx(np.mean([r["actions"] for r in rows]))
        assert row["auc"] == pytest.approx(np.mean([r["auc"] for r in rows]))
        np.testing.assert_allclose(row["curve"], np.mean([r["curve"] for r in rows], axis=0))
    per_slice = report["methods"]["per-slice"]["per_label"]["1"]["curve"]
    assert per_slice[0] < 0.5  # only the support slice is annotated before any action
    assert report["settings"]["max_actions"] == n and report["settings"]["labels"] == [1, 2]


def test_bad_inputs_are_refused_with_the_input_named(tiny, tmp_path):
    bench = _module("interaction")
    with pytest.raises(SystemExit, match="missing"):
        bench.main(["--data", str(tmp_path), "--out", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit, match="--labels 7"):
        bench.main(["--data", str(tiny), "--labels", "7", "--out", str(tmp_path / "x.json")])


def test_carry_gesture_moves_the_same_ring_point_of_the_predicted_neighbours(tiny):
    bench = _module("interaction")
    methods = _module("_interaction_methods")
    act = _module("_interaction_actions")
    from napari_fob.core.intensity import resolve_window
    from napari_fob.prompting.generators import MaskRingGenerator
    from napari_fob.segmenters.random_walker import RandomWalkerSegmenter

    volume, labels, support, _ = bench.load_data(tiny)
    truth = labels == 1
    zc, zs = bench.structure_setup(labels, support, 1)
    loop = methods.CarryGesture(
        MaskRingGenerator(grid_size=64, r=6), RandomWalkerSegmenter(),
        volume, resolve_window(volume, (0.0, 200.0)), truth, zc, zs,
    )  # fmt: skip
    s, z = loop.s, zs[0]  # the lowest slice: its run goes up to the support
    before = {k: s.prompts[(1, k)].bg.copy() for k in zs if k != zc}
    target = before[z][2] + np.array([1.0, -2.0])
    loop.edit(act.Action(z, "bg-move", tuple(target), 2))
    np.testing.assert_allclose(s.prompts[(1, z)].bg[2], target)
    assert s.slice_status(1, z) == "edited"
    for k in range(z + 1, zc):
        moved = s.prompts[(1, k)].bg - before[k]
        weight = max(0.0, 1 - (k - z) / (methods.CARRY_REACH + 1))
        np.testing.assert_allclose(moved[2], weight * np.array([1.0, -2.0]), atol=1e-9)
        assert not np.delete(moved, 2, axis=0).any() and s.slice_status(1, k) == "predicted"
    assert s.undo()  # the carried moves are one undo step of their own
    assert all(np.array_equal(s.prompts[(1, k)].bg, before[k]) for k in range(z + 1, zc))


def test_mean_actions_at_a_lower_dice_reads_the_per_structure_curves():
    report = _module("_interaction_report")
    row = {"per_label": {"1": {"curve": [0.5, 0.62, 0.71]}, "2": {"curve": [0.65, 0.66, 0.68]}}}
    assert report.mean_actions_at(row, 0.6) == (1 + 0) / 2
    assert report.mean_actions_at(row, 0.7) == (2 + 3) / 2  # never reached: N + 1 = 3
    full = {
        "settings": {"target": 0.85, "max_actions": 2, "segmenter": {"kind": "random-walker"}},
        "methods": {"fob": {"auc": 0.6, "mean_actions": 3.0, "final_dice": 0.7, "curve": [0.5],
                            **{"per_label": {k: {**v, "name": k, "actions": 3, "auc": 0.6,
                                                 "final_dice": 0.7}
                                             for k, v in row["per_label"].items()}}}},
    }  # fmt: skip
    text = report.markdown("t", full)
    assert "| Dice 0.6 | 0.50 |" in text and "| Dice 0.7 | 2.50 |" in text
