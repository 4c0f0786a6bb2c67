"""What the annotator widget does with its `AnnotationSession`: create it from the chosen image
layer, keep supports in step with the support layer, load the models, save / load / export,
and the state shown in the review list.

Kept apart from `annotator.py` so the container stays a short list of actions. Imports napari
types only through the widget it serves (widget side only).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_fob._widgets._mesa_guard import block_triton_under_mesa
from napari_fob._widgets.backends import BackendChoice, build
from napari_fob._widgets.review import SliceEntry
from napari_fob.core.intensity import Window
from napari_fob.session.corrections import REPREDICTED


def volume_metadata(layer: Any) -> dict[str, Any] | None:
    """The `Volume.to_metadata()` dict the reader/sample put into a layer's metadata, if any."""
    meta = dict(getattr(layer, "metadata", {}) or {})
    candidates = [meta, *[v for v in meta.values() if isinstance(v, dict)]]
    for cand in candidates:
        if "affine" in cand and "axes" in cand:
            return cand
    return None


def layer_key(layer: Any) -> Any:
    """What identifies an image layer across accesses: napari hands plugins a new proxy object
    on each access, so neither the object nor its id will do; its ``unique_id`` does."""
    return getattr(layer, "unique_id", None) or id(layer)


@dataclass
class GlueHooks:
    """What the session glue uses of the annotator, handed over one by one (not the widget)."""

    viewer: Any
    choice: Callable[[], BackendChoice]
    say: Callable[[str], None]
    image_layer: Callable[[], Any]
    ensure_layers: Callable[[], Any]  # -> PromptLayers, creating them once
    layers: Callable[[], Any]  # -> PromptLayers or None
    refresh: Callable[[], None]
    on_session_change: Callable[[str, int, list[int]], None]
    busy: Callable[[], bool] = lambda: False  # a job is running (the worker walks the session)


class SessionGlue:
    """The session side of the annotator (see the module docstring).

    Args:
        hooks: what it uses of the annotator (`GlueHooks`).
        controls: the form (`Controls`).
    """

    def __init__(self, hooks: GlueHooks, controls: Any) -> None:
        self.w = hooks
        self.c = controls
        self.session: Any = None
        # one session per image layer (its unique_id -> session): switching the image switches
        # the session, and switching back finds its prompts and undo history
        self._sessions: dict[Any, Any] = {}
        self._adapted: tuple[Any, Any] | None = None  # (session, generator adapted to its scan)
        self.generator: Any = None
        self.segmenter: Any = None
        self.backend_key: Any = None
        self.backend_text = ""
        self.backend_details = ""
        self.cache: Any = None

    # ---- models ----------------------------------------------------------------------------
    def set_backends(self, generator: Any, segmenter: Any, text: str | None = None) -> None:
        """Use these (already built) models instead of the form's choice, e.g. tiny test models."""
        self.generator, self.segmenter, self.backend_key = generator, segmenter, "given"
        from napari_fob._widgets.backends import status_text

        self.backend_text = text or status_text(generator, segmenter, self.w.choice())
        self.c.status.setText(self.backend_text)
        self._adapted = None  # other models: an adaptation of the old ones no longer applies
        if self.session is not None:
            self.session.generator, self.session.segmenter = generator, segmenter

    def backend_status(self, choice: BackendChoice) -> str:
        if self.backend_key == "given" or self.backend_key == choice:
            return self.backend_text
        return choice.describe()

    def load_backends(self, choice: BackendChoice) -> Generator[Any, None, None]:
        """(Worker side) build the models when the choice changed; yields one progress item."""
        if self.backend_key != "given" and self.backend_key != choice:
            yield (0, 1, "Loading models")
            block_triton_under_mesa()  # before torch is imported (see _mesa_guard)
            if self.cache is None:  # memory + the disk store under paths.cache_dir()
                from napari_fob.segmenters.cache import default_cache

                self.cache = default_cache()
            built = build(choice, cache=self.cache)
            self.generator, self.segmenter, self.backend_text, self.backend_details = built
            self.backend_key = choice
            self._adapted = None  # other models: an adaptation of the old ones no longer applies
        if self.session is not None:
            self.session.generator = self.generator_for(self.session)
            self.session.segmenter = self.segmenter

    def generator_for(self, session: Any) -> Any:
        """The generator `session` prompts with: the one adapted to its scan ("Adapt to this
        scan") when there is one, else the form's. An adaptation belongs to the session (the
        scan) it was made on; another image never prompts with it."""
        if self._adapted is not None and self._adapted[0] is session:
            return self._adapted[1]
        return self.generator

    def adopt(self, adapted: Any) -> None:
        """Prompt the current session with `adapted` (weights adapted to its scan)."""
        self._adapted = (self.session, adapted)
        if self.session is not None:
            self.session.generator = adapted

    # ---- session ---------------------------------------------------------------------------
    def window(self) -> Window:
        c = self.c
        source = "contrast-limits" if c.window_from_layer.isChecked() else "user"
        return Window(float(c.low.value()), float(c.high.value()), source)

    def volume(self, image: Any) -> Any:
        meta = volume_metadata(image)
        data = np.asarray(image.data)
        if meta is None:
            return data
        from napari_fob.core.io import Volume

        return Volume.from_metadata(data, meta)

    def prepare(self, label: int) -> Any:
        """Layers and session ready for structure `label`; supports read from the layer.

        Refused while a job runs: it changes the session (supports, window) that the job's
        worker is walking; every action that needs it (Predict, Adapt, supports from another
        scan) asks it first."""
        if self.w.busy():
            raise ValueError("Busy: wait for the running job to finish, or press Cancel")
        layers = self.w.ensure_layers()
        image = self.w.image_layer()
        session = self.session_of(image)
        if session is not self.session:
            self.attach(session)
        session.set_window(self.window())
        session.propagate_corrections = self.c.propagate.isChecked()
        name = self.c.name.text().strip()
        if name:
            session.names[label] = name
        support = np.asarray(layers.support.data)
        present = {int(z) for z in np.flatnonzero((support == label).any(axis=(1, 2)))}
        known = session.supports.get(label, {})
        for z in sorted(set(known) - present):
            session.remove_support(label, z)
        for z in sorted(present):
            mask = support[z] == label
            if z not in known or not np.array_equal(known[z], mask):
                session.set_support(label, z, mask)
        return session

    def session_of(self, image: Any) -> Any:
        """The session of image layer `image`: the one made for it earlier (while its data
        keeps its shape), else a new one. Two images of one shape never share a session: the
        session holds its volume's data, which would otherwise prompt the other image."""
        kept = self._sessions.get(layer_key(image))
        if kept is not None and kept.volume.shape == image.data.shape:
            return kept
        session = self.new_session(image)
        self.keep(image, session)
        return session

    def keep(self, image: Any, session: Any) -> None:
        """Remember `session` as image layer `image`'s; forget those of removed layers."""
        present = {layer_key(layer) for layer in self.w.viewer.layers}
        self._sessions = {k: v for k, v in self._sessions.items() if k in present}
        self._sessions[layer_key(image)] = session

    def new_session(self, image: Any) -> Any:
        from napari_fob.core.intensity import count_nonfinite
        from napari_fob.session import AnnotationSession

        session = AnnotationSession(
            self.volume(image),
            generator=self.generator,
            segmenter=self.segmenter,
            window=self.window(),
        )
        bad = count_nonfinite(session.volume)
        if bad:  # said once, when the session is made: the models see them as the window's floor
            self.w.say(
                f"Image '{image.name}' holds {bad} NaN/inf voxel(s): they are left out of the "
                "window and read as its lowest value; a support may not cover them."
            )
        return session

    def attach(self, session: Any) -> None:
        """Make `session` the widget's session and show it (layers, output labels, review)."""
        if self.session is not None:
            self.session.events.disconnect(self.w.on_session_change)
        self.session = session
        session.events.on_change(self.w.on_session_change)
        layers = self.w.ensure_layers()
        layers.output.data = session.labels  # shared: commits and undo write in place
        support = np.zeros(session.shape, np.uint8)
        for label, by_z in session.supports.items():
            for z, mask in by_z.items():
                support[z][mask] = label
        if support.any():
            layers.support.data = support
        self.w.refresh()

    def show_labels(self) -> None:
        output = self.w.layers().output
        if output.data is not self.session.labels:
            output.data = self.session.labels
        output.refresh()

    def slices_with_prompts(self, label: int) -> list[int]:
        s = self.session
        return sorted(
            {z for (lab, z) in s.prompts if lab == label} | set(s.supports.get(label, {}))
        )

    def review_entries(self, label: int) -> list[SliceEntry]:
        s = self.session
        if s is None:
            return []
        committed = np.flatnonzero((s.labels == label).any(axis=(1, 2)))
        zs = set(self.slices_with_prompts(label)) | {int(z) for z in committed}
        out = []
        for z in sorted(zs):
            status = s.slice_status(label, z)
            if status == "predicted" and REPREDICTED in s.prompts[(label, z)].meta:
                status = "re-predicted"  # from a correction next to it: to be looked at again
            if status == "none":
                status = "support" if z in s.supports.get(label, {}) else "committed"
            out.append(SliceEntry(z, status, s.confidence(label, z), s.low_confidence(label, z)))
        return out

    # ---- files -----------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        if self.session is None:
            raise ValueError("nothing to save yet: predict or commit first")
        # The user picked this folder to save into: saving again there is the normal loop, and
        # the save replaces the previous session as one unit (inputs are still refused).
        self.session.save(path, overwrite=True)
        self.w.say(f"Session saved to {path}")

    def load(self, path: Path) -> None:
        from napari_fob.session import AnnotationSession

        image = self.w.image_layer()
        if image is None:
            raise ValueError("open the image the session was made on before loading it")
        session = AnnotationSession.load(
            path, self.volume(image), generator=self.generator, segmenter=self.segmenter
        )
        self.keep(image, session)
        self.attach(session)
        self.w.say(f"Session loaded from {path}")

    def export(self, path: Path) -> Path:
        from napari_fob.core.io import Volume, write_labels

        if self.session is None:
            raise ValueError("nothing to export yet: commit some slices first")
        meta = volume_metadata(self.w.image_layer())
        if meta is None:  # an array without file geometry: identity affine, said in the docs
            meta = Volume.from_array(self.session.volume, affine=np.eye(4)).to_metadata()
        out = write_labels(path, self.session.labels, like=meta)
        self.w.say(f"Labels exported to {out}")
        return Path(out)

    # ---- form --------------------------------------------------------------------------------
    def fill_image_choices(self, combo: Any) -> None:
        from napari.layers import Image

        names = [
            layer.name
            for layer in self.w.viewer.layers
            if isinstance(layer, Image) and layer.data.ndim == 3 and not layer.rgb
        ]
        current = combo.currentText()
        if names == [combo.itemText(i) for i in range(combo.count())]:
            return
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(names)
        if current in names:
            combo.setCurrentText(current)
        combo.blockSignals(False)
        self.on_image_changed()

    def on_image_changed(self) -> None:
        image, c = self.w.image_layer(), self.c
        if image is None:
            return
        nz = int(image.data.shape[0])
        for box in (c.z_from, c.z_to):
            box.setRange(0, nz - 1)
        if c.z_to.value() == 0:
            c.z_to.setValue(nz - 1)
        if c.window_from_layer.isChecked():
            lo, hi = (float(v) for v in image.contrast_limits)
            c.low.setValue(lo)
            c.high.setValue(hi if hi > lo else lo + 1.0)

    def on_structure_changed(self, label: int) -> None:
        c = self.c
        name = self.session.names.get(label, "") if self.session is not None else ""
        c.name.setText(name)
        if self.w.layers() is not None:
            self.w.layers().support.selected_label = label
