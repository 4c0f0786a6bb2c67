"""Creating the annotator's layers without freezing napari: one layer per event-loop turn.

Adding one napari layer holds the main thread for 100-300 ms on a software-rendered display
(docs/benchmarks.md, "Main-thread stalls"), so when the widget opens on an image its five layers
are added one at a time (the support first), and the viewer redraws and takes input between
them. An action that needs the layers earlier creates the rest at once (`add`). Imports qtpy
(widget side only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QTimer

from napari_fob._widgets import layers as L


class LayerGrowth:
    """Adds the annotator's layers on `viewer` over `image_layer()`.

    Args:
        viewer: the napari viewer (or napari's proxy of it).
        image_layer: the image being annotated (or None).
        done: whether the annotator already has its layers.
        adopt: called once all layers exist (the annotator takes them: `ensure_layers`).
    """

    def __init__(
        self,
        viewer: Any,
        image_layer: Callable[[], Any],
        done: Callable[[], bool],
        adopt: Callable[[], Any],
    ) -> None:
        self.viewer, self._image, self._done, self._adopt = viewer, image_layer, done, adopt
        self.adding = False  # our own layers being inserted (the layer-list events ignore them)
        self.running = False  # a turn is scheduled
        self.closed = False

    def add(self, image: Any, at_most: int | None = None) -> L.PromptLayers | None:
        """`layers.ensure_layers` with `adding` set while it inserts."""
        self.adding = True
        try:
            return L.ensure_layers(self.viewer, image, at_most=at_most)
        finally:
            self.adding = False

    def step(self) -> None:
        """Add one missing layer and schedule the next turn, or adopt them all."""
        self.running = False
        image = self._image()
        if image is None or self.closed or self._done():
            return
        if self.add(image, at_most=1) is None:
            self.running = True
            QTimer.singleShot(0, self.step)
        else:
            self._adopt()
