"""The simulated annotator's gesture (issue 18, part 1): which slice, which point, where.

One action is what a user does in the product with one gesture, on the slice with the most
wrong voxels (missed + false positive):

- when missed foreground dominates (missed >= false positive), a foreground point at the voxel
  of the largest missed component farthest from that component's border;
- otherwise the background point nearest to the largest false-positive component moves onto
  the true ring (the pixel of the ring nearest to the component's deepest voxel), or a
  background point is added there when none is within `NEAR` pixels of the component.

The true ring is the set of pixels RING_IN..RING_OUT pixels outside the true mask (a thin band
hugging the structure, where a careful user puts background points). Pure numpy / scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

RING_IN, RING_OUT = 2.0, 4.0  # pixels outside the true mask where the true ring lies
NEAR = 10.0  # a background point farther than this from the component is not "near": add one


@dataclass(frozen=True)
class Action:
    """One gesture on slice `z`: kind "fg" (add), "bg-move" (move bg point `index`) or
    "bg-add"; `rc` the (row, col) target."""

    z: int
    kind: str
    rc: tuple[float, float]
    index: int = -1


def wrong_voxels(mask: np.ndarray, truth: np.ndarray) -> int:
    return int(np.count_nonzero(mask != truth))


def worst_slice(masks: dict[int, np.ndarray], truth: np.ndarray) -> int | None:
    """The slice with the most wrong voxels (lowest z on a tie); None when all are right."""
    errors = {z: wrong_voxels(m, truth[z]) for z, m in masks.items()}
    z = min(errors, key=lambda k: (-errors[k], k))
    return None if errors[z] == 0 else z


def _largest(component_mask: np.ndarray) -> np.ndarray:
    lab, n = ndi.label(component_mask)
    if n == 1:
        return lab == 1
    sizes = ndi.sum(component_mask, lab, index=np.arange(1, n + 1))
    return lab == (int(np.argmax(sizes)) + 1)


def deepest(region: np.ndarray) -> tuple[float, float]:
    """The pixel of `region` farthest from its border (first in raster order on a tie)."""
    depth = ndi.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return float(r), float(c)


def choose(z: int, mask: np.ndarray, truth: np.ndarray, bg: np.ndarray) -> Action:
    """The gesture on slice `z` given its (H, W) bool mask, truth and (N, 2) bg points."""
    missed, extra = truth & ~mask, mask & ~truth
    if missed.sum() >= extra.sum():
        return Action(z, "fg", deepest(_largest(missed)))
    comp = _largest(extra)
    outside = ndi.distance_transform_edt(~truth) if truth.any() else None
    if outside is None:  # nothing is true on this slice: background at the component itself
        return Action(z, "bg-add", deepest(comp))
    ring = (outside >= RING_IN) & (outside <= RING_OUT)
    deep = np.array(deepest(comp))
    ring_px = np.argwhere(ring)
    target = ring_px[int(np.argmin(((ring_px - deep) ** 2).sum(axis=1)))]
    rc = (float(target[0]), float(target[1]))
    if len(bg):
        to_comp = ndi.distance_transform_edt(~comp)
        rows = np.clip(np.round(bg[:, 0]).astype(int), 0, comp.shape[0] - 1)
        cols = np.clip(np.round(bg[:, 1]).astype(int), 0, comp.shape[1] - 1)
        dist = to_comp[rows, cols]
        i = int(np.argmin(dist))
        if dist[i] <= NEAR:
            return Action(z, "bg-move", rc, i)
    return Action(z, "bg-add", rc)
