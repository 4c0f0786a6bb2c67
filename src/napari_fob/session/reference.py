"""Supports from another scan: the paper's few-shot setting, one labelled reference guiding a query.

The rule (the paper's cross-volume protocol, `training.evaluate.paper_protocol`): the
structure's extent along the slice axis in the *reference* is split into three parts and the
middle slice of each part is the support for the matching third of the *query*'s extent.

The reference and the query are different scans: they may differ in voxel size, field of view
and orientation, and they are **not** assumed to be co-registered. So:

- both are read in their own ``(Z, Y, X)`` order and their array axes named anatomically from
  their affines (`array_codes`, nibabel's axis codes); the slice axes must run along the same
  anatomical axis (else `ValueError`), and a reversed slice direction reverses the parts;
- each support slice is flipped / transposed to the query's row and column directions and
  resampled **by physical size** onto the query's slice grid (`resample_support`): one pixel
  becomes one query pixel in millimetres, centre on centre (the image centres meet; where that
  would cut the structure off the canvas it is shifted just enough to fit, see
  `SUPPORT_MARGIN_PX`), intensities in the reference's own window;
- the generator must not use the in-volume additions (location prior, inward penalty, band
  exclusion, support core): they assume the support lies at the query's pixels, which holds
  within one scan only. `across_volume_options` gives FoB's settings for this, and
  `across_volume` puts the packaged default's network, which needs them to localise, aside for
  `ACROSS_VOLUME_MODEL`'s (`napari_fob.session.across`); neither the supports nor the queries
  are given slice indices (the prompts get theirs afterwards).

Automatic extent (`auto_extent`): where the query's extent is not given, the structure's
extent relative to the body's extent along the slice axis (the ``body`` = voxels above Otsu's
threshold, largest component) is carried from the reference to the query. It is only as good
as the two bodies' correspondence; the report says when it cannot be trusted (the body touches
an end of either field of view, or the two bodies' lengths differ by more than
`BODY_RATIO_SURE`). Its accuracy is measured in docs/benchmarks.md ("Supports from another
scan").

Qt-free and torch-free (a generator passed in may use torch).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_fob.core.intensity import normalise, resolve_window
from napari_fob.session.across import (  # noqa: F401  (re-exported: the reference's API)
    ACROSS_VOLUME_MODEL,
    across_volume,
    across_volume_options,
)
from napari_fob.session.events import Progress
from napari_fob.session.history import Entry, SliceState

N_PARTS = 3
"""The paper's protocol: three parts of the reference extent, three thirds of the query's."""

SUPPORT_MARGIN_PX = 8
"""Query pixels kept between a resampled support mask and the canvas edge when the centres'
alignment would cut it off (room for the ring drawn around it)."""

BODY_RATIO_SURE = 1.25
"""Automatic extent is marked unsure when the two bodies' lengths along the slice axis differ
by more than this factor: the body-relative rule then maps a different anatomy."""

_PAIRS = {"L": "LR", "R": "LR", "A": "AP", "P": "AP", "S": "SI", "I": "SI"}
_AXIS_NAMES = {"LR": "left-right (sagittal slices)", "AP": "anterior-posterior (coronal "
               "slices)", "SI": "superior-inferior (axial slices)"}  # fmt: skip


def array_codes(volume: Any) -> tuple[str, str, str]:
    """Anatomical direction (nibabel axis code, e.g. "S") in which each array axis
    (Z, Y, X) of a `Volume` increases, from its affine."""
    import nibabel as nib

    file_codes = nib.aff2axcodes(np.asarray(volume.affine, dtype=float))
    return tuple(str(file_codes[a]) for a in volume.axes)  # type: ignore[return-value]


def check_slice_axes(reference: Any, query: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(reference codes, query codes); ValueError when the slice axes differ anatomically."""
    ref, qry = array_codes(reference), array_codes(query)
    if _PAIRS[ref[0]] != _PAIRS[qry[0]]:
        raise ValueError(
            f"the reference's slices are taken along {_AXIS_NAMES[_PAIRS[ref[0]]]}, the "
            f"query's along {_AXIS_NAMES[_PAIRS[qry[0]]]}: supports from another scan need the "
            "same slice axis (reslice one of them, or read it with another slice axis)"
        )
    return ref, qry


def check_reference(image: Any, labels: np.ndarray) -> None:
    """ValueError unless the reference image is 3D and its labels lie on its (Z, Y, X) grid."""
    shape = np.shape(image.data)
    if len(shape) != 3 or min(shape) < 2:
        raise ValueError(
            f"the reference image has shape {shape}: expected a 3D volume with at least two "
            "slices along each axis (a 2D image has no extent to split, a 4D one no single volume)"
        )
    if np.shape(labels) != shape:
        raise ValueError(
            f"the reference labels have shape {np.shape(labels)}, the reference image {shape}: "
            "the labels must be on the reference image's grid"
        )


def reference_parts(labels: np.ndarray, label: int, n_parts: int = N_PARTS) -> list[int]:
    """The reference's support slices of `label`: the middle slice of each of `n_parts`
    parts of its extent (fewer when the extent is shorter); ValueError when it is absent."""
    zs = np.flatnonzero((np.asarray(labels) == label).any(axis=(1, 2)))
    if zs.size == 0:
        present = sorted(int(v) for v in np.unique(labels) if v > 0)
        raise ValueError(
            f"the reference labels hold no voxel of label {label} (they hold "
            f"{', '.join(map(str, present)) or 'no label at all'}): choose another --labels"
        )
    parts = np.array_split(zs, min(n_parts, zs.size))
    return [int(p[len(p) // 2]) for p in parts]


def resample_support(
    image01: np.ndarray,
    mask: np.ndarray,
    ref_codes: Sequence[str],
    ref_spacing: Sequence[float],
    qry_codes: Sequence[str],
    qry_spacing: Sequence[float],
    qry_shape: tuple[int, int],
    *,
    fit: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """A reference slice and its mask on the query's slice grid, by physical size.

    Args:
        image01, mask: (H_r, W_r) reference slice in [0, 1] and its bool mask.
        ref_codes, qry_codes: anatomical codes of the (rows, cols) of each slice.
        ref_spacing, qry_spacing: (row, col) mm per pixel.
        qry_shape: (H_q, W_q) of the query's slices.
        fit: shift the slice, if needed, so the mask keeps `SUPPORT_MARGIN_PX` inside the
            canvas (False: centre on centre, as the ``copy`` baseline places it).
    Returns:
        (H_q, W_q) float32 image (0 outside the reference's field of view) and bool mask.
    """
    from scipy import ndimage as ndi

    img, m = np.asarray(image01, np.float32), np.asarray(mask, bool)
    codes, spacing = list(ref_codes), [float(s) for s in ref_spacing]
    if _PAIRS[codes[0]] != _PAIRS[qry_codes[0]]:  # rows of one are columns of the other
        img, m, codes, spacing = img.T, m.T, codes[::-1], spacing[::-1]
    for axis in (0, 1):
        if codes[axis] != qry_codes[axis]:
            img, m = np.flip(img, axis), np.flip(m, axis)
    step = np.array([float(q) / s for q, s in zip(qry_spacing, spacing)])  # ref px per query px
    centre_q = (np.array(qry_shape) - 1) / 2.0
    centre_r = (np.array(img.shape) - 1) / 2.0
    shift = _fit_shift(m, step, centre_r, centre_q, qry_shape) if fit else np.zeros(2)
    offset = centre_r - step * (centre_q + shift)  # ref = step * query + offset
    out_img = ndi.affine_transform(
        img, step, offset, output_shape=qry_shape, order=1, mode="constant", cval=0.0
    )
    out_mask = ndi.affine_transform(
        m.astype(np.uint8), step, offset, output_shape=qry_shape, order=0, mode="constant"
    )
    return np.clip(out_img, 0.0, 1.0).astype(np.float32), out_mask.astype(bool)


def _fit_shift(m, step, centre_r, centre_q, shape) -> np.ndarray:
    """Query-pixel shift that keeps the mask's bounding box `SUPPORT_MARGIN_PX` inside."""
    rows, cols = np.nonzero(m)
    if rows.size == 0:
        return np.zeros(2)
    shift = np.zeros(2)
    for axis, coords in enumerate((rows, cols)):
        lo, hi = ((np.array([coords.min(), coords.max()]) - centre_r[axis]) / step[axis]
                  + centre_q[axis])  # fmt: skip
        room = shape[axis] - 1 - 2 * SUPPORT_MARGIN_PX
        if hi - lo > room:  # cannot fit: keep it centred on the canvas
            shift[axis] = (shape[axis] - 1) / 2.0 - (lo + hi) / 2.0
        elif lo < SUPPORT_MARGIN_PX:
            shift[axis] = SUPPORT_MARGIN_PX - lo
        elif hi > shape[axis] - 1 - SUPPORT_MARGIN_PX:
            shift[axis] = shape[axis] - 1 - SUPPORT_MARGIN_PX - hi
    return shift


def body_extent(volume01: np.ndarray) -> tuple[int, int]:
    """(first, last) slice of the body: voxels above Otsu's threshold, largest component."""
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    data = np.asarray(volume01, np.float32)
    body = data > threshold_otsu(data[:: max(1, data.shape[0] // 64)])
    comps, n = ndi.label(body)
    if n > 1:
        sizes = np.bincount(comps.ravel())[1:]
        body = comps == 1 + int(np.argmax(sizes))
    zs = np.flatnonzero(body.any(axis=(1, 2)))
    if zs.size == 0:
        return 0, data.shape[0] - 1
    return int(zs[0]), int(zs[-1])


@dataclass(frozen=True)
class Extent:
    """The query's slice extent of one structure and how it was found."""

    slices: list[int]
    rule: str  # "given" or "body-relative"
    sure: bool = True
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"slices": [self.slices[0], self.slices[-1] + 1], "rule": self.rule,
                "sure": self.sure, "reason": self.reason, **self.details}  # fmt: skip


def auto_extent(
    ref01: np.ndarray, ref_zs: np.ndarray, qry01: np.ndarray, *, reverse: bool, spacing: tuple
) -> Extent:
    """The body-relative rule (module doc): the structure's extent `ref_zs` (reference slice
    indices) carried to the query by the two bodies' extents; `reverse`: the slice axes run in
    opposite directions; `spacing`: (reference, query) mm per slice."""
    rb, qb = body_extent(ref01), body_extent(qry01)
    n_q = qry01.shape[0]
    length = lambda b, s: max(b[1] - b[0], 1) * s  # noqa: E731  mm
    ratio = length(qb, spacing[1]) / length(rb, spacing[0])
    fractions = [(z - rb[0]) / max(rb[1] - rb[0], 1) for z in (ref_zs.min(), ref_zs.max())]
    if reverse:
        fractions = [1.0 - f for f in fractions[::-1]]
    ends = [int(round(qb[0] + f * (qb[1] - qb[0]))) for f in fractions]
    lo, hi = max(0, min(ends)), min(n_q - 1, max(ends))
    reasons = []
    if rb[0] == 0 or rb[1] == ref01.shape[0] - 1:
        reasons.append("the body reaches an end of the reference's field of view")
    if qb[0] == 0 or qb[1] == n_q - 1:
        reasons.append("the body reaches an end of the query's field of view")
    if not 1 / BODY_RATIO_SURE <= ratio <= BODY_RATIO_SURE:
        reasons.append(f"the bodies' lengths differ by a factor {ratio:.2f}")
    details = {"body_reference": list(rb), "body_query": list(qb), "body_ratio": round(ratio, 3)}
    return Extent(list(range(lo, hi + 1)), "body-relative", not reasons, "; ".join(reasons),
                  details)  # fmt: skip


@dataclass(frozen=True)
class PartSupport:
    """One part of the protocol: a support resampled onto the query's grid and its slices."""

    reference_slice: int
    image01: np.ndarray  # (H_q, W_q) float32 in [0, 1]
    mask: np.ndarray  # (H_q, W_q) bool
    query_slices: list[int]


@dataclass
class ReferencePlan:
    """The supports of one structure for one query, per third of the query's extent."""

    label: int
    extent: Extent
    parts: list[PartSupport]

    def describe(self) -> dict[str, Any]:
        return {
            "extent": self.extent.describe(),
            "parts": [{"reference_slice": p.reference_slice,
                       "query_slices": [p.query_slices[0], p.query_slices[-1] + 1]}
                      for p in self.parts],
        }  # fmt: skip


def plan_supports(
    reference: Any,
    ref_labels: np.ndarray,
    query: Any,
    label: int,
    extent: Sequence[int] | str = "auto",
    *,
    window: Any = "auto",
    query_window: Any = "auto",
    fit: bool = True,
) -> ReferencePlan:
    """The supports of `label` from the reference for the query (the module doc's rule).

    Args:
        reference, query: `core.volume.Volume`s (their affines name the axes).
        ref_labels: (Z, Y, X) ints on the reference's grid.
        extent: the query's slice indices holding the structure, or "auto" (`auto_extent`).
        window, query_window: intensity windows of the reference and the query.
        fit: see `resample_support`.
    Raises:
        ValueError: a reference that is not 3D, labels off its grid, the label absent, or
            slice axes along different anatomical axes.
    """
    check_reference(reference, ref_labels)
    ref_codes, qry_codes = check_slice_axes(reference, query)
    ref_win = resolve_window(reference.data, window)
    ref01 = normalise(reference.data, ref_win)
    picks = reference_parts(ref_labels, label)
    reverse = ref_codes[0] != qry_codes[0]
    if isinstance(extent, str):
        qry01 = normalise(query.data, resolve_window(query.data, query_window))
        ref_zs = np.flatnonzero((np.asarray(ref_labels) == label).any(axis=(1, 2)))
        spacing = (reference.spacing[0], query.spacing[0])
        found = auto_extent(ref01, ref_zs, qry01, reverse=reverse, spacing=spacing)
    else:
        found = Extent(sorted(int(z) for z in extent), "given")
    thirds = np.array_split(np.array(found.slices), len(picks))
    if reverse:  # the reference's first part is the query's last third
        thirds = thirds[::-1]
    parts = []
    for z_ref, third in zip(picks, thirds):
        if third.size == 0:
            continue
        img, m = resample_support(
            ref01[z_ref], np.asarray(ref_labels[z_ref]) == label, ref_codes[1:],
            reference.spacing[1:], qry_codes[1:], query.spacing[1:], tuple(query.data.shape[1:]),
            fit=fit,
        )  # fmt: skip
        if not m.any():
            raise ValueError(
                f"label {label}: the reference's support slice {z_ref} falls outside the "
                "query's field of view when resampled to it"
            )
        parts.append(PartSupport(z_ref, img, m, [int(z) for z in third]))
    return ReferencePlan(int(label), found, parts)


def predict_from_reference(
    session: Any,
    plan: ReferencePlan,
    *,
    batch_size: int | None = None,
    generator: Any = None,
) -> Generator[Progress, None, list[int]]:
    """Prompts of `plan.label` on the query `session`'s slices, each third from its part's
    support, by `generator` (default: the session's; its supports are replaced per part and
    left cleared). Slices painted as supports on the query itself are left as painted. One
    undo step; yields `Progress`; returns the slices that received prompts. Each slice's
    confidence is the prompts' evidence (`PromptSet.evidence`); its prompts' ``meta["generator"]``
    names the generator that made them (kind and checkpoint: the session's may differ)."""
    label = session.check_label(plan.label)
    batch = batch_size or session.batch_size
    entry = Entry(f"predict {label} (from another scan)", label)
    generator = generator or session.generator
    made_by = {k: v for k, v in generator.describe().items() if k in ("kind", "checkpoint")}
    painted = set(session.supports.get(label, {}))  # painted on this scan: kept as painted
    total = sum(len(set(p.query_slices) - painted) for p in plan.parts)
    done: list[int] = []
    try:
        for part in plan.parts:
            generator.clear_supports()
            generator.set_support(part.image01, part.mask)  # no slice index: another scan
            zs = [z for z in part.query_slices if z not in painted]
            for start in range(0, len(zs), batch):
                chunk = zs[start : start + batch]
                images = [session.image01(z) for z in chunk]
                # no slice indices either: nothing may pair a query slice with a support slice
                prompts = generator.predict(images, label=label, batch_size=batch)
                for z, p in zip(chunk, prompts):
                    conf = None if p.evidence is None else float(p.evidence)
                    p = p.copy(slice_index=z, meta={**p.meta, "generator": made_by})
                    session.record(entry, (label, z), SliceState(p, "predicted", conf))
                    done.append(z)
                yield Progress(len(done), total, f"prompts from reference slice "
                               f"{part.reference_slice}")  # fmt: skip
    finally:
        generator.clear_supports()
        session.finish(entry)
    return done
