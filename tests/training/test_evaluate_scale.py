"""Every method is scored at one grid and ring (256, r = 15, eps = 2), whatever a model's grid.

Regression for issue 15: validation and ``fob evaluate`` scored FoB at its own grid (128 for the
shipped model) with the 256-grid radius r = 15, so the model's own training target scored
several pixels of ring error.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from napari_fob import geometry
from napari_fob.cli import main
from napari_fob.core import metrics
from napari_fob.core.prompts import PromptSet
from napari_fob.training import evaluate
from napari_fob.training.manifest import load_volume, read_manifest

SHIPPED_GRID, SHIPPED_R, SHIPPED_EPS = 128, 8, 2  # the shipped model's grid and ring


def target_ring(truth: np.ndarray, grid: int = SHIPPED_GRID) -> PromptSet:
    """The ring a model at `grid` is trained to predict (its own config's r, eps), in slice px."""
    mask_g = geometry.resize_mask_to_grid(truth, grid)
    bg = geometry.ring_points(mask_g, 10, r=SHIPPED_R, eps=SHIPPED_EPS)
    fg = geometry.fg_points_from_mask(truth)
    return PromptSet(fg=fg, bg=geometry.grid_to_slice(bg, truth.shape, grid), label=1)


class TargetRingGenerator:
    """A generator that returns the 128-grid model's target ring on every query slice."""

    name = "fob"

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels
        config = SimpleNamespace(grid_size=SHIPPED_GRID, to_dict=dict)
        self.predictor = SimpleNamespace(model=SimpleNamespace(config=config))

    def describe(self):
        return {"kind": "fob", "target": "own ring"}

    def set_support(self, image01, mask, *, slice_index=None, committed=False):
        pass

    def clear_supports(self):
        pass

    def predict(self, images01, *, slice_indices=None, label=1, batch_size=16):
        return [target_ring(self.labels[z] == label) for z in slice_indices]


def test_the_metric_ring_is_a_256_grid_length_at_any_grid():
    truth = np.zeros((200, 200), bool)
    truth[70:130, 80:120] = True
    ring256 = geometry.ring_points(geometry.resize_mask_to_grid(truth, 256), 10, r=15, eps=2)
    ps = PromptSet(
        fg=np.array([[100.0, 100.0]]), bg=geometry.grid_to_slice(ring256, (200, 200), 256)
    )
    assert metrics.prompt_metrics(ps, truth)["ring_error"] == pytest.approx(0.0, abs=0.5)
    # measured at a 128 grid, r is 7.5 there (not 15): the same ring still scores ~0
    assert metrics.prompt_metrics(ps, truth, scale_to_grid=128)["ring_error"] < 1.0


def test_validation_scores_the_models_own_target_ring_near_zero(phantom_volume, monkeypatch):
    vol = phantom_volume(0)
    import napari_fob.prompting.generators as generators

    monkeypatch.setattr(
        generators, "make_generator", lambda *a, **k: TargetRingGenerator(vol.labels)
    )
    model = SimpleNamespace(
        training=True, train=lambda mode=True: None, config=SimpleNamespace(grid_size=SHIPPED_GRID)
    )
    settings = SimpleNamespace(segmenter="none", max_slices=4)
    out = evaluate.validate(model, [vol], settings=settings, device="cpu")
    assert out["ring_error"] < 1.5  # the model's own grid with r = 15 gave ~6 px
    assert out["bg_inside"] == 0.0
    # the old way, for the record: 128 grid with the 256-grid radius
    z = int(evaluate.label_slices(vol.labels, 3)[len(evaluate.label_slices(vol.labels, 3)) // 2])
    truth = vol.labels[z] == 3
    old = metrics.prompt_metrics(target_ring(truth), truth, scale_to_grid=128, r=15, eps=2)
    assert old["ring_error"] > 3.0


def test_fob_evaluate_scores_fob_at_the_metric_grid(phantom_files, tmp_path, monkeypatch):
    import napari_fob.prompting.generators as generators

    manifest = tmp_path / "m.yaml"
    image, labels = phantom_files[0]
    manifest.write_text(f"volumes:\n  - {{image: {image}, labels: {labels}}}\n")
    vol = load_volume(read_manifest(manifest)[0])
    monkeypatch.setattr(
        generators, "make_generator", lambda *a, **k: TargetRingGenerator(vol.labels)
    )
    args = ["evaluate", "--manifest", str(manifest), "--protocol", "annotation", "--generator"]
    args += ["fob", "--segmenter", "none", "--max-slices", "4", "--out", str(tmp_path / "r")]
    assert main(args) == 0
    data = json.loads((tmp_path / "r" / "results.json").read_text())
    assert data["settings"]["metrics_grid"] == metrics.METRIC_GRID == 256
    assert data["ring_error"] < 1.5


@pytest.mark.parametrize(
    ("protocol", "flag", "want"),
    [
        ("paper", None, True),  # the paper's protocol runs the paper's inference by default
        ("annotation", None, False),
        ("annotation", "--paper-inference", True),
        ("paper", "--no-paper-inference", False),
    ],
)
def test_fob_evaluate_paper_inference(phantom_files, tmp_path, monkeypatch, protocol, flag, want):
    import napari_fob.prompting.generators as generators

    manifest = tmp_path / "m.yaml"
    rows = "".join(f"  - {{image: {i}, labels: {g}}}\n" for i, g in phantom_files[:2])
    manifest.write_text("volumes:\n" + rows)
    vol = load_volume(read_manifest(manifest)[1])
    seen = {}

    def fake(name, **kw):
        seen.update(kw)
        return TargetRingGenerator(vol.labels)

    monkeypatch.setattr(generators, "make_generator", fake)
    args = ["evaluate", "--manifest", str(manifest), "--protocol", protocol, "--labels", "3"]
    args += ["--generator", "fob", "--segmenter", "none", "--max-slices", "2"]
    args += [flag] if flag else []
    if protocol == "paper":  # the target ring needs in-volume slice indices; record only
        monkeypatch.setattr(TargetRingGenerator, "predict", _support_ring)
    assert main([*args, "--out", str(tmp_path / "r")]) == 0
    assert seen["paper_inference"] is want
    data = json.loads((tmp_path / "r" / "results.json").read_text())
    assert data["settings"]["paper_inference"] is want


def _support_ring(self, images01, *, slice_indices=None, label=1, batch_size=16):
    truth = np.zeros(images01[0].shape, bool)
    truth[30:60, 30:60] = True
    return [target_ring(truth) for _ in images01]
