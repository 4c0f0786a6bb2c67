"""The network's outputs for one query turned into a `PromptSet` (`prompt_set`), with the
in-volume additions that act on them (`in_volume`: fine ring, foreground threshold and core)
and what its calibrated confidence is measured from (`query_features`, `network_features`).

numpy and `geometry` at module level; torch only through the tensors it is given; never
napari or Qt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from napari_fob import geometry
from napari_fob.core.intensity import reference_support
from napari_fob.core.prompts import PromptSet, nearest_slice
from napari_fob.prompting.confidence import slice_features
from napari_fob.prompting.in_volume import (
    Footprint,
    core_foreground_candidates,
    fine_ring_moved,
    support_core,
)

if TYPE_CHECKING:
    from napari_fob.model.fob import FobOutput
    from napari_fob.prompting.predictor import FobPredictor
    from napari_fob.prompting.registration import MaskTracker
    from napari_fob.prompting.supports import EncodedSupport


def query_features(
    supports: list[EncodedSupport],
    tracker: MaskTracker | None,
    support: EncodedSupport,
    z: int | None,
    query: np.ndarray,
    foot: Footprint,
) -> dict[str, float]:
    """`confidence.slice_features` of the (S, S) `query` on slice `z` whose footprint is
    `foot`, among the predictor's `supports`: against the painted support that vouches for
    `support` (`intensity.reference_support`) and, with the registration prior's `tracker`,
    against the slice next to `z` on the way to it (its image and carried mask)."""
    ref = reference_support(supports, support)
    zs = ref.slice_index
    neighbour = neighbour_mask = None
    if tracker is not None and z is not None and zs is not None and z != zs:
        zn = int(z) - (1 if z > zs else -1)
        painted = [s for s in supports if not s.committed and s.slice_index is not None]
        source = nearest_slice(painted, zn, key=lambda s: s.slice_index) if painted else None
        # known: shown, of the walk's slice size; the carried mask alone (its ring is not needed)
        if zn != zs and source is not None and tracker.knows(source.slice_index, zn):
            neighbour = tracker.image(zn)
            neighbour_mask = tracker.mask_at(source.slice_index, zn)
    return slice_features(
        query, foot.mask, ref.image if ref.image is not None else query,
        ref.footprint.mask, ref.band, dz=None if z is None or zs is None else z - zs,
        neighbour01=neighbour, neighbour_mask=neighbour_mask,
    )  # fmt: skip


def network_features(out: FobOutput, j: int, prob: np.ndarray, foot: Footprint) -> dict:
    """What the network itself says about query `j` next to its footprint `foot`: ``fg_contrast``,
    the mean of its foreground map C inside the footprint minus that in the shell just outside
    (`confidence.SHELL_WIDTH`); ``ring_dist``, how far its coarse ring points lie from the
    footprint's ring, in the footprint's equivalent radii (both recorded with the confidence's
    features, `confidence.slice_features`)."""
    from napari_fob.prompting.confidence import shell

    inside, around = prob[foot.mask], prob[shell(foot.mask)]
    contrast = float(inside.mean() - around.mean()) if inside.size and around.size else 0.0
    coarse = out.coarse_points[j].float().cpu().numpy().astype(np.float64)
    radius = np.sqrt(max(int(foot.mask.sum()), 1) / np.pi)
    dist = float(np.linalg.norm(coarse - foot.ring, axis=1).mean() / radius)
    return {"fg_contrast": contrast, "ring_dist": dist}


def prompt_set(
    predictor: FobPredictor,
    out: FobOutput,
    j: int,
    shape: tuple[int, ...],
    *,
    slice_index: int | None,
    label: int,
    support: EncodedSupport,
    evidence: float,
    region: np.ndarray | None,
    foot: Footprint,
    features: dict[str, float] | None = None,
) -> PromptSet:
    """The PromptSet of query `j` of a batch's network output `out`, on a slice of `shape`:
    ring points (moved onto the fine ring where the predictor's ``fine_ring`` says so), their
    peak confidences, and foreground points from the map C (from the footprint's core where
    ``fg_core`` applies), all mapped back to the slice's pixels; `region` is the query's
    band-excluded region at the grid, `foot` its footprint (`FobPredictor.query_footprint`),
    `features` what its confidence `evidence` was computed from (kept in ``meta``).
    """
    cfg, s = predictor.model.config, predictor.grid_size
    hw = (int(shape[0]), int(shape[1]))
    limit = np.array([hw[0] - 1, hw[1] - 1], dtype=np.float64)
    bg_grid = out.points[j].float().cpu().numpy().astype(np.float64)
    fine_ring = predictor.fine_ring is True or (
        predictor.fine_ring == "committed" and support.committed
    )
    if fine_ring and foot.fine_ring is not None:
        excluded = None if predictor.band_exclusion is None else region
        bg_grid = fine_ring_moved(foot.fine_ring, foot.ring, bg_grid, s, excluded)
    bg = np.clip(geometry.grid_to_slice(bg_grid, hw, s), 0.0, limit)
    from napari_fob.model.fob import peak_confidence

    peak = peak_confidence(
        out.heatmaps[j : j + 1], cfg.heat_loss, cfg.sigma, out.coarse_points[j : j + 1]
    )
    bg_scores = peak[0].float().cpu().numpy()
    prob = out.fg_prob[j].float().cpu().numpy()
    threshold = cfg.fg_threshold
    if predictor.fg_relative is not None:
        threshold = min(threshold, predictor.fg_relative * float(prob.max()))
    candidates = None
    if predictor.fg_core is not None and foot.depth is not None and region is not None:
        sigma = predictor.prior_sigma(support.slice_index, slice_index)
        core = support_core(foot.depth, predictor.fg_core, sigma)
        candidates = core_foreground_candidates(core, region, prob)
    fg_grid, fg_scores = geometry.foreground_points(
        prob, cfg.n_fg, threshold=threshold, candidates=candidates
    )
    fg = np.clip(geometry.grid_to_slice(fg_grid, hw, s), 0.0, limit)
    return PromptSet(
        fg=fg,
        bg=bg,
        label=label,
        slice_index=slice_index,
        origin="fob",
        fg_scores=fg_scores,
        bg_scores=bg_scores,
        evidence=evidence,
        meta={
            "support_slice_index": support.slice_index,
            "fg_map_max": float(prob.max()),
            **(
                {}
                if features is None
                else {"confidence_features": {**features, **network_features(out, j, prob, foot)}}
            ),
        },
    )
