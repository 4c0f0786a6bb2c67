"""The ring gallery through napari's plugin path: real clicks on the tab and the thumbnails,
real key presses for accept / flag and N."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt
from real_input import canvas_widget, open_annotator, press, wait, wait_idle
from test_plugin_path import LIVER, paint_support

# torch before any OpenGL context (see _widgets/_mesa_guard.py)
import napari_fob.segmenters.sam  # noqa: F401
from napari_fob.core.thumbnails import RING_RGB
from napari_fob.session.review import review_key

pytestmark = pytest.mark.gui


@pytest.fixture
def predicted(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1300, 900)
    viewer.open_sample("napari-fob", "abdomen-phantom")
    truth = np.asarray(viewer.layers["ground truth"].data)
    widget = open_annotator(viewer)
    z = paint_support(viewer, widget, truth, LIVER)
    press(qtbot, widget, "predict")
    wait_idle(qtbot, widget)
    yield viewer, widget, z
    widget.close()


def _items(view):
    return [view.item(i) for i in range(view.count())]


def _slice_of(item):
    return int(item.data(Qt.ItemDataRole.UserRole))


def _show_gallery(qtbot, widget):
    bar = widget._tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(1).center())
    qtbot.waitUntil(widget._gallery.drawn, timeout=30000)
    return widget._gallery.view


def test_gallery_shows_every_prompted_slice_with_its_ring(predicted, qtbot):
    viewer, widget, z = predicted
    view = _show_gallery(qtbot, widget)
    shown = sorted(_slice_of(i) for i in _items(view))
    assert shown == sorted(e.z for e in widget._review.entries)
    assert set(range(z - 3, z + 4)) - {z} <= set(shown)
    item = next(i for i in _items(view) if _slice_of(i) == z + 2)
    image = item.icon().pixmap(96, 96).toImage()
    colours = np.array([image.pixelColor(x, y).getRgb()[:3] for x in range(96) for y in range(96)])
    # the slice's ring is drawn on its thumbnail (within a 16-bit display's rounding)
    assert (np.abs(colours - np.array(RING_RGB)).max(axis=1) <= 8).sum() >= 20


def test_click_jumps_and_keys_mark_reviewed_and_flagged(predicted, qtbot):
    viewer, widget, z = predicted
    view = _show_gallery(qtbot, widget)
    target = next(i for i in _items(view) if _slice_of(i) == z + 2)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualItemRect(target).center())  # fmt: skip
    wait(50)
    assert viewer.dims.current_step[0] == z + 2
    assert _slice_of(widget._review.currentItem()) == z + 2  # the list follows the gallery
    qtbot.keyClick(view, Qt.Key.Key_A)
    assert widget.marks[(LIVER, z + 2)] == "reviewed"
    assert next(i for i in _items(view) if _slice_of(i) == z + 2).text().endswith("✓")
    assert widget._review.currentItem().text().endswith("· reviewed")  # the list says so too
    qtbot.keyClick(view, Qt.Key.Key_Right)  # the next thumbnail
    flagged = _slice_of(view.currentItem())
    assert flagged != z + 2 and viewer.dims.current_step[0] == flagged  # the viewer follows
    qtbot.keyClick(view, Qt.Key.Key_F)
    assert widget.marks[(LIVER, flagged)] == "flagged"
    qtbot.keyClick(view, Qt.Key.Key_F)  # the same key again: unmarked
    assert (LIVER, flagged) not in widget.marks
    assert "1 reviewed · 0 flagged" in widget._gallery.summary.text()


def test_n_skips_reviewed_slices_and_worst_first_orders_by_confidence(predicted, qtbot):
    viewer, widget, z = predicted
    view = _show_gallery(qtbot, widget)
    entries = widget._review.entries
    keep = next(e.z for e in entries if e.needs_review and e.z != z + 3)
    for e in entries:
        if e.z != keep:
            widget.set_mark(e.z, "reviewed")
    viewer.dims.set_current_step(0, z + 3)
    viewer.layers.selection.active = viewer.layers["abdomen CT phantom"]
    qtbot.keyClick(canvas_widget(viewer), Qt.Key.Key_N)
    wait(50)
    assert viewer.dims.current_step[0] == keep
    widget._gallery.order.setCurrentIndex(1)  # worst first
    # the order N / B follow: unscored slices (the support) first, then the least confident
    shown = [_slice_of(i) for i in _items(view)]
    assert shown == [e.z for e in sorted(entries, key=review_key)]
    scored = [e for e in entries if e.confidence is not None]
    first_scored = next(z for z in shown if z in {e.z for e in scored})
    assert first_scored == min(scored, key=lambda e: (e.confidence, e.z)).z
