"""Trainer pieces: lr schedule, train_step (SPR learns), atomic checkpoints, RNG round trip."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from napari_fob.model import build_fob
from napari_fob.model.checkpoint import load_checkpoint
from napari_fob.training.checkpoints import (
    get_rng_state,
    load_training_state,
    save_training_state,
    set_rng_state,
)
from napari_fob.training.config import TrainSettings
from napari_fob.training.episodes import EpisodeConfig, EpisodeDataset
from napari_fob.training.trainer import BATCH_KEYS, lr_at, train_step


def test_lr_is_a_pure_step_function():
    s = TrainSettings(lr=1e-4, lr_decay=0.95, lr_decay_every=1000)
    assert lr_at(0, s) == lr_at(999, s) == 1e-4
    assert lr_at(1000, s) == pytest.approx(0.95e-4)
    assert lr_at(36_000, s) == pytest.approx(1e-4 * 0.95**36)


def batches(phantom_volume, n: int, grid: int = 64):
    ds = EpisodeDataset(
        [phantom_volume(0)],
        config=EpisodeConfig(grid_size=grid, ring_r=6, ring_eps=2, min_area=40, label_source="gt"),
    )
    loader = torch.utils.data.DataLoader(ds, batch_size=1, sampler=range(n))
    return [{k: b[k] for k in (*BATCH_KEYS, "query_ring")} for b in loader]


def test_train_step_moves_spr_parameters_and_alpha(phantom_volume):
    torch.manual_seed(0)
    model = build_fob("tiny").train()
    spr_before = {k: v.detach().clone() for k, v in model.spr.named_parameters()}
    alpha_before = float(model.spr.alpha)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    logs = [train_step(model, b, opt, scaler, TrainSettings()) for b in batches(phantom_volume, 3)]
    assert set(logs[0]) >= {"total", "rac", "heat", "coor", "fore", "grad_norm"}
    assert all(np.isfinite(v) for row in logs for v in row.values())
    moved = [k for k, v in model.spr.named_parameters() if not torch.equal(v, spr_before[k])]
    assert len(moved) == len(spr_before), f"SPR parameters that did not move: {moved}"
    assert float(model.spr.alpha) != alpha_before


def test_train_step_under_autocast(phantom_volume):
    # The CUDA AMP path, exercised on CPU (bf16 autocast + an enabled GradScaler).
    torch.manual_seed(0)
    model = build_fob("tiny").train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cpu", enabled=True)
    for batch in batches(phantom_volume, 2):
        logs = train_step(model, batch, opt, scaler, TrainSettings())
        assert all(np.isfinite(v) for v in logs.values())


def test_rng_state_round_trip():
    state = get_rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())  # noqa: NPY002
    random.random(), np.random.rand(), torch.rand(1)  # noqa: NPY002
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected  # noqa: NPY002


def _save(path, model, step, opt):
    return save_training_state(
        path,
        model,
        step=step,
        optimizer=opt,
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        settings=TrainSettings(),
        rng=[get_rng_state()],
        best_metric=None,
        config={"model": "tiny"},
    )


def test_interrupted_checkpoint_write_never_corrupts_latest(tmp_path, monkeypatch):
    model = build_fob("tiny")
    opt = torch.optim.Adam(model.parameters())
    latest = _save(tmp_path / "latest.pt", model, 5, opt)
    real_save = torch.save

    def crash_midway(obj, f, *args, **kwargs):
        real_save({"partial": torch.zeros(1000)}, f)  # some bytes reach the file ...
        raise OSError("disk full")  # ... then the write dies

    monkeypatch.setattr(torch, "save", crash_midway)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        _save(tmp_path / "latest.pt", model, 6, opt)
    monkeypatch.setattr(torch, "save", real_save)
    state = load_training_state(latest)
    assert state["step"] == 5 and "optimizer" in state
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]  # no temp file left


def test_resume_needs_a_training_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="--resume"):
        load_training_state(tmp_path / "latest.pt")
    model = build_fob("tiny")
    from napari_fob.model.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "plain.pt", model, step=1)
    with pytest.raises(ValueError, match="not a training checkpoint"):
        load_training_state(tmp_path / "plain.pt")
    assert load_checkpoint(tmp_path / "plain.pt")["step"] == 1


def test_progress_interval_is_slow_off_a_terminal(monkeypatch):
    import io

    from napari_fob.training.trainer import progress_interval

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("FOB_PROGRESS_INTERVAL", raising=False)
    assert progress_interval(Tty()) == 0.1
    assert progress_interval(io.StringIO()) == 30.0  # a log file: no flood of redraws
    monkeypatch.setenv("FOB_PROGRESS_INTERVAL", "1.5")
    assert progress_interval(io.StringIO()) == 1.5
    monkeypatch.setenv("FOB_PROGRESS_INTERVAL", "soon")
    with pytest.raises(ValueError, match="FOB_PROGRESS_INTERVAL='soon'"):
        progress_interval(io.StringIO())


def test_episode_log_prior_from_the_batch():
    from napari_fob.model.config import get_config
    from napari_fob.training.trainer import episode_log_prior

    ring = torch.tensor([[[10.0, 12.0], [20.0, 30.0], [40.0, 5.0]]]).repeat(2, 1, 1)
    batch = {
        "support_ring": ring,
        "support_z": torch.tensor([4, 7]),
        "query_z": torch.tensor([8, 2]),
        "cross": torch.tensor([0, 1]),
    }
    assert episode_log_prior(get_config("tiny"), batch) is None  # the paper's training
    cfg = get_config("tiny", heat_loss="softmax-ce", location_prior=(1.0, 0.5), n_bg=3)
    prior = episode_log_prior(cfg, batch)
    assert prior.shape == (2, 3, 64, 64)
    assert prior[0, 1, 20, 30] == 0 and prior[0, 1, 20, 33] == pytest.approx(-9 / (2 * 0.75**2))
    assert torch.all(prior[1] == 0)  # a cross-volume episode gets a flat prior


def test_the_prior_can_follow_the_query_ring_as_a_registered_ring_does():
    from dataclasses import replace

    from napari_fob.model.config import get_config
    from napari_fob.training.config import TrainSettings, train_settings
    from napari_fob.training.priors import drifted_ring
    from napari_fob.training.trainer import episode_log_prior

    support = torch.tensor([[[10.0, 12.0], [20.0, 30.0], [40.0, 5.0]]])
    query = support + torch.tensor([3.0, -2.0])
    batch = {"support_ring": support, "query_ring": query, "support_z": torch.tensor([4]),
             "query_z": torch.tensor([8]), "cross": torch.tensor([0])}  # fmt: skip
    cfg = get_config("tiny", heat_loss="softmax-ce", location_prior=(0.5, 0.0), n_bg=3)
    on_support = episode_log_prior(cfg, batch, TrainSettings())
    assert on_support[0, 1, 20, 30] == 0  # the default: around the support's ring
    exact = episode_log_prior(cfg, batch, replace(TrainSettings(), prior_centre="query-drift",
                                                  prior_drift=0.0))  # fmt: skip
    assert exact[0, 1, 23, 28] == 0 and exact[0, 1, 20, 30] < -10  # on the query's own ring
    torch.manual_seed(0)
    rings = drifted_ring(query.repeat(4000, 1, 1), 2.5)
    moved = (rings - query).norm(dim=-1)
    assert 1.5 < float(moved.mean()) < 4.0  # a few grid px, as registration drifts
    centre_shift = (rings.mean(dim=1) - query.mean(dim=1)).mean(dim=0)
    assert float(centre_shift.abs().max()) < 0.2  # no direction preferred
    with pytest.raises(ValueError, match="train.prior_centre 'truth'"):
        train_settings({"train": {"prior_centre": "truth"}})
    for bad in (-1.0, float("inf")):
        with pytest.raises(ValueError, match="train.prior_drift"):
            train_settings({"train": {"prior_drift": bad}})
    flat = get_config("tiny", heat_loss="softmax-ce", n_bg=3)  # no location prior to centre
    with pytest.raises(ValueError, match="'query-drift' needs a model with a location_prior"):
        episode_log_prior(flat, batch, replace(TrainSettings(), prior_centre="query-drift"))
    assert train_settings({"train": {"prior_centre": "query-drift"}}).prior_drift == 2.5
