"""Qt-free tests of the helpers behind the training widget: command line, line parsing, lookup."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from napari_fob.training.process import (
    LineSplitter,
    TrainingStatus,
    TrainRequest,
    build_command,
    find_checkpoint,
    format_command,
    parse_line,
)


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text("model: tiny\n")
    return path


def test_parse_progress_line():
    event = parse_line("PROGRESS step=120 total=1000 loss=0.53 lr=1e-4\n")
    assert event is not None
    assert event.kind == "PROGRESS"
    assert event.fields == {"step": "120", "total": "1000", "loss": "0.53", "lr": "1e-4"}


def test_parse_checkpoint_path_with_spaces():
    event = parse_line("CHECKPOINT step=40 path=/data/my runs/latest.pt")
    assert event is not None
    assert event.fields == {"step": "40", "path": "/data/my runs/latest.pt"}


@pytest.mark.parametrize(
    "line",
    [
        "",
        "   ",
        "PROGRESS",
        "Training:  12%|#2        | 120/1000 [00:03<00:22, 39.1it/s]",
        "progress step=1 total=2",
        "PROGRESS step=1 garbage",
        "UserWarning: something step=1",
        "loss=0.5 lr=1e-4",
    ],
)
def test_parse_ignores_other_lines(line):
    assert parse_line(line) is None


def test_status_follows_a_run(tmp_path):
    status = TrainingStatus()
    lines = [
        "loading data",
        "PROGRESS step=1 total=4 loss=1.5 lr=0.0001",
        "PROGRESS step=2 total=4 loss=1.25 lr=0.0001",
        f"CHECKPOINT step=2 kind=latest path={tmp_path / 'latest.pt'}",
        "PROGRESS step=4 total=4 loss=0.75 lr=9.5e-05",
        "VALIDATION step=4 dice=0.8125 ring_error=3.5 segmenter=rw",
        f"CHECKPOINT step=4 kind=latest path={tmp_path / 'latest.pt'}",
        f"CHECKPOINT step=4 kind=best path={tmp_path / 'best.pt'}",
        f"DONE step=4 path={tmp_path / 'latest.pt'}",
    ]
    kinds = [None if (e := status.feed(line)) is None else e.kind for line in lines]
    assert kinds == [None, "PROGRESS", "PROGRESS", "CHECKPOINT", "PROGRESS", "VALIDATION"] + [
        "CHECKPOINT",
        "CHECKPOINT",
        "DONE",
    ]
    assert (status.step, status.total) == (4, 4)
    assert status.loss == pytest.approx(0.75)
    assert status.lr == pytest.approx(9.5e-5)
    assert status.validation == {"dice": 0.8125, "ring_error": 3.5}
    assert status.checkpoint == tmp_path / "best.pt"  # the validated one is offered
    assert status.checkpoints["latest"] == tmp_path / "latest.pt"
    assert status.done


def test_status_without_validation_offers_latest(tmp_path):
    status = TrainingStatus()
    assert status.checkpoint is None
    status.feed(f"CHECKPOINT step=2 kind=latest path={tmp_path / 'latest.pt'}")
    assert status.checkpoint == tmp_path / "latest.pt"
    assert not status.done


def test_build_command_full(tmp_path):
    config = _config(tmp_path)
    request = TrainRequest(
        config=config,
        out=tmp_path / "run",
        iterations=7,
        device="cpu",
        resume=True,
        overrides=("optim.lr=0.001",),
    )
    argv = build_command(request, python="/py")
    assert argv[:5] == ["/py", "-u", "-m", "napari_fob.cli", "train"]
    assert argv[5:] == [
        "--config", str(config), "--out", str(tmp_path / "run"), "--iterations", "7",
        "--device", "cpu", "--set", "optim.lr=0.001", "--resume",
    ]  # fmt: skip
    assert "--resume" in format_command(argv)


def test_build_command_defaults_leave_config_values(tmp_path):
    argv = build_command(TrainRequest(config=_config(tmp_path)))
    assert argv[0] == sys.executable
    assert "--out" not in argv and "--iterations" not in argv and "--resume" not in argv


def test_resume_without_config_uses_the_runs_own(tmp_path):
    out = tmp_path / "run"
    request = TrainRequest(config=None, out=out, resume=True, device="cuda:1")
    with pytest.raises(FileNotFoundError, match="config.yaml"):
        build_command(request)
    out.mkdir()
    (out / "config.yaml").write_text("model: tiny\n")
    argv = build_command(request)
    assert "--config" not in argv and argv[-1] == "--resume"
    assert argv[argv.index("--device") + 1] == "cuda:1"
    with pytest.raises(FileNotFoundError, match="config"):
        build_command(TrainRequest(config=None, out=out))  # a fresh run needs one


def test_built_command_reaches_fob_cli(tmp_path):
    # the module path must be runnable: "--help" of the same prefix exits 0
    argv = build_command(TrainRequest(config=_config(tmp_path)))
    done = subprocess.run(argv[:4] + ["--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "fob" in done.stdout


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"config": Path("missing.yaml")}, FileNotFoundError, "missing.yaml"),
        ({"device": "tpu"}, ValueError, "tpu"),
        ({"iterations": 0}, ValueError, "iterations"),
        ({"overrides": ("lr",)}, ValueError, "key=value"),
    ],
)
def test_bad_request_names_the_field(tmp_path, kwargs, error, words):
    request = TrainRequest(**{"config": _config(tmp_path), **kwargs})
    with pytest.raises(error, match=words):
        build_command(request)


def test_find_checkpoint_prefers_best(tmp_path):
    assert find_checkpoint(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    latest = tmp_path / "checkpoints" / "latest.pt"
    latest.write_bytes(b"x")
    assert find_checkpoint(tmp_path) == latest
    best = tmp_path / "checkpoints" / "best.pt"
    best.write_bytes(b"x")
    assert find_checkpoint(tmp_path) == best


def test_line_splitter_joins_chunks_and_keeps_last_redraw():
    splitter = LineSplitter()
    assert splitter.feed("load") == []
    assert splitter.feed("ing data\r\nPROGRESS step=1 ") == ["loading data"]
    assert splitter.feed("total=2\n") == ["PROGRESS step=1 total=2"]
    # a tqdm bar: redraws with "\r", the live one is transient, the final one stays
    assert splitter.feed("\r 10%|#") == []
    assert splitter.feed("\r 50%|#####\r 90%") == []
    assert splitter.transient == " 50%|#####"
    assert splitter.feed("|#########\r100%|##########\n\n") == ["100%|##########"]
    assert splitter.transient == ""
    assert splitter.feed("\rbar 3/3\r") == []
    assert splitter.feed("\n") == ["bar 3/3"]
    assert splitter.feed("no newline at the end") == []
    assert splitter.flush() == ["no newline at the end"]
    assert splitter.flush() == []
