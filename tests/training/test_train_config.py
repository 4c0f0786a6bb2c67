"""Run config: packaged defaults (the paper's recipe), overrides, typo checks, value types."""

from __future__ import annotations

import pytest

from napari_fob.cli import main
from napari_fob.model.config import get_config
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
    "override, named",
    [
        ("train.lrr=1", "['lrr'] under 'train'"),
        ("bogus=1", "'bogus'"),
        ("episodes.grid_size=128", "['grid_size'] under 'episodes'"),
        ("episodes.augment.gama=1", "gama"),
        ("model_overrides.gridsize=64", "['gridsize'] under 'model_overrides'"),
    ],
)
def test_unknown_keys_fail_loudly_naming_the_key(override, named):
    with pytest.raises(ValueError, match="unknown key") as err:
        load_run_config(None, [override])
    assert named in str(err.value)


def test_dice_metric_needs_a_segmenter():
    with pytest.raises(ValueError, match="segmenter"):
        val_settings(load_run_config(None, ["val.segmenter=none"]))


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.iterations=2.7", "train.iterations: expected a whole number, got 2.7"),
        ("train.amp=1", "train.amp: expected true or false, got 1"),
        ("train.amp=maybe", "train.amp: expected true or false, got 'maybe'"),
        ("train.lr=fast", "train.lr: expected a number, got 'fast'"),
        ("val.segmenter=3", "val.segmenter: expected text"),
        ("episodes.test_labels=[1,2.5]", "episodes.test_labels[1]: expected a whole number"),
        ("episodes.augment.gamma=[1,2,3]", "episodes.augment.gamma: expected a list of 2 values"),
        ("episodes.augment.enabled=0", "episodes.augment.enabled: expected true or false"),
        ("train=3", "train: expected a mapping"),
    ],
)
def test_values_of_the_wrong_type_are_refused_naming_the_key(override, message):
    with pytest.raises(ValueError, match="--set " + override.replace("[", r"\[")) as err:
        load_run_config(None, [override])
    assert message in str(err.value)


def test_values_are_taken_exactly_never_rounded_or_guessed():
    cfg = load_run_config(
        None, ["train.iterations=3e4", "train.amp=false", "train.lr=1", "out=2024", "manifest=~"]
    )
    s = train_settings(cfg)
    assert s.iterations == 30000 and isinstance(s.iterations, int)
    assert s.amp is False and s.lr == 1.0 and isinstance(s.lr, float)
    assert cfg["out"] == "2024" and cfg["manifest"] is None  # text keys: the text as typed


def test_a_user_file_of_the_wrong_type_names_the_file_and_key(tmp_path):
    user = tmp_path / "run.yaml"
    user.write_text("train:\n  checkpoint_every: 10.5\n")
    with pytest.raises(ValueError, match=r"run.yaml: train.checkpoint_every: expected a whole"):
        load_run_config(user)


def test_settings_built_directly_are_checked_too():
    with pytest.raises(ValueError, match="train.seed: expected a whole number"):
        train_settings({"train": {"seed": 0.5}})


@pytest.mark.parametrize(
    "override, message",
    [
        ("model_overrides.grid_size=2.7", "model_overrides.grid_size: expected a whole number"),
        ("model_overrides.fg_adaptive_threshold=1", "fg_adaptive_threshold: expected true or"),
        ("model_overrides.sigma=wide", "model_overrides.sigma: expected a number, got 'wide'"),
        ("model_overrides.encoder_weights=3", "model_overrides.encoder_weights: expected text"),
        ("model_overrides.location_prior=[8,x]", "location_prior[1]: expected a number"),
        ("model_overrides.location_prior=[8]", "location_prior: expected a list of 2 values"),
        ("model_overrides=3", "model_overrides: expected a mapping"),
    ],
)
def test_model_overrides_are_checked_against_the_fob_config_types(override, message):
    with pytest.raises(ValueError, match="--set " + override.replace("[", r"\[")) as err:
        load_run_config(None, [override])
    assert message in str(err.value)


def test_model_overrides_of_the_right_type_build_the_model_config():
    cfg = load_run_config(
        None,
        [
            "model_overrides.location_prior=[8, 1.5]",
            "model_overrides.encoder_weights=null",
            "model_overrides.grid_size=3.2e1",
            "model_overrides.fg_adaptive_threshold=true",
        ],
    )
    overrides = cfg["model_overrides"]
    assert overrides["location_prior"] == [8.0, 1.5] and overrides["encoder_weights"] is None
    assert overrides["grid_size"] == 32 and isinstance(overrides["grid_size"], int)
    built = get_config("tiny", **overrides)
    assert built.location_prior == (8.0, 1.5) and built.fg_adaptive_threshold is True


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.iterations=2.7", "train.iterations: expected a whole number, got 2.7"),
        ("train.amp=1", "train.amp: expected true or false, got 1"),
        ("train.lrr=1", "unknown key(s) ['lrr'] under 'train'"),
        ("model_overrides.n_bg=ten", "model_overrides.n_bg: expected a whole number, got 'ten'"),
    ],
)
def test_fob_train_set_refuses_bad_values_with_exit_2(override, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--set", override, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
