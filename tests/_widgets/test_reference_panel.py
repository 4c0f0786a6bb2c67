""" "Supports from another scan" in the annotator, opened from napari's plugin manager: a second,
labelled phantom (another seed, grid and voxel size) is the reference; its button puts FoB's
prompts on the current volume in the worker, one undo step, as a normal prediction does."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt
from real_input import open_annotator, wait, wait_idle

# torch before any OpenGL context (see _widgets/_mesa_guard.py)
import napari_fob.segmenters.sam  # noqa: F401
from napari_fob._widgets import layers as L
from napari_fob._widgets.reference import ReferencePanel, extent_message
from napari_fob.core.volume import Volume
from napari_fob.samples.phantom import make_abdomen_phantom, phantom_affine

pytestmark = pytest.mark.gui
LIVER = 1


@pytest.fixture
def opened(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-fob", "abdomen-phantom")
    truth = np.asarray(viewer.layers["ground truth"].data)
    shape, spacing = (48, 120, 128), (3.2, 1.9, 1.8)
    data, labels, _ = make_abdomen_phantom(seed=1, shape=shape, spacing=spacing)
    other = Volume.from_array(data, affine=phantom_affine(shape, spacing))
    meta = {"napari_fob": other.to_metadata()}
    viewer.add_image(data, name="other scan", scale=spacing, metadata=meta)
    viewer.add_labels(labels, name="other scan labels", scale=spacing, metadata=meta)
    widget = open_annotator(viewer)
    widget._c.image.setCurrentText("abdomen CT phantom")
    wait(200)
    yield viewer, widget, truth
    widget.close()


def test_prompts_from_another_scan_appear_on_the_current_volume(opened, qtbot):
    viewer, widget, truth = opened
    panel = widget.findChild(ReferencePanel)
    assert panel is not None and panel.title() == "Supports from another scan"
    panel.choose("other scan", "other scan labels")
    zs = np.flatnonzero((truth == LIVER).any(axis=(1, 2)))
    lo, hi = int(zs[len(zs) // 2]) - 3, int(zs[len(zs) // 2]) + 3
    widget._c.label.setValue(LIVER)
    widget._c.auto_extent.setChecked(False)
    widget._c.z_from.setValue(lo)
    widget._c.z_to.setValue(hi)
    qtbot.mouseClick(panel._button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, widget)
    session = widget.session
    painted = set(session.supports.get(LIVER, {}))  # the sample's own support: left as painted
    expected = [z for z in range(lo, hi + 1) if z not in painted]
    assert sorted(z for (lab, z) in session.prompts.keys() if lab == LIVER) == expected
    p = session.prompts[(LIVER, lo)]
    assert p.origin == "fob" and len(p.bg) == 10
    pts = np.asarray(viewer.layers[L.BG_LAYER].data)
    zz, counts = np.unique(np.round(pts[:, 0]).astype(int), return_counts=True)
    assert dict(zip(zz.tolist(), counts.tolist())) == {z: 10 for z in expected}
    message = widget._c.message.text()
    assert message == f"Prompts from another scan: {len(expected)} slice(s), {lo} to {hi}."
    assert session.undo() and not [k for k in session.prompts.keys() if k[0] == LIVER]


def test_the_annotated_volume_cannot_be_its_own_reference(opened, qtbot):
    viewer, widget, _ = opened
    panel = widget.findChild(ReferencePanel)
    panel.choose("abdomen CT phantom", "ground truth")
    qtbot.mouseClick(panel._button, Qt.MouseButton.LeftButton)
    assert "the reference must be another scan" in widget._c.message.text()
    assert not widget.busy


def test_auto_extent_says_how_sure_it_is():
    from napari_fob.session.reference import Extent

    unsure = Extent(list(range(4, 9)), "body-relative", False, "the body reaches an end")
    assert extent_message(unsure, 5).endswith("NOT SURE: the body reaches an end).")
    sure = Extent(list(range(4, 9)), "body-relative", True)
    assert "4 to 8 (extent found from the body's extent in both scans" in extent_message(sure, 5)
