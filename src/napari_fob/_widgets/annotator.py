"""`AnnotatorWidget`: the dock widget of the few-shot annotation loop (npe2 contribution).

Paint one support, predict prompts on the other slices, correct the points, commit with SAM,
undo, save, export. The widget is thin: the `AnnotationSession` decides everything; this file
wires the form (`controls.py`), the layers (`layers.py`, `editing.py`), the review list, the
shortcuts and the workers together. Long work (model loading, prediction, commits, SAM
precompute) runs in workers (`workers.py`); layers are touched only on the main thread.
Imports napari and qtpy (widget side only).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QTabWidget, QVBoxLayout, QWidget

from napari_fob._widgets import files
from napari_fob._widgets import layers as L
from napari_fob._widgets.backends import BackendChoice
from napari_fob._widgets.controls import PROMPT_NAMES, Controls
from napari_fob._widgets.editing import PromptEditor, modifier_click_adder
from napari_fob._widgets.form_sync import FormSync
from napari_fob._widgets.gallery import Gallery
from napari_fob._widgets.jobs import JobHooks, JobRunner
from napari_fob._widgets.progress_panel import ProgressPanel
from napari_fob._widgets.reference import ReferencePanel
from napari_fob._widgets.review import ReviewList, next_to_review
from napari_fob._widgets.session_glue import GlueHooks, SessionGlue
from napari_fob._widgets.shortcuts import Shortcuts

log = logging.getLogger(__name__)


def notify(message: str) -> None:
    """A napari warning notification (shown in the viewer's corner, kept in its history)."""
    from napari.utils.notifications import show_warning

    show_warning(message)


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
        self._adding_layers = False
        self._growing = self._closed = False
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
                on_session_change=self.on_session_change,
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
        layout.addWidget(QLabel("Review (click to jump · N / B next / previous to review)"))
        self._review = ReviewList(self.jump_to)
        self.marks: dict[tuple[int, int], str] = {}  # (structure, slice) -> reviewed / flagged
        self._marked_session: Any = None
        self._gallery_shows: tuple[int, int] | None = None
        self._gallery = Gallery(self.jump_to, self.set_mark, self._gallery_source)
        self._tabs = QTabWidget()
        self._tabs.addTab(self._review, "List")
        self._tabs.addTab(self._gallery, "Gallery")
        layout.addWidget(self._tabs)
        layout.addWidget(ReferencePanel(viewer=self.viewer, run_job=self.run_job,
            prepare=self.glue.prepare, label=lambda: self.label, slice_range=self.slice_range,
            image_layer=self.image_layer, say=self.say))  # fmt: skip
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
        """Run a button/key action: no traceback reaches the user (the widget's error boundary).

        A refusal (bad input, missing file) is shown in the message line; an environment error
        (permissions, a full disk) also as a napari notification; anything unexpected says what
        failed, with the traceback in the log. The session is left as it was before the action.
        """
        try:
            action()
        except (ValueError, FileNotFoundError) as exc:
            self.say(str(exc))
        except OSError as exc:
            self.say(str(exc))
            notify(f"napari-fob: {exc}")
        except Exception as exc:  # the boundary: report, never crash the viewer
            log.exception("annotator action failed")
            self.say(f"Unexpected error ({type(exc).__name__}: {exc}); details in the log.")
            notify(f"napari-fob: unexpected {type(exc).__name__}: {exc}")

    def ensure_layers(self) -> L.PromptLayers:
        """Create (once) the annotator's layers over the chosen image; idempotent."""
        image = self.image_layer()
        if image is None:
            raise ValueError("no image layer: open a volume (or a sample) first")
        layers = self._add_layers(image)
        if self.editor is not None and self.editor.layer_ids == layers.ids():
            return self.layers  # the same layers: keep the editor and its listeners
        first = self.layers is None
        self.layers = layers
        self.form.watch_support(layers.support)
        if first:
            self.form.adopt_sample_support(layers)
            self.form.name_from_sample()
        L.show_overlays(layers, self.viewer.dims.ndisplay)
        if self.editor is not None:
            self.editor.close()
        self.editor = PromptEditor(
            layers=layers, session=lambda: self.session, label=lambda: self.label,
            on_error=self.say,
        )  # fmt: skip
        self._set_click(modifier_click_adder(self.editor, self.image_layer))
        return layers

    def _add_layers(self, image: Any, at_most: int | None = None) -> L.PromptLayers | None:
        self._adding_layers = True
        try:
            return L.ensure_layers(self.viewer, image, at_most=at_most)
        finally:
            self._adding_layers = False

    @property
    def creating_layers(self) -> bool:
        """True while `grow_layers` is still adding the annotator's layers."""
        return self._growing

    def grow_layers(self) -> None:
        """Create the annotator's missing layers one per event-loop turn, then adopt them.

        Used when the widget opens on an image: adding all five at once held napari's main
        thread for about a second; one at a time, the viewer redraws and takes input between
        them. An action that needs the layers earlier (`ensure_layers`) creates the rest.
        """
        self._growing = False
        image = self.image_layer()
        if image is None or self._closed or self.layers is not None:
            return
        if self._add_layers(image, at_most=1) is None:
            self._growing = True
            QTimer.singleShot(0, self.grow_layers)
        else:
            self.ensure_layers()

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

    def review_step(self, step: int) -> None:
        """N / B: the next / previous slice to review, skipping those marked reviewed."""
        entries = [
            e for e in self._review.entries if self.marks.get((self.label, e.z)) != "reviewed"
        ]
        z = next_to_review(entries, self.current_slice(), step)
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
        if not busy:
            self._c.buttons["undo"].setEnabled(bool(self.session and self.session.can_undo))
            self._c.buttons["redo"].setEnabled(bool(self.session and self.session.can_redo))

    # ---- refresh ------------------------------------------------------------------------------
    def on_session_change(self, kind: str, label: int, slices: list[int]) -> None:
        """Session callback: refresh now on the main thread, later (yield/end) from a worker."""
        if threading.current_thread() is not threading.main_thread():
            self.dirty = True
            return
        self.refresh()

    def _refresh_from_job(self, only_if_dirty: bool) -> None:
        if self.dirty or not only_if_dirty:
            self.refresh()

    def refresh(self) -> None:
        """Show the session's state of the active structure in the layers and the review list."""
        self.dirty = False
        if self.session is None or self.layers is None:
            return
        self.editor.show(self.session.prompts, self.label)
        self.glue.show_labels()
        self._show_review(self.glue.review_entries(self.label))
        if not self.busy:
            self.set_busy(False)

    # ---- the gallery ---------------------------------------------------------------------------
    def _gallery_source(self) -> tuple[Any, int] | None:
        return None if self.session is None else (self.session, self.label)

    def _show_review(self, entries: list[Any]) -> None:
        """The review list and the gallery: the same entries, marks and current slice."""
        label = self.label
        if self.session is not self._marked_session:  # marks belong to one session
            self.marks.clear()
            self._marked_session = self.session
        if (id(self.session), label) != self._gallery_shows:
            self._gallery.forget()  # another structure's thumbnails would show a moment
            self._gallery_shows = (id(self.session), label)
        marks = {z: m for (k, z), m in self.marks.items() if k == label}
        self._review.set_entries(entries, marks)
        self._gallery.set_entries(entries, marks)
        self._review.select_slice(self.current_slice())
        self._gallery.select_slice(self.current_slice())

    def set_mark(self, z: int, mark: str | None) -> None:
        """Mark slice `z` of the active structure "reviewed" or "flagged" (None: unmark)."""
        key = (self.label, int(z))
        if mark is None:
            self.marks.pop(key, None)
            self.say(f"Slice {z}: mark removed.")
        else:
            self.marks[key] = mark
            self.say(f"Slice {z}: {mark}.")
        self._show_review(self._review.entries)

    # ---- form events ----------------------------------------------------------------------------
    def _on_layers_changed(self, event: Any = None) -> None:
        if self._adding_layers:
            return  # our own layers being added: nothing to update
        self.glue.fill_image_choices(self._c.image)
        if self.layers is None and not self._growing and self.image_layer() is not None:
            self.grow_layers()  # the support layer is there to paint on from the start
        self.form.follow_image(self.image_layer())

    def _on_image_changed(self, *_: Any) -> None:
        self.glue.on_image_changed()
        image = self.image_layer()
        if image is not None and self.layers is None:
            if not self._growing:
                self.grow_layers()  # the support layer is there to paint on
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
        self._review.select_slice(self.current_slice())
        self._gallery.select_slice(self.current_slice())
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
        self._closed = True
        self._gallery.stop()
        self.cancel()
        self.release_shortcuts()
        self._set_click(None)
        if self.editor is not None:
            self.editor.close()
            self.editor = None
        super().closeEvent(event)
