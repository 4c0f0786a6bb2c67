"""Undo/redo for `AnnotationSession`: entries of small, reversible changes.

An entry groups what one user action changed: the prompt state of some (label, slice) keys,
the support masks of some slices, and the committed labels of some slices. Label changes store
only the voxels that changed on that slice (flat indices with old and new values), never whole
volumes, so a long session stays small in memory.

Pure numpy and the standard library; no napari, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_fob.core.prompts import PromptSet

STATUSES = ("none", "predicted", "edited", "committed")


@dataclass(frozen=True)
class SliceState:
    """What the session knows about one (label, slice): prompts, status, confidence."""

    prompts: PromptSet | None
    status: str = "none"
    confidence: float | None = None


@dataclass
class PromptChange:
    """The prompt state of ``key`` = (label, z) before and after."""

    key: tuple[int, int]
    before: SliceState
    after: SliceState


@dataclass
class SupportChange:
    """The support mask (Y, X) bool of (label, z) before and after (None = no support)."""

    label: int
    z: int
    before: np.ndarray | None
    after: np.ndarray | None


@dataclass
class LabelChange:
    """Voxels of slice ``z`` that changed: flat indices into the (Y, X) slice, old/new values."""

    z: int
    index: np.ndarray
    before: np.ndarray
    after: np.ndarray


@dataclass
class Entry:
    """One undoable action (a description and its changes, in the order they were made)."""

    description: str
    label: int
    changes: list[Any] = field(default_factory=list)

    def slices(self) -> list[int]:
        """The slice indices this entry touches, sorted."""
        out = set()
        for c in self.changes:
            out.add(c.key[1] if isinstance(c, PromptChange) else c.z)
        return sorted(out)

    def kinds(self) -> list[str]:
        """Event kinds of the changes ("prompts", "support", "labels"), each once."""
        names = {PromptChange: "prompts", SupportChange: "support", LabelChange: "labels"}
        return sorted({names[type(c)] for c in self.changes})


class History:
    """Two stacks of entries; a new entry clears the redo stack.

    Args (keyword-only): max_entries: the oldest entries are dropped past this many.
    """

    def __init__(self, *, max_entries: int = 500) -> None:
        self.max_entries = int(max_entries)
        self._undo: list[Entry] = []
        self._redo: list[Entry] = []

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def push(self, entry: Entry) -> None:
        """Record a finished entry (empty entries are dropped)."""
        if not entry.changes:
            return
        self._undo.append(entry)
        del self._undo[: -self.max_entries]
        self._redo.clear()

    def pop_undo(self) -> Entry | None:
        """The entry to revert (moved to the redo stack), or None."""
        if not self._undo:
            return None
        entry = self._undo.pop()
        self._redo.append(entry)
        return entry

    def pop_redo(self) -> Entry | None:
        """The entry to re-apply (moved back to the undo stack), or None."""
        if not self._redo:
            return None
        entry = self._redo.pop()
        self._undo.append(entry)
        return entry

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()


def label_change(z: int, old: np.ndarray, new: np.ndarray) -> LabelChange:
    """The diff between two (Y, X) label slices."""
    index = np.flatnonzero(old.ravel() != new.ravel())
    return LabelChange(z, index, old.ravel()[index].copy(), new.ravel()[index].copy())


def apply_label_change(labels: np.ndarray, change: LabelChange, *, forward: bool) -> None:
    """Write ``change`` (its new values if forward, else its old values) into (Z, Y, X) labels."""
    labels[change.z].flat[change.index] = change.after if forward else change.before
