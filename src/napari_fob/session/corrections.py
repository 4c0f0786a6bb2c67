"""Corrections propagate: a slice the user corrected and committed re-predicts its neighbours.

The rule (issue 18, part 2). When a commit writes a slice whose prompts the user edited
(status "edited" when the commit reached it), that slice's mask is user-verified: it becomes an
extra support, and the slices next to it that are still only "predicted" are predicted again
from it. On each side the run stops before the first slice that is a painted support,
user-touched (edited or committed, including the slices the same commit wrote) or has no
prediction (the end of what was predicted); of the run, the slices whose nearest anchor (painted
support, verified or corrected slice; `nearest_slice`, the generators' own rule) is a corrected
slice are re-predicted: the others would get their old prompts back from the same anchor. A
slice the user edited or committed is never touched, and neither is a painted support.

Verified masks are the committed masks of slices whose prompts came from the user (origin
"user", status "committed"): derived from the slice table, so they survive save and load
without a field of their own; they are not added to ``session.supports`` (the painted ones).
The generator is handed them as *committed* supports: the mask is still the segmenter's,
made from the user's points, and may be far from right after one gesture, so it must not
vouch for itself (its evidence uses the painted band) and FoB takes only its prototypes from
it, its location prior still walking from the painted support (`FobPredictor.query_footprint`).
Handed over as painted instead, one-gesture corrections lowered FoB's Dice on the neighbours
(docs/benchmarks.md, "Interaction cost"). Mask-ring and registration re-draw and re-warp
from the corrected mask itself, as those baselines do.

The re-prediction is one undo step of its own, after the commit's step (undo once: the old
predictions are back, the commit stays). Its prompts are computed where the walk runs (a
worker, in the widget) and recorded by one ``Progress.apply`` on the consumer's thread, after
the commit's writes; a slice the user touched in the meantime is skipped then. Each
re-predicted slice's prompts carry ``meta["repredicted_from"]`` = the corrected slice, which the
review list shows. ``AnnotationSession(propagate_corrections=False)`` (the annotator's
"propagate corrections" box) turns the rule off.

Qt-free and torch-free, like `session.annotation`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING

import numpy as np

from napari_fob.core.prompts import PromptSet, nearest_slice
from napari_fob.session.events import Progress
from napari_fob.session.history import Entry, SliceState

if TYPE_CHECKING:
    from napari_fob.session.annotation import AnnotationSession

REPREDICTED = "repredicted_from"  # PromptSet.meta key: the corrected slice it was predicted from


def is_correction(session: AnnotationSession, label: int, z: int) -> bool:
    """True when committing (label, z) now commits the user's corrected prompts."""
    return session.slice_status(label, z) == "edited"


def verified_masks(session: AnnotationSession, label: int) -> dict[int, np.ndarray]:
    """{z: (Y, X) bool} committed masks of `label` made from the user's own prompts."""
    out = {}
    for _, z in session.slices.keys(label):
        p = session.prompts.get((label, z))
        if p is not None and p.origin == "user" and session.slice_status(label, z) == "committed":
            mask = session.labels[z] == label
            if mask.any():
                out[z] = mask
    return out


def span(session: AnnotationSession, label: int, z: int, stop: Iterable[int] = ()) -> list[int]:
    """The slices re-predicted from corrected slice `z`: the "predicted" runs on either side,
    up to (not including) a painted support, a user-touched slice, a slice without prediction,
    a slice in `stop` (e.g. written by the same commit) or the volume's edge; sorted."""
    stop, supports = set(stop), session.supports.get(label, {})
    out = []
    for step in (-1, 1):
        k = z + step
        while 0 <= k < session.shape[0] and k not in stop and k not in supports:
            if session.slice_status(label, k) != "predicted":
                break
            out.append(k)
            k += step
    return sorted(out)


def propagate(
    session: AnnotationSession,
    label: int,
    corrected: dict[int, np.ndarray],
    *,
    written: Iterable[int] = (),
    batch_size: int | None = None,
) -> Generator[Progress, None, list[int]]:
    """Re-predict the predicted slices around each `corrected` slice ({z: its committed (Y, X)
    bool mask}); `written`: every slice the same commit wrote (they bound the runs). Yields
    `Progress`; the last one records the new prompts as one undo step. Returns the slices
    re-predicted (those the user touched meanwhile are left out)."""
    corrected = {int(z): np.asarray(m, bool) for z, m in corrected.items() if np.any(m)}
    stop = set(corrected) | {int(z) for z in written}
    extra = {**verified_masks(session, label), **corrected}
    anchors = sorted(set(session.supports.get(label, {})) | set(extra))
    run = {k for z in corrected for k in span(session, label, z, stop)}
    targets = sorted(k for k in run if nearest_slice(anchors, k) in corrected)
    if not targets:
        return []
    _load(session, label, extra)
    _show(session, anchors, targets)
    batch = batch_size or session.batch_size
    found: dict[int, PromptSet] = {}
    for start in range(0, len(targets), batch):
        zs = targets[start : start + batch]
        images = [session.image01(z) for z in zs]
        out = session.generator.predict(images, slice_indices=zs, label=label, batch_size=batch)
        for z, p in zip(zs, out):
            source = nearest_slice(corrected, z)
            found[z] = p.copy(meta={**p.meta, REPREDICTED: int(source)})
        yield Progress(len(found), len(targets), f"re-predicting around {sorted(corrected)}")
    kept: list[int] = []
    record = lambda: _record(session, label, found, kept)  # noqa: E731  on the consumer's thread
    yield Progress(len(targets), len(targets), f"re-predicted {len(targets)} slice(s)", record)
    return kept


def _load(session: AnnotationSession, label: int, extra: dict[int, np.ndarray]) -> None:
    """The generator holds the painted supports and, as committed ones, the `extra` (verified,
    corrected) masks (see the module docstring)."""
    gen = session.generator
    gen.clear_supports()
    supports = session.supports.get(label, {})
    for z, mask in sorted(supports.items()):
        gen.set_support(session.image01(z), mask, slice_index=z)
    for z, mask in sorted(extra.items()):
        if z not in supports:
            gen.set_support(session.image01(z), mask, slice_index=z, committed=True)


def _show(session: AnnotationSession, anchors: list[int], targets: list[int]) -> None:
    """A walking generator sees every slice between the anchors and the targets (no jumps)."""
    show = getattr(session.generator, "show", None)
    if show is None:
        return
    ends = [*anchors, *targets]
    zs = [z for z in range(min(ends), max(ends) + 1) if z not in set(anchors)]
    if zs:
        show([session.image01(z) for z in zs], zs)


def _record(session: AnnotationSession, label: int, found: dict[int, PromptSet], kept: list[int]):
    entry = Entry(f"re-predict {label} from corrections", label)
    supports = session.supports.get(label, {})
    for z, p in sorted(found.items()):
        if z in supports or session.slice_status(label, z) != "predicted":
            continue  # the user touched it while the walk ran
        conf = None if p.evidence is None else float(p.evidence)
        session.record(entry, (label, z), SliceState(p, "predicted", conf))
        kept.append(z)
    session.finish(entry)
