"""Prompt generators: one interface for FoB and for the baselines it is compared against.

A generator turns support masks (painted or committed slices) into a `PromptSet` for each query
slice. Four are provided (`GENERATORS`):

- ``fob``: the FoB model through `napari_fob.prompting.predictor.FobPredictor`, with this
  project's in-volume additions (`napari_fob.prompting.in_volume`); by default they take the
  query's footprint from the support mask carried to it by registration
  (``prior_source="registration"``), ``paper_inference`` turns them off.
- ``mask-ring``: the prompt-projection baseline (micro-sam's): the ring and the foreground
  points are re-drawn with `napari_fob.geometry` from the **nearest** support mask; the ring is
  computed at the model grid and mapped back to slice pixels.
- ``copy``: the nearest support's own points, unchanged (a benchmark floor).
- ``registration``: the nearest support's mask carried slice to slice by image registration
  (optical flow) and the ring and points re-drawn from the warped mask as mask-ring draws them
  (`napari_fob.prompting.registration`): the classical propagation baseline.

Evidence (``PromptSet.evidence``, what automatic extent compares with its threshold) is the
same **calibrated confidence** for every generator (`napari_fob.prompting.confidence`): an
estimate of the slice's Dice from its footprint measured against the support (the
intensity-band overlap with the structure's band on the nearest painted support,
`intensity.reference_band`, the footprint's intensity and boundary contrast) and from its
distance to the support. The footprint is the nearest support's mask for mask-ring and copy,
the warped mask for registration, and the query's footprint of the in-volume inference for FoB
(see `in_volume`, "Evidence"); the features are kept in ``meta["confidence_features"]``. FoB's
foreground map C is not used: its maximum is not calibrated across slices with the shipped
model (it is kept in ``meta["fg_map_max"]``).

The shared machinery of the mask-based generators lives in `napari_fob.prompting.geometric`.
Pure numpy here; torch is imported only when a ``fob`` generator is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from napari_fob.core.prompts import PromptSet
from napari_fob.prompting.geometric import GeometricGenerator

GENERATORS = ("fob", "mask-ring", "copy", "registration")


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

    # Optional (every built-in generator has it; the session calls it when present):
    # ``show(images01, slice_indices)`` gives a generator that walks through the volume
    # (registration, FoB with the registration prior) slices it may step through without
    # prompting them; the others ignore it.


class MaskRingGenerator(GeometricGenerator):
    """Baseline: ring + fg points re-drawn from the nearest support or committed mask.

    Args (keyword-only): n_bg ring points Np, n_fg foreground points Nf, r and eps of the ring
    band (pixels at the model grid), grid_size S of the grid the ring is drawn on, tolerance
    added to the structure's intensity band for the evidence score.
    """

    name = "mask-ring"
    origin = "mask-ring"


class CopyGenerator(GeometricGenerator):
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
        out["prior_source"] = getattr(self.predictor, "prior_source", "support")
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

    def show(self, images01: Sequence[np.ndarray], slice_indices: Sequence[int]) -> None:
        """Slices the registration prior may walk through (`FobPredictor.show`)."""
        self.predictor.show(list(images01), list(slice_indices))

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
    prior_source: str | None = None,
) -> PromptGenerator:
    """Build a generator by name: "fob", "mask-ring", "copy" or "registration".

    For "fob", `model` (a `Fob` module) wins over `checkpoint`; `checkpoint` "default" is the
    shipped model, and a missing file raises FileNotFoundError saying where it was looked for.
    ``paper_inference`` turns off this project's in-volume additions (location prior, inward
    penalty, band exclusion, fine ring, relative foreground threshold, support core;
    docs/method.md) and predicts as the paper does. ``prior_source``: where FoB's additions take
    a query's footprint from ("support" or "registration"; None: `DEFAULT_PRIOR_SOURCE`).
    """
    if name == "mask-ring":
        return MaskRingGenerator()
    if name == "copy":
        return CopyGenerator()
    if name == "registration":
        from napari_fob.prompting.registration import RegistrationGenerator

        return RegistrationGenerator()
    if name == "fob":
        from napari_fob.prompting.in_volume import DEFAULT_PRIOR_SOURCE, PRIOR_SOURCES
        from napari_fob.prompting.predictor import FobPredictor, load_predictor

        options: dict[str, Any] = {"prior_source": prior_source or DEFAULT_PRIOR_SOURCE}
        if prior_source is not None and prior_source not in PRIOR_SOURCES:
            raise ValueError(f"prior_source {prior_source!r}: expected one of {PRIOR_SOURCES}")
        if paper_inference and prior_source == "registration":
            raise ValueError(
                "paper inference has no location prior: a registration prior cannot be asked "
                "for with it"
            )
        if paper_inference:
            options = {
                "location_prior": None,
                "inward_prior": None,
                "fg_relative": None,
                "band_exclusion": None,
                "fine_ring": False,
                "fg_core": None,
                "prior_source": "support",
            }
        if model is not None:
            predictor = FobPredictor(model, device=device, **options)
            return FobGenerator(predictor=predictor, checkpoint=None)
        if checkpoint is None:
            raise ValueError("fob prompts need a checkpoint (a path or 'default') or a model")
        predictor = load_predictor(checkpoint, device=device, **options)
        return FobGenerator(predictor=predictor, checkpoint=str(checkpoint))
    raise ValueError(f"prompt generator {name!r}: expected one of {GENERATORS}")
