"""Real input for GUI tests: Qt mouse events sent to napari's vispy canvas, and the annotator
obtained the way a user opens it (napari's plugin manager, i.e. the Plugins menu).

The mouse helpers post `QMouseEvent`s to the canvas' native widget, so they travel the whole
path a hand on the mouse does: Qt -> vispy's Qt backend -> napari's mouse callbacks (the layer's
mode, the viewer's callbacks) -> the annotator. Nothing calls the widget's handlers directly.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from qtpy.QtCore import QEvent, QPoint, QPointF, Qt
from qtpy.QtGui import QMouseEvent
from qtpy.QtWidgets import QApplication, QPushButton

MOVE_GAP_MS = 25  # vispy drops mouse moves that come less than 10 ms after the previous one


def open_annotator(viewer: Any, *, settle: bool = True) -> Any:
    """The annotator widget as napari's Plugins menu opens it (the viewer it gets is a proxy).

    With `settle`, returns once the widget has created its layers (one per event-loop turn when
    an image is open); without an image there are none to wait for.
    """
    _, widget = viewer.window.add_plugin_dock_widget("napari-fob", "FoB annotator")
    end = time.perf_counter() + 30.0
    while settle and widget.creating_layers and time.perf_counter() < end:
        wait(20)
    return widget


def canvas_widget(viewer: Any) -> Any:
    return viewer.window._qt_viewer.canvas.native


def data_to_canvas(viewer: Any, layer: Any, zrc: Any) -> QPointF:
    """Canvas (widget) position of the data point (z, row, col) of `layer` in the 2D view."""
    world = np.asarray(layer.data_to_world(np.asarray(zrc, dtype=float)), dtype=float)
    canvas = viewer.window._qt_viewer.canvas
    view = canvas.view
    transform = view.transform * view.scene.transform
    displayed = list(viewer.dims.displayed)  # (row axis, col axis) in the 2D view
    x, y = transform.map([world[displayed[1]], world[displayed[0]]])[:2]
    scale = canvas_widget(viewer).devicePixelRatioF()
    return QPointF(float(x) / scale, float(y) / scale)


def _send(widget: Any, kind: Any, pos: QPointF, button: Any, buttons: Any, mods: Any) -> None:
    glob = QPointF(widget.mapToGlobal(QPoint(int(pos.x()), int(pos.y()))))
    event = QMouseEvent(kind, pos, glob, button, buttons, mods)
    QApplication.sendEvent(widget, event)


def _modifiers(names: tuple[str, ...]) -> Any:
    mods = Qt.KeyboardModifier.NoModifier
    for name in names:
        mods |= {
            "Control": Qt.KeyboardModifier.ControlModifier,
            "Shift": Qt.KeyboardModifier.ShiftModifier,
        }[name]
    return mods


def wait(ms: float) -> None:
    end = time.perf_counter() + ms / 1000.0
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.005)


def drag(viewer: Any, start: QPointF, end: QPointF, *, steps: int = 6, mods=()) -> None:
    """Press the left button at `start`, move in `steps` to `end`, release there."""
    w, left = canvas_widget(viewer), Qt.MouseButton.LeftButton
    m = _modifiers(mods)
    none = Qt.MouseButton.NoButton
    _send(w, QEvent.Type.MouseMove, start, none, none, m)
    wait(MOVE_GAP_MS)
    _send(w, QEvent.Type.MouseButtonPress, start, left, left, m)
    for i in range(1, steps + 1):
        wait(MOVE_GAP_MS)
        t = i / steps
        p = QPointF(start.x() + t * (end.x() - start.x()), start.y() + t * (end.y() - start.y()))
        _send(w, QEvent.Type.MouseMove, p, none, left, m)
    wait(MOVE_GAP_MS)
    _send(w, QEvent.Type.MouseButtonRelease, end, left, none, m)
    wait(MOVE_GAP_MS)


def click(viewer: Any, pos: QPointF, *, mods: tuple[str, ...] = ()) -> None:
    """A left click (press and release at one place) with modifier keys held."""
    w, left, none = canvas_widget(viewer), Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    m = _modifiers(mods)
    _send(w, QEvent.Type.MouseMove, pos, none, none, m)
    wait(MOVE_GAP_MS)
    _send(w, QEvent.Type.MouseButtonPress, pos, left, left, m)
    wait(MOVE_GAP_MS)
    _send(w, QEvent.Type.MouseButtonRelease, pos, left, none, m)
    wait(MOVE_GAP_MS)


def button(widget: Any, prefix: str) -> Any:
    """The widget's shown push button whose text starts with `prefix` (case-insensitive)."""
    found = [
        b
        for b in widget.findChildren(QPushButton)
        if b.text().lower().startswith(prefix.lower()) and b.isVisible()
    ]
    assert found, f"no button starting with {prefix!r}"
    return found[0]


def press(qtbot: Any, widget: Any, prefix: str) -> None:
    """Click a button of the widget with the real mouse."""
    qtbot.mouseClick(button(widget, prefix), Qt.MouseButton.LeftButton)


def wait_idle(qtbot: Any, widget: Any, timeout_s: float = 120.0) -> None:
    """Wait until the widget's worker finished (threads on, the event loop running)."""
    qtbot.waitUntil(lambda: not widget.busy, timeout=int(timeout_s * 1000))
    wait(50)
