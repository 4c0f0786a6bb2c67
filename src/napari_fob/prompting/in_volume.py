"""FoB's in-volume inference: the choices `predictor.FobPredictor` adds to the paper, their
defaults and the numpy geometry behind them (how each was chosen: docs/method.md, "Inference
in one volume").

- **Location prior.** The support and the queries are slices of the same volume, so ring point
  k of a query lies near ring point k of the support, the nearer the smaller |dz|. The coarse
  points that seed SPR are the argmax of the heatmaps' log-likelihood plus an isotropic
  Gaussian log-prior around the support ring with width ``a + b |dz|`` pixels of a 256 grid
  (``location_prior=(a, b)``; by default `DEFAULT_REGISTRATION_PRIOR` with the registration
  prior below, `DEFAULT_LOCATION_PRIOR` with the support's own footprint; ``"model"`` takes
  the prior the model was trained with; None turns it off, as does a query or support without
  a slice index). Moving inwards, towards or into the support's footprint, is penalised once more
  (``inward_prior=k``: an extra Gaussian of width ``k * sigma`` on how far a point is inside
  the support ring's radius), because a background point on the structure cuts the mask while
  one a little too far out costs little.
- **Band exclusion.** Where the query's own pixels say the structure continues (the pixels in
  the support's intensity band connected to its footprint, `intensity.structure_region`, grown
  by a small margin), every ring point pays a flat penalty (``band_exclusion``, log units), so a
  ring point that the network and the prior would leave on a structure that grew past the
  support's outline is moved out of it.
- **Fine ring** (``fine_ring``: True, False, or "committed": for committed supports only;
  by default True with the registration prior and "committed" with the support's). The model
  draws the support's ring at its own S grid (the shipped model: S = 128, ring radius 8, i.e.
  16 px of a 256 grid in 2 px steps), which is off the paper's ring
  (r = 15, eps = 2 at 256) even on the support slice. With it, ring point k of a query is the
  support's ring point k drawn as the paper draws it, moved by how far the model moved its
  point k from its own support ring point (a point this shift puts into the band-excluded
  region keeps the model's position): next to the support this is the support's exact ring,
  far from it the model's displacement. Around the support's own footprint it helps most
  next to a committed slice (chain mode) and least far from a painted support; around the
  registered footprint it is the registered ring drawn as the paper draws it, moved by the
  network, on every slice (numbers: docs/method.md, "Fine ring" and "The registration
  prior").
- **Foreground threshold.** Foreground points are spread over the pixels where C exceeds
  ``min(T, fg_relative * max C)`` (``fg_relative=0.7``; None keeps the paper's fixed T): C of
  the shipped model rarely reaches T = 0.9, which left a single foreground point per slice.
- **Foreground from the support's core** (``fg_core=0.75``; None: the threshold above alone).
  The map C of the shipped model is high on a small patch of a large structure, so its points
  bunch there and a segmenter fills only that patch. Instead, the points are spread
  (farthest-point sampling from the highest C) over the support mask's core (pixels at least
  ``fg_core`` of its maximal depth inside, and at least the location prior's width at the
  query's |dz|: shallower ones may have left the structure) where the query's structure region
  (the band exclusion's) holds (and C is at least `FG_CORE_FLOOR` of its maximum: 0, off).
  Painted supports only (a committed mask's errors would be carried on in chain mode); with
  fewer than 3 such pixels (the structure has left the footprint, a query far away, no
  location prior) the threshold rule above applies.
- **Registration prior** (``prior_source="registration"``). Instead of the support's own
  footprint at the same pixels, every addition above (the location prior and its inward
  penalty, the band exclusion, the fine ring, the foreground core) and the evidence below use
  the support mask carried to the query slice by the registration baseline's walk
  (`registration.MaskTracker`: optical flow between neighbouring slices), so the network's job
  becomes correcting where registration drifts rather than where the structure moved. Walks
  start from painted supports only: in chain mode a committed mask gives the prototypes, but
  its segmentation errors would otherwise be carried on from step to step.
- **Evidence.** ``PromptSet.evidence`` is the calibrated confidence of
  `napari_fob.prompting.confidence`, measured on the query's footprint (the support's, or the
  registered one) at its grid: the maximum of FoB's foreground map C is kept in
  ``meta["fg_map_max"]`` but it is not calibrated across slices with the shipped model, so
  automatic extent cannot rely on it.

Pure numpy / scipy, cheap to import; must not import torch, napari or Qt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_fob import geometry
from napari_fob.core.intensity import structure_region
from napari_fob.prompting import PRIOR_SOURCES  # noqa: F401  (re-exported)

DEFAULT_PRIOR_SOURCE = "registration"
"""The product's prior source: on real MRI the registered footprint is nearer the truth than
the support's own (numbers: docs/method.md, "The registration prior")."""

DEFAULT_REGISTRATION_PRIOR = (0.5, 0.0)
"""(a, b) of the location prior around the registered footprint, pixels of a 256 grid: narrow
and not growing with |dz|, because the footprint already follows the structure and the
shipped network moves points away from it more often than towards it (chosen on the
real-anatomy tune split; numbers: docs/method.md, "The registration prior")."""

DEFAULT_LOCATION_PRIOR = (1.0, 0.75)
"""(a, b) of the location prior around the support's own footprint (``prior_source="support"``),
pixels of a 256 grid: wide enough for a structure that shrinks or drifts between slices, narrow
enough to keep ring points near the support's. Independent of the prior a model was trained
with (``FobPredictor(location_prior="model")`` uses that). Chosen on tuning phantoms by fewest
background points inside, then ring error (numbers: docs/method.md, "Location prior")."""

DEFAULT_INWARD_PRIOR = 1.0
"""Width factor k of the inward penalty: a point inside the support's ring cuts the mask, one a
little outside costs little (chosen with the location prior; numbers: docs/method.md,
"Location prior")."""

DEFAULT_FG_RELATIVE = 0.7
"""Foreground points where C > min(T, 0.7 max C): the shipped model's C rarely reaches the paper's
T = 0.9, which left one point per slice (numbers: docs/method.md, "Inference (Sec. 3.7)")."""


DEFAULT_FG_CORE = 0.75
"""Foreground points from the support's core (see `core_foreground_candidates`): the fraction
of the support mask's maximal depth a pixel must lie at — deep enough that the structure is
still there a few slices away, shallow enough to spread the points over a large organ (numbers:
docs/method.md, "Foreground from the support's core")."""

FG_CORE_FLOOR = 0.0
"""Core candidates must also have C >= FG_CORE_FLOOR x max C. Off (0): the packaged networks'
maps, gating the registered core, put more foreground points off the structure than the core
alone on real MRI and on phantoms; the map still picks the first point (its maximum among the
candidates). A network whose map is better inside the structure can raise it (numbers:
docs/method.md, "Foreground from the support's core")."""

FG_CORE_MIN_PIXELS = 3
"""Fewer core candidates than this (the structure left the footprint, a thin support) and the
predictor falls back to the map's own rule."""


ADDITION_RANGES = {
    "fg_relative": (lambda v: 0.0 < v <= 1.0, "a fraction in (0, 1]"),
    "inward_prior": (lambda v: v > 0, "a width factor > 0"),
    "band_exclusion": (lambda v: v > 0, "a penalty > 0"),
    "fg_core": (lambda v: 0.0 <= v < 1.0, "a depth fraction in [0, 1)"),
}
"""The values each numeric addition accepts (None turns it off)."""


def check_addition(name: str, value: object) -> float | None:
    """`value` of the addition `name` as a float, or None (off).

    Raises:
        ValueError: a value outside `ADDITION_RANGES`, naming the option and what it expects.
    """
    if value is None:
        return None
    ok, expected = ADDITION_RANGES[name]
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = float("nan")
    if not ok(number):
        raise ValueError(f"{name}: expected {expected} or None, got {value!r}")
    return number


def support_core(depth: np.ndarray, fraction: float, sigma: float = 0.0) -> np.ndarray:
    """(S, S) bool: the pixels of a support mask (given by its `geometry.mask_depth`) at least
    `fraction` of its maximal depth inside, and at least `sigma` grid pixels (the location
    prior's width for the query's |dz|, `FobPredictor.prior_sigma`): a pixel shallower than the
    boundary may move by that distance says little about the query. Empty when sigma is
    infinite."""
    d = np.asarray(depth, dtype=np.float64)
    return (d > 0) & (d >= max(float(fraction) * d.max(), float(sigma)))


def core_foreground_candidates(
    core: np.ndarray, region: np.ndarray, prob: np.ndarray
) -> np.ndarray | None:
    """(S, S) bool candidates for foreground points on one query: the support's `core` where
    the query's structure `region` holds and FoB's map ``prob >= FG_CORE_FLOOR * max`` (with
    the floor at 0, every such pixel); None when fewer than `FG_CORE_MIN_PIXELS` remain."""
    p = np.asarray(prob, dtype=np.float64)
    cand = np.asarray(core, bool) & np.asarray(region, bool) & (p >= FG_CORE_FLOOR * p.max())
    return cand if int(cand.sum()) >= FG_CORE_MIN_PIXELS else None


DEFAULT_BAND_EXCLUSION = 20.0
"""Penalty (log units) on ring points in the query's structure region: large enough to move a
point off a structure that grew far past the support's ring (a smaller one is outweighed by the
location prior; numbers: docs/method.md, "Band exclusion")."""

BAND_EXCLUSION_MARGIN = 0.375
"""Ring radii (``ring_r``) the structure region is grown by before it is penalised: the
region misses the structure's partial-volume rim, and a ring point just outside it is still on
it (3 px at the shipped model's 128 grid)."""

BAND_EXCLUSION_REACH = 3.0
"""Ring radii beyond the support's footprint the structure region may reach: a bound on its
leaks into touching tissue of the same intensity, wide enough for a structure that grows past
the support (24 px at the shipped model's 128 grid; docs/method.md, "Band exclusion")."""


FINE_RING_GRID, FINE_RING_R, FINE_RING_EPS = 256, 15.0, 2.0
"""The ring of Eq. 1 as the paper draws it (and the mask-ring baseline): r = 15, eps = 2 on a
256 grid; the ``fine_ring`` output is built on it."""


def fine_ring_points(mask: np.ndarray, n: int) -> np.ndarray | None:
    """(n, 2) ring points of an (H, W) support mask on the FINE_RING_GRID grid, in ring order;
    None when the mask vanishes at that grid."""
    grid_mask = geometry.resize_mask_to_grid(mask, FINE_RING_GRID)
    if not grid_mask.any():
        return None
    return geometry.ring_points(grid_mask, n, r=FINE_RING_R, eps=FINE_RING_EPS)


def value_at(values: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N,) values of an (S, S) map at the nearest pixel of each (row, col) point."""
    idx = np.clip(np.round(points).astype(int), 0, np.array(values.shape) - 1)
    return values[idx[:, 0], idx[:, 1]]


def inward_depth(mask: np.ndarray, radius: float) -> np.ndarray:
    """(S, S) float32: ``max(0, radius - signed distance to the mask)``, the signed distance
    positive outside and negative inside: 0 on and beyond the support ring, growing inwards."""
    return np.maximum(0.0, float(radius) - geometry.signed_distance(mask)).astype(np.float32)


def excluded_region(
    query: np.ndarray, mask: np.ndarray, band: tuple[float, float], ring_r: float
) -> np.ndarray:
    """(S, S) bool: where the band exclusion penalises ring points on one (S, S) query slice at
    the model grid, for a support `mask` with intensity `band` and a model of ring radius
    `ring_r` (`intensity.structure_region`, grown by the margin)."""
    from scipy import ndimage as ndi

    r = float(ring_r)
    region = structure_region(query, mask, band, BAND_EXCLUSION_REACH * r)
    return ndi.distance_transform_edt(~region) <= BAND_EXCLUSION_MARGIN * r


def fine_ring_moved(
    fine_ring: np.ndarray,
    support_ring: np.ndarray,
    points: np.ndarray,
    grid_size: int,
    region: np.ndarray | None = None,
) -> np.ndarray:
    """(Np, 2) query ring points at the S = `grid_size` model grid: the support's `fine_ring`
    (FINE_RING_GRID) moved by the model's displacement of each of its `points` from its own
    `support_ring` point (both at the model grid); a point the shift puts into the excluded
    `region` ((S, S) bool) keeps the model's position."""
    f = FINE_RING_GRID / grid_size
    moved = (fine_ring + (points - support_ring) * f + 0.5) / f - 0.5
    if region is not None:
        back = value_at(region, moved) & ~value_at(region, points)
        moved[back] = points[back]
    return moved


@dataclass
class Footprint:
    """A structure's outline on one slice, at the model grid, as the additions above use it:
    the painted support's, or (``prior_source="registration"``) its mask carried to a query."""

    mask: np.ndarray  # (S, S) bool
    ring: np.ndarray  # (Np, 2) grid (row, col), in ring order
    inward: np.ndarray  # (S, S) float32, `inward_depth`
    fine_ring: np.ndarray | None  # (Np, 2) at FINE_RING_GRID, `fine_ring_points`
    depth: np.ndarray | None  # (S, S) `geometry.mask_depth` (foreground core), or None


def footprint(
    mask: np.ndarray,
    grid_size: int,
    n_bg: int,
    *,
    ring_r: float,
    ring_eps: float,
    ring_kernel: str,
    with_depth: bool,
) -> Footprint | None:
    """The `Footprint` of an (H, W) bool mask at the S = `grid_size` grid with the model's ring
    (`n_bg` points, `ring_r`, `ring_eps`, `ring_kernel`); None when it vanishes at the grid."""
    mask_g = geometry.resize_mask_to_grid(mask, grid_size)
    if not mask_g.any():
        return None
    ring = geometry.ring_points(mask_g, n_bg, r=ring_r, eps=ring_eps, kernel=ring_kernel)
    return Footprint(
        mask=mask_g,
        ring=ring,
        inward=inward_depth(mask_g, ring_r),
        fine_ring=fine_ring_points(mask, n_bg),
        depth=geometry.mask_depth(mask_g) if with_depth else None,
    )
