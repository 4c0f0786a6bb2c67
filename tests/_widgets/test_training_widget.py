"""GUI tests of the training widget: real child processes, progress, stop, checkpoint hand-off."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from napari_fob._widgets.annotator import AnnotatorWidget
from napari_fob._widgets.training import TrainingWidget

pytestmark = pytest.mark.gui

# A stand-in trainer printing the same machine-readable lines as `fob train`, so the widget's
# plumbing is tested in a second; the real trainer is run by the last test.
FAKE_TRAINER = """
import signal, sys, time
from pathlib import Path
out, steps, ignore_term = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
if ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("loading data", flush=True)
for step in range(1, steps + 1):
    print(f"PROGRESS step={step} total={steps} loss={1.0 / step:.4f} lr=0.0001", flush=True)
    sys.stderr.write(f"\\rtrain {step}/{steps}")
    if step == 2:
        out.mkdir(parents=True, exist_ok=True)
        (out / "latest.pt").write_bytes(b"checkpoint")
        print(f"CHECKPOINT step=2 kind=latest path={out / 'latest.pt'}", flush=True)
    time.sleep(0.05 if steps < 100 else 0.2)
print("done", flush=True)
"""


def _fake_argv(tmp_path: Path, steps: int, ignore_term: bool = False) -> list[str]:
    script = tmp_path / "fake_train.py"
    script.write_text(textwrap.dedent(FAKE_TRAINER))
    return [
        sys.executable,
        "-u",
        str(script),
        str(tmp_path / "run"),
        str(steps),
        str(int(ignore_term)),
    ]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped) counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


@pytest.fixture
def widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    w = TrainingWidget(viewer)
    viewer.window.add_dock_widget(w, name="FoB training")
    yield w
    w.shutdown()


def test_follows_progress_and_offers_checkpoint(widget, qtbot, tmp_path):
    with qtbot.waitSignal(widget.finished, timeout=20_000) as finished:
        widget.start_command(_fake_argv(tmp_path, steps=5))
        assert widget.is_running()
    assert finished.args == [0]
    assert not widget.is_running()
    assert (widget._progress.value(), widget._progress.maximum()) == (5, 5)
    assert widget._metrics.text() == "loss 0.2   lr 0.0001"
    log = widget._log.toPlainText()
    assert "loading data" in log and "done" in log and "train 5/5" in log
    assert "PROGRESS" not in log  # shown by the bar instead
    expected = tmp_path / "run" / "latest.pt"
    assert widget.checkpoint() == expected
    assert widget._use.isEnabled()
    with qtbot.waitSignal(widget.checkpoint_ready) as ready:
        assert widget.offer_checkpoint() == expected
    assert ready.args == [str(expected)]
    assert "no annotator widget" in widget._log.toPlainText()


def test_offer_sets_the_docked_annotator(widget, qtbot, tmp_path):
    ckpt = tmp_path / "out" / "best.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"x")
    widget._out.setText(str(tmp_path / "out"))
    annotator = AnnotatorWidget(widget._viewer)
    widget._viewer.window.add_dock_widget(annotator, name="FoB annotator")
    assert widget.offer_checkpoint() == ckpt
    assert annotator.choice().prompts == "fob"
    assert annotator.choice().fob_checkpoint == str(ckpt)


def test_stop_terminates_the_child(widget, qtbot, tmp_path):
    widget.start_command(_fake_argv(tmp_path, steps=1000))
    qtbot.waitUntil(lambda: widget._status.step >= 3, timeout=20_000)
    qtbot.waitUntil(lambda: widget._live.text().startswith("train "), timeout=5_000)
    pid = widget._process.processId()
    assert _alive(pid)
    with qtbot.waitSignal(widget.finished, timeout=10_000):
        widget.stop()
    assert not widget.is_running()
    assert not _alive(pid)
    # the checkpoint written before the stop is still offered
    assert widget.checkpoint() == tmp_path / "run" / "latest.pt"
    assert widget._start.isEnabled() and not widget._stop.isEnabled()


def test_stop_kills_a_child_that_ignores_sigterm(widget, qtbot, tmp_path):
    widget.start_command(_fake_argv(tmp_path, steps=1000, ignore_term=True))
    qtbot.waitUntil(lambda: widget._status.step >= 1, timeout=20_000)
    pid = widget._process.processId()
    with qtbot.waitSignal(widget.finished, timeout=10_000):
        widget.stop(kill_after_ms=300)
    assert not _alive(pid)


def test_close_stops_the_child(widget, qtbot, tmp_path):
    widget.start_command(_fake_argv(tmp_path, steps=1000))
    qtbot.waitUntil(lambda: widget._status.step >= 1, timeout=20_000)
    pid = widget._process.processId()
    widget.close()
    assert not widget.is_running()
    assert not _alive(pid)


def test_start_with_bad_fields_logs_and_does_not_run(widget, tmp_path):
    widget._config.setText(str(tmp_path / "nope.yaml"))
    widget.start()
    assert not widget.is_running()
    assert "nope.yaml" in widget._log.toPlainText()


def test_opens_from_the_plugin_menu(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-fob", "FoB training")
    assert isinstance(widget, TrainingWidget)
    assert widget._viewer is not None


def _tiny_training_config(tmp_path: Path) -> Path:
    """A 6-slice volume with two labelled blobs, a manifest and a `tiny` model config."""
    yy, xx = np.mgrid[0:64, 0:64]
    organ = ((yy - 32) / 20.0) ** 2 + ((xx - 28) / 14.0) ** 2 <= 1
    blob = (yy - 18) ** 2 + (xx - 48) ** 2 <= 10**2
    rng = np.random.default_rng(0)
    # nibabel order (i, j, k): the slice axis is the last one
    image = np.stack([100.0 * organ + 200.0 * blob] * 6, axis=-1) + rng.normal(0, 5, (64, 64, 6))
    labels = np.stack([organ * 1 + blob * 2] * 6, axis=-1).astype(np.int16)
    nib.save(nib.Nifti1Image(image.astype(np.float32), np.eye(4)), tmp_path / "vol.nii.gz")
    nib.save(nib.Nifti1Image(labels, np.eye(4)), tmp_path / "lab.nii.gz")
    (tmp_path / "manifest.yaml").write_text(
        "volumes:\n  - {image: vol.nii.gz, labels: lab.nii.gz, intensity: '0,255'}\n"
    )
    config = tmp_path / "train.yaml"
    config.write_text(
        textwrap.dedent(f"""\
        model: tiny
        manifest: {tmp_path / "manifest.yaml"}
        episodes: {{label_source: gt, augment: {{enabled: false}}}}
        train: {{num_workers: 0, log_every: 1, checkpoint_every: 2, amp: false}}
        val: {{every: 0}}
        """)
    )
    return config


@pytest.mark.slow
def test_real_fob_train_writes_a_checkpoint(widget, qtbot, tmp_path):
    widget._config.setText(str(_tiny_training_config(tmp_path)))
    widget._out.setText(str(tmp_path / "run"))
    widget._iterations.setValue(4)
    widget._device.setCurrentText("cpu")
    with qtbot.waitSignal(widget.finished, timeout=120_000) as finished:
        widget.start()
        assert widget.is_running()
        qtbot.waitUntil(lambda: widget.checkpoint() is not None, timeout=120_000)
    log = widget._log.toPlainText()
    assert finished.args == [0], log
    assert widget._status.done
    assert (widget._progress.value(), widget._progress.maximum()) == (4, 4)
    assert widget._status.loss is not None and np.isfinite(widget._status.loss)
    latest = tmp_path / "run" / "latest.pt"
    assert widget.checkpoint() == latest
    state = torch.load(latest, map_location="cpu", weights_only=False)
    assert state["step"] == 4
    with qtbot.waitSignal(widget.checkpoint_ready) as ready:
        widget._use.click()
    assert ready.args == [str(latest)]


def test_closing_the_viewer_ends_the_child(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    widget = TrainingWidget(viewer)
    viewer.window.add_dock_widget(widget, name="FoB training")
    widget.start_command(_fake_argv(tmp_path, steps=1000))
    qtbot.waitUntil(lambda: widget._status.step >= 1, timeout=20_000)
    pid = widget._process.processId()
    viewer.close()
    qtbot.waitUntil(lambda: not _alive(pid), timeout=5_000)
