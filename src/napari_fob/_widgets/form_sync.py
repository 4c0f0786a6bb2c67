"""The annotator's form kept in step with the viewer: the window follows the image's contrast
limits until the user types one, the slice range goes around the painted support until the user
types one, a sample's ready-made supports and structure names are taken, and the prompt overlays
are shown in 2D views only.

`FormSync` gets the viewer, the form (`Controls`) and a `say` callback, never the widget. It
listens to each layer once (by napari ``unique_id``: plugin widgets see proxies of the viewer,
on which every lookup is a new object). Imports napari types only through the viewer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from napari_fob._widgets import layers as L
from napari_fob._widgets.controls import Controls


class FormSync:
    """See the module docstring.

    Args:
        viewer: the napari viewer (or its plugin proxy).
        controls: the annotator's form.
        say: shows a message to the user.
        on_window: called when the window follows a new contrast (fills low/high).
    """

    def __init__(
        self, viewer: Any, controls: Controls, say: Callable[[str], None],
        on_window: Callable[[], None],
    ) -> None:  # fmt: skip
        self.viewer, self.c, self.say, self.on_window = viewer, controls, say, on_window
        self.range_by_user = False
        self.support: Any = None  # the support layer being watched
        self._watched: dict[str, Any] = {}  # role -> unique_id of the layer listened to
        for box in (controls.low, controls.high):
            box.editingFinished.connect(self.window_typed)
        for box in (controls.z_from, controls.z_to):
            box.editingFinished.connect(self.range_typed)

    @property
    def label(self) -> int:
        return int(self.c.label.value())

    def watch_support(self, layer: Any) -> None:
        """Follow the support layer's paint and data events (once per layer)."""
        self.support = layer
        if self._watched.get("support") != layer.unique_id:
            self._watched["support"] = layer.unique_id
            layer.events.data.connect(self.support_edited)
            layer.events.paint.connect(self.support_edited)

    def follow_image(self, image: Any) -> None:
        """Listen (once per layer) to the image's contrast limits."""
        if image is not None and self._watched.get("contrast") != image.unique_id:
            self._watched["contrast"] = image.unique_id
            image.events.contrast_limits.connect(self.contrast_changed)

    def contrast_changed(self, event: Any = None) -> None:
        """The window follows the layer's contrast limits while "from layer" is ticked."""
        if self.c.window_from_layer.isChecked():
            self.on_window()

    def window_typed(self) -> None:
        c = self.c
        if c.window_from_layer.isChecked():
            c.window_from_layer.blockSignals(True)
            c.window_from_layer.setChecked(False)
            c.window_from_layer.blockSignals(False)
            self.say(
                f"Window set by hand ({c.low.value():g} to {c.high.value():g}): it no longer "
                "follows the layer's contrast limits (tick 'from layer' to follow them again)."
            )

    def range_typed(self) -> None:
        self.range_by_user = True

    def support_edited(self, event: Any = None) -> None:
        """A support painted: the range goes around it until the user types one."""
        if self.range_by_user or self.support is None:
            return
        painted = L.painted_slices(self.support.data, self.label)
        if painted:
            lo, hi = L.range_around(painted, int(self.support.data.shape[0]))
            self.c.z_from.setValue(lo)
            self.c.z_to.setValue(hi)

    def name_from_sample(self) -> None:
        """An empty structure name is taken from the labels layers' ``metadata["names"]``."""
        if not self.c.name.text().strip():
            self.c.name.setText(L.sample_names(self.viewer.layers).get(self.label, ""))

    def adopt_sample_support(self, layers: L.PromptLayers) -> None:
        """Start from a sample's ready-made supports (instead of leaving them unused)."""
        source = L.sample_support(self.viewer.layers, tuple(layers.support.data.shape))
        data = None if source is None else np.asarray(source.data)
        if data is None or not data.any() or np.asarray(layers.support.data).any():
            return
        layers.support.data = data.astype(np.uint8, copy=True)
        source.visible = False
        names = L.sample_names(self.viewer.layers)
        found = ", ".join(
            f"{names.get(int(v), int(v))} (slice {', '.join(map(str, L.painted_slices(data, v)))})"
            for v in np.unique(data) if v
        )  # fmt: skip
        self.say(
            f"Supports taken from layer '{source.name}' into '{L.SUPPORT_LAYER}': {found}. "
            "Paint on 'FoB support' to change them."
        )
