"""`FobPredictor`: support slices in (encoded once, cached), one `PromptSet` per query slice out.

Imports numpy, `geometry`, `in_volume`, `intensity` and `prompts` at module level; torch and the
model only inside functions, so importing this module is cheap. Must not import napari or Qt.
Slices are ``(H, W)`` float32 in [0, 1] of any size; they are resized to the model's ``S x S``
grid (plain resize, `geometry.resize_to_grid`) and points are mapped back to each slice's own
pixels.

The choices of this project beyond the paper (location prior and inward penalty, band
exclusion, fine ring, foreground threshold and support core, evidence) are described, with
their defaults and numpy geometry, in `in_volume`, and with how they were chosen in
docs/method.md, "Inference in one volume".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_fob import geometry
from napari_fob.core.intensity import (
    check_unit_slice,
    intensity_band,
    reference_support,
)
from napari_fob.core.prompts import PromptSet, nearest_slice
from napari_fob.devices import exact_inference
from napari_fob.prompting.confidence import calibrated
from napari_fob.prompting.in_volume import (
    DEFAULT_BAND_EXCLUSION,
    DEFAULT_FG_CORE,
    DEFAULT_FG_RELATIVE,
    DEFAULT_INWARD_PRIOR,
    DEFAULT_LOCATION_PRIOR,
    DEFAULT_PRIOR_SOURCE,
    DEFAULT_REGISTRATION_PRIOR,
    PRIOR_SOURCES,
    Footprint,
    check_addition,
    excluded_region,
    footprint,
)
from napari_fob.prompting.official_compat import OfficialPredictor
from napari_fob.prompting.outputs import prompt_set, query_features
from napari_fob.prompting.query_batches import by_support, checked_queries, nearest_support
from napari_fob.prompting.registration import MaskTracker
from napari_fob.prompting.supports import ENCODED_SUPPORTS_KEPT, EncodedSupport, support_key

if TYPE_CHECKING:
    from napari_fob.model.fob import Fob


class FobPredictor:
    """FoB prompts for query slices, given one or more support slices of the same structure.

    ``set_support`` encodes a support (image + mask) once and caches its features and
    prototypes; ``predict`` runs the rest of the model on batches of query slices, each against
    the support nearest to it in slice index. Everything runs under ``torch.inference_mode()``,
    in full float32 on CUDA too (`devices.exact_inference`). ``prior_source`` says where the
    in-volume additions take a query's footprint from: ``"support"``, the nearest support's
    own; ``"registration"``, its mask carried to the query by `registration.MaskTracker`
    through the slices the predictor has been shown (`in_volume`).
    """

    def __init__(
        self,
        model: Fob,
        *,
        device: str = "auto",
        location_prior: tuple[float, float] | str | None = "default",
        fg_relative: float | None = DEFAULT_FG_RELATIVE,
        inward_prior: float | None = DEFAULT_INWARD_PRIOR,
        band_exclusion: float | None = DEFAULT_BAND_EXCLUSION,
        fine_ring: bool | str = "default",
        fg_core: float | None = DEFAULT_FG_CORE,
        prior_source: str = DEFAULT_PRIOR_SOURCE,
    ) -> None:
        import torch

        from napari_fob.devices import resolve_device

        if model.config.inference != "product":  # the authors' weights: load_predictor
            raise ValueError(f"FobPredictor: {model.config.name!r} needs OfficialPredictor")
        if prior_source not in PRIOR_SOURCES:
            raise ValueError(f"prior_source: expected one of {PRIOR_SOURCES}, got {prior_source!r}")
        if location_prior == "default":  # each source has its own tuned width
            registration = prior_source == "registration"
            location_prior = DEFAULT_REGISTRATION_PRIOR if registration else DEFAULT_LOCATION_PRIOR
        elif isinstance(location_prior, str):
            if location_prior != "model":
                raise ValueError(
                    "location_prior: expected 'default', 'model', None or (a, b), got "
                    f"{location_prior!r}"
                )
            location_prior = model.config.location_prior or DEFAULT_LOCATION_PRIOR  # training's
        from napari_fob.model.config import check_location_prior

        self.location_prior = check_location_prior(location_prior, "location_prior")
        self.fg_relative = check_addition("fg_relative", fg_relative)
        self.inward_prior = check_addition("inward_prior", inward_prior)
        self.band_exclusion = check_addition("band_exclusion", band_exclusion)
        if fine_ring == "default":  # each source has its own (docs/method.md)
            fine_ring = True if prior_source == "registration" else "committed"
        if fine_ring not in (True, False, "committed"):
            raise ValueError(f"fine_ring: expected True, False or 'committed', got {fine_ring!r}")
        self.fine_ring = fine_ring
        self.fg_core = check_addition("fg_core", fg_core)
        self.prior_source = prior_source
        self._tracker = MaskTracker() if prior_source == "registration" else None
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.model = model.to(self.device).eval()
        self._supports: list[EncodedSupport] = []
        self._encoded: OrderedDict[bytes, EncodedSupport] = OrderedDict()

    def prior_sigma(self, support_index: int | None, query_index: int | None) -> float:
        """Width in grid pixels of the location prior for one query (inf: no prior)."""
        if self.location_prior is None or support_index is None or query_index is None:
            return float("inf")
        import torch

        from napari_fob.model.fob import prior_widths

        dz = torch.tensor([float(int(query_index) - int(support_index))])
        return float(prior_widths(self.location_prior, dz, self.grid_size)[0])

    @property
    def grid_size(self) -> int:
        """S, the model grid every slice is resized to."""
        return self.model.config.grid_size

    @property
    def support_indices(self) -> list[int | None]:
        """Slice indices of the supports set, in the order they were set."""
        return [s.slice_index for s in self._supports]

    def excluded_region(
        self, support: EncodedSupport, query: np.ndarray, foot: Footprint | None = None
    ) -> np.ndarray:
        """(S, S) bool: where the band exclusion penalises ring points on one query slice at
        the model grid (`intensity.structure_region` of the query's footprint `foot`, by
        default the support's, grown by the margin)."""
        band = reference_support(self._supports, support).core_band
        mask = (foot or support.footprint).mask
        return excluded_region(query, mask, band, self.model.config.ring_r)

    def query_footprint(self, support: EncodedSupport, z: int | None) -> Footprint:
        """The footprint the additions use for a query on slice `z`: the support's, or with
        ``prior_source="registration"`` the mask of the nearest *painted* support carried to
        `z` (a committed support gives the network its prototypes, but its mask, the
        segmenter's, would carry its errors on from step to step of a chain). The support's
        own footprint where that vanishes at the grid, where a slice index is unknown, or
        where no painted support can be walked to `z` (another volume, another slice size)."""
        if self._tracker is None or z is None:
            return support.footprint
        painted = [s for s in self._supports if not s.committed and s.slice_index is not None]
        source = nearest_slice(painted, z, key=lambda s: s.slice_index) if painted else support
        zs = source.slice_index
        if zs is None or not self._tracker.knows(zs, z):
            return support.footprint
        if z == zs:
            return source.footprint
        cfg = self.model.config
        foot = footprint(
            self._tracker.mask_at(zs, z), self.grid_size, cfg.n_bg,
            ring_r=cfg.ring_r, ring_eps=cfg.ring_eps, ring_kernel=cfg.ring_kernel,
            with_depth=source.footprint.depth is not None,
        )  # fmt: skip
        return support.footprint if foot is None else foot

    def point_log_prior(
        self,
        support: EncodedSupport,
        query_indices: Sequence[int | None],
        regions: np.ndarray | None = None,
        feet: Sequence[Footprint] | None = None,
    ) -> Any:
        """The log-prior on each ring point's position for queries at these slice indices
        against `support`, (B, Np, S, S) or (B, 1, S, S) when it is the same for every point:
        the location prior around each query's footprint (`feet`, by default the support's)
        and its inward penalty, plus the band exclusion when the queries' excluded `regions`
        ((B, S, S) bool, `excluded_region`) are given; None when nothing applies."""
        import torch

        from napari_fob.model.fob import location_log_prior

        prior = None
        feet = list(feet) if feet is not None else [support.footprint] * len(query_indices)
        sig = [self.prior_sigma(support.slice_index, z) for z in query_indices]
        if any(np.isfinite(sig)):
            sigma = torch.tensor(sig, device=self.device)
            rings = np.stack([f.ring for f in feet]).astype(np.float32)
            prior = location_log_prior(
                torch.from_numpy(rings).to(self.device), sigma, self.grid_size
            )
            if self.inward_prior is not None:
                width = (self.inward_prior * sigma).view(-1, 1, 1, 1)
                depth = torch.from_numpy(np.stack([f.inward for f in feet])).to(self.device)
                prior = prior - depth[:, None] ** 2 / (2.0 * width**2)
        if self.band_exclusion is not None and regions is not None:
            penalty = torch.from_numpy(regions.astype(np.float32)).to(self.device)[:, None]
            penalty = -self.band_exclusion * penalty
            prior = penalty if prior is None else prior + penalty
        return prior

    def set_support(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        *,
        slice_index: int | None = None,
        committed: bool = False,
    ) -> None:
        """Add a support: (H, W) float32 image in [0, 1] and its (H, W) bool mask.

        A support with the same ``slice_index`` replaces the earlier one. The encoding is
        cached by the support's content (`support_key`), so the session can hand the same
        supports over before every prediction without the model encoding them again.
        ``committed``: the mask was committed in chain mode, not painted; its evidence uses the
        intensity band of the nearest painted support (`intensity.reference_support`).

        Raises:
            ValueError: bad shapes or values, an empty mask, or a mask that vanishes at the grid.
        """
        img = check_unit_slice(image, "support image")
        m = np.asarray(mask)
        if m.shape != img.shape:
            raise ValueError(f"support mask: shape {m.shape} differs from the image's {img.shape}")
        m = m.astype(bool)
        if not m.any():
            raise ValueError("support mask is empty: paint the structure on the support slice")
        idx = None if slice_index is None else int(slice_index)
        key = support_key(img, m, committed)
        encoded = self._encoded.pop(key, None) or self._encode(img, m, committed)  # may refuse
        self._supports = [sup for sup in self._supports if sup.slice_index != idx]
        self._encoded[key] = encoded  # most recent last
        while len(self._encoded) > ENCODED_SUPPORTS_KEPT:
            self._encoded.pop(next(iter(self._encoded)))
        self._supports.append(replace(encoded, slice_index=idx))
        if self._tracker is not None and idx is not None:
            if committed:  # walks start from painted supports only (`query_footprint`)
                self._tracker.remember(idx, img)
            else:
                self._tracker.set_support(idx, img, m)

    def _encode(self, img: np.ndarray, m: np.ndarray, committed: bool) -> EncodedSupport:
        import torch

        cfg, s = self.model.config, self.grid_size
        foot = footprint(
            m, s, cfg.n_bg, ring_r=cfg.ring_r, ring_eps=cfg.ring_eps, ring_kernel=cfg.ring_kernel,
            # painted supports only: a committed mask's errors would be carried on
            with_depth=self.fg_core is not None and not committed,
        )  # fmt: skip
        if foot is None:
            raise ValueError(
                f"support mask ({int(m.sum())} px) vanishes when resized to the {s}x{s} model "
                "grid: the structure is too small on this slice"
            )
        dev = self.device
        img_g = geometry.resize_to_grid(img, s)
        img_t = torch.from_numpy(img_g)[None, None].to(dev)
        mask_t = torch.from_numpy(foot.mask.astype(np.float32))[None].to(dev)
        ring_t = torch.from_numpy(foot.ring.astype(np.float32))[None].to(dev)
        with exact_inference():
            state = self.model.support_prototypes(self.model.encode(img_t), mask_t, ring_t)
        return EncodedSupport(
            slice_index=None,
            state=state,
            footprint=foot,
            band=intensity_band(img_g, foot.mask),
            core_band=intensity_band(img_g, foot.mask, tolerance=0.0),
            committed=bool(committed),
            image=img_g,
        )

    def show(self, images: Sequence[np.ndarray], slice_indices: Sequence[int]) -> None:
        """Slices a registration prior may walk through, (H, W) in [0, 1], without prompting
        them (every `predict` query is shown too); nothing happens with the support prior."""
        if self._tracker is not None:
            for z, image in zip(slice_indices, images, strict=True):
                self._tracker.remember(int(z), check_unit_slice(image, f"slice {z}"))

    def clear_supports(self) -> None:
        """Forget every support (and the slices a registration prior walks through)."""
        self._supports = []
        if self._tracker is not None:
            self._tracker.clear()

    def _support_for(self, slice_index: int | None) -> EncodedSupport:
        return nearest_support(self._supports, slice_index)

    def predict(
        self,
        images: Sequence[np.ndarray],
        *,
        slice_indices: Sequence[int] | None = None,
        label: int = 1,
        batch_size: int = 16,
    ) -> list[PromptSet]:
        """One `PromptSet` per query slice, in the order given.

        Args:
            images: query slices, each (H_i, W_i) float32 in [0, 1] (sizes may differ).
            slice_indices: each query's slice index (chooses the nearest support, and is stored
                in the PromptSet); optional when a single support is set.
            label: the structure's label value written into each PromptSet.
            batch_size: queries per forward pass.
        Returns:
            PromptSets with ``bg`` (Np, 2) in ring order, ``fg`` (<= Nf, 2), both (row, col) in
            the slice's pixels; ``bg_scores`` (confidence of each ring point in [0, 1], see
            `model.fob.peak_confidence`),
            ``fg_scores`` (C at each point), ``evidence`` (the calibrated confidence of
            `napari_fob.prompting.confidence`, measured on the query's footprint, the
            support's or the registered one, see `in_volume`),
            ``origin="fob"``.
        Raises:
            RuntimeError: no support is set yet.
            ValueError: bad images, indices or batch size.
        """
        import torch

        args = (self._supports, images, slice_indices, batch_size)
        imgs, indices = checked_queries("FobPredictor", *args)
        self.show(
            [im for z, im in zip(indices, imgs) if z is not None],
            [z for z in indices if z is not None],
        )
        results: list[PromptSet | None] = [None] * len(imgs)
        s = self.grid_size
        with exact_inference():
            for sup, members in by_support(indices, self._support_for):
                for start in range(0, len(members), batch_size):
                    chunk = members[start : start + batch_size]
                    batch = np.stack([geometry.resize_to_grid(imgs[i], s) for i in chunk])
                    x = torch.from_numpy(batch)[:, None].to(self.device)  # (b, 1, S, S)
                    feet = [self.query_footprint(sup, indices[i]) for i in chunk]
                    regions = None
                    if self.band_exclusion is not None or self.fg_core is not None:
                        regions = np.stack(
                            [self.excluded_region(sup, b, f) for b, f in zip(batch, feet)]
                        )
                    zs = [indices[i] for i in chunk]
                    prior = self.point_log_prior(sup, zs, regions, feet)
                    out = self.model.predict_from_support(
                        sup.state, self.model.encode(x), point_log_prior=prior
                    )
                    for j, i in enumerate(chunk):
                        feats = query_features(
                            self._supports, self._tracker, sup, indices[i], batch[j], feet[j]
                        )
                        region = None if regions is None else regions[j]
                        results[i] = prompt_set(
                            self, out, j, imgs[i].shape, slice_index=indices[i], label=label,
                            support=sup, evidence=calibrated(feats), region=region,
                            foot=feet[j], features=feats,
                        )  # fmt: skip
        return results  # type: ignore[return-value]


def load_predictor(
    checkpoint: str = "default", *, device: str = "auto", **options: Any
) -> FobPredictor:
    """A `FobPredictor` for a checkpoint path, or ``"default"`` for the packaged model;
    `options` are `FobPredictor`'s keyword arguments (its in-volume additions); a converted
    checkpoint of the authors' (``inference="official"``) gets an `OfficialPredictor`.

    Raises:
        FileNotFoundError: the checkpoint is missing (the message says where it was looked for
            and how to get one).
    """
    from napari_fob.devices import resolve_device
    from napari_fob.model.checkpoint import load_fob

    dev = resolve_device(device)
    model = load_fob(checkpoint, device=dev)
    if model.config.inference == "official":  # their behaviour; options do not apply
        return OfficialPredictor(model, device=dev)
    return FobPredictor(model, device=dev, **options)
