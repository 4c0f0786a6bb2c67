"""`AnnotatorWidget`: the dock widget of the few-shot annotation loop (npe2 contribution).

Paint one support, predict prompts on the other slices, correct the points, commit with SAM,
undo, save, export. The widget is thin: the `AnnotationSession` decides everything; this file
wires the form (`controls.py`), the layers (`layers.py`, `editing.py`), the review list, the
shortcuts and the workers together. Long work (model loading, prediction, commits, SAM
precompute) runs in workers (`workers.py`); layers are touched only on the main thread.
Imports napari and qtpy (widget side only).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from qtpy.QtWidgets import QVBoxLayout, QWidget

from napari_fob._widgets import files
from napari_fob._widgets import layers as L
from napari_fob._widgets.adapt import AdaptPanel
from napari_fob._widgets.backends import BackendChoice
from napari_fob._widgets.boundary import reported
from napari_fob._widgets.controls import PROMPT_NAMES, Controls
from napari_fob._widgets.editing import PromptEditor, modifier_click_adder
from napari_fob._widgets.form_sync import FormSync
from napari_fob._widgets.jobs import JobHooks, JobRunner
from napari_fob._widgets.layer_growth import LayerGrowth
from napari_fob._widgets.progress_panel import ProgressPanel
from napari_fob._widgets.reference import ReferencePanel
from napari_fob._widgets.review_panel import ReviewPanel
from napari_fob._widgets.session_glue import GlueHooks, SessionGlue
from napari_fob._widgets.shortcuts import Shortcuts


class AnnotatorWidget(QWidget):
    """Dock widget: support -> predicted prompts -> corrected prompts -> committed labels.

    Args:
        napari_viewer: the viewer to dock into (napari passes it).
    """

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.dirty = False
        self.layers: L.PromptLayers | None = None
        self.editor: PromptEditor | None = None
        self._growth = LayerGrowth(
            self.viewer, self.image_layer, lambda: self.layers is not None, self.ensure_layers
        )
        self._labels_stale = True
        layout = QVBoxLayout(self)
        self._c = Controls(layout)
        self._progress = ProgressPanel(lambda: self.reported(self.cancel))
        layout.addWidget(self._progress)
        self._c.buttons["cancel"].hide()  # the progress row's Cancel, shown while a job runs
        self.glue = SessionGlue(
            GlueHooks(
                viewer=self.viewer, choice=self.choice, say=self.say,
                image_layer=self.image_layer, ensure_layers=self.ensure_layers,
                layers=lambda: self.layers, refresh=self.refresh,
                on_session_change=self.on_session_change, busy=lambda: self.busy,
            ),
            self._c,
        )  # fmt: skip
        self.jobs = JobRunner(
            JobHooks(
                session=lambda: self.session, choice=self.choice, glue=self.glue, say=self.say,
                set_busy=self.set_busy, show_backends=self.show_backends,
                refresh=self._refresh_from_job,
                current_slice=self.current_slice, progress=self._progress,
            )
        )  # fmt: skip
        self.form = FormSync(self.viewer, self._c, self.say, self.glue.on_image_changed)
        self.review = ReviewPanel(
            self.jump_to, lambda: self.session, lambda: self.label, self.say, self.current_slice
        )
        self._review, self._gallery, self._tabs = (
            self.review.list, self.review.gallery, self.review.tabs
        )
        layout.addWidget(self.review)
        layout.addWidget(ReferencePanel(viewer=self.viewer, run_job=self.run_job,
            prepare=self.glue.prepare, label=lambda: self.label, slice_range=self.slice_range,
            image_layer=self.image_layer, say=self.say))  # fmt: skip
        self._adapt = AdaptPanel(run_job=self.run_job, prepare=self.glue.prepare,
            glue=self.glue, label=lambda: self.label, say=self.say)  # fmt: skip
        layout.addWidget(self._adapt)
        handlers = {
            "predict": self.predict, "commit_slice": self.commit_slice,
            "commit_range": self.commit_range, "clear": self.clear_slice, "undo": self.undo,
            "redo": self.redo, "cancel": self.cancel, "save": lambda: files.ask_save(self),
            "load": lambda: files.ask_load(self), "export": lambda: files.ask_export(self),
        }  # fmt: skip
        for name, handler in handlers.items():
            self._c.buttons[name].clicked.connect(lambda _=False, h=handler: self.reported(h))
        c = self._c
        c.label.valueChanged.connect(self._on_structure_changed)
        c.name.editingFinished.connect(self._on_name_changed)
        for w in (c.prompts, c.segmenter, c.sam_model):
            w.currentIndexChanged.connect(self._on_backend_changed)
        for w in (c.fob_checkpoint, c.sam_checkpoint):
            w.editingFinished.connect(self._on_backend_changed)
        c.image.currentIndexChanged.connect(self._on_image_changed)
        c.window_from_layer.toggled.connect(self._on_image_changed)
        self.viewer.dims.events.ndisplay.connect(self._on_ndisplay)
        self.viewer.layers.events.inserted.connect(self._on_layers_changed)
        self.viewer.layers.events.removed.connect(self._on_layers_changed)
        self.viewer.dims.events.current_step.connect(self._on_slice_changed)
        self._click = None
        self.shortcuts: Shortcuts | None = None
        self.bind_shortcuts()
        self._on_layers_changed()
        self._on_backend_changed()

    # ---- state helpers --------------------------------------------------------------------
    @property
    def session(self) -> Any:
        return self.glue.session

    @property
    def label(self) -> int:
        return int(self._c.label.value())

    def image_layer(self) -> Any:
        name = self._c.image.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def current_slice(self) -> int:
        return int(self.viewer.dims.current_step[0])

    def choice(self) -> BackendChoice:
        c = self._c
        return BackendChoice(
            prompts=PROMPT_NAMES[max(0, c.prompts.currentIndex())],
            fob_checkpoint=c.fob_checkpoint.text().strip() or "default",
            segmenter=c.segmenter.currentText(),
            sam_model=c.sam_model.currentText(),
            sam_checkpoint=c.sam_checkpoint.text().strip() or None,
        )

    def slice_range(self) -> list[int] | str:
        if self._c.auto_extent.isChecked():
            return "auto"
        lo, hi = sorted((self._c.z_from.value(), self._c.z_to.value()))
        return list(range(lo, hi + 1))

    def say(self, text: str) -> None:
        self._c.message.setText(text)

    def reported(self, action: Any) -> None:
        """Run a button/key action inside the error boundary (`boundary.reported`)."""
        reported(action, self.say)

    def ensure_layers(self) -> L.PromptLayers:
        """Create (once) the annotator's layers over the chosen image; idempotent."""
        image = self.image_layer()
        if image is None:
            raise ValueError("no image layer: open a volume (or a sample) first")
        layers = self._growth.add(image)
        if self.editor is not None and self.editor.layer_ids == layers.ids():
            return self.layers  # the same layers: keep the editor and its listeners
        first = self.layers is None
        self.layers = layers
        self.form.watch_support(layers.support)
        if first:
            self.form.adopt_sample_support(layers)
            self.form.name_from_sample()
            self.form.support_edited()  # painted while the layers were still being added
        L.show_overlays(layers, self.viewer.dims.ndisplay)
        if self.editor is not None:
            self.editor.close()
        self.editor = PromptEditor(
            layers=layers, session=lambda: self.session, label=lambda: self.label,
            on_error=self.say,
        )  # fmt: skip
        self._set_click(modifier_click_adder(self.editor, self.image_layer))
        return layers

    @property
    def creating_layers(self) -> bool:
        """True while the layers are still being added one per turn (`layer_growth`)."""
        return self._growth.running

    def _set_click(self, callback: Any) -> None:
        callbacks = self.viewer.mouse_drag_callbacks
        if self._click is not None and self._click in callbacks:
            callbacks.remove(self._click)
        self._click = callback
        if callback is not None:
            callbacks.append(callback)

    # ---- actions --------------------------------------------------------------------------
    def predict(self) -> None:
        """Predict prompts for the slice range of the active structure (worker)."""
        label, slices = self.label, self.slice_range()
        mode, thr = self._c.mode.currentText(), float(self._c.threshold.value())
        self.glue.prepare(label)
        self.run_job(
            "Predicting prompts", lambda s: s.predict(label, slices, mode=mode, threshold=thr)
        )

    def commit_slice(self) -> None:
        """Commit the current slice of the active structure (worker)."""
        self._commit([self.current_slice()])

    def commit_range(self) -> None:
        """Commit every slice of the range that has prompts or a support (worker)."""
        self.glue.prepare(self.label)
        rng = self.slice_range()
        zs = self.glue.slices_with_prompts(self.label)
        self._commit([z for z in zs if rng == "auto" or z in rng])

    def _commit(self, slices: list[int]) -> None:
        label = self.label
        self.glue.prepare(label)
        over, other = self._c.overwrite.isChecked(), self._c.other_bg.isChecked()
        self.run_job(
            "Committing",
            lambda s: s.commit(label, slices, overwrite=over, other_structures_as_bg=other),
        )

    def clear_slice(self) -> None:
        if self.session is not None:
            self.session.clear_prompts(self.label, self.current_slice())

    def undo(self) -> None:
        if self.session is not None and not self.busy and not self.session.undo():
            self.say("Nothing to undo.")

    def redo(self) -> None:
        if self.session is not None and not self.busy and not self.session.redo():
            self.say("Nothing to redo.")

    def cancel(self) -> None:
        self.jobs.cancel()

    def save_session(self, path: str | Path) -> None:
        self.glue.save(Path(path))

    def load_session(self, path: str | Path) -> None:
        self.glue.load(Path(path))

    def export_labels(self, path: str | Path) -> Path:
        return self.glue.export(Path(path))

    # ---- review -----------------------------------------------------------------------------
    def jump_to(self, z: int) -> None:
        self.viewer.dims.set_current_step(0, int(z))

    @property
    def marks(self) -> dict[tuple[int, int], str]:
        """(structure, slice) -> "reviewed" / "flagged" (the gallery's A / F)."""
        return self.review.marks

    def set_mark(self, z: int, mark: str | None) -> None:
        self.review.set_mark(z, mark)

    def review_step(self, step: int) -> None:
        """N / B: the next / previous slice to review, skipping those marked reviewed."""
        z = self.review.step(step)
        if z is None:
            self.say("No slice to review in that direction.")
        else:
            self.jump_to(z)

    # ---- workers (jobs.py) -------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.jobs.busy

    def run_job(self, description: str, make: Any, *, on_done: Any = None) -> None:
        self.jobs.run(description, make, on_done=on_done)

    def show_backends(self) -> None:
        self._c.status.setText(self.glue.backend_text)
        self._c.status.setToolTip(self.glue.backend_details or self.glue.backend_text)

    def set_busy(self, busy: bool) -> None:
        for name, button in self._c.buttons.items():
            button.setEnabled(not busy if name != "cancel" else busy)
        self._adapt.set_busy(busy)
        if not busy:
            self._c.buttons["undo"].setEnabled(bool(self.session and self.session.can_undo))
            self._c.buttons["redo"].setEnabled(bool(self.session and self.session.can_redo))

    # ---- refresh ------------------------------------------------------------------------------
    def on_session_change(self, kind: str, label: int, slices: list[int]) -> None:
        """Session callback: refresh now on the main thread, later (yield/end) from a worker."""
        if kind != "prompts":
            self._labels_stale = True
        if threading.current_thread() is not threading.main_thread():
            self.dirty = True
            return
        self.refresh()

    def _refresh_from_job(self, only_if_dirty: bool) -> None:
        self._labels_stale = True  # a job's label writes reach the session without an event
        if self.dirty or not only_if_dirty:
            self.refresh()

    def refresh(self) -> None:
        """Show the session's state of the active structure in the layers and the review list."""
        self.dirty = False
        if self.session is None or self.layers is None or self.editor is None:
            return  # nothing shown yet, or the dock closed while a job was still writing
        self.editor.show(self.session.prompts, self.label)
        if self._labels_stale or self.layers.output.data is not self.session.labels:
            # re-slicing the labels layer costs a texture upload (tens of ms with software
            # OpenGL): only when they may have changed, not after every point edit
            self.glue.show_labels()
            self._labels_stale = False
        self.review.show_entries(self.glue.review_entries(self.label))
        if not self.busy:
            self.set_busy(False)

    # ---- form events ----------------------------------------------------------------------------
    def _on_layers_changed(self, event: Any = None) -> None:
        if self._growth.adding:
            return  # our own layers being added: nothing to update
        self.glue.fill_image_choices(self._c.image)
        if self.layers is None and not self._growth.running and self.image_layer() is not None:
            self._growth.step()  # the support layer is there to paint on from the start
        self.form.follow_image(self.image_layer())

    def _on_image_changed(self, *_: Any) -> None:
        self.glue.on_image_changed()
        image = self.image_layer()
        if image is not None and self.layers is None:
            if not self._growth.running:
                self._growth.step()  # the support layer is there to paint on
        elif image is not None:
            self.ensure_layers()  # another image: its own support and labels layers
        self.form.follow_image(image)

    def _on_ndisplay(self, event: Any = None) -> None:
        if self.layers is not None:
            L.show_overlays(self.layers, self.viewer.dims.ndisplay)

    def _on_structure_changed(self, value: int) -> None:
        self.glue.on_structure_changed(int(value))
        self.form.name_from_sample()
        self.form.support_edited()
        self.refresh()

    def _on_name_changed(self) -> None:
        if self.session is not None and self._c.name.text().strip():
            self.session.names[self.label] = self._c.name.text().strip()

    def set_fob_checkpoint(self, path: str) -> None:
        """Use this FoB checkpoint for the next prediction (the training widget offers it)."""
        self._c.prompts.setCurrentIndex(0)
        self._c.fob_checkpoint.setText(str(path))
        self._on_backend_changed()

    def _on_backend_changed(self, *_: Any) -> None:
        self._c.status.setText(self.glue.backend_status(self.choice()))

    def _on_slice_changed(self, event: Any = None) -> None:
        self.review.select_slice(self.current_slice())
        self.jobs.start_prefetch()

    # ---- shortcuts and closing ------------------------------------------------------------------
    def bind_shortcuts(self) -> None:
        if self.shortcuts is None:
            actions = {
                "predict": self.predict, "commit_slice": self.commit_slice,
                "commit_range": self.commit_range, "undo": self.undo, "redo": self.redo,
                "next_review": lambda: self.review_step(1),
                "previous_review": lambda: self.review_step(-1),
            }  # fmt: skip
            self.shortcuts = Shortcuts.bind(
                self.viewer, {k: (lambda a=a: self.reported(a)) for k, a in actions.items()}
            )

    def release_shortcuts(self) -> None:
        if self.shortcuts is not None:
            self.shortcuts.release()
            self.shortcuts = None

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        self.bind_shortcuts()
        super().showEvent(event)

    def hideEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        self.release_shortcuts()
        super().hideEvent(event)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        self._growth.closed = True
        self.review.stop()
        self.jobs.close()  # cancels, and nothing reported after this touches the widget
        self.release_shortcuts()
        self._set_click(None)
        if self.editor is not None:
            self.editor.close()
            self.editor = None
        super().closeEvent(event)
