"""The review order (issue 18, part 3): the slices that need a look, the worst first.

A slice needs a look when nobody has reviewed its prompts (status "predicted", or "edited" and
not yet committed) or when it was committed although its confidence is below the structure's
threshold (`AnnotationSession.low_confidence`). They are ordered by the confidence stored with
the slice, lowest first, so the review key (N) jumps to the slice most likely to be wrong:
the generators' evidence, the calibrated confidence of `napari_fob.prompting.confidence` (an
estimate of the slice's Dice; how well it ranks slices: docs/benchmarks.md, "Confidence and
automatic extent"); a slice without a confidence comes first (nothing vouches for it); ties
go to the lower slice.

Plain Python over the session's records (and over any rows with ``z``, ``confidence`` and
``needs_review``, such as the review list's entries); no napari, no torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from napari_fob.session.annotation import AnnotationSession


def review_key(row: Any) -> tuple[bool, float, int]:
    """Sort key of the review order: unscored first (nothing vouches for them), then lowest
    ``confidence``, then slice. The gallery's "worst first" uses the same key."""
    return (row.confidence is not None, row.confidence or 0.0, row.z)


def worst_first(rows: Iterable[Any]) -> list[int]:
    """The ``z`` of every row with ``needs_review``, in the review order (`review_key`)."""
    picked = sorted((r for r in rows if r.needs_review), key=review_key)
    return [int(r.z) for r in picked]


def step_in(order: Sequence[int], current: int, step: int) -> int | None:
    """The slice after (`step` +1) or before (-1) `current` in `order`; from a slice that is
    not in it, the first (+1: the worst) or the last (-1). None past either end (no wrap: the
    user sees the end of the list)."""
    if step not in (1, -1):
        raise ValueError(f"review step: expected +1 or -1, got {step}")
    if not order:
        return None
    if current not in order:
        return order[0] if step > 0 else order[-1]
    i = list(order).index(current) + step
    return order[i] if 0 <= i < len(order) else None


def needs_look(session: AnnotationSession, label: int) -> list[int]:
    """The slices of `label` that need a look, in review order (`worst_first`)."""
    rows = []
    for _, z in session.slices.keys(label):
        status = session.slice_status(label, z)
        low = session.low_confidence(label, z)
        wanted = status in ("predicted", "edited") or (status == "committed" and low)
        rows.append(_Row(z, session.confidence(label, z), wanted))
    return worst_first(rows)


class _Row:
    __slots__ = ("z", "confidence", "needs_review")

    def __init__(self, z: int, confidence: float | None, needs_review: bool) -> None:
        self.z, self.confidence, self.needs_review = z, confidence, needs_review
