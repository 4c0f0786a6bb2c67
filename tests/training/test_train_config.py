"""Run config: packaged defaults (the paper's recipe), overrides, typo checks, lr schedule."""

from __future__ import annotations

import pytest

from napari_fob.training.config import (
    load_run_config,
    save_run_config,
    train_settings,
    val_settings,
)


def test_defaults_are_the_paper_recipe():
    s = train_settings(load_run_config())
    assert (s.lr, s.lr_decay, s.lr_decay_every, s.iterations, s.batch_size) == (
        1e-4,
        0.95,
        1000,
        36000,
        1,
    )


def test_file_then_overrides_and_round_trip(tmp_path):
    user = tmp_path / "run.yaml"
    user.write_text("model: tiny\ntrain:\n  iterations: 50\nepisodes:\n  max_dz: 3\n")
    cfg = load_run_config(user, ["train.lr=3e-4", "model_overrides.sigma=3", "val.every=0"])
    assert cfg["model"] == "tiny" and cfg["episodes"]["max_dz"] == 3
    assert train_settings(cfg).lr == 3e-4 and train_settings(cfg).iterations == 50
    assert cfg["model_overrides"] == {"sigma": 3} and val_settings(cfg).every == 0
    assert cfg["train"]["batch_size"] == 1  # untouched defaults survive the merge
    saved = save_run_config(cfg, tmp_path / "config.yaml")
    assert load_run_config(saved) == cfg


@pytest.mark.parametrize(
    "override", ["train.lrr=1", "bogus=1", "episodes.grid_size=128", "episodes.augment.gama=1"]
)
def test_unknown_keys_fail_loudly(override):
    with pytest.raises(ValueError, match="unknown key"):
        load_run_config(None, [override])


def test_dice_metric_needs_a_segmenter():
    with pytest.raises(ValueError, match="segmenter"):
        val_settings(load_run_config(None, ["val.segmenter=none"]))
