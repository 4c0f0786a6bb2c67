"""Checkpoint round trip, atomic writes, clear errors."""

from __future__ import annotations

import os

import pytest
import torch

from napari_fob import paths
from napari_fob.model import checkpoint as ck
from napari_fob.model.fob import build_fob


def test_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_fob("tiny", sigma=2.5)
    path = ck.save_checkpoint(tmp_path / "sub" / "m.pt", model, step=7, extra={"note": "x"})
    raw = ck.load_checkpoint(path)
    assert (raw["format"], raw["version"], raw["step"], raw["note"]) == (
        "napari-fob/fob",
        1,
        7,
        "x",
    )
    assert raw["config"]["sigma"] == 2.5
    loaded = ck.load_fob(path)
    assert loaded.config == model.config and not loaded.training
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k


def test_write_is_atomic(tmp_path, monkeypatch):
    model = build_fob("tiny")
    path = ck.save_checkpoint(tmp_path / "m.pt", model, step=1)
    before = path.read_bytes()

    def crash(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        ck.save_checkpoint(path, model, step=2)
    assert path.read_bytes() == before  # the old file is intact
    assert os.listdir(tmp_path) == ["m.pt"]  # and no temporary file is left behind


def test_mismatch_names_the_checkpoint_and_keys(tmp_path):
    model = build_fob("tiny")
    path = ck.save_checkpoint(tmp_path / "m.pt", model)
    raw = ck.load_checkpoint(path)
    raw["model"].pop("spr.alpha_raw")
    raw["model"]["bcm.extra"] = torch.zeros(1)
    raw["config"]["feature_channels"] = 32
    torch.save(raw, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"bad\.pt.*spr\.alpha_raw.*bcm\.extra"):
        ck.load_fob(tmp_path / "bad.pt")


@pytest.mark.usefixtures("without_shipped_model")
def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        ck.load_fob("default")
    msg = str(err.value)
    assert str(paths.package_weights_dir() / "fob-compact.pt") in msg and "fob train" in msg
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        ck.load_fob(tmp_path / "nope.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a 'napari-fob/fob' file"):
        ck.load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="reserved"):
        ck.save_checkpoint(tmp_path / "m.pt", build_fob("tiny"), extra={"model": 1})
