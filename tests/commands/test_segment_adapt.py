"""``fob segment --adapt SECONDS`` on the bundled phantom sample (its left kidney, slices 18-24):
the shipped FoB adapted to the volume, the adaptation recorded in the report and the sidecar,
reused from the cache on a re-run, refused for prompt generators without a model."""

from __future__ import annotations

import json

import pytest

from napari_fob.cli import main


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    from napari_fob.samples import write_sample

    return write_sample("abdomen-phantom", tmp_path_factory.mktemp("phantom"))


def segment(files, out, *extra) -> int:
    argv = ["segment", str(files["image"]), "--support", str(files["support"]),
            "--out", str(out), "--labels", "3", "--segmenter", "random-walker",
            "--slices", "18:25", "--quiet"]  # fmt: skip
    return main([*argv, *map(str, extra)])


def test_adapt_runs_is_recorded_and_is_reused_from_the_cache(phantom, tmp_path):
    from napari_fob.model.checkpoint import load_fob
    from napari_fob.training.adapt import model_identity

    assert segment(phantom, tmp_path / "a", "--adapt", 6) == 0
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    adaptation = report["prompts"]["adaptation"]
    # the steps the budget leaves depend on the machine's load (the weights: test_adapt.py)
    assert adaptation["budget_s"] == 6.0 and adaptation["prepare_s"] <= adaptation["seconds"]
    assert (adaptation["loss_last"] is None) == (adaptation["steps"] == 0)
    assert adaptation["cache_hit"] is False
    assert adaptation["base_id"] == model_identity(load_fob("default"))
    assert report["prompts"]["checkpoint"] == "default"
    sidecar = json.loads((tmp_path / "a" / "prompts.json").read_text())
    assert sidecar["generator"]["adaptation"] == adaptation
    assert report["labels"]["3"]["slices_with_voxels"]

    assert segment(phantom, tmp_path / "b", "--adapt", 6) == 0  # the same scan again
    again = json.loads((tmp_path / "b" / "report.json").read_text())["prompts"]["adaptation"]
    assert again["cache_hit"] is True and again["steps"] == adaptation["steps"]
    assert again["key"] == adaptation["key"]


def test_without_adapt_nothing_is_adapted(phantom, tmp_path):
    assert segment(phantom, tmp_path / "out") == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "adaptation" not in report["prompts"]


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--prompts", "mask-ring", "--adapt", "5"], "--prompts mask-ring has no model to adapt"),
        (["--prompts", "registration", "--adapt", "5"], "has no model to adapt"),
        (["--adapt", "-3"], "expected a number of seconds >= 0"),
        (["--adapt", "nan"], "expected a number of seconds >= 0"),
    ],
)
def test_bad_adapt_is_refused_with_exit_2(phantom, tmp_path, capsys, extra, expected):
    assert segment(phantom, tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "out" / "report.json").exists()
