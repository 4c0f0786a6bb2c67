"""Checkpoint round trip, atomic writes, clear errors."""

from __future__ import annotations

import os

import pytest
import torch

from napari_fob.core import paths
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
    raw["model"].pop("spr.alpha_logit")
    raw["model"]["bcm.extra"] = torch.zeros(1)
    raw["config"]["feature_channels"] = 32
    ck.write_checkpoint(tmp_path / "bad.pt", raw)  # edited by hand, with a fresh sha256
    with pytest.raises(ValueError, match=r"bad\.pt.*spr\.alpha_logit.*bcm\.extra"):
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


def _flip_tensor_bytes(path, n=100):
    """Flip `n` bytes inside the largest tensor stored in a torch zip checkpoint."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack(
        "<HH", data[info.header_offset + 26 : info.header_offset + 30]
    )
    start = info.header_offset + 30 + name_len + extra_len
    for i in range(n):
        data[start + (i * info.file_size) // n] ^= 0x5A
    path.write_bytes(bytes(data))


def test_a_damaged_checkpoint_is_refused(tmp_path):
    path = ck.save_checkpoint(tmp_path / "m.pt", build_fob("tiny"), step=3)
    assert len(ck.load_checkpoint(path)["sha256"]) == 64
    _flip_tensor_bytes(path)
    with pytest.raises(ValueError, match=r"m\.pt.*does not match the sha256"):
        ck.load_fob(path)


def test_every_value_is_covered_by_the_digest():
    content = {"model": {"w": torch.arange(4.0)}, "step": 3, "rng": [(1, 2), {"a": 0.5}]}
    ref = ck.content_sha256(content)
    assert ck.content_sha256({**content, "sha256": "x"}) == ref  # its own entry left out
    changed = [
        {**content, "step": 4},
        {**content, "model": {"w": torch.arange(4.0).double()}},
        {**content, "model": {"w": torch.arange(4.0).reshape(2, 2)}},
        {**content, "rng": [(1, 3), {"a": 0.5}]},
        {**content, "rng": [[1, 2], {"a": 0.5}]},
    ]
    assert all(ck.content_sha256(c) != ref for c in changed)


def test_an_old_checkpoint_without_a_digest_loads_with_a_warning(tmp_path):
    model = build_fob("tiny")
    raw = ck.load_checkpoint(ck.save_checkpoint(tmp_path / "m.pt", model))
    raw.pop("sha256")
    torch.save(raw, tmp_path / "old.pt")
    with pytest.warns(UserWarning, match=r"old\.pt carries no sha256"):
        loaded = ck.load_fob(tmp_path / "old.pt")
    key = "spr.alpha_logit"
    assert torch.equal(loaded.state_dict()[key], model.state_dict()[key])


def test_a_damaged_training_state_is_refused(tmp_path):
    from napari_fob.training.checkpoints import load_training_state

    opt = torch.optim.Adam(build_fob("tiny").parameters())
    path = ck.save_checkpoint(
        tmp_path / "latest.pt", build_fob("tiny"), step=5, extra={"optimizer": opt.state_dict()}
    )
    raw = ck.load_checkpoint(path)
    raw["step"] = 6  # a changed value outside every tensor
    torch.save(raw, path)
    with pytest.raises(ValueError, match="latest.pt.*sha256"):
        load_training_state(path)


def test_checkpoint_mode_follows_the_umask(tmp_path):
    import stat

    probe = tmp_path / "probe"
    probe.write_text("")
    path = ck.save_checkpoint(tmp_path / "m.pt", build_fob("tiny"))
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(probe.stat().st_mode)


def test_the_shipped_model_carries_its_digest():
    import warnings

    path = paths.package_weights_dir() / ck.DEFAULT_FILE
    assert path.is_file(), f"the shipped model is missing: {path}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "carries no sha256" warning
        ck.load_checkpoint(path)  # checks the digest (then upgrades the state dict)
    raw = torch.load(path, map_location="cpu", weights_only=True)  # the file as stored
    assert raw["sha256"] == ck.content_sha256(raw)
