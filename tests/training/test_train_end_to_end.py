"""End to end: pseudolabel -> train tiny -> checkpoint -> resume (exact) -> evaluate."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from napari_fob.cli import main
from napari_fob.model.checkpoint import load_checkpoint
from napari_fob.training.config import TrainSettings
from napari_fob.training.trainer import lr_at

COMMON = [
    "--device", "cpu",
    "--set", "model=tiny",
    "--set", "episodes.min_area=40",
    "--set", "train.num_workers=0",
    "--set", "train.log_every=2",
    "--set", "train.lr_decay_every=3",  # the lr changes across the resume point
    "--set", "train.checkpoint_every=4",
    "--set", "val.every=4",
    "--set", "val.segmenter=none",
    "--set", "val.metric=ring_error",
    "--set", "val.max_slices=2",
]  # fmt: skip


@pytest.fixture(scope="module")
def manifest(phantom_files, tmp_path_factory):
    """case0, case1 for training (supervoxel pseudo-labels); case2 held out with labels."""
    folder = tmp_path_factory.mktemp("e2e")
    images = [str(img) for img, _ in phantom_files]
    assert main(["pseudolabel", *images, "--out", str(folder / "sv")]) == 0
    rows = []
    for i, (img, gt) in enumerate(phantom_files):
        name = img.name.removesuffix(".nii.gz")
        sv = folder / "sv" / f"{name}_supervoxels.nii.gz"
        split = "val" if i == 2 else "train"
        rows.append(f"  - {{image: {img}, labels: {gt}, pseudo: {sv}, split: {split}}}\n")
    path = folder / "manifest.yaml"
    path.write_text("volumes:\n" + "".join(rows))
    return path


def events(text: str, kind: str) -> list[dict[str, str]]:
    out = []
    for line in text.splitlines():
        if line.startswith(kind + " "):
            out.append(dict(tok.split("=", 1) for tok in line.split(" ")[1:]))
    return out


def train(manifest, out, iterations, *extra) -> int:
    args = ["train", "--manifest", str(manifest), "--out", str(out)]
    return main([*args, "--iterations", str(iterations), *COMMON, *extra])


@pytest.mark.slow
def test_train_resume_and_evaluate(manifest, tmp_path, capsys):
    # A: 8 steps in one go.
    assert train(manifest, tmp_path / "A", 8) == 0
    out = capsys.readouterr().out
    progress = events(out, "PROGRESS")
    assert [int(p["step"]) for p in progress] == [2, 4, 6, 8]
    assert all(p["total"] == "8" for p in progress)
    assert float(progress[-1]["lr"]) == pytest.approx(1e-4 * 0.95**2)
    checkpoints = events(out, "CHECKPOINT")
    assert {(c["step"], c["kind"]) for c in checkpoints} >= {("4", "latest"), ("8", "latest")}
    assert any(c["kind"] == "best" for c in checkpoints)
    assert len(events(out, "VALIDATION")) == 2 and events(out, "DONE")

    # B: 4 steps, then --resume to 8.
    assert train(manifest, tmp_path / "B", 4) == 0
    first = load_checkpoint(tmp_path / "B" / "latest.pt")
    assert first["step"] == 4
    capsys.readouterr()
    assert train(manifest, tmp_path / "B", 8, "--resume") == 0
    resumed = events(capsys.readouterr().out, "PROGRESS")
    assert [int(p["step"]) for p in resumed] == [6, 8]  # continues at the same step

    a = load_checkpoint(tmp_path / "A" / "latest.pt")
    b = load_checkpoint(tmp_path / "B" / "latest.pt")
    assert a["step"] == b["step"] == 8
    settings = TrainSettings(lr_decay_every=3)
    assert a["scheduler"]["last_lr"] == b["scheduler"]["last_lr"] == lr_at(7, settings)
    # Same batches, same RNG, same optimiser state after the resume: identical weights and logs.
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert torch.equal(a["rng"][0]["torch"], b["rng"][0]["torch"])
    rows = {
        run: {r["step"]: r["total"] for r in csv.DictReader(open(tmp_path / run / "train_log.csv"))}
        for run in ("A", "B")
    }
    assert rows["A"] == rows["B"]
    assert (tmp_path / "A" / "config.yaml").is_file()
    assert list((tmp_path / "A" / "tensorboard").iterdir())

    # SPR learnt: alpha moved away from its initial 0.5.
    spr_alpha = [v for k, v in a["model"].items() if k.endswith("alpha_logit")]
    assert spr_alpha and float(spr_alpha[0]) != 0.0  # sigmoid(0) = 0.5

    # Evaluate the trained checkpoint with the paper's protocol on every labelled volume.
    report = tmp_path / "eval"
    args = ["evaluate", "--manifest", str(manifest), "--split", "all", "--labels", "2,3"]
    args += ["--checkpoint", str(tmp_path / "A" / "best.pt"), "--segmenter", "random-walker"]
    assert main([*args, "--device", "cpu", "--out", str(report)]) == 0
    results = json.loads((report / "results.json").read_text())
    assert set(results["per_label"]) == {"2", "3"}
    assert 0.0 <= results["dice"] <= 1.0 and len(results["per_label"]["2"]["dice_per_volume"]) == 2
    table = (report / "results.md").read_text()
    assert "| structure | dice" in table and "**mean**" in table
