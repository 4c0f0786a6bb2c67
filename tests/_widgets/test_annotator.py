"""The annotator dock widget end to end on a crop of the abdomen phantom (Xvfb, napari viewer).

The loop runs synchronously (``NAPARI_FOB_NOTHREADS=1``) with the mask-ring generator and the
random walker, which are deterministic; one test runs the real worker path with the tiny SAM.
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_fob._widgets.annotator import AnnotatorWidget
from napari_fob._widgets.shortcuts import layer_shadows
from napari_fob.core.io import Volume
from napari_fob.prompting.generators import make_generator
from napari_fob.samples import load_sample
from napari_fob.segmenters.random_walker import RandomWalkerSegmenter

# torch (through torchvision -> triton) is imported here, before any OpenGL context: importing
# triton after Mesa's llvmpipe loaded its LLVM crashes the process (see _widgets/_mesa_guard.py).
from napari_fob.segmenters.sam import SamSegmenter, build_tiny_sam
from napari_fob.session.review import needs_look

pytestmark = pytest.mark.gui
CROP = (slice(44, 60), slice(40, 136), slice(22, 118))  # 16 x 96 x 96: the liver's top end
LIVER = 1


def cropped_sample() -> tuple[Volume, np.ndarray, dict[int, str]]:
    """The abdomen phantom cropped to CROP, with the affine moved to the crop's corner."""
    sample = load_sample("abdomen-phantom")
    image = sample.image
    starts = [s.start for s in CROP]
    offset = np.zeros(3)
    for a, file_axis in enumerate(image.axes):
        offset[file_axis] = starts[a]
    affine = np.array(image.affine, dtype=float)
    affine[:3, 3] = affine[:3, :3] @ offset + affine[:3, 3]
    data = np.ascontiguousarray(image.data[CROP])
    volume = Volume.from_array(data, affine=affine, axes=tuple(image.axes))
    return volume, np.asarray(sample.labels[CROP]), dict(sample.names)


def liver_slices(labels: np.ndarray) -> list[int]:
    return [int(z) for z in np.flatnonzero((labels == LIVER).any(axis=(1, 2)))]


@pytest.fixture
def annotator(make_napari_viewer, monkeypatch):
    monkeypatch.setenv("NAPARI_FOB_NOTHREADS", "1")
    volume, truth, names = cropped_sample()
    viewer = make_napari_viewer()
    viewer.add_image(
        volume.data, name="phantom", contrast_limits=(-160, 240), metadata=volume.to_metadata()
    )
    widget = AnnotatorWidget(viewer)
    viewer.window.add_dock_widget(widget, name="FoB annotator")
    widget.glue.set_backends(make_generator("mask-ring"), RandomWalkerSegmenter())
    layers = widget.ensure_layers()
    zs = liver_slices(truth)
    z_support = zs[len(zs) // 2]
    support = np.zeros(truth.shape, np.uint8)
    support[z_support][truth[z_support] == LIVER] = LIVER
    layers.support.data = support
    widget._c.name.setText(names[LIVER])
    lo, hi = max(zs[0], z_support - 3), min(zs[-1], z_support + 3)
    widget._c.z_from.setValue(lo)
    widget._c.z_to.setValue(hi)
    widget.test_info = {"volume": volume, "truth": truth, "support_z": z_support, "range": (lo, hi)}
    yield widget
    widget.close()


def committed_slices(widget, label: int = LIVER) -> list[int]:
    return [int(z) for z in np.flatnonzero((widget.layers.output.data == label).any(axis=(1, 2)))]


def test_predict_fills_points_and_rings_on_every_slice(annotator):
    w = annotator
    lo, hi = w.test_info["range"]
    w.predict()
    predicted = sorted(z for (lab, z) in w.session.prompts if lab == LIVER)
    expected = [z for z in range(lo, hi + 1) if z != w.test_info["support_z"]]
    assert predicted == expected
    fg, bg = w.layers.fg, w.layers.bg
    for z in expected:
        ps = w.session.prompts[(LIVER, z)]
        assert (fg.features["slice"] == z).sum() == len(ps.fg) > 0
        assert (bg.features["slice"] == z).sum() == len(ps.bg) == 10
        ring = w.editor.ring_of(z)
        assert ring.shape == (11, 3)
        np.testing.assert_allclose(ring[:-1, 1:], ps.bg)
        np.testing.assert_allclose(ring[-1], ring[0])  # closed path
    assert len(w.layers.rings.data) == len(expected)
    assert set(fg.features["origin"]) == {"mask-ring"}
    assert set(fg.features["structure"]) == {LIVER}
    rows = [e.z for e in w._review.entries]
    assert rows == list(range(lo, hi + 1))
    assert "mask-ring" in w._c.status.text() and "random walker" in w._c.status.text()


def test_moving_a_point_redraws_its_ring_and_marks_the_slice_edited(annotator):
    w = annotator
    w.predict()
    bg = w.layers.bg
    row = 13
    z, index = int(bg.features["slice"][row]), int(bg.features["index"][row])
    data = bg.data.copy()
    data[row, 1:] += (3.0, -2.0)
    bg.data = data  # what napari does at the end of a drag, minus the mouse
    new_rc = data[row, 1:]
    np.testing.assert_allclose(w.session.prompts[(LIVER, z)].bg[index], new_rc)
    np.testing.assert_allclose(w.editor.ring_of(z)[index, 1:], new_rc)
    assert w.session.slice_status(LIVER, z) == "edited"
    assert w.layers.bg.features["origin"][row] == "user"
    w.undo()
    assert w.session.slice_status(LIVER, z) == "predicted"
    np.testing.assert_allclose(w.editor.ring_of(z)[index, 1:], new_rc - (3.0, -2.0))


def test_adding_and_removing_points_through_the_layers(annotator):
    w = annotator
    w.predict()
    lo, _ = w.test_info["range"]
    n_fg = len(w.session.prompts[(LIVER, lo)].fg)
    w.layers.fg.add(np.array([lo, 40.0, 40.0]))  # napari's add mode does exactly this
    assert len(w.session.prompts[(LIVER, lo)].fg) == n_fg + 1
    n_bg = len(w.session.prompts[(LIVER, lo)].bg)
    rows = np.flatnonzero(w.layers.bg.features["slice"] == lo)[:2]
    w.layers.bg.remove(list(rows))  # select + Delete
    assert len(w.session.prompts[(LIVER, lo)].bg) == n_bg - 2
    assert w.editor.ring_of(lo).shape == (n_bg - 1, 3)
    empty = w.test_info["volume"].data.shape[0] - 1
    w.editor.add("bg", empty, (10.0, 10.0))  # Ctrl-Shift-click on a slice without prompts
    assert len(w.session.prompts[(LIVER, empty)].bg) == 1


def test_commit_undo_redo_save_load_export(annotator, tmp_path):
    w = annotator
    lo, hi = w.test_info["range"]
    w.predict()
    w.jump_to(lo + 1)
    w.commit_slice()
    assert committed_slices(w) == [lo + 1]
    w.commit_range()
    assert committed_slices(w) == list(range(lo, hi + 1))
    assert set(np.unique(w.layers.output.data)) == {0, LIVER}
    after = w.layers.output.data.copy()
    w.undo()
    assert committed_slices(w) == [lo + 1]
    w.redo()
    np.testing.assert_array_equal(w.layers.output.data, after)
    assert [e.status for e in w._review.entries] == ["committed"] * (hi - lo + 1)

    w.save_session(tmp_path / "session")
    prompts = {k: p.copy() for k, p in w.session.prompts.items()}
    w.glue.attach(w.glue.new_session(w.image_layer()))  # a fresh, empty session
    assert committed_slices(w) == [] and not w.session.prompts
    w.load_session(tmp_path / "session")
    np.testing.assert_array_equal(w.layers.output.data, after)
    assert prompts.keys() == w.session.prompts.keys()
    assert all(prompts[k].equals(w.session.prompts[k]) for k in prompts)
    assert len(w.layers.rings.data) == len(prompts)

    out = w.export_labels(tmp_path / "labels.nii.gz")
    img = nib.load(out)
    np.testing.assert_allclose(img.affine, w.test_info["volume"].affine)
    # array axis a is file axis axes[a]: file order -> (Z, Y, X)
    back = np.asarray(img.dataobj).transpose(w.test_info["volume"].axes)
    np.testing.assert_array_equal(back, after)


def test_structures_keep_their_own_prompts_and_committed_ones_are_locked(annotator):
    w = annotator
    lo, hi = w.test_info["range"]
    w.predict()
    w.commit_range()
    liver = w.layers.output.data == LIVER
    # structure 2 painted over the liver on one slice: committed voxels stay liver
    w._c.label.setValue(2)
    assert len(w.layers.fg.data) == 0 and w._review.entries == []
    support = w.layers.support.data.copy()
    support[lo][liver[lo]] = 2
    w.layers.support.data = support
    w._c.z_from.setValue(lo)
    w._c.z_to.setValue(lo)
    w.commit_range()  # a support slice without prompts commits the painted mask
    np.testing.assert_array_equal(w.layers.output.data == LIVER, liver)
    w._c.overwrite.setChecked(True)
    w.commit_range()
    assert (w.layers.output.data[lo] == 2).sum() == liver[lo].sum()
    w._c.label.setValue(LIVER)
    assert len(w.layers.rings.data) == hi - lo  # the liver's prompts are back


def test_review_keys_jump_to_slices_that_need_review_worst_first(annotator):
    w = annotator
    lo, hi = w.test_info["range"]
    w.predict()
    w.jump_to(lo)
    w.commit_slice()
    order = needs_look(w.session, LIVER)  # lowest confidence first; lo is committed
    assert lo not in order and len(order) > 1
    w.review_step(1)
    assert w.current_slice() == order[0]
    w.review_step(1)
    assert w.current_slice() == order[1]
    w.review_step(-1)
    w.review_step(-1)
    assert w.current_slice() == order[0]  # the worst: nothing to review before it
    assert "No slice" in w._c.message.text()
    item = w._review.item(3)
    w._review.itemClicked.emit(item)
    assert w.current_slice() == w._review.entries[3].z


def test_shortcuts_are_registered_and_released_on_close(make_napari_viewer):
    viewer = make_napari_viewer()

    def mine(_viewer):
        return None

    viewer.bind_key("N", mine)  # somebody else's key: must survive the widget
    widget = AnnotatorWidget(viewer)
    keys = {str(k) for k in viewer.keymap}
    assert {"P", "Ctrl+P", "C", "Ctrl+Enter", "Shift+C", "Ctrl+Z", "Ctrl+Shift+Z", "B"} <= keys
    assert widget.shortcuts.skipped == {"N": "already bound on the viewer"}
    assert "Ctrl+Shift+Z" in widget._c.buttons["redo"].text()
    # napari's layer keymaps keep their keys; the tooltips say so and offer the spare key
    assert {"Labels", "Points"} <= set(layer_shadows("P"))
    assert layer_shadows("Control-P") == layer_shadows("Control-Enter") == []
    assert "use Ctrl+P there" in widget._c.buttons["predict"].toolTip()
    assert widget._c.buttons["commit_range"].toolTip() == "Commit range — Shift+C"
    widget.close()
    assert {str(k) for k in viewer.keymap} == {"N"}
    assert next(iter(viewer.keymap.values())) is mine


def test_predict_and_commit_in_real_workers_with_tiny_sam(make_napari_viewer, qtbot, monkeypatch):
    monkeypatch.delenv("NAPARI_FOB_NOTHREADS", raising=False)
    volume, truth, _ = cropped_sample()
    viewer = make_napari_viewer()
    viewer.add_image(volume.data, name="phantom", contrast_limits=(-160, 240))
    widget = AnnotatorWidget(viewer)
    sam = SamSegmenter.from_model(build_tiny_sam(0), model_id="tiny-sam-0", device="cpu")
    widget.glue.set_backends(make_generator("mask-ring"), sam)
    layers = widget.ensure_layers()
    z = liver_slices(truth)[len(liver_slices(truth)) // 2]
    support = np.zeros(truth.shape, np.uint8)
    support[z][truth[z] == LIVER] = LIVER
    layers.support.data = support
    widget._c.z_from.setValue(z - 2)
    widget._c.z_to.setValue(z + 2)
    widget.predict()
    assert widget.busy and not widget._c.buttons["predict"].isEnabled()
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    assert len(layers.rings.data) == 4
    widget.jump_to(z + 1)
    qtbot.waitUntil(
        lambda: widget.jobs.prefetch is None or not widget.jobs.prefetch.running, timeout=60_000
    )
    # the precompute's progress went through the dock's progress row, hidden at its end
    assert widget._progress.label.text() == "SAM embeddings: 5 / 5 slices"
    assert not widget._progress.isVisible()
    window = widget.session.window
    near = range(z + 1 - 2, z + 1 + 3)  # PREFETCH_RADIUS around the new slice
    assert all(sam.embedding_key(volume.data[k], window) in sam.cache for k in near)
    widget.commit_range()
    qtbot.waitUntil(lambda: not widget.busy and widget.jobs.queued is None, timeout=60_000)
    assert "Committing: 5 slice(s)" in widget._c.message.text()
    # Cancel a running commit: whatever it wrote is kept and one undo removes it all
    before = widget.session.labels.copy()
    widget._c.label.setValue(2)
    support[z][truth[z] == LIVER] = 2
    layers.support.data = support
    widget.predict()
    qtbot.waitUntil(lambda: not widget.busy and widget.jobs.queued is None, timeout=60_000)
    widget._c.overwrite.setChecked(True)
    widget.commit_range()
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.busy and widget.jobs.queued is None, timeout=60_000)
    assert widget.session.undo()
    np.testing.assert_array_equal(widget.session.labels, before)
    widget.close()


def test_screenshot_of_the_docked_widget(annotator, tmp_path):
    w = annotator
    viewer = w.viewer
    viewer.window._qt_window.resize(1400, 900)
    viewer.window.show()
    w.predict()
    w.jump_to(w.test_info["range"][0] + 1)
    viewer.layers.selection.active = w.layers.bg
    image = viewer.window._qt_window.grab()
    path = tmp_path / "annotator.png"
    assert image.save(str(path))
    assert path.stat().st_size > 10_000
    if os.environ.get("FOB_WRITE_DOCS_IMAGES") == "1":
        docs = Path(__file__).resolve().parents[2] / "docs" / "images"
        docs.mkdir(parents=True, exist_ok=True)
        image.save(str(docs / "annotator-test.png"))


def test_predict_with_the_tiny_fob_model(annotator):
    from napari_fob.model import build_fob

    w = annotator
    w.glue.set_backends(
        make_generator("fob", model=build_fob("tiny"), device="cpu"), w.glue.segmenter
    )
    assert w._c.status.text().startswith("Prompts: FoB")
    lo, hi = w.test_info["range"]
    w.predict()
    expected = [z for z in range(lo, hi + 1) if z != w.test_info["support_z"]]
    assert sorted(z for (_, z) in w.session.prompts) == expected
    for z in expected:
        ps = w.session.prompts[(LIVER, z)]
        assert ps.origin == "fob"
        assert (w.layers.fg.features["slice"] == z).sum() == len(ps.fg) > 0
        assert w.editor.ring_of(z).shape == (len(ps.bg) + 1, 3)
    assert set(w.layers.bg.features["origin"]) == {"fob"}
