"""Recipe scripts of the shipped model: regrid.py, export_default.py --interpolate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from napari_fob.model import build_fob
from napari_fob.model.checkpoint import load_checkpoint, load_fob, save_checkpoint

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts" / "training"


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True, check=False
    )


def test_regrid_moves_the_weights_to_another_grid_and_the_model_runs(tmp_path):
    torch.manual_seed(0)
    src = save_checkpoint(tmp_path / "g64.pt", build_fob("tiny"), step=7)
    dst = tmp_path / "g128.pt"
    done = run("regrid.py", str(src), str(dst), "grid_size=128", "ring_r=12", "sigma=4")
    assert done.returncode == 0, done.stderr
    old, new = load_fob(src), load_fob(dst)
    assert (new.config.grid_size, new.config.ring_r, new.config.sigma) == (128, 12, 4.0)
    assert new.config.n_bg == old.config.n_bg and new.config.encoder == old.config.encoder
    same = {k for k, v in old.state_dict().items() if v.shape == new.state_dict()[k].shape}
    resampled = set(old.state_dict()) - same
    assert resampled == {"bcm.proposals.query_pos"}
    for key in same:
        assert torch.equal(old.state_dict()[key], new.state_dict()[key]), key
    pos = new.state_dict()["bcm.proposals.query_pos"]
    assert pos.shape[2:] == tuple(
        2 * n for n in old.state_dict()["bcm.proposals.query_pos"].shape[2:]
    )
    # the resampled map keeps the old map's mean (bilinear, align_corners=False)
    assert pos.mean().item() == pytest.approx(
        old.state_dict()["bcm.proposals.query_pos"].mean().item(), abs=1e-3
    )
    s = 128
    image, mask = torch.rand(1, 1, s, s), torch.zeros(1, s, s)
    mask[:, 40:80, 50:90] = 1
    ring = torch.rand(1, new.config.n_bg, 2) * s
    with torch.no_grad():
        out = new(image, mask, ring, torch.rand(1, 1, s, s))
    assert out.heatmaps.shape == (1, new.config.n_bg, s, s)
    assert torch.isfinite(out.refined_points[-1]).all()


def test_regrid_refuses_fields_that_are_weights(tmp_path):
    src = save_checkpoint(tmp_path / "g64.pt", build_fob("tiny"))
    done = run("regrid.py", str(src), str(tmp_path / "x.pt"), "feature_channels=32")
    assert done.returncode != 0 and "feature_channels" in done.stderr
    assert not (tmp_path / "x.pt").exists()


def test_export_interpolates_between_the_prior_card_and_the_checkpoint(tmp_path):
    torch.manual_seed(0)
    base, tuned = build_fob("tiny"), build_fob("tiny")
    prior = save_checkpoint(
        tmp_path / "prior.pt",
        base,
        step=100,
        extra={"card": {"steps": 100, "train_compute_s": 10.0, "hardware": "a CPU"}},
    )
    run_dir = tmp_path / "run"
    ckpt = save_checkpoint(run_dir / "latest.pt", tuned, step=40)
    (run_dir / "train_log.csv").write_text("step,sec_per_step\n20,0.5\n40,0.5\n")
    out = tmp_path / "shipped.pt"
    args = [str(ckpt), "--out", str(out), "--prior-card", str(prior), "--interpolate", "0.25"]
    done = run("export_default.py", *args, "--label", "stage 2", "--hardware", "a GPU")
    assert done.returncode == 0, done.stderr
    shipped = load_checkpoint(out)
    assert set(shipped) == {"format", "version", "config", "model", "step", "card", "sha256"}
    for key, value in shipped["model"].items():
        a, b = base.state_dict()[key], tuned.state_dict()[key]
        expected = 0.75 * a + 0.25 * b if value.is_floating_point() else b
        assert torch.allclose(value, expected, atol=1e-6), key
    card = shipped["card"]
    assert shipped["step"] == card["steps"] == 140
    assert card["stages"][-1] == {
        "run": "stage 2",
        "steps": 40,
        "compute_s": 20.0,
        "hardware": "a GPU",
        "interpolation": 0.25,
    }
    assert card["hardware"] == "a CPU; last stage: a GPU"
    assert card["train_compute_s"] == pytest.approx(30.0)


def test_export_interpolate_needs_a_prior_card(tmp_path):
    ckpt = save_checkpoint(tmp_path / "latest.pt", build_fob("tiny"), step=1)
    done = run(
        "export_default.py", str(ckpt), "--out", str(tmp_path / "o.pt"), "--interpolate", "0.5"
    )
    assert done.returncode != 0 and "--prior-card" in done.stderr


def test_retarget_moves_a_resnet18_model_to_the_quarter_scale_encoder(tmp_path):
    from napari_fob.model import get_config

    torch.manual_seed(0)
    cfg = get_config("compact", grid_size=64, ring_r=4, sigma=2.0, rac_band=2)
    src = save_checkpoint(tmp_path / "s8.pt", build_fob(cfg), step=3)
    dst = tmp_path / "s4.pt"
    done = run("retarget.py", str(src), str(dst), "encoder=resnet18-s4", "spr_offset_radius=4")
    assert done.returncode == 0, done.stderr
    old, new = load_fob(src), load_fob(dst)
    assert (new.config.encoder, new.config.spr_offset_radius) == ("resnet18-s4", 4.0)
    assert new.encoder.stride == 4 and old.encoder.stride == 8
    image = torch.rand(1, 1, 64, 64)
    assert new.encoder(image).shape[-2:] == (16, 16)
    for key, value in old.state_dict().items():
        if key != "bcm.proposals.query_pos":
            assert torch.equal(value, new.state_dict()[key]), key
    assert new.state_dict()["bcm.proposals.query_pos"].shape[-2:] == (16, 16)
    refused = run("retarget.py", str(src), str(tmp_path / "x.pt"), "encoder=tiny")
    assert refused.returncode != 0 and "cannot move encoder" in refused.stderr


def test_retarget_adds_the_position_code_at_scale_zero_without_changing_the_outputs(tmp_path):
    torch.manual_seed(0)
    src = save_checkpoint(tmp_path / "a.pt", build_fob("tiny"), step=1)
    dst = tmp_path / "b.pt"
    done = run("retarget.py", str(src), str(dst), "position_code=true")
    assert done.returncode == 0, done.stderr
    old, new = load_fob(src).eval(), load_fob(dst).eval()
    assert new.config.position_code and not new.position_proj.weight.any()
    images = torch.rand(2, 1, 64, 64)
    assert torch.equal(old.encode(images), new.encode(images))
    with torch.no_grad():
        new.position_proj.weight.fill_(0.01)
    assert not torch.equal(old.encode(images), new.encode(images))


def test_export_takes_card_entries_from_a_yaml_and_refuses_unknown_ones(tmp_path):
    ckpt = save_checkpoint(tmp_path / "latest.pt", build_fob("tiny"), step=5)
    card = tmp_path / "card.yaml"
    card.write_text("name: fob-real-mri test\nheld_out: every test structure\n")
    out = tmp_path / "o.pt"
    done = run("export_default.py", str(ckpt), "--out", str(out), "--card", str(card))
    assert done.returncode == 0, done.stderr
    written = load_checkpoint(out)["card"]
    assert written["name"] == "fob-real-mri test" and written["held_out"] == "every test structure"
    assert written["steps"] == 5
    card.write_text("steps: 99\n")  # a measured entry is never given by hand
    done = run("export_default.py", str(ckpt), "--out", str(out), "--card", str(card))
    assert done.returncode != 0 and "--card" in done.stderr
