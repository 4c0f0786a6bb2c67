"""Prompt edits of an `AnnotationSession`: set, move, add, remove, clear — each one undo step.

Functions over the session's public record API (`record`, `finish`, `slices`), which the
session's methods of the same names call. Points are (row, col) slice pixels. No napari, no
torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from napari_fob.core.prompts import PromptSet
from napari_fob.session.history import Entry, SliceState

if TYPE_CHECKING:
    from napari_fob.session.annotation import AnnotationSession


def set_prompts(session: AnnotationSession, label: int, z: int, promptset: PromptSet) -> None:
    """Replace the prompts of (label, z) with the user's `promptset` (origin "user")."""
    label, z = session.check_label(label), session.check_z(z)
    new = promptset.copy(label=label, slice_index=z, origin="user")
    _edit(session, label, z, new, f"set prompts {label}@{z}")


def move_point(
    session: AnnotationSession, label: int, z: int, kind: str, index: int, new_rc: Any
) -> None:
    """Move point `index` of `kind` ("fg" | "bg") to (row, col) `new_rc`."""
    p, points, scores = _points(session, label, z, kind)
    _check_index(kind, index, points)
    points[index] = _on_image(session, z, new_rc)
    if scores is not None:
        scores[index] = 1.0  # a point the user placed is certain
    _edit(session, label, z, _with(p, kind, points, scores), f"move {kind} point")


def add_point(session: AnnotationSession, label: int, z: int, kind: str, rc: Any) -> None:
    """Add a point; a bg point goes where it lengthens the closed ring least."""
    p, points, scores = _points(session, label, z, kind)
    rc = _on_image(session, z, rc).reshape(1, 2)
    at = len(points) if kind == "fg" else _ring_insert_position(points, rc[0])
    points = np.insert(points, at, rc, axis=0)
    scores = None if scores is None else np.insert(scores, at, 1.0)
    _edit(session, label, z, _with(p, kind, points, scores), f"add {kind} point")


def remove_point(session: AnnotationSession, label: int, z: int, kind: str, index: int) -> None:
    """Delete point `index` of `kind` ("fg" | "bg")."""
    p, points, scores = _points(session, label, z, kind)
    _check_index(kind, index, points)
    points = np.delete(points, index, axis=0)
    scores = None if scores is None else np.delete(scores, index)
    _edit(session, label, z, _with(p, kind, points, scores), f"remove {kind} point")


def clear_prompts(session: AnnotationSession, label: int, z: int) -> None:
    """Drop the prompts of (label, z); status becomes "committed" if labels hold it."""
    key = (int(label), int(z))
    if key not in session.prompts:
        return
    status = "committed" if np.any(session.labels[key[1]] == key[0]) else "none"
    entry = Entry(f"clear prompts {key}", key[0])
    session.record(entry, key, SliceState(None, status, session.confidence(*key)))
    session.finish(entry)


def _points(
    session: AnnotationSession, label: int, z: int, kind: str
) -> tuple[PromptSet, np.ndarray, Any]:
    if kind not in ("fg", "bg"):
        raise ValueError(f"point kind {kind!r}: expected 'fg' or 'bg'")
    p = session.prompts.get((int(label), int(z)))
    if p is None:
        raise ValueError(f"label {label} has no prompts on slice {z}; predict or set them")
    scores = p.fg_scores if kind == "fg" else p.bg_scores
    points = (p.fg if kind == "fg" else p.bg).copy()
    return p, points, None if scores is None else scores.copy()


def _on_image(session: AnnotationSession, z: int, rc: Any) -> np.ndarray:
    """(row, col) as floats, refused unless finite and on the slice's pixels (what a saved
    session is checked against when loaded: ``-0.5 <= row <= Y - 0.5``, likewise columns)."""
    point = np.asarray(rc, dtype=np.float64).reshape(2)
    h, w = session.shape[1:]
    if not (
        np.all(np.isfinite(point)) and -0.5 <= point[0] <= h - 0.5 and -0.5 <= point[1] <= w - 0.5
    ):
        raise ValueError(
            f"point {point.tolist()} on slice {z}: expected a (row, col) on the image, "
            f"-0.5 <= row <= {h - 0.5} and -0.5 <= col <= {w - 0.5}"
        )
    return point


def _check_index(kind: str, index: int, points: np.ndarray) -> None:
    if not 0 <= int(index) < len(points):
        raise ValueError(f"{kind} point {index}: expected an index in [0, {len(points)})")


def _with(p: PromptSet, kind: str, points: np.ndarray, scores: Any) -> PromptSet:
    if kind == "fg":
        return p.copy(fg=points, fg_scores=scores, origin="user")
    return p.copy(bg=points, bg_scores=scores, origin="user")


def _edit(session: AnnotationSession, label: int, z: int, new: PromptSet, what: str) -> None:
    key = (label, z)
    entry = Entry(f"{what} {label}@{z}", label)
    session.record(entry, key, SliceState(new, "edited", session.confidence(*key)))
    session.finish(entry)


def _ring_insert_position(ring: np.ndarray, point: np.ndarray) -> int:
    """Index at which `point` (2,) joins the closed `ring` (N, 2) adding the least length."""
    n = len(ring)
    if n < 2:
        return n
    nxt = np.roll(ring, -1, axis=0)
    added = (
        np.linalg.norm(ring - point, axis=1)
        + np.linalg.norm(nxt - point, axis=1)
        - np.linalg.norm(nxt - ring, axis=1)
    )
    return int(np.argmin(added)) + 1
