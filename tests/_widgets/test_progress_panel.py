"""The dock's progress row through napari's plugin path: shown while a job runs with slices done /
total and time left, Cancel beside it (a real click), hidden at the end."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt
from real_input import open_annotator, press, wait, wait_idle
from test_plugin_path import LIVER, paint_support

# torch before any OpenGL context (see _widgets/_mesa_guard.py)
import napari_fob.segmenters.sam  # noqa: F401
from napari_fob._widgets.progress_panel import progress_text, time_left

pytestmark = pytest.mark.gui


def test_time_left_and_text():
    assert time_left(10.0, 5, 20) == pytest.approx(30.0)
    assert time_left(3.0, 0, 20) is None
    assert (
        progress_text("Predict prompts", 5, 20, 30.0)
        == "Predict prompts: 5 / 20 slices · 30 s left"
    )
    assert progress_text("Commit range", 1, 60, 600.0).endswith("10 min left")
    assert progress_text("Predict prompts", None, None, None) == "Predict prompts…"


def test_progress_row_follows_the_job_and_cancel_stops_it(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1300, 900)
    viewer.open_sample("napari-fob", "abdomen-phantom")
    truth = np.asarray(viewer.layers["ground truth"].data)
    widget = open_annotator(viewer)
    panel = widget._progress
    assert not panel.isVisible()
    paint_support(viewer, widget, truth, LIVER, half_range=12)
    seen = []
    press(qtbot, widget, "predict")
    qtbot.waitUntil(lambda: panel.isVisible(), timeout=5000)
    qtbot.waitUntil(lambda: " / " in panel.label.text() or not widget.busy, timeout=120000)
    seen.append(panel.label.text())
    wait_idle(qtbot, widget)
    assert not panel.isVisible()
    assert any(t.startswith("Predicting prompts: ") and " slices" in t for t in seen), seen
    # a long commit, cancelled with the row's own button once some slices are done
    widget._c.segmenter.setCurrentText("random-walker")
    press(qtbot, widget, "commit range")
    qtbot.waitUntil(lambda: " / " in panel.label.text() and panel.bar.value() >= 1,
                    timeout=120000)  # fmt: skip
    assert "left" in panel.label.text()
    qtbot.mouseClick(panel.cancel, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, widget)
    assert not panel.isVisible()
    assert "cancelled" in widget._c.message.text()
    widget.close()


def test_closing_the_dock_while_a_job_runs_starts_nothing_and_raises_nothing(
    make_napari_viewer, qtbot
):
    # pytest-qt fails the test on an exception in a Qt slot: the worker's last reports after
    # the close (refresh, the progress row, a queued prefetch) must be dropped quietly
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-fob", "abdomen-phantom")
    truth = np.asarray(viewer.layers["ground truth"].data)
    widget = open_annotator(viewer)
    paint_support(viewer, widget, truth, LIVER, half_range=10)
    widget._c.segmenter.setCurrentText("random-walker")
    press(qtbot, widget, "predict")
    wait_idle(qtbot, widget)
    press(qtbot, widget, "commit range")
    qtbot.waitUntil(lambda: widget._progress.bar.value() >= 1, timeout=120000)
    job = widget.jobs.job
    widget.close()
    qtbot.waitUntil(lambda: job.finished, timeout=120000)
    wait(500)
    assert widget.jobs.closed and widget.jobs.queued is None
    assert widget.jobs.job is job  # nothing new was started after the close
