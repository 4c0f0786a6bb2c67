"""The "Adapt to this scan" action through napari's plugin path: real clicks, worker threads
on, the shipped FoB adapted to the abdomen sample, then used by Predict (and recorded in the
saved sidecar); Cancel stops it and keeps the form's weights."""

from __future__ import annotations

import json

import pytest
from real_input import open_annotator, press, wait, wait_idle
from test_plugin_path import paint_support

# torch before any OpenGL context (see _widgets/_mesa_guard.py)
import napari_fob.segmenters.sam  # noqa: F401
from napari_fob._widgets.adapt import AdaptPanel

pytestmark = pytest.mark.gui
KIDNEY = 3


@pytest.fixture
def opened(make_napari_viewer, qtbot):
    """The abdomen sample, the annotator docked from the plugin manager (the dock taller than
    test_plugin_path's, so the adapt panel at its foot is on screen)."""
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1300, 1000)
    viewer.open_sample("napari-fob", "abdomen-phantom")
    truth = viewer.layers["ground truth"].data
    widget = open_annotator(viewer)
    wait(200)
    yield viewer, widget, truth
    widget.close()


def panel(widget) -> AdaptPanel:
    (found,) = widget.findChildren(AdaptPanel)
    return found


def test_adapt_then_predict_uses_the_adapted_weights(opened, qtbot, tmp_path):
    viewer, widget, truth = opened
    paint_support(viewer, widget, truth, KIDNEY, half_range=2)
    panel(widget).set_budget(20)
    press(qtbot, widget, "adapt to this scan")
    qtbot.waitUntil(lambda: widget.busy, timeout=5000)
    button = panel(widget)._button
    assert not button.isEnabled()  # greyed out while the worker runs the adaptation
    wait_idle(qtbot, widget)
    assert button.isEnabled()
    assert widget._c.message.text().startswith("FoB adapted to this scan: "), (
        widget._c.message.text()
    )
    adapted = widget.session.generator
    assert widget.glue.generator_for(widget.session) is adapted
    assert not hasattr(widget.glue.generator, "adaptation")  # the form's weights stay as they are
    base_model = adapted.base.predictor.model
    assert adapted.adaptation["budget_s"] == 20.0
    assert adapted.adaptation["steps"] >= 1, adapted.adaptation
    after = adapted.predictor.model.state_dict()
    assert any(not (v == after[k]).all() for k, v in base_model.state_dict().items())
    press(qtbot, widget, "predict")
    wait_idle(qtbot, widget)
    assert widget.session.generator is adapted
    assert any(k[0] == KIDNEY for k in widget.session.prompts)
    widget.save_session(tmp_path / "session")
    saved = json.loads((tmp_path / "session" / "prompts.json").read_text())
    assert saved["generator"]["adaptation"]["steps"] == adapted.adaptation["steps"]

    press(qtbot, widget, "adapt to this scan")  # the same scan again: from the cache
    wait_idle(qtbot, widget)
    assert "from the cache" in widget._c.message.text()
    assert widget.session.generator.base is adapted.base  # adapted from the form's weights

    # another scan of the same shape: its own session, prompted with the form's weights; the
    # adaptation stays with the scan it was made on, and so does that scan's session
    scan_a, image_a = widget.session, widget._c.image.currentText()
    viewer.add_image(viewer.layers[image_a].data[::-1].copy(), name="other scan")
    widget._c.image.setCurrentText("other scan")
    press(qtbot, widget, "predict")
    wait_idle(qtbot, widget)
    assert widget.session is not scan_a and widget.session.volume.shape == scan_a.volume.shape
    assert widget.session.generator is widget.glue.generator
    assert not hasattr(widget.session.generator, "adaptation")
    widget._c.image.setCurrentText(image_a)
    press(qtbot, widget, "predict")
    wait_idle(qtbot, widget)
    assert widget.session is scan_a and scan_a.generator.base is adapted.base


def test_cancel_stops_the_adaptation_and_keeps_the_weights(opened, qtbot):
    viewer, widget, truth = opened
    paint_support(viewer, widget, truth, KIDNEY, half_range=2)
    panel(widget).set_budget(300)
    press(qtbot, widget, "adapt to this scan")
    qtbot.waitUntil(
        lambda: "steps" in str(getattr(widget.jobs.last_progress, "message", "")), timeout=60_000
    )
    supports = {z: m.copy() for z, m in widget.session.supports[KIDNEY].items()}
    assert not panel(widget)._button.isEnabled()  # greyed out while it adapts
    with pytest.raises(ValueError, match="Busy"):  # and refused if reached another way
        panel(widget).adapt()
    assert widget.session.supports[KIDNEY].keys() == supports.keys()
    press(qtbot, widget, "cancel")
    wait_idle(qtbot, widget, timeout_s=30)
    assert "cancelled" in widget._c.message.text()
    assert not hasattr(widget.glue.generator, "adaptation")


def test_a_zero_budget_is_refused_with_a_message(opened, qtbot):
    viewer, widget, truth = opened
    paint_support(viewer, widget, truth, KIDNEY, half_range=2)
    panel(widget).set_budget(0)
    press(qtbot, widget, "adapt to this scan")
    wait(100)
    assert "budget above 0" in widget._c.message.text() and not widget.busy
