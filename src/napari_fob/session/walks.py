"""The prompt walks of `AnnotationSession.predict`: fixed or chained, explicit or automatic extent.

- fixed: the generator holds the painted supports only; queries go through it in batches.
- chain: the painted supports are committed as they are; the generator also holds committed
  slices; the walk goes outward from the supports, one slice at a time, and each slice is
  committed (segmented) before its neighbour is prompted.
- automatic extent ("auto"): the slices between the outermost supports are always predicted;
  beyond them the walk goes outward in both directions and stops at the first slice whose
  evidence (the generator's calibrated confidence, `napari_fob.prompting.confidence`) is below
  the threshold (its confidence is stored, its prompts are not) or at the volume's edge.

Qt-free and torch-free, like `session.annotation`.
"""

from __future__ import annotations

import numbers
from collections.abc import Generator, Iterable, Iterator
from typing import TYPE_CHECKING

from napari_fob.core.prompts import PromptSet, nearest_slice
from napari_fob.prompting.confidence import AUTO_THRESHOLD
from napari_fob.session import corrections
from napari_fob.session.events import Progress
from napari_fob.session.history import Entry, SliceState

if TYPE_CHECKING:
    from napari_fob.session.annotation import AnnotationSession

MODES = ("fixed", "chain")

DEFAULT_THRESHOLD = AUTO_THRESHOLD
"""The confidence cut of automatic extent and of the review's "doubtful" flag unless one is
given: the calibrated confidence's, chosen on the real-anatomy tune split
(`napari_fob.prompting.confidence`)."""


def check_threshold(threshold: object, name: str = "threshold") -> float:
    """`threshold` as a float, or a ValueError: the evidence cut is a finite number in [0, 1]
    (the generators' evidence is a calibrated probability; NaN would compare False and walk to
    the edge)."""
    number = isinstance(threshold, numbers.Real) and not isinstance(threshold, bool)
    value = float(threshold) if number else float("nan")  # type: ignore[arg-type]
    if not 0.0 <= value <= 1.0:  # False for NaN
        raise ValueError(
            f"{name} {threshold!r}: expected a finite number in [0, 1] (the evidence a slice "
            "needs for the automatic extent to go on)"
        )
    return value


def predict(
    session: AnnotationSession,
    label: int,
    slices: Iterable[int] | str,
    *,
    mode: str,
    threshold: float,
    batch_size: int | None,
) -> Generator[Progress, None, list[int]]:
    """See `AnnotationSession.predict`."""
    label = session.check_label(label)
    if mode not in MODES:
        raise ValueError(f"predict mode {mode!r}: expected one of {MODES}")
    if not session.supports.get(label):
        raise ValueError(f"label {label} has no support slice: paint one before predicting")
    auto = isinstance(slices, str)
    if auto and slices != "auto":
        raise ValueError(f"predict slices {slices!r}: expected 'auto' or slice indices")
    targets = None if auto else sorted({session.check_z(z) for z in slices})
    threshold = check_threshold(threshold)
    session.thresholds[label] = threshold
    return _run(session, label, targets, mode, threshold, batch_size or session.batch_size)


def _run(session, label, targets, mode, threshold, batch_size):
    entry = Entry(f"predict {label} ({mode})", label)
    _load_generator(session, label, committed=mode == "chain")
    if mode == "fixed":
        done = yield from _fixed(session, entry, label, targets, threshold, batch_size)
        session.finish(entry)
        return done
    writes = Writes(session, entry)
    return (yield from writes.around(_chain(session, writes, label, targets, threshold)))


class Writes:
    """The label writes of one walk, handed to its consumer as ``Progress.apply`` callables.

    The walk computes masks (in a worker, for the widget); `mask` returns the write for the
    consumer to apply on the thread that owns the labels (see `events`). `around` drives a
    walk and ends it with the write that records the undo step and autosaves; when the walk is
    closed early (Cancel) that happens at once, on the closing thread (the consumer's).
    """

    def __init__(self, session: AnnotationSession, entry: Entry) -> None:
        self.session, self.entry = session, entry
        self.finished = False

    def mask(self, label: int, z: int, mask, *, overwrite: bool):
        return lambda: self.session.write_mask(self.entry, label, z, mask, overwrite=overwrite)

    def finish(self) -> None:
        if not self.finished:
            self.finished = True
            self.session.finish(self.entry)
            self.session.autosave()

    def around(self, walk):
        handed_over = False
        try:
            try:
                done = yield from walk
            except Exception:
                handed_over = True
                yield Progress(0, 0, "stopped by an error; what was done is kept", self.finish)
                raise
            handed_over = True
            yield Progress(1, 1, "written", self.finish)
            return done
        finally:
            if not handed_over:  # closed early: the closing thread is the consumer's
                self.finish()


def _load_generator(session: AnnotationSession, label: int, *, committed: bool) -> None:
    gen = session.generator
    gen.clear_supports()
    supports = session.supports[label]
    for z, mask in sorted(supports.items()):
        gen.set_support(session.image01(z), mask, slice_index=z)
    if committed:
        for _, z in session.slices.keys(label):
            if session.slice_status(label, z) == "committed" and z not in supports:
                mask = session.labels[z] == label
                if mask.any():
                    gen.set_support(session.image01(z), mask, slice_index=z, committed=True)


def _directions(session: AnnotationSession, label: int) -> tuple[list[int], Iterator, Iterator]:
    """(slices between the outermost supports, walk down from the lowest, walk up)."""
    zs = sorted(session.supports[label])
    inner = [z for z in range(zs[0], zs[-1] + 1) if z not in session.supports[label]]
    return inner, iter(range(zs[0] - 1, -1, -1)), iter(range(zs[-1] + 1, session.shape[0]))


def _store(session, entry, label: int, z: int, p: PromptSet) -> None:
    conf = None if p.evidence is None else float(p.evidence)
    session.record(entry, (label, z), SliceState(p.copy(), "predicted", conf))


def _reject(session, entry, label: int, z: int, evidence: float) -> None:
    """Keep the confidence of the slice where the walk stopped, without prompts."""
    key = (label, z)
    state = session.slices.state(key)
    session.record(entry, key, SliceState(state.prompts, state.status, evidence))


def _query(session, label: int, zs: list[int], batch_size: int) -> list[PromptSet]:
    images = [session.image01(z) for z in zs]
    return session.generator.predict(images, slice_indices=zs, label=label, batch_size=batch_size)


def _evidence(p: PromptSet, z: int) -> float:
    if p.evidence is None:
        raise ValueError(
            f"automatic extent needs the generator's evidence, but slice {z} has none; "
            "give explicit slices instead"
        )
    return float(p.evidence)


def _show_span(session, label: int, targets: list[int]) -> None:
    """Show a generator that walks through the volume (``show``: registration, FoB with the
    registration prior) every slice from the supports to `targets`, the targets included,
    before the first batch: a target prompted in a later batch is a step of an earlier
    batch's walk, and a walk must never jump a gap in one step."""
    show = getattr(session.generator, "show", None)
    if show is None or not targets:
        return
    ends = [*session.supports[label], *targets]
    span = [z for z in range(min(ends), max(ends) + 1) if z not in session.supports[label]]
    if span:
        show([session.image01(z) for z in span], span)


def _fixed(session, entry, label, targets, threshold, batch_size):
    supports = session.supports[label]
    if targets is not None:
        targets = [z for z in targets if z not in supports]
        _show_span(session, label, targets)
        for start in range(0, len(targets), batch_size):
            batch = targets[start : start + batch_size]
            for z, p in zip(batch, _query(session, label, batch, batch_size)):
                _store(session, entry, label, z, p)
            yield Progress(min(start + batch_size, len(targets)), len(targets), "prompts")
        return targets
    inner, down, up = _directions(session, label)
    total = session.shape[0] - len(supports)
    done: list[int] = []
    _show_span(session, label, inner)  # the walks outward go batch by batch, each adjacent
    for start in range(0, len(inner), batch_size):
        batch = inner[start : start + batch_size]
        for z, p in zip(batch, _query(session, label, batch, batch_size)):
            _store(session, entry, label, z, p)
            done.append(z)
        yield Progress(len(done), total, "prompts between supports")
    for walk in (down, up):
        while True:
            batch = [z for _, z in zip(range(batch_size), walk)]
            if not batch:
                break
            stopped = False
            for z, p in zip(batch, _query(session, label, batch, batch_size)):
                evidence = _evidence(p, z)
                if evidence < threshold:
                    _reject(session, entry, label, z, evidence)
                    stopped = True
                    break
                _store(session, entry, label, z, p)
                done.append(z)
            yield Progress(len(done), total, f"prompts (walking, slice {batch[-1]})")
            if stopped:
                break
    return sorted(done)


def _chain(session, writes, label, targets, threshold):
    supports = session.supports[label]
    # The painted slices are part of the result: a chain that commits its neighbours must not
    # leave the slice it started from empty until "Commit range".
    painted = [writes.mask(label, z, m, overwrite=False) for z, m in sorted(supports.items())]
    yield Progress(0, 1, "chain: the painted supports", lambda: [w() for w in painted])
    done: list[int] = []
    if targets is not None:
        order = sorted(
            (z for z in targets if z not in supports),
            key=lambda z: (abs(nearest_slice(supports, z) - z), z),
        )
        _show_span(session, label, order)
        for i, z in enumerate(order):
            _, write = _chain_step(session, writes, label, z, threshold=None)
            done.append(z)
            yield Progress(i + 1, len(order), f"chain: slice {z}", write)
        return done
    inner, down, up = _directions(session, label)
    inner.sort(key=lambda z: (abs(nearest_slice(supports, z) - z), z))
    total = session.shape[0] - len(supports)
    for z in inner:
        _, write = _chain_step(session, writes, label, z, threshold=None)
        done.append(z)
        yield Progress(len(done), total, f"chain: slice {z}", write)
    for walk in (down, up):
        for z in walk:
            go_on, write = _chain_step(session, writes, label, z, threshold=threshold)
            if write is not None:
                yield Progress(len(done), total, f"chain: slice {z}", write)
            if not go_on:
                break
            done.append(z)
    return sorted(done)


def _chain_step(session, writes, label: int, z: int, *, threshold: float | None):
    """Prompt slice z from the nearest committed/support mask and segment it.

    Returns (go on, the mask's write or None). The walk stops, with nothing stored but the
    confidence, when the evidence is below `threshold`, or when the mask is empty.
    """
    entry = writes.entry
    p = _query(session, label, [z], 1)[0]
    if threshold is not None and _evidence(p, z) < threshold:
        _reject(session, entry, label, z, float(p.evidence))
        return False, None
    _store(session, entry, label, z, p)
    mask = session.segment_slice(label, z)
    write = writes.mask(label, z, mask, overwrite=False)
    if not mask.any():
        return threshold is None, write
    session.generator.set_support(session.image01(z), mask, slice_index=z, committed=True)
    return True, write


def commit(
    session: AnnotationSession,
    label: int,
    slices: Iterable[int],
    *,
    overwrite: bool,
    other_structures_as_bg: bool,
) -> Generator[Progress, None, list[int]]:
    """See `AnnotationSession.commit` (and `corrections` for what follows a corrected slice)."""
    label = session.check_label(label)
    zs = [session.check_z(z) for z in slices]
    writes = Writes(session, Entry(f"commit {label}", label))
    corrected: dict = {}
    walk = _commit(session, writes, label, zs, overwrite, other_structures_as_bg, corrected)
    done = yield from writes.around(walk)
    if session.propagate_corrections and corrected:  # after the commit's undo step
        yield from corrections.propagate(session, label, corrected, written=done)
    return done


def _commit(session, writes, label, zs, overwrite, other_structures_as_bg, corrected):
    done: list[int] = []
    for i, z in enumerate(zs):
        mask = session.segment_slice(label, z, other_structures_as_bg=other_structures_as_bg)
        if mask is None:
            yield Progress(i + 1, len(zs), f"slice {z}: no prompts, skipped")
            continue
        if corrections.is_correction(session, label, z):
            corrected[z] = mask
        done.append(z)
        write = writes.mask(label, z, mask, overwrite=overwrite)
        yield Progress(i + 1, len(zs), f"committed slice {z}", write)
    return done
