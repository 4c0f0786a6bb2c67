"""The shared machinery of the mask-based prompt generators (mask-ring, copy, registration):
supports, the ring and foreground points drawn from a mask at the model grid, the nearest
support, and the calibrated confidence of each query (`napari_fob.prompting.confidence`).

Pure numpy (via `napari_fob.geometry` and `napari_fob.core`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_fob import geometry
from napari_fob.core.intensity import intensity_band, reference_support
from napari_fob.core.prompts import PromptSet, nearest_slice
from napari_fob.prompting.confidence import calibrated, slice_features


@dataclass
class Support:
    """One support of a mask-based generator, with what is drawn from it."""

    image01: np.ndarray  # (H, W) float32 in [0, 1]
    mask: np.ndarray  # (H, W) bool
    slice_index: int | None
    fg: np.ndarray  # (Nf, 2) (row, col)
    bg: np.ndarray  # (Np, 2) (row, col), ring order
    band: tuple[float, float]  # intensity band of the structure on this slice
    committed: bool = False  # a committed (chain) mask: its evidence uses a painted band


class GeometricGenerator:
    """Shared machinery of the mask-based baselines: supports, nearest choice, evidence."""

    name = "geometric"
    origin = "mask-ring"

    def __init__(
        self,
        *,
        n_bg: int = 10,
        n_fg: int = 10,
        r: float = 15,
        eps: float = 2,
        grid_size: int = 256,
        tolerance: float = 0.05,
    ) -> None:
        self.n_bg, self.n_fg, self.r, self.eps = int(n_bg), int(n_fg), float(r), float(eps)
        self.grid_size, self.tolerance = int(grid_size), float(tolerance)
        self._supports: list[Support] = []

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "n_bg": self.n_bg,
            "n_fg": self.n_fg,
            "r": self.r,
            "eps": self.eps,
            "grid_size": self.grid_size,
            "evidence": "calibrated confidence (napari_fob.prompting.confidence)",
        }

    def clear_supports(self) -> None:
        self._supports.clear()

    def show(self, images01: Sequence[np.ndarray], slice_indices: Sequence[int]) -> None:
        """Slices a generator that walks through the volume may step through; the mask
        baselines prompt from the nearest support alone and ignore them."""

    def set_support(
        self,
        image01: np.ndarray,
        mask: np.ndarray,
        *,
        slice_index: int | None = None,
        committed: bool = False,
    ) -> None:
        """Add a support: (H, W) float image in [0, 1] and its (H, W) bool mask (non-empty);
        ``committed`` as in `PromptGenerator.set_support`."""
        image01 = np.asarray(image01, dtype=np.float32)
        mask = np.asarray(mask, dtype=bool)
        if image01.ndim != 2 or mask.shape != image01.shape:
            raise ValueError(
                f"{self.name} support: expected a 2D image and a mask of the same shape, got "
                f"{image01.shape} and {mask.shape}"
            )
        if not mask.any():
            raise ValueError(
                f"{self.name} support on slice {slice_index}: mask is empty: a support mask "
                "needs at least one foreground pixel"
            )
        bg = self.ring(mask)
        fg = np.asarray(geometry.fg_points_from_mask(mask, self.n_fg), dtype=np.float64)
        band = intensity_band(image01, mask, self.tolerance)
        # Replace a support given again for the same slice (chain mode re-commits slices).
        self._supports = [s for s in self._supports if s.slice_index != slice_index]
        self._supports.append(Support(image01, mask, slice_index, fg, bg, band, committed))

    def ring(self, mask: np.ndarray) -> np.ndarray:
        """The (Np, 2) ordered ring of `mask` (H, W), drawn at the model grid, in slice pixels."""
        grid_mask = geometry.resize_mask_to_grid(mask, self.grid_size)
        if not grid_mask.any():  # a structure thinner than one grid pixel
            grid_mask = geometry.resize_to_grid(mask.astype(np.float32), self.grid_size) > 0
        pts = geometry.ring_points(grid_mask, self.n_bg, r=self.r, eps=self.eps)
        return np.asarray(geometry.grid_to_slice(pts, mask.shape, self.grid_size), np.float64)

    def nearest(self, slice_index: int | None) -> Support:
        """The support nearest to `slice_index` (ties: the lower slice); the only one if None."""
        if not self._supports:
            raise ValueError(f"{self.name}: predict() called before set_support()")
        if slice_index is None:
            if len(self._supports) > 1:
                raise ValueError(
                    f"{self.name}: several supports are set; pass slice_indices to predict()"
                )
            return self._supports[0]
        known = [s for s in self._supports if s.slice_index is not None] or self._supports
        return nearest_slice(known, slice_index, key=lambda s: s.slice_index)

    def evidence(
        self,
        support: Support,
        image01: np.ndarray,
        footprint: np.ndarray | None = None,
        z: int | None = None,
        neighbour: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[float, dict[str, float]]:
        """(calibrated confidence, its features) of the query `image01` on slice `z` whose
        prompts are drawn around `footprint` (default: the support's mask), measured against
        `support` and, when given, the (image, footprint) of the slice next to it on the way
        to the support (`napari_fob.prompting.confidence`)."""
        if image01.shape != support.mask.shape:
            raise ValueError(
                f"{self.name}: query slice shape {image01.shape} differs from the support's "
                f"{support.mask.shape}"
            )
        # measured against the painted support that vouches for this one (itself unless it
        # is a committed chain mask), as FoB's are: a chain's committed neighbour would keep
        # |dz| at 1 and the confidence high however far the chain has walked
        ref = reference_support(self._supports, support)
        zs = ref.slice_index
        feats = slice_features(
            image01, support.mask if footprint is None else footprint, ref.image01,
            ref.mask, ref.band, dz=None if z is None or zs is None else z - zs,
            neighbour01=None if neighbour is None else neighbour[0],
            neighbour_mask=None if neighbour is None else neighbour[1],
        )  # fmt: skip
        return calibrated(feats), feats

    def predict(
        self,
        images01: Sequence[np.ndarray],
        *,
        slice_indices: Sequence[int] | None = None,
        label: int = 1,
        batch_size: int = 16,
    ) -> list[PromptSet]:
        """One PromptSet per (H, W) float32 [0, 1] query (batch_size is accepted for the API)."""
        if slice_indices is not None and len(slice_indices) != len(images01):
            raise ValueError(
                f"{self.name}.predict: {len(images01)} images but {len(slice_indices)} indices"
            )
        out = []
        for i, image in enumerate(images01):
            z = None if slice_indices is None else int(slice_indices[i])
            support = self.nearest(z)
            image = np.asarray(image, dtype=np.float32)
            evidence, feats = self.evidence(support, image, z=z)
            out.append(
                PromptSet(
                    fg=support.fg.copy(),
                    bg=support.bg.copy(),
                    label=label,
                    slice_index=z,
                    origin=self.origin,
                    evidence=evidence,
                    meta={"support_slice": support.slice_index, "confidence_features": feats},
                )
            )
        return out
