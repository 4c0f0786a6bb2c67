"""Progress of the annotator's long actions in the dock: a bar, slices done / total, time left,
and Cancel beside it.

napari's activity panel (collapsed by default) gets the same numbers from the job's napari
progress bar (`workers`); this panel is what the user sees without looking for it. It shows
while a job runs and hides when it ends. The time left is the mean time per step so far times
the steps still to do, shown once one step is done (model loading counts as no step).
Imports qtpy (widget side only).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from napari_fob._widgets.workers import step_of


def time_left(elapsed_s: float, done: int, total: int) -> float | None:
    """Seconds still to go at the mean pace so far; None before the first step is done."""
    if done <= 0 or total <= 0 or done > total:
        return None
    return elapsed_s / done * (total - done)


def progress_text(description: str, done: int | None, total: int | None, left: float | None) -> str:
    """``Predict prompts: 12 / 60 slices · 8 s left`` (as much as is known)."""
    if done is None or total is None or total <= 0:
        return f"{description}…"
    text = f"{description}: {done} / {total} slices"
    if left is not None and done < total:
        text += f" · {left:.0f} s left" if left < 120 else f" · {left / 60:.0f} min left"
    return text


class ProgressPanel(QWidget):
    """One row: label, bar, Cancel. `on_cancel` is the annotator's cancel."""

    def __init__(self, on_cancel: Callable[[], None]) -> None:
        super().__init__()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("")
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(12)
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip("Stop at the next slice; the slices already done are kept")
        self.cancel.clicked.connect(lambda _=False: on_cancel())
        row.addWidget(self.label, 2)
        row.addWidget(self.bar, 2)
        row.addWidget(self.cancel)
        self._description, self._since, self._show_at = "", 0.0, 0.0
        self.hide()

    def start(self, description: str, *, after_s: float = 0.0) -> None:
        """Show the row for a job; with `after_s`, only once it has run that long (a background
        precompute that finds everything cached ends before that and never flashes)."""
        if not alive(self):
            return
        self._description, self._since = description, time.perf_counter()
        self._show_at = self._since + after_s
        self.bar.setRange(0, 0)  # busy until the first report with a total
        self.label.setText(progress_text(description, None, None, None))
        if after_s <= 0:
            self.show()

    def step(self, item: Any) -> None:
        """A progress item yielded by the job (`workers.step_of` reads it)."""
        if not alive(self):
            return  # the dock closed while the job finished its step
        done, total, message = step_of(item)
        if message.startswith("Loading models") or done is None or total is None:
            self._since = time.perf_counter()  # the pace counts from here, not model loading
            self.label.setText(message or progress_text(self._description, None, None, None))
            return
        now = time.perf_counter()
        if not self.isVisible() and now >= self._show_at and done < total:
            self.show()
        left = time_left(now - self._since, done, total)
        self.bar.setRange(0, max(1, total))
        self.bar.setValue(min(done, total))
        self.label.setText(progress_text(self._description, done, total, left))

    def finish(self) -> None:
        if alive(self):
            self.hide()


def alive(widget: Any) -> bool:
    """False once Qt deleted the widget (napari closed while a job was still reporting)."""
    try:
        widget.isVisible()
    except RuntimeError:
        return False
    return True
