"""Showing one structure's prompts in the layers, and turning layer edits into session edits.

`PromptEditor.show` puts the prompts of a structure into the fg/bg Points layers and the ring
Shapes layer (in bulk). It then listens to the Points layers' ``data`` events:

- a point dragged: its ring is redrawn at once from the layer (every mouse move); when the mouse
  is released the move goes to the session as one undoable `move_point` (a programmatic move,
  with no drag in progress, goes at once);
- a point added (napari's add mode on the fg or bg layer, or Ctrl-click / Ctrl-Shift-click
  anywhere for fg / bg): `add_point` (or new prompts for a slice that had none);
- points deleted (select + Delete): `remove_point`, highest index first.

The session then reports the change and the widget calls `show` again. Edits made by `show`
itself are muted. Imports napari (widget side only).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from contextlib import contextmanager
from typing import Any

import numpy as np
from napari.layers.base._base_constants import ActionType

from napari_fob._widgets import layers as L
from napari_fob.core.prompts import PromptSet


class PromptEditor:
    """Binds the prompt layers of one viewer to the session of one annotator widget.

    Args:
        layers: the annotator's `PromptLayers`.
        session: a callable returning the current `AnnotationSession` (or None).
        label: a callable returning the active structure's label value.
        on_error: called with a message when the session refuses an edit.
    """

    def __init__(
        self,
        *,
        layers: L.PromptLayers,
        session: Callable[[], Any],
        label: Callable[[], int],
        on_error: Callable[[str], None],
    ) -> None:
        self.layers = layers
        self._session, self._label, self._on_error = session, label, on_error
        self._mute = 0
        self._dragging = False
        self._pending: dict[tuple[str, int], np.ndarray] = {}  # (kind, row) -> new (z, r, c)
        self._known = {k: np.zeros((0, 3)) for k in L.KINDS}
        self._features = {k: L.empty_features() for k in L.KINDS}
        self._rings: dict[int, np.ndarray] = {}  # slice -> (Np + 1, 3) closed path
        self.layer_ids = layers.ids()
        self._listeners: list[tuple[Any, Callable[[Any], None]]] = []
        for kind, layer in (("fg", layers.fg), ("bg", layers.bg)):
            listener = self._listener(kind)
            layer.events.data.connect(listener)
            layer.mouse_drag_callbacks.append(self._track_drag)
            self._listeners.append((layer, listener))

    def _listener(self, kind: str) -> Callable[[Any], None]:
        def on_data(event: Any) -> None:
            self._on_data(kind, event)

        return on_data

    def close(self) -> None:
        """Disconnect from the layers (their data events and drag callbacks); idempotent.

        napari gives plugin widgets proxies of its layers, so the editor keeps the exact
        callables it connected and removes those: a replaced editor must leave nothing behind
        that still reacts to the layers.
        """
        for layer, listener in self._listeners:
            layer.events.data.disconnect(listener)
            callbacks = layer.mouse_drag_callbacks
            while self._track_drag in callbacks:
                callbacks.remove(self._track_drag)
        self._listeners = []

    @contextmanager
    def muted(self) -> Generator[None, None, None]:
        self._mute += 1
        try:
            yield
        finally:
            self._mute -= 1

    # ---- session -> layers ---------------------------------------------------------------
    def show(self, prompts: dict[tuple[int, int], PromptSet], label: int) -> None:
        """Show every slice's prompts of structure `label` (the layers' whole content)."""
        with self.muted():
            for kind, layer in (("fg", self.layers.fg), ("bg", self.layers.bg)):
                data, features = L.points_table(prompts, label, kind)
                if self._showing(kind, layer, data, features):
                    continue  # e.g. a commit changed statuses only: napari's update costs ms
                L.set_points(layer, data, features)
                self._known[kind] = layer.data.copy()
                self._features[kind] = features
            paths, slices = L.ring_paths(prompts, label)
            rings = dict(zip(slices, paths))
            if not _same_rings(rings, self._rings) or len(self.layers.rings.data) != len(rings):
                self._rings = rings
                L.set_rings(self.layers.rings, paths)
        self._pending.clear()

    def _showing(self, kind: str, layer: Any, data: np.ndarray, features: Any) -> bool:
        """True when `layer` already shows exactly these points and features."""
        known = self._known[kind]
        return (
            known.shape == data.shape
            and np.array_equal(known, data)
            and np.array_equal(np.asarray(layer.data), data)
            and self._features[kind].equals(features)
        )

    def ring_of(self, z: int) -> np.ndarray | None:
        """The ring path (Np + 1, 3) currently drawn on slice `z`, or None."""
        return self._rings.get(z)

    def _redraw_ring(self, z: int) -> None:
        bg = L.slice_points(self.layers.bg.data, self._features["bg"], z)
        if len(bg) >= 2:
            self._rings[z] = L.ring_path(bg, z)
        with self.muted():
            L.set_rings(self.layers.rings, [self._rings[k] for k in sorted(self._rings)])

    # ---- layers -> session ---------------------------------------------------------------
    def _track_drag(self, layer: Any, event: Any) -> Generator[None, None, None]:
        self._dragging = True
        try:
            yield
            while event.type == "mouse_move":
                yield
        finally:
            self._dragging = False
            self.flush()

    def _on_data(self, kind: str, event: Any) -> None:
        if self._mute or self._session() is None:
            return
        action = event.action
        if action == ActionType.CHANGED:
            self._on_moved(kind)
        elif action == ActionType.ADDED:
            new = self._layer(kind).data[len(self._known[kind]) :]
            self._edit(lambda: [self.add(kind, p[0], p[1:]) for p in new])
        elif action == ActionType.REMOVED:
            feats = self._features[kind]
            rows = sorted(event.data_indices, key=lambda i: -int(feats["index"].iloc[i]))
            self._edit(
                lambda: [
                    self._session().remove_point(
                        self._label(),
                        int(feats["slice"].iloc[i]),
                        kind,
                        int(feats["index"].iloc[i]),
                    )
                    for i in rows
                ]
            )

    def _layer(self, kind: str) -> Any:
        return self.layers.fg if kind == "fg" else self.layers.bg

    def _on_moved(self, kind: str) -> None:
        data, known = self._layer(kind).data, self._known[kind]
        if data.shape != known.shape:
            return  # not a move (napari reports adds/removals separately)
        rows = np.flatnonzero(np.any(np.abs(data - known) > 1e-9, axis=1))
        for row in rows:
            self._pending[(kind, int(row))] = data[row].copy()
        if kind == "bg":
            for z in {int(self._features["bg"]["slice"].iloc[r]) for r in rows}:
                self._redraw_ring(z)
        if not self._dragging:
            self.flush()

    def flush(self) -> None:
        """Send the pending point moves to the session (one `move_point` per point)."""
        if not self._pending or self._session() is None:
            self._pending.clear()
            return
        pending, self._pending = self._pending, {}

        def moves() -> None:
            for (kind, row), zrc in pending.items():
                feats = self._features[kind]
                z, index = int(feats["slice"].iloc[row]), int(feats["index"].iloc[row])
                self._session().move_point(self._label(), z, kind, index, zrc[1:])

        self._edit(moves)

    def add(self, kind: str, z: float, rc: Any) -> None:
        """Add a `kind` point at (row, col) `rc` on slice `z` (new prompts if it has none)."""
        session, label, z = self._session(), self._label(), int(round(float(z)))
        if (label, z) in session.prompts:
            session.add_point(label, z, kind, rc)
        else:
            pts = np.asarray(rc, dtype=np.float64).reshape(1, 2)
            empty = np.zeros((0, 2))
            fg, bg = (pts, empty) if kind == "fg" else (empty, pts)
            session.set_prompts(label, z, PromptSet(fg=fg, bg=bg, label=label, origin="user"))

    def _edit(self, apply: Callable[[], Any]) -> None:
        try:
            apply()
        except ValueError as exc:  # refused by the session: show why, restore the layers
            self._on_error(str(exc))
            session = self._session()
            self.show(session.prompts, self._label())


def _same_rings(a: dict[int, np.ndarray], b: dict[int, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[z], b[z]) for z in a)


def modifier_names(modifiers: Any) -> set[str]:
    """The names ("Control", "Shift", ...) of a mouse event's modifier keys.

    napari passes vispy `Key` objects, whose ``str`` is a repr (``<Key 'Control'>``); their
    ``name`` is the key's name. Plain strings are accepted as they are.
    """
    return {str(getattr(m, "name", m)) for m in modifiers or ()}


def modifier_click_adder(editor: PromptEditor, image: Callable[[], Any]) -> Callable:
    """A viewer mouse callback: Ctrl-click adds a fg point, Ctrl-Shift-click a bg point.

    A press that turns into a drag adds nothing (so Ctrl-drag keeps napari's behaviour).
    """

    def on_mouse(viewer: Any, event: Any) -> Generator[None, None, None]:
        mods = modifier_names(event.modifiers)
        if "Control" not in mods or editor._session() is None or image() is None:
            return
        kind = "bg" if "Shift" in mods else "fg"
        yield
        moved = False
        while event.type == "mouse_move":
            moved = True
            yield
        if moved:
            return
        zrc = np.asarray(image().world_to_data(event.position), dtype=np.float64)
        editor._edit(lambda: editor.add(kind, zrc[0], zrc[1:]))

    return on_mouse
