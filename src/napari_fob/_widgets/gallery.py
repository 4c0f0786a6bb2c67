"""The ring gallery: a thumbnail of every prompted slice of the active structure.

Each thumbnail (`napari_fob.core.thumbnails`) shows the slice cropped around the structure with
its ring, points and committed mask outline, captioned ``z 12 · 0.83``. Ordered by slice or
worst confidence first; a click (or the arrow keys) takes the viewer to the slice; with the
gallery focused, A marks the selected slice reviewed and F flags it (pressed again: unmarked),
and N / B in the viewer then skip reviewed slices. Thumbnails are built in a worker thread,
only for slices whose picture changed, and only while the gallery is shown, so 200 slices keep
the viewer responsive. The gallery and the review list follow the same current slice.
Imports qtpy (widget side only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np
from qtpy.QtCore import QSize, Qt
from qtpy.QtGui import QBrush, QColor, QIcon, QImage, QPixmap
from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from napari_fob._widgets import workers
from napari_fob.core.thumbnails import ThumbnailInput, render
from napari_fob.session.review import review_key

log = logging.getLogger(__name__)
THUMB_SIZE = 96
ORDERS = ("by slice", "worst first")
MARKS = {"reviewed": "✓", "flagged": "⚑"}
FLAGGED_COLOR = "#7a1f1f"
REVIEWED_COLOR = "#1f4d2a"
MARK_KEYS = {Qt.Key.Key_A: "reviewed", Qt.Key.Key_F: "flagged"}


def thumbnail_input(session: Any, label: int, z: int) -> ThumbnailInput:
    """What slice `z`'s thumbnail shows, read from the session (safe in a worker: reads only)."""
    prompts = session.prompts.get((label, z))
    mask = session.labels[z] == label
    return ThumbnailInput(
        image=session.volume[z],
        low=float(session.window.low),
        high=float(session.window.high),
        ring=None if prompts is None else np.asarray(prompts.bg),
        fg=None if prompts is None else np.asarray(prompts.fg),
        mask=mask if mask.any() else None,
    )


def ordered(entries: Sequence[Any], order: str) -> list[Any]:
    """Entries by slice, or worst first in the review order N / B follow (`review_key`:
    unscored slices first, then the least confident)."""
    if order == "worst first":
        return sorted(entries, key=review_key)
    return sorted(entries, key=lambda e: e.z)


def to_icon(rgb: np.ndarray) -> QIcon:
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QIcon(QPixmap.fromImage(image))


class _Thumbs(QListWidget):
    """The icon grid; A / F mark the selected slice (the gallery decides what that means)."""

    def __init__(self, on_key: Callable[[str], None]) -> None:
        super().__init__()
        self._on_key = on_key
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        # a fixed cell: sizes computed from an item still waiting for its icon would stay small
        self.setGridSize(QSize(THUMB_SIZE + 14, THUMB_SIZE + 26))
        self.setWordWrap(True)
        self.setMinimumHeight(2 * (THUMB_SIZE + 26) + 8)  # two rows of thumbnails at least

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        mark = MARK_KEYS.get(Qt.Key(event.key()))
        if mark is not None and self.currentItem() is not None:
            self._on_key(mark)
            event.accept()
            return
        super().keyPressEvent(event)


class Gallery(QWidget):
    """Thumbnails of one structure's prompted slices.

    Args:
        on_jump: called with a slice index when a thumbnail is clicked.
        on_mark: called with (slice, mark) when A / F is pressed; mark is "reviewed",
            "flagged" or None (the same key again takes the mark off).
        source: returns (session, label) to draw, or None when there is nothing.
    """

    def __init__(
        self,
        on_jump: Callable[[int], None],
        on_mark: Callable[[int, str | None], None],
        source: Callable[[], tuple[Any, int] | None],
    ) -> None:
        super().__init__()
        self._on_jump, self._on_mark, self._source = on_jump, on_mark, source
        self.entries: list[Any] = []
        self.marks: dict[int, str] = {}
        self._icons: dict[int, tuple[int, QIcon]] = {}  # z -> (signature, icon)
        self._job: workers.Job | None = None
        self._again = False
        self._generation = 0  # bumped by forget(): a render of what was shown before is dropped
        self._stale = False  # entries changed while hidden
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.order = QComboBox()
        self.order.addItems(ORDERS)
        self.order.setToolTip("Thumbnails by slice, or the least confident first")
        self.order.currentIndexChanged.connect(lambda _: self._rebuild())
        self.summary = QLabel("")
        row.addWidget(self.order)
        row.addWidget(self.summary, 1)
        layout.addLayout(row)
        self.view = _Thumbs(self._mark_current)
        self.view.setToolTip(
            "Click: go to the slice. With the gallery focused, A: mark reviewed (N / B then "
            "skip it), F: flag it; the same key again removes the mark."
        )
        self.view.itemClicked.connect(self._on_item_clicked)
        # arrow keys move through the thumbnails and the viewer follows (select_slice and
        # _rebuild block the view's signals, so only the user's moves jump)
        self.view.currentItemChanged.connect(
            lambda item, _previous: item is not None and self._on_item_clicked(item)
        )
        layout.addWidget(self.view)

    # ---- contents ---------------------------------------------------------------------------
    def set_entries(self, entries: Sequence[Any], marks: dict[int, str]) -> None:
        """Show these review entries (slices of the active structure) with their marks."""
        self.entries = list(entries)
        self.marks = dict(marks)
        keep = {e.z for e in self.entries}
        self._icons = {z: v for z, v in self._icons.items() if z in keep}
        if not self.isVisible():  # behind the List tab: built when shown (every refresh
            self._stale = True  # would otherwise rebuild items nobody sees)
            return
        self._rebuild()
        self.update_thumbnails()

    def forget(self) -> None:
        """Drop every thumbnail (another structure or session: nothing carries over), and
        the results of a render still running for what was shown before."""
        self._icons.clear()
        self._generation += 1
        if self._job is not None and self._job.running:
            self._job.cancel()
            self._again = True

    def drawn(self) -> bool:
        """Every entry shown with its thumbnail (the render has caught up)."""
        view = self.view
        return view.count() > 0 and all(
            not view.item(i).icon().isNull() for i in range(view.count())
        )

    def select_slice(self, z: int) -> None:
        """Select slice `z`'s thumbnail (if shown) without jumping."""
        if self._stale:
            return  # rebuilt (with the current slice) when shown
        for row in range(self.view.count()):
            item = self.view.item(row)
            if int(item.data(Qt.ItemDataRole.UserRole)) == z:
                self.view.blockSignals(True)
                self.view.setCurrentRow(row)
                self.view.blockSignals(False)
                self.view.scrollToItem(item)
                return

    def _caption(self, entry: Any) -> str:
        conf = "" if entry.confidence is None else f" · {entry.confidence:.2f}"
        mark = MARKS.get(self.marks.get(entry.z, ""), "")
        return f"z {entry.z}{conf} {mark}".rstrip()

    def _rebuild(self) -> None:
        current = self.view.currentItem()
        selected = None if current is None else int(current.data(Qt.ItemDataRole.UserRole))
        self.view.blockSignals(True)
        self.view.clear()
        for entry in ordered(self.entries, self.order.currentText()):
            item = QListWidgetItem(self._caption(entry))
            item.setData(Qt.ItemDataRole.UserRole, entry.z)
            item.setToolTip(f"slice {entry.z}: {entry.status}")
            if entry.z in self._icons:
                item.setIcon(self._icons[entry.z][1])
            mark = self.marks.get(entry.z)
            if mark == "flagged" or (mark is None and entry.low_confidence):
                item.setBackground(QBrush(QColor(FLAGGED_COLOR)))
            elif mark == "reviewed":
                item.setBackground(QBrush(QColor(REVIEWED_COLOR)))
            self.view.addItem(item)
        self.view.blockSignals(False)
        n_reviewed = sum(self.marks.get(e.z) == "reviewed" for e in self.entries)
        n_flagged = sum(self.marks.get(e.z) == "flagged" for e in self.entries)
        self.summary.setText(
            f"{len(self.entries)} slices · {n_reviewed} reviewed · {n_flagged} flagged"
        )
        if selected is not None:
            self.select_slice(selected)

    # ---- thumbnails (worker) ----------------------------------------------------------------
    def update_thumbnails(self) -> None:
        """Render the thumbnails that are missing or out of date, in a worker (when shown)."""
        if not self.isVisible() or not self.entries:
            return
        if self._job is not None and self._job.running:
            self._again = True  # once this one ends: the slices changed meanwhile
            return
        source = self._source()
        if source is None:
            return
        session, label = source
        zs = [e.z for e in self.entries]
        known = {z: sig for z, (sig, _) in self._icons.items()}
        generation = self._generation

        def work() -> Generator[tuple[int, int, int, np.ndarray], None, None]:
            for z in zs:  # one slice at a time: reads the session only as it goes
                data = thumbnail_input(session, label, z)
                signature = data.signature()
                if known.get(z) != signature:
                    yield generation, z, signature, render(data, THUMB_SIZE)

        self._job = workers.start(
            work, description="thumbnails", on_progress=self._on_thumbnail,
            on_error=self._on_render_error, on_end=self._on_render_end, show_progress=False,
        )  # fmt: skip

    def _on_render_error(self, exc: BaseException) -> None:
        # a thumbnail is a convenience: say so in the log, keep the old pictures
        log.warning("gallery thumbnails failed: %s: %s", type(exc).__name__, exc)

    def _on_thumbnail(self, item: tuple[int, int, int, np.ndarray]) -> None:
        generation, z, signature, rgb = item
        if generation != self._generation:
            return  # drawn for another structure or session
        icon = to_icon(rgb)
        self._icons[z] = (signature, icon)
        for row in range(self.view.count()):
            shown = self.view.item(row)
            if int(shown.data(Qt.ItemDataRole.UserRole)) == z:
                shown.setIcon(icon)
                break

    def _on_render_end(self) -> None:
        if self._again:
            self._again = False
            self.update_thumbnails()

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self._rebuild()
        self.update_thumbnails()

    def stop(self) -> None:
        """Cancel a running render (the widget is closing)."""
        if self._job is not None:
            self._job.cancel()

    # ---- input ------------------------------------------------------------------------------
    def _on_item_clicked(self, item: QListWidgetItem) -> None:
        self._on_jump(int(item.data(Qt.ItemDataRole.UserRole)))

    def _mark_current(self, mark: str) -> None:
        item = self.view.currentItem()
        if item is None:
            return
        z = int(item.data(Qt.ItemDataRole.UserRole))
        self._on_mark(z, None if self.marks.get(z) == mark else mark)
