"""The per-slice review list: what happened on each slice of the active structure.

One row per slice that has a support, prompts or committed voxels: ``z 12 · predicted · 0.83``.
Low-confidence slices are highlighted; clicking a row jumps the viewer to that slice. The N / B
keys (`next_to_review`) go through the slices that need review worst first (the session's
review order, plain Python, tested without Qt).
Imports qtpy (widget side only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from qtpy.QtCore import Qt
from qtpy.QtGui import QBrush, QColor
from qtpy.QtWidgets import QListWidget, QListWidgetItem

from napari_fob.session.review import step_in, worst_first

LOW_CONFIDENCE_COLOR = "#8a5a00"
COMMITTED_COLOR = "#1f4d2a"


@dataclass(frozen=True)
class SliceEntry:
    """Review state of one slice of one structure."""

    z: int
    status: str  # "support", "predicted", "re-predicted", "edited", "committed" or "none"
    confidence: float | None
    low_confidence: bool

    @property
    def needs_review(self) -> bool:
        """Prompts nobody has looked at yet, or a committed slice the model doubted."""
        return self.status in ("predicted", "re-predicted", "edited") or self.low_confidence

    def text(self) -> str:
        conf = "" if self.confidence is None else f" · {self.confidence:.2f}"
        flag = " · LOW" if self.low_confidence else ""
        return f"z {self.z:>4} · {self.status}{conf}{flag}"


def next_to_review(entries: Sequence[SliceEntry], current: int, step: int) -> int | None:
    """The next (`step` = +1) or previous (-1) slice that needs review in the review order:
    lowest confidence first (`napari_fob.session.review`), so N from elsewhere goes to the
    worst slice. None past the end of the order (no wrap-around: the user sees the end)."""
    return step_in(worst_first(entries), current, step)


class ReviewList(QListWidget):
    """A QListWidget of `SliceEntry` rows; `on_jump(z)` is called when a row is clicked."""

    def __init__(self, on_jump: Callable[[int], None]) -> None:
        super().__init__()
        self.entries: list[SliceEntry] = []
        self._on_jump = on_jump
        self.setToolTip(
            "Slices of the active structure. Click to jump; N / B: next / previous slice "
            "that needs review. Highlighted: low confidence."
        )
        self.itemClicked.connect(self._on_item_clicked)

    def set_entries(
        self, entries: Sequence[SliceEntry], marks: Mapping[int, str] | None = None
    ) -> None:
        """Replace the rows (sorted by slice); `marks`: slice -> "reviewed" / "flagged" (the
        gallery's A / F), shown at the end of the row."""
        self.entries = sorted(entries, key=lambda e: e.z)
        marks = marks or {}
        self.clear()
        for entry in self.entries:
            mark = marks.get(entry.z)
            item = QListWidgetItem(entry.text() + ("" if mark is None else f" · {mark}"))
            item.setData(Qt.ItemDataRole.UserRole, entry.z)
            if entry.low_confidence:
                item.setBackground(QBrush(QColor(LOW_CONFIDENCE_COLOR)))
            elif entry.status == "committed":
                item.setBackground(QBrush(QColor(COMMITTED_COLOR)))
            self.addItem(item)

    def select_slice(self, z: int) -> None:
        """Highlight the row of slice `z` (if listed) without jumping."""
        for row, entry in enumerate(self.entries):
            if entry.z == z:
                self.blockSignals(True)
                self.setCurrentRow(row)
                self.blockSignals(False)
                return

    def _on_item_clicked(self, item: QListWidgetItem) -> None:
        self._on_jump(int(item.data(Qt.ItemDataRole.UserRole)))
