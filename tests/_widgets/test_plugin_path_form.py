"""What a user meets first when the annotator opens from the Plugins menu: the support layer and
the sample's supports, names and range, the window, the buttons' keys, Cancel, 3D, colours, and
File > Save of label layers. Real clicks and key presses; the widget from the plugin manager.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from qtpy.QtCore import Qt
from real_input import button, open_annotator, press, wait, wait_idle

# torch before any OpenGL context (see _widgets/_mesa_guard.py)
import napari_fob.segmenters.sam  # noqa: F401
from napari_fob._widgets import layers as L

pytestmark = pytest.mark.gui
IMAGE = "abdomen CT phantom"


@pytest.fixture
def opened(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-fob", "abdomen-phantom")
    widget = open_annotator(viewer)
    wait(100)
    yield viewer, widget
    widget.close()


def test_a_support_painted_while_the_layers_are_added_sets_the_range(make_napari_viewer):
    # the layers come one per event-loop turn: a stroke on 'FoB support' before the last one
    # exists must still put the range around it (it went unseen, leaving the whole volume)
    viewer = make_napari_viewer(show=True)
    viewer.add_image(np.zeros((40, 32, 32), np.float32), name="scan")
    widget = open_annotator(viewer, settle=False)
    assert widget.creating_layers and L.SUPPORT_LAYER in viewer.layers
    support = viewer.layers[L.SUPPORT_LAYER]
    data = np.zeros(support.data.shape, np.uint8)
    data[25, 10:20, 10:20] = 1
    support.data = data  # what a finished brush stroke leaves
    end = 100
    while widget.creating_layers and end:
        wait(20)
        end -= 1
    r = L.RANGE_AROUND_SUPPORT
    assert (widget._c.z_from.value(), widget._c.z_to.value()) == (25 - r, min(39, 25 + r))
    widget.close()


def test_sample_supports_names_and_range_are_taken_on_open(opened):
    viewer, widget = opened
    sample = np.asarray(viewer.layers["support"].data)
    ours = np.asarray(viewer.layers[L.SUPPORT_LAYER].data)
    np.testing.assert_array_equal(ours, sample)
    assert not viewer.layers["support"].visible  # one support layer in sight, the one used
    assert widget._c.name.text() == "liver"
    assert "Supports taken from layer 'support'" in widget._c.message.text()
    (z,) = L.painted_slices(sample, 1)
    r = L.RANGE_AROUND_SUPPORT
    assert (widget._c.z_from.value(), widget._c.z_to.value()) == (z - r, z + r)
    widget._c.label.setValue(2)
    assert widget._c.name.text() == "spleen"
    (z2,) = L.painted_slices(sample, 2)
    assert (widget._c.z_from.value(), widget._c.z_to.value()) == (z2 - r, z2 + r)


def test_a_range_typed_by_the_user_is_kept(opened, qtbot):
    viewer, widget = opened
    box = widget._c.z_to
    box.selectAll()
    qtbot.keyClicks(box.lineEdit(), "40")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    assert box.value() == 40
    support = viewer.layers[L.SUPPORT_LAYER]
    data = np.asarray(support.data).copy()
    data[5, 60:70, 60:70] = 1
    support.data = data
    assert box.value() == 40


def test_window_follows_the_layer_until_typed(opened, qtbot):
    viewer, widget = opened
    image = viewer.layers[IMAGE]
    image.contrast_limits = (-100.0, 150.0)
    wait(20)
    assert (widget._c.low.value(), widget._c.high.value()) == (-100.0, 150.0)
    low = widget._c.low
    low.selectAll()
    qtbot.keyClicks(low.lineEdit(), "-50")
    qtbot.keyClick(low, Qt.Key.Key_Return)
    assert not widget._c.window_from_layer.isChecked()
    assert "no longer follows" in widget._c.message.text()
    image.contrast_limits = (0.0, 80.0)
    wait(20)
    assert widget._c.low.value() == -50.0
    qtbot.mouseClick(widget._c.window_from_layer, Qt.MouseButton.LeftButton)
    assert widget._c.window_from_layer.isChecked()
    assert (widget._c.low.value(), widget._c.high.value()) == (0.0, 80.0)


def test_no_button_advertises_a_key_a_napari_layer_owns(opened):
    _, widget = opened
    assert button(widget, "commit slice").text() == "Commit slice (Ctrl+Enter)"
    assert button(widget, "predict").text() == "Predict prompts (Ctrl+P)"


def test_cancel_says_what_was_kept(opened, qtbot):
    viewer, widget = opened
    widget._c.z_from.setValue(0)
    widget._c.z_to.setValue(63)
    press(qtbot, widget, "predict")
    qtbot.waitUntil(lambda: widget.jobs.last_progress is not None, timeout=60_000)
    qtbot.waitUntil(lambda: widget.jobs.last_progress is not None
                    and not str(getattr(widget.jobs.last_progress, "message", "Loading"))
                    .startswith("Loading"), timeout=60_000)  # fmt: skip
    press(qtbot, widget, "cancel")
    wait_idle(qtbot, widget)
    text = widget._c.message.text()
    assert "cancelled" in text and ("are kept" in text or "nothing changed" in text), text


def test_3d_view_hides_points_and_rings(opened, qtbot):
    viewer, widget = opened
    qt_viewer = viewer.window._qt_viewer
    toggle = qt_viewer.viewerButtons.ndisplayButton
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert viewer.dims.ndisplay == 3
    for name in (L.FG_LAYER, L.BG_LAYER, L.RING_LAYER):
        assert not viewer.layers[name].visible
    assert viewer.layers[L.OUTPUT_LAYER].visible
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert viewer.dims.ndisplay == 2
    for name in (L.FG_LAYER, L.BG_LAYER, L.RING_LAYER):
        assert viewer.layers[name].visible


def test_committed_labels_do_not_take_the_truths_colours(opened):
    viewer, _ = opened
    truth, ours = viewer.layers["ground truth"], viewer.layers[L.OUTPUT_LAYER]
    for value in (1, 2, 3, 4):
        a = np.asarray(truth.colormap.map(np.array([value])))[0, :3]
        b = np.asarray(ours.colormap.map(np.array([value])))[0, :3]
        assert np.abs(a - b).max() > 0.15, value


def test_file_save_of_our_labels_and_of_a_new_napari_labels_layer(opened, qtbot, tmp_path):
    viewer, widget = opened
    image = viewer.layers[IMAGE]
    affine = np.asarray(image.metadata["napari_fob"]["affine"])
    viewer.layers.selection.active = viewer.layers[L.OUTPUT_LAYER]
    out = tmp_path / "ours.nii.gz"
    viewer.layers.save(str(out), selected=True)  # what File > Save Selected Layers calls
    assert np.allclose(nib.load(out).affine, affine)
    # a Labels layer made with napari's own "new labels" button, on top of the image
    viewer.layers.selection.active = image
    qtbot.mouseClick(
        viewer.window._qt_viewer.layerButtons.newLabelsButton, Qt.MouseButton.LeftButton
    )
    new = viewer.layers.selection.active
    assert new.__class__.__name__ == "Labels" and not new.metadata
    new.data[10, 20:30, 20:30] = 3
    out2 = tmp_path / "drawn.nii.gz"
    viewer.layers.save(str(out2), selected=True)
    img = nib.load(out2)
    assert np.allclose(img.affine, affine)
    assert int(np.asarray(img.dataobj).max()) == 3
    # and a label file opens as Labels on the same geometry
    viewer.open(str(out2), plugin="napari-fob")
    opened_layer = viewer.layers[-1]
    assert opened_layer.__class__.__name__ == "Labels"
    assert opened_layer.data.dtype == np.uint8 and int(opened_layer.data.max()) == 3
    assert tuple(opened_layer.scale) == pytest.approx(tuple(image.scale))


def test_chain_mode_commits_the_painted_slice(opened, qtbot):
    viewer, widget = opened
    widget._c.prompts.setCurrentIndex(1)  # mask-ring: fast
    widget._c.segmenter.setCurrentText("random-walker")
    support = np.asarray(viewer.layers[L.SUPPORT_LAYER].data)
    (z,) = L.painted_slices(support, 1)
    widget._c.mode.setCurrentText("chain")
    widget._c.z_from.setValue(z - 2)
    widget._c.z_to.setValue(z + 2)
    press(qtbot, widget, "predict")
    wait_idle(qtbot, widget)
    out = np.asarray(viewer.layers[L.OUTPUT_LAYER].data)
    np.testing.assert_array_equal(out[z] == 1, support[z] == 1)  # as painted, before Commit
    assert all((out[s] == 1).any() for s in (z - 2, z - 1, z + 1, z + 2))


def test_errors_of_an_action_are_reported_not_raised(opened, qtbot):
    viewer, widget = opened
    press(qtbot, widget, "commit slice")  # nothing predicted yet: a refusal, in the message
    assert widget._c.message.text()
    widget._c.prompts.setCurrentIndex(1)
    press(qtbot, widget, "predict")
    wait_idle(qtbot, widget)
    widget.reported(lambda: widget.save_session("/proc/napari-fob/session"))  # OSError
    assert "/proc/napari-fob" in widget._c.message.text()

    def broken() -> None:
        raise RuntimeError("boom")

    widget.reported(broken)
    assert "Unexpected error (RuntimeError: boom)" in widget._c.message.text()


def test_the_registration_baseline_is_offered_and_predicts(opened, qtbot):
    viewer, widget = opened
    widget._c.prompts.setCurrentText("registration baseline")
    assert widget.choice().prompts == "registration"
    support = np.asarray(viewer.layers[L.SUPPORT_LAYER].data)
    (z,) = L.painted_slices(support, 1)
    widget._c.z_from.setValue(z - 2)
    widget._c.z_to.setValue(z + 2)
    press(qtbot, widget, "predict")
    wait_idle(qtbot, widget)
    origins = set(viewer.layers[L.BG_LAYER].features["origin"])
    assert len(origins) == 1 and origins != {"mask-ring"}, origins
    assert "registration" in widget._c.status.text()


def test_non_finite_voxels_are_said_when_the_session_starts(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    data = np.random.default_rng(0).normal(100, 10, (12, 48, 48)).astype(np.float32)
    data[0, :3, :3] = np.nan
    viewer.add_image(data, name="scan")
    widget = open_annotator(viewer)
    wait(100)
    support = viewer.layers[L.SUPPORT_LAYER]
    painted = np.zeros(data.shape, np.uint8)
    painted[6, 18:30, 18:30] = 1
    support.data = painted
    widget._c.prompts.setCurrentIndex(1)
    said = []
    widget._c.message.setText = lambda text, set_text=widget._c.message.setText: (
        said.append(text), set_text(text)
    )  # every message shown, not only the last
    press(qtbot, widget, "predict")
    wait_idle(qtbot, widget)
    assert any("'scan' holds 9 NaN/inf voxel(s)" in text for text in said), said
    widget.close()
