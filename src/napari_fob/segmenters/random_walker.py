"""Random-walker segmenter (scikit-image): the offline fallback when no SAM checkpoint exists.

Seeds on the windowed float slice: small disks at the foreground points (label 1), small disks
at the background ring points (label 2), and everything well outside the ring (outside the ring
polygon grown by ``outside_margin`` pixels, label 2). The walk runs on a crop around the ring
(its bounding box + ``crop_margin``) because the random walker's linear system grows with the
pixel count; pixels outside the crop are background.

numpy / scipy / scikit-image only: must not import torch, napari or Qt.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import disk, polygon
from skimage.segmentation import random_walker

from napari_fob.core.intensity import Window, normalise
from napari_fob.core.prompts import PromptSet
from napari_fob.segmenters.base import check_inputs, segment_each

FG, BG = 1, 2


def ring_polygon_mask(bg: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The filled polygon through the ring points, (H, W) bool.

    The points are ordered by angle around their mean first, so a ring whose order was broken by
    an edit (a point appended at the end) still gives a simple polygon.

    Args:
        bg: (Np, 2) ring points, (row, col); at least 3.
        shape: (H, W) of the slice.
    """
    centre = bg.mean(axis=0)
    order = np.argsort(np.arctan2(bg[:, 1] - centre[1], -(bg[:, 0] - centre[0])))
    ring = bg[order]
    rr, cc = polygon(ring[:, 0], ring[:, 1], shape=shape)
    out = np.zeros(shape, dtype=bool)
    out[rr, cc] = True
    return out


class RandomWalkerSegmenter:
    """Foreground points + background ring -> mask with scikit-image's `random_walker`.

    Args:
        beta: edge penalisation of the walk (scikit-image divides it by 10 x the std of the
            crop); larger follows intensity edges more strictly.
        seed_radius: radius (pixels) of the seed disk drawn at every point.
        outside_margin: pixels beyond the ring polygon that stay unlabelled; farther is
            background. Without a ring (< 3 bg points) the region is the points' bounding box.
        crop_margin: pixels added around the ring's bounding box for the walk.
        tol: tolerance of the conjugate-gradient solver (``mode="cg_j"`` only).
        mode: scikit-image solver: ``"bf"`` (direct sparse solve, much faster than conjugate
            gradients on a slice crop; docs/segmenters.md) or ``"cg_j"``.
    """

    name = "random-walker"

    def __init__(
        self,
        *,
        beta: float = 90.0,
        seed_radius: float = 2.0,
        outside_margin: float = 4.0,
        crop_margin: int = 8,
        tol: float = 1e-4,
        mode: str = "bf",
    ) -> None:
        if beta <= 0 or seed_radius < 0 or outside_margin < 0 or crop_margin < 0:
            raise ValueError(
                "RandomWalkerSegmenter: expected beta > 0 and non-negative radius/margins, got "
                f"beta={beta}, seed_radius={seed_radius}, outside_margin={outside_margin}, "
                f"crop_margin={crop_margin}"
            )
        self.beta = float(beta)
        self.seed_radius = float(seed_radius)
        self.outside_margin = float(outside_margin)
        self.crop_margin = int(crop_margin)
        self.tol = float(tol)
        if mode not in ("bf", "cg_j"):
            raise ValueError(f"RandomWalkerSegmenter mode: expected 'bf' or 'cg_j', got {mode!r}")
        self.mode = mode

    def describe(self) -> dict[str, Any]:
        """JSON-able identity: kind and every option."""
        return {
            "kind": "random-walker",
            "backend": "skimage.segmentation.random_walker",
            "options": {
                "beta": self.beta,
                "seed_radius": self.seed_radius,
                "outside_margin": self.outside_margin,
                "crop_margin": self.crop_margin,
                "tol": self.tol,
                "mode": self.mode,
            },
        }

    def segment(
        self,
        image: np.ndarray,
        prompts: PromptSet,
        *,
        window: Window,
        mask_input: np.ndarray | None = None,
    ) -> np.ndarray:
        """(H, W) raw slice + prompts -> (H, W) bool mask; ``mask_input`` is not used here."""
        arr = check_inputs(image, prompts)
        shape = arr.shape
        if len(prompts.fg) == 0:
            return np.zeros(shape, dtype=bool)
        seeds = self._seeds(shape, prompts)
        (r0, r1), (c0, c1) = self._crop(shape, prompts)
        crop_seeds = seeds[r0:r1, c0:c1]
        mask = np.zeros(shape, dtype=bool)
        if not (crop_seeds == BG).any():  # no background in reach: the crop is all foreground
            mask[r0:r1, c0:c1] = True
            return mask
        data = normalise(arr[r0:r1, c0:c1], window).astype(np.float64)
        if float(data.std()) == 0.0:  # flat crop: no edge to follow, skimage would divide by 0
            data = data + np.linspace(0.0, 1e-6, data.size).reshape(data.shape)
        with warnings.catch_warnings():
            # The solver's probabilities may overshoot [0, 1] by ~tol; only the label (the
            # larger probability) is used, which the overshoot does not change.
            warnings.filterwarnings("ignore", message="The probability range is outside")
            result = random_walker(
                data, crop_seeds, beta=self.beta, mode=self.mode, tol=self.tol, channel_axis=None
            )
        mask[r0:r1, c0:c1] = result == FG
        return mask

    def segment_many(
        self,
        images: Sequence[np.ndarray],
        prompts_list: Sequence[PromptSet],
        *,
        window: Window,
    ) -> list[np.ndarray]:
        """One (H, W) bool mask per (image, prompts) pair."""
        return segment_each(self, images, prompts_list, window=window)

    # ---- seeds and crop ------------------------------------------------------------------
    def _region(self, shape: tuple[int, int], prompts: PromptSet) -> np.ndarray:
        """(H, W) bool: where the structure may be (ring polygon, or the points' bounding box)."""
        if len(prompts.bg) >= 3:
            region = ring_polygon_mask(prompts.bg, shape)
        else:
            pts = np.concatenate([prompts.fg, prompts.bg]) if len(prompts.bg) else prompts.fg
            lo = np.clip(np.floor(pts.min(axis=0)).astype(int), 0, None)
            hi = np.ceil(pts.max(axis=0)).astype(int) + 1
            region = np.zeros(shape, dtype=bool)
            region[lo[0] : hi[0], lo[1] : hi[1]] = True
        return region

    def _seeds(self, shape: tuple[int, int], prompts: PromptSet) -> np.ndarray:
        region = self._region(shape, prompts)
        seeds = np.zeros(shape, dtype=np.int32)
        if region.any():
            seeds[ndi.distance_transform_edt(~region) > self.outside_margin] = BG
        radius = max(self.seed_radius, 0.5)
        for point in prompts.bg:
            seeds[disk(tuple(point), radius, shape=shape)] = BG
        # Foreground last: a user's foreground click wins over a ring point drawn nearby.
        for point in prompts.fg:
            seeds[disk(tuple(point), radius, shape=shape)] = FG
        return seeds

    def _crop(self, shape: tuple[int, int], prompts: PromptSet) -> tuple[tuple[int, int], ...]:
        pts = np.concatenate([prompts.fg, prompts.bg]) if len(prompts.bg) else prompts.fg
        pad = self.crop_margin + self.outside_margin + self.seed_radius
        lo = np.floor(pts.min(axis=0) - pad).astype(int)
        hi = np.ceil(pts.max(axis=0) + pad).astype(int) + 1
        return tuple(
            (int(np.clip(lo[d], 0, shape[d])), int(np.clip(hi[d], 0, shape[d]))) for d in (0, 1)
        )
