"""The annotator's review area: the per-slice list and the ring gallery in two tabs, kept in step.

Both show the same entries (`review.SliceEntry`) of the active structure, the same current slice
and the same marks: the gallery's A / F mark a slice "reviewed" or "flagged", the list shows the
mark, and N / B (`step`) skip reviewed slices. Marks belong to one session and are kept per
structure for as long as the session is open (they are not saved with it).
Imports qtpy (widget side only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from qtpy.QtWidgets import QLabel, QTabWidget, QVBoxLayout, QWidget

from napari_fob._widgets.gallery import Gallery
from napari_fob._widgets.review import ReviewList, SliceEntry, next_to_review


class ReviewPanel(QWidget):
    """List + gallery tabs.

    Args:
        on_jump: takes the viewer to a slice.
        session: the annotator's current session (or None).
        label: the active structure.
        say: shows a message in the annotator's message line.
        current_slice: the slice the viewer shows.
    """

    def __init__(
        self,
        on_jump: Callable[[int], None],
        session: Callable[[], Any],
        label: Callable[[], int],
        say: Callable[[str], None],
        current_slice: Callable[[], int],
    ) -> None:
        super().__init__()
        self._session, self._label, self._say = session, label, say
        self._current = current_slice
        self.marks: dict[tuple[int, int], str] = {}  # (structure, slice) -> reviewed / flagged
        self._shows: tuple[Any, int] | None = None  # (session, structure) on show
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Review (click to jump · N / B next / previous to review)"))
        self.list = ReviewList(on_jump)
        self.gallery = Gallery(on_jump, self.set_mark, self._source)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.list, "List")
        self.tabs.addTab(self.gallery, "Gallery")
        self.tabs.currentChanged.connect(lambda _: self.select_slice(self._current()))
        layout.addWidget(self.tabs)

    def _source(self) -> tuple[Any, int] | None:
        session = self._session()
        return None if session is None else (session, self._label())

    def show_entries(self, entries: Sequence[SliceEntry]) -> None:
        """Both views: these entries, the active structure's marks, the current slice selected."""
        session, label = self._session(), self._label()
        if self._shows is None or self._shows[0] is not session:
            self.marks.clear()  # marks belong to one session
        if self._shows is None or self._shows[0] is not session or self._shows[1] != label:
            self.gallery.forget()  # another structure's thumbnails would show a moment
            self._shows = (session, label)
        marks = {z: m for (k, z), m in self.marks.items() if k == label}
        self.list.set_entries(entries, marks)
        self.gallery.set_entries(entries, marks)
        self.select_slice(self._current())

    def select_slice(self, z: int) -> None:
        self.list.select_slice(z)
        self.gallery.select_slice(z)

    def set_mark(self, z: int, mark: str | None) -> None:
        """Mark slice `z` of the active structure "reviewed" or "flagged" (None: unmark)."""
        key = (self._label(), int(z))
        if mark is None:
            self.marks.pop(key, None)
            self._say(f"Slice {z}: mark removed.")
        else:
            self.marks[key] = mark
            self._say(f"Slice {z}: {mark}.")
        self.show_entries(self.list.entries)

    def step(self, step: int) -> int | None:
        """N / B: the next / previous slice to review, skipping the reviewed ones."""
        label = self._label()
        entries = [e for e in self.list.entries if self.marks.get((label, e.z)) != "reviewed"]
        return next_to_review(entries, self._current(), step)

    def stop(self) -> None:
        self.gallery.stop()
