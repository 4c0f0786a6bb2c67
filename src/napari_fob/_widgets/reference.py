"""`ReferencePanel`: "Supports from another scan", the annotator's few-shot path.

Pick an opened image and its labels layer as the reference (another, already labelled scan);
*Prompts from this scan* predicts the active structure's prompts on the current volume from
the reference's supports (`napari_fob.session.reference`: the middle slices of the three
parts of the structure's extent in the reference, resampled by physical size), over the
annotator's slice range (or ``auto``). The prompts appear as usual, to be reviewed, corrected
and committed. The planning (resampling) and the prediction run in the annotator's worker.

A layer opened by the napari-fob reader (or a sample) carries its file's affine; any other is
taken as stored right-anterior-superior with the layer's scale as voxel size. Imports qtpy and
napari (widget side only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from qtpy.QtCore import QSignalBlocker
from qtpy.QtWidgets import QComboBox, QFormLayout, QGroupBox, QPushButton

from napari_fob._widgets import layers as L
from napari_fob._widgets.boundary import reported
from napari_fob._widgets.session_glue import volume_metadata

OWN_LAYERS = (L.FG_LAYER, L.BG_LAYER, L.RING_LAYER, L.SUPPORT_LAYER, L.OUTPUT_LAYER)


def layer_volume(layer: Any) -> Any:
    """A `Volume` of a 3D image or labels layer (its reader's geometry, else RAS + scale)."""
    from napari_fob.core.volume import Volume

    data = np.asarray(layer.data)
    meta = volume_metadata(layer)
    if meta is not None:
        try:
            return Volume.from_metadata(data, meta)
        except ValueError:  # the data no longer match the file's grid: use the layer's own
            pass
    if data.ndim != 3:
        raise ValueError(f"layer '{layer.name}' has shape {data.shape}: expected a 3D volume")
    scale = np.asarray(layer.scale, float)[::-1]  # file order (X, Y, Z)
    return Volume.from_array(data, affine=np.diag([*scale, 1.0]))


class ReferencePanel(QGroupBox):
    """The reference picker and its button; gets what it uses of the annotator, not the widget.

    Args (keyword-only): viewer; run_job(description, make) runs a session generator in the
    annotator's worker; prepare(label) readies the session of the current volume; label() and
    slice_range() read the annotator's form; image_layer() is the current volume's layer;
    say(text) shows a message.
    """

    def __init__(
        self,
        *,
        viewer: Any,
        run_job: Callable[..., None],
        prepare: Callable[[int], Any],
        label: Callable[[], int],
        slice_range: Callable[[], Any],
        image_layer: Callable[[], Any],
        say: Callable[[str], None],
    ) -> None:
        super().__init__("Supports from another scan")
        self._viewer, self._run_job, self._prepare = viewer, run_job, prepare
        self._label, self._slice_range, self._image_layer, self._say = (
            label, slice_range, image_layer, say
        )  # fmt: skip
        form = QFormLayout(self)
        self._image, self._labels = QComboBox(), QComboBox()
        self._button = QPushButton("Prompts from this scan")
        self._button.setToolTip(
            "Predict the active structure's prompts on the current volume from the reference's "
            "labels (the paper's few-shot setting); review and commit them as usual"
        )
        form.addRow("Reference image", self._image)
        form.addRow("Reference labels", self._labels)
        form.addRow(self._button)
        self._button.clicked.connect(self._on_predict)
        viewer.layers.events.inserted.connect(self._on_layers_changed)
        viewer.layers.events.removed.connect(self._on_layers_changed)
        self._on_layers_changed()

    def _on_layers_changed(self, event: Any = None) -> None:
        from napari.layers import Image, Labels

        for combo, kind in ((self._image, Image), (self._labels, Labels)):
            names = [ly.name for ly in self._viewer.layers
                     if isinstance(ly, kind) and ly.name not in OWN_LAYERS]  # fmt: skip
            keep = combo.currentText()
            quiet = QSignalBlocker(combo)  # refilling is not a choice of the user's
            combo.clear()
            combo.addItems(names)
            combo.setCurrentIndex(names.index(keep) if keep in names else min(0, len(names) - 1))
            quiet.unblock()

    def choose(self, image: str, labels: str) -> None:
        """Select the reference layers by name (as picking them in the lists does)."""
        self._image.setCurrentText(image)
        self._labels.setCurrentText(labels)

    def reference(self) -> tuple[Any, np.ndarray]:
        """(reference Volume, its labels (Z, Y, X)) from the chosen layers (ValueError)."""
        names = self._image.currentText(), self._labels.currentText()
        if not all(names) or any(n not in self._viewer.layers for n in names):
            raise ValueError("choose the reference scan's image and labels layers first")
        current = self._image_layer()
        if current is not None and current.name == names[0]:
            raise ValueError(
                f"'{names[0]}' is the volume being annotated: the reference must be another scan"
            )
        volume = layer_volume(self._viewer.layers[names[0]])
        labels = np.asarray(self._viewer.layers[names[1]].data)
        return volume, labels

    def _on_predict(self) -> None:
        reported(self.predict, self._say)  # the annotator's error boundary

    def predict(self) -> None:
        """Prompts of the active structure from the reference, in the annotator's worker."""
        from napari_fob.session.reference import (
            across_volume,
            plan_supports,
            predict_from_reference,
        )

        ref, ref_labels = self.reference()
        label, slices = self._label(), self._slice_range()
        session = self._prepare(label)
        query = getattr(session, "source", None)
        if query is None:  # not opened by our reader: the layer's scale, as for the reference
            query = layer_volume(self._image_layer())

        plans: list[Any] = []  # filled in the worker, read when it is done

        def make(session: Any) -> Any:
            generator = across_volume(session.generator)
            plans.append(plan_supports(ref, ref_labels, query, label, slices,
                                       query_window=session.window))  # fmt: skip
            return (yield from predict_from_reference(session, plans[0], generator=generator))

        def done(result: list[int]) -> None:
            self._say(extent_message(plans[0].extent, len(result)) if plans else "")

        self._run_job("Prompts from another scan", make, on_done=done)


def extent_message(extent: Any, n_slices: int) -> str:
    """What a prediction from another scan did, and how sure its extent is."""
    a, b = extent.slices[0], extent.slices[-1]
    text = f"Prompts from another scan: {n_slices} slice(s), {a} to {b}"
    if extent.rule == "given":
        return text + "."
    if extent.sure:
        return text + " (extent found from the body's extent in both scans; check its ends)."
    return text + f" (extent found from the body's extent, NOT SURE: {extent.reason})."
