"""Prompt generators: one interface for FoB and for the baselines it is compared against.

A generator turns support masks (painted or committed slices) into a `PromptSet` for each query
slice. Three are provided:

- ``fob``: the FoB model through `napari_fob.prompting.predictor.FobPredictor`.
- ``mask-ring``: the baseline of DESIGN.md §5 (micro-sam's prompt projection): the ring and the
  foreground points are re-drawn with `geometry.py` from the **nearest** support mask; the ring is
  computed at the model grid (like FoB's rings) and mapped back to slice pixels.
- ``copy``: the nearest support's own points, unchanged (a benchmark floor).

Evidence of the geometric baselines. FoB's ``evidence`` is the maximum of its foreground map. The
baselines have no model, so their evidence is an **image-similarity score**: the fraction of the
reference mask's pixels whose windowed intensity on the query slice lies inside the central
intensity band of the structure on the reference slice (its 5th..95th percentiles widened by
``tolerance``, in [0, 1] units). It is ~1 while the structure still fills the reference footprint
and falls towards 0 where the structure has ended (other tissue takes its place), which is what
automatic extent needs.

Pure numpy here; torch is imported only when a ``fob`` generator is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from napari_fob import geometry
from napari_fob.core.intensity import band_overlap, intensity_band, reference_band
from napari_fob.core.prompts import PromptSet

GENERATORS = ("fob", "mask-ring", "copy")


@runtime_checkable
class PromptGenerator(Protocol):
    """Supports in, one `PromptSet` per query slice out (the interface of `FobPredictor`)."""

    name: str

    def describe(self) -> dict[str, Any]:
        """A JSON-ready id of the generator and its settings (recorded in sidecars/reports)."""

    def set_support(
        self,
        image01: np.ndarray,
        mask: np.ndarray,
        *,
        slice_index: int | None = None,
        committed: bool = False,
    ) -> None:
        """Add a support: (H, W) float32 image in [0, 1] and its (H, W) bool mask.

        ``committed``: the mask was committed by the segmenter (chain mode), not painted; its
        evidence then uses the intensity band of the nearest painted support, so a mask that
        leaked into other tissue cannot vouch for itself on the next slice.
        """

    def clear_supports(self) -> None:
        """Forget every support."""

    def predict(
        self,
        images01: Sequence[np.ndarray],
        *,
        slice_indices: Sequence[int] | None = None,
        label: int = 1,
        batch_size: int = 16,
    ) -> list[PromptSet]:
        """One PromptSet per (H, W) float32 [0, 1] query image, from the nearest support."""


@dataclass
class _Support:
    image01: np.ndarray  # (H, W) float32 in [0, 1]
    mask: np.ndarray  # (H, W) bool
    slice_index: int | None
    fg: np.ndarray  # (Nf, 2) (row, col)
    bg: np.ndarray  # (Np, 2) (row, col), ring order
    band: tuple[float, float]  # intensity band of the structure on this slice
    committed: bool = False  # a committed (chain) mask: its evidence uses a painted band


class _GeometricGenerator:
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
        self._supports: list[_Support] = []

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "n_bg": self.n_bg,
            "n_fg": self.n_fg,
            "r": self.r,
            "eps": self.eps,
            "grid_size": self.grid_size,
            "evidence": "intensity-band overlap with the nearest support (see generators.py)",
        }

    def clear_supports(self) -> None:
        self._supports.clear()

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
        self._supports.append(_Support(image01, mask, slice_index, fg, bg, band, committed))

    def ring(self, mask: np.ndarray) -> np.ndarray:
        """The (Np, 2) ordered ring of `mask` (H, W), drawn at the model grid, in slice pixels."""
        grid_mask = geometry.resize_mask_to_grid(mask, self.grid_size)
        if not grid_mask.any():  # a structure thinner than one grid pixel
            grid_mask = geometry.resize_to_grid(mask.astype(np.float32), self.grid_size) > 0
        pts = geometry.ring_points(grid_mask, self.n_bg, r=self.r, eps=self.eps)
        return np.asarray(geometry.grid_to_slice(pts, mask.shape, self.grid_size), np.float64)

    def nearest(self, slice_index: int | None) -> _Support:
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
        return min(known, key=lambda s: (abs(s.slice_index - slice_index), s.slice_index))

    def evidence(self, support: _Support, image01: np.ndarray) -> float:
        """Fraction of the support footprint whose query intensity is in the structure's band."""
        if image01.shape != support.mask.shape:
            raise ValueError(
                f"{self.name}: query slice shape {image01.shape} differs from the support's "
                f"{support.mask.shape}"
            )
        return band_overlap(image01, support.mask, reference_band(self._supports, support))

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
            out.append(
                PromptSet(
                    fg=support.fg.copy(),
                    bg=support.bg.copy(),
                    label=label,
                    slice_index=z,
                    origin=self.origin,
                    evidence=self.evidence(support, image),
                    meta={"support_slice": support.slice_index},
                )
            )
        return out


class MaskRingGenerator(_GeometricGenerator):
    """Baseline: ring + fg points re-drawn from the nearest support or committed mask.

    Args (keyword-only): n_bg ring points Np, n_fg foreground points Nf, r and eps of the ring
    band (pixels at the model grid), grid_size S of the grid the ring is drawn on, tolerance
    added to the structure's intensity band for the evidence score.
    """

    name = "mask-ring"
    origin = "mask-ring"


class CopyGenerator(_GeometricGenerator):
    """Benchmark floor: the nearest support slice's points, unchanged (origin "copy").

    Points are those `MaskRingGenerator` draws on the support itself; the difference is only in
    use: the copy baseline is fed the painted supports alone, never committed slices.
    """

    name = "copy"
    origin = "copy"


class FobGenerator:
    """The FoB model as a `PromptGenerator` (a thin wrapper over `FobPredictor`)."""

    name = "fob"

    def __init__(self, *, predictor: Any, checkpoint: str | None = None) -> None:
        self.predictor = predictor
        self.checkpoint = checkpoint

    def describe(self) -> dict[str, Any]:
        model = getattr(self.predictor, "model", None)
        config = getattr(model, "config", None)
        out: dict[str, Any] = {"kind": "fob", "checkpoint": self.checkpoint}
        if config is not None and hasattr(config, "to_dict"):
            out["config"] = config.to_dict()
        prior = getattr(self.predictor, "location_prior", None)
        out["location_prior"] = None if prior is None else list(prior)
        out["inward_prior"] = getattr(self.predictor, "inward_prior", None)
        out["fg_relative"] = getattr(self.predictor, "fg_relative", None)
        out["band_exclusion"] = getattr(self.predictor, "band_exclusion", None)
        out["fine_ring"] = getattr(self.predictor, "fine_ring", None)
        out["fg_core"] = getattr(self.predictor, "fg_core", None)
        out["device"] = str(getattr(self.predictor, "device", "unknown"))
        return out

    def set_support(
        self,
        image01: np.ndarray,
        mask: np.ndarray,
        *,
        slice_index: int | None = None,
        committed: bool = False,
    ) -> None:
        self.predictor.set_support(image01, mask, slice_index=slice_index, committed=committed)

    def clear_supports(self) -> None:
        self.predictor.clear_supports()

    def predict(
        self,
        images01: Sequence[np.ndarray],
        *,
        slice_indices: Sequence[int] | None = None,
        label: int = 1,
        batch_size: int = 16,
    ) -> list[PromptSet]:
        return self.predictor.predict(
            list(images01), slice_indices=slice_indices, label=label, batch_size=batch_size
        )


def make_generator(
    name: str,
    *,
    checkpoint: str | None = "default",
    device: str = "auto",
    model: Any = None,
    paper_inference: bool = False,
) -> PromptGenerator:
    """Build a generator by name: "fob", "mask-ring" or "copy".

    For "fob", `model` (a `Fob` module) wins over `checkpoint`; `checkpoint` "default" is the
    shipped model, and a missing file raises FileNotFoundError saying where it was looked for.
    ``paper_inference`` turns off this project's in-volume additions (location prior, inward
    penalty, band exclusion, fine ring, relative foreground threshold, support core;
    docs/method.md) and predicts as the paper does.
    """
    if name == "mask-ring":
        return MaskRingGenerator()
    if name == "copy":
        return CopyGenerator()
    if name == "fob":
        from napari_fob.prompting.predictor import FobPredictor, load_predictor

        options = {}
        if paper_inference:
            options = {
                "location_prior": None,
                "inward_prior": None,
                "fg_relative": None,
                "band_exclusion": None,
                "fine_ring": False,
                "fg_core": None,
            }
        if model is not None:
            predictor = FobPredictor(model, device=device, **options)
            return FobGenerator(predictor=predictor, checkpoint=None)
        if checkpoint is None:
            raise ValueError("fob prompts need a checkpoint (a path or 'default') or a model")
        predictor = load_predictor(checkpoint, device=device, **options)
        return FobGenerator(predictor=predictor, checkpoint=str(checkpoint))
    raise ValueError(f"prompt generator {name!r}: expected one of {GENERATORS}")
