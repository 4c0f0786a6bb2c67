"""The annotator as napari really loads it: from the plugin manager (the Plugins menu), with the
worker threads on, driven by real mouse events on the canvas and real button clicks.

napari hands plugin widgets a proxy of the viewer on which every layer lookup is a new object;
these tests are the regression guard for the bookkeeping that once multiplied the point editors
(40 background points per slice instead of 10, drags leaving copies, Undo unable to undo).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from real_input import (
    click,
    data_to_canvas,
    drag,
    open_annotator,
    press,
    wait,
    wait_idle,
)

# torch before any OpenGL context (see _widgets/_mesa_guard.py)
import napari_fob.segmenters.sam  # noqa: F401
from napari_fob._widgets import layers as L

pytestmark = pytest.mark.gui
LIVER, SPLEEN = 1, 2
N_BG = 10


@pytest.fixture
def opened(make_napari_viewer, qtbot):
    """The abdomen sample in a shown viewer, the annotator docked from the plugin manager."""
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1300, 900)
    viewer.open_sample("napari-fob", "abdomen-phantom")
    truth = np.asarray(viewer.layers["ground truth"].data)
    widget = open_annotator(viewer)
    wait(200)
    yield viewer, widget, truth
    widget.close()


def paint_support(viewer, widget, truth, label, half_range=3):
    """Paint `label`'s middle slice on the support layer (what a finished brush stroke leaves;
    other supports of `label` wiped) and set the range around it; returns the painted slice."""
    zs = np.flatnonzero((truth == label).any(axis=(1, 2)))
    z = int(zs[len(zs) // 2])
    support = viewer.layers[L.SUPPORT_LAYER]
    data = np.asarray(support.data).copy()
    data[data == label] = 0
    data[z][truth[z] == label] = label
    support.data = data
    widget._c.label.setValue(label)
    widget._c.z_from.setValue(z - half_range)
    widget._c.z_to.setValue(z + half_range)
    viewer.dims.set_current_step(0, z)
    return z


def bg_per_slice(viewer):
    pts = np.asarray(viewer.layers[L.BG_LAYER].data)
    zz, counts = np.unique(np.round(pts[:, 0]).astype(int), return_counts=True)
    return dict(zip(zz.tolist(), counts.tolist()))


def test_support_layer_is_there_when_the_widget_opens(opened):
    viewer, widget, _ = opened
    names = [layer.name for layer in viewer.layers]
    assert names.count(L.SUPPORT_LAYER) == 1
    assert names.count(L.BG_LAYER) == 1 and names.count(L.FG_LAYER) == 1


def test_predict_gives_one_ring_per_slice_and_one_undo_removes_it(opened, qtbot, tmp_path):
    viewer, widget, truth = opened
    z = paint_support(viewer, widget, truth, LIVER)
    press(qtbot, widget, "predict")
    wait_idle(qtbot, widget)
    counts = bg_per_slice(viewer)
    assert sorted(counts) == [s for s in range(z - 3, z + 4) if s != z]
    assert set(counts.values()) == {N_BG}
    statuses = {e.z: e.status for e in widget._review.entries}
    assert "edited" not in statuses.values()
    assert {statuses[s] for s in counts} == {"predicted"}
    # the saved prompts hold each point once
    widget.save_session(tmp_path / "session")
    saved = json.loads((tmp_path / "session" / "prompts.json").read_text())
    saved_bg = {r["slice"]: len(r["prompts"]["bg"]) for r in saved["slices"] if r["prompts"]}
    assert saved_bg == counts
    assert {r["status"] for r in saved["slices"]} == {"predicted"}
    widget.save_session(tmp_path / "session")  # saving again into the same folder: the loop
    assert "Session saved" in widget._c.message.text()
    session = widget.session
    press(qtbot, widget, "undo")  # one Undo takes the whole prediction back
    wait(100)
    assert not [k for k in session.prompts if k[0] == LIVER]
    assert len(viewer.layers[L.BG_LAYER].data) == 0
    press(qtbot, widget, "redo")
    wait(100)
    assert bg_per_slice(viewer) == counts

    # a second structure does not multiply points either
    paint_support(viewer, widget, truth, SPLEEN)
    press(qtbot, widget, "predict")
    wait_idle(qtbot, widget)
    spleen = [k for k in session.prompts if k[0] == SPLEEN]
    fg = viewer.layers[L.FG_LAYER]
    assert len(fg.data) == sum(len(session.prompts[k].fg) for k in spleen)
    assert set(bg_per_slice(viewer).values()) == {N_BG}

    press(qtbot, widget, "undo")
    wait(100)
    assert not [k for k in session.prompts if k[0] == SPLEEN]
    assert len(viewer.layers[L.BG_LAYER].data) == 0  # the spleen's layers are shown, now empty
    widget._c.label.setValue(LIVER)
    wait(50)
    assert bg_per_slice(viewer) == counts


def test_real_mouse_drag_moves_exactly_one_point(opened, qtbot):
    viewer, widget, truth = opened
    widget._c.prompts.setCurrentIndex(1)  # mask-ring: fast and deterministic
    z = paint_support(viewer, widget, truth, LIVER)
    press(qtbot, widget, "predict")
    wait_idle(qtbot, widget)
    target = z + 2
    viewer.dims.set_current_step(0, target)
    bg = viewer.layers[L.BG_LAYER]
    viewer.layers.selection.active = bg
    bg.mode = "select"
    wait(100)
    before = widget.session.prompts[(LIVER, target)].bg.copy()
    rows = np.flatnonzero(np.round(bg.data[:, 0]).astype(int) == target)
    row = int(rows[3])
    index = int(bg.features["index"].iloc[row])
    start = data_to_canvas(viewer, bg, bg.data[row])
    goal = data_to_canvas(viewer, bg, bg.data[row] + np.array([0.0, 6.0, 4.0]))
    drag(viewer, start, goal)
    wait(100)
    after = widget.session.prompts[(LIVER, target)].bg
    moved = np.flatnonzero(np.any(np.abs(after - before) > 1e-6, axis=1))
    assert moved.tolist() == [index]
    assert len(after) == N_BG
    assert np.linalg.norm(after[index] - before[index]) > 3.0
    assert set(bg_per_slice(viewer).values()) == {N_BG}  # no copy left behind
    assert widget.session.slice_status(LIVER, target) == "edited"
    press(qtbot, widget, "undo")
    wait(100)
    np.testing.assert_allclose(widget.session.prompts[(LIVER, target)].bg, before)


def test_ctrl_click_adds_fg_and_ctrl_shift_click_adds_bg(opened, qtbot):
    viewer, widget, truth = opened
    widget._c.prompts.setCurrentIndex(1)
    z = paint_support(viewer, widget, truth, LIVER)
    press(qtbot, widget, "predict")
    wait_idle(qtbot, widget)
    target = z + 1
    viewer.dims.set_current_step(0, target)
    image = viewer.layers["abdomen CT phantom"]
    viewer.layers.selection.active = image  # a layer on which a plain click does nothing
    wait(100)
    ps = widget.session.prompts[(LIVER, target)]
    n_fg, n_bg = len(ps.fg), len(ps.bg)
    rows, cols = np.nonzero(truth[target] == LIVER)
    spot = np.array([target, rows.mean(), cols.mean()])
    click(viewer, data_to_canvas(viewer, image, spot), mods=("Control",))
    wait(100)
    ps = widget.session.prompts[(LIVER, target)]
    assert (len(ps.fg), len(ps.bg)) == (n_fg + 1, n_bg)
    np.testing.assert_allclose(ps.fg[-1], spot[1:], atol=1.0)
    outside = np.array([target, 5.0, 5.0])
    click(viewer, data_to_canvas(viewer, image, outside), mods=("Control", "Shift"))
    wait(100)
    ps = widget.session.prompts[(LIVER, target)]
    assert (len(ps.fg), len(ps.bg)) == (n_fg + 1, n_bg + 1)
    assert len(viewer.layers[L.FG_LAYER].data) == sum(
        len(p.fg) for k, p in widget.session.prompts.items() if k[0] == LIVER
    )


def test_a_stroke_painted_during_a_running_commit_is_kept(opened, qtbot):
    viewer, widget, truth = opened
    widget._c.prompts.setCurrentIndex(1)
    widget._c.segmenter.setCurrentText("random-walker")
    z = paint_support(viewer, widget, truth, LIVER, half_range=8)
    press(qtbot, widget, "predict")
    wait_idle(qtbot, widget)
    target = z + 6
    viewer.dims.set_current_step(0, target)
    output = viewer.layers[L.OUTPUT_LAYER]
    viewer.layers.selection.active = output
    output.mode = "paint"
    output.brush_size = 6
    output.selected_label = 7
    wait(100)
    far = np.array([target, 12.0, 12.0])  # a corner outside the body
    assert truth[target, 12, 12] == 0
    press(qtbot, widget, "commit range")
    busy_during_stroke = widget.busy
    drag(viewer, data_to_canvas(viewer, output, far),
         data_to_canvas(viewer, output, far + np.array([0.0, 0.0, 10.0])))  # fmt: skip
    wait_idle(qtbot, widget)
    assert busy_during_stroke  # the stroke really went in while the commit ran
    data = np.asarray(output.data)
    assert (data[target] == 7).sum() > 20  # the stroke is still there
    assert (data == LIVER).any(axis=(1, 2)).sum() >= 10  # and the commit wrote its slices
    assert data is widget.session.labels  # one buffer, written on the main thread only
