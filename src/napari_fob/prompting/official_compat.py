"""The FoB authors' inference behaviour, for their released weights (checkpoints whose config
has ``inference="official"``, written by ``fob weights convert``).

numpy at module level; torch and the model inside functions. Their weights were trained with
their pipeline's quirks, so this mode keeps them on purpose (read from github primebo1/FoB_SAM,
``FewShotSeg.forward`` and helpers; no code copied). docs/method.md, "The authors'
checkpoints", lists each difference from this project's default inference:

- slices are z-scored (their test code z-scores the whole volume; here the support slice's
  mean and standard deviation, shared by the queries it serves) and resized to 256 x 256 with
  plain bilinear interpolation (their ``transforms.Resize`` on tensors, torchvision 0.11: no
  anti-aliasing), the support mask too, so its border is fractional;
- support ring: `official_contour` (open contour from OpenCV's start pixel, ordered by angle
  around the leftmost point); prototypes are weighted means over the features upsampled to
  256, with Gaussians (sigma 4) cut at 3 sigma and centred on whole pixels;
- background points: per-channel heatmap argmax (a channel whose maximum is <= 0 gives (0, 0));
  SPR's query prototypes are taken at the coarse points re-sorted by angle while SPR moves
  them in channel order (their code does so), and SPR samples features at pixel coordinates
  where grid_sample expects [-1, 1] (`official.OfficialSPR`); the refined points are returned
  unrounded;
- foreground points: C upsampled to 256 (align_corners=True), the pixels above 0.96 in raster
  order, Nf of them at ``linspace`` indices (all when fewer; the argmax when none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_fob import geometry
from napari_fob.core.intensity import check_unit_slice
from napari_fob.core.prompts import PromptSet
from napari_fob.devices import exact_inference
from napari_fob.model.official_weights import OFFICIAL_CHECKPOINTS
from napari_fob.prompting.official_contour import order_from_leftmost, support_ring
from napari_fob.prompting.query_batches import by_support, checked_queries, nearest_support

if TYPE_CHECKING:
    import torch

    from napari_fob.model.official import OfficialFob

#: The names of the authors' converted checkpoints (`--fob-checkpoint fob-abd-ct`), for the
#: annotator's checkpoint field (widgets do not import `model`).
CHECKPOINT_NAMES = tuple(OFFICIAL_CHECKPOINTS)
#: Their Gaussian heatmaps are cut off at this many sigma.
GAUSS_CUTOFF = 3
#: Queries per forward pass at most (one-head attention over 64 x 64 tokens: 64 MB per query).
MAX_BATCH = 4


def zscore(image: np.ndarray, stats: tuple[float, float]) -> np.ndarray:
    """(image - mean) / std as float32 (std floored at 1e-6: a flat slice stays finite)."""
    mean, std = stats
    return ((np.asarray(image, dtype=np.float64) - mean) / max(std, 1e-6)).astype(np.float32)


def resize_bilinear(array: np.ndarray, size: int) -> np.ndarray:
    """(H, W) -> (size, size) float32, bilinear, align_corners=False, no anti-aliasing."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    if t.shape[-2:] == (size, size):
        return t[0, 0].numpy().copy()
    out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    return out[0, 0].numpy()


def gaussian_maps(points_xy: np.ndarray, size: int, sigma: int = 4) -> np.ndarray:
    """Their truncated heatmaps: (N, 2) (x, y) -> (N, size, size) float32.

    A (6 sigma + 1)^2 window of ``exp(-d^2 / (2 sigma^2))`` centred on ``int(p + 0.5)``,
    clipped to the image; a point whose centre is outside the image gives an all-zero map.
    """
    half = GAUSS_CUTOFF * sigma
    ax = np.arange(0, 2 * half + 1, 1, np.float32)
    window = np.exp(-((ax[None, :] - half) ** 2 + (ax[:, None] - half) ** 2) / (2 * sigma**2))
    maps = np.zeros((len(points_xy), size, size), dtype=np.float32)
    for k, (x, y) in enumerate(points_xy):
        cx, cy = int(x + 0.5), int(y + 0.5)
        if cx < 0 or cy < 0 or cx >= size or cy >= size:
            continue
        x0, y0 = cx - half, cy - half
        xs, ys = (
            slice(max(0, x0), min(size, cx + half + 1)),
            slice(max(0, y0), min(size, cy + half + 1)),
        )
        maps[k, ys, xs] = window[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    return maps


def argmax_xy(maps: torch.Tensor) -> np.ndarray:
    """(B, N, S, S) heatmaps -> (B, N, 2) float32 (x, y) of each channel's first maximum;
    (0, 0) where the maximum is <= 0 (their ``get_max_preds``)."""
    flat = maps.detach().float().flatten(2).cpu().numpy()
    idx, peak = flat.argmax(axis=2), flat.max(axis=2)
    w = maps.shape[-1]
    xy = np.stack([idx % w, idx // w], axis=-1).astype(np.float32)
    return xy * (peak > 0)[..., None]


def foreground_points(prob: torch.Tensor, n: int, threshold: float) -> np.ndarray:
    """(S, S) probability at the grid -> (k, 2) int (x, y): the pixels above `threshold` in
    raster order, `n` of them at ``linspace(0, count - 1, n)`` indices (all if <= n), or the
    first maximum when none is above it."""
    import torch

    rc = torch.nonzero(prob > threshold).cpu().numpy()  # (K, 2) (row, col), raster order
    if len(rc) == 0:
        r, c = divmod(int(torch.argmax(prob)), prob.shape[-1])
        rc = np.array([[r, c]])
    elif len(rc) > n:
        rc = rc[np.linspace(0, len(rc) - 1, n).astype(int)]
    return rc[:, ::-1].copy()


@dataclass(frozen=True)
class OfficialSupport:
    """An encoded support: features (1, C, h, w), background prototypes (1, Np, C) in ring
    order, foreground prototype (1, C), ring (Np, 2) (x, y) grid pixels in that order, the
    z-score statistics its queries share, and its slice index."""

    features: Any
    bg_prototypes: Any
    fg_prototype: Any
    ring_xy: np.ndarray
    stats: tuple[float, float]
    slice_index: int | None = None


@dataclass
class OfficialOutput:
    """One batch of queries: heatmaps (B, Np, S, S) and proposals (B, Np, h, w) tensors;
    coarse and refined points (B, Np, 2) float32 (x, y) grid pixels in channel order; C at the
    grid (B, S, S); the thresholds t (B,); foreground points, one (k, 2) int (x, y) array per
    query."""

    heatmaps: Any
    proposals: Any
    coarse_xy: np.ndarray
    refined_xy: np.ndarray
    fg_prob: Any
    threshold: Any
    fg_xy: list[np.ndarray]


def encode_support(
    model: OfficialFob, image_g: np.ndarray, mask_g: np.ndarray, stats: tuple[float, float]
) -> OfficialSupport:
    """A support from its z-scored slice and float mask at the grid, both (S, S)."""
    import torch

    from napari_fob.model.official import upsampled_average

    dev = next(model.parameters()).device
    n, s = model.config.n_bg, model.grid_size
    ring = support_ring(mask_g, n)
    ring = ring[order_from_leftmost(ring)]
    feats, _ = model.encode(torch.from_numpy(image_g)[None, None].to(dev))
    maps = torch.from_numpy(gaussian_maps(ring, s, int(model.config.sigma)))[None].to(dev)
    weights = torch.from_numpy(np.ascontiguousarray(mask_g, dtype=np.float32))[None, None]
    return OfficialSupport(
        features=feats,
        bg_prototypes=upsampled_average(feats, maps),
        fg_prototype=upsampled_average(feats, weights.to(dev))[:, 0],
        ring_xy=ring,
        stats=stats,
    )


def predict_official(
    model: OfficialFob, support: OfficialSupport, images_g: np.ndarray
) -> OfficialOutput:
    """Their forward pass for (B, S, S) z-scored queries at the grid against one support."""
    import torch
    import torch.nn.functional as F

    from napari_fob.model.official import upsampled_average

    cfg, s = model.config, model.grid_size
    dev = support.features.device
    b = len(images_g)
    feats, t = model.encode(torch.from_numpy(np.ascontiguousarray(images_g))[:, None].to(dev))
    cos, prob = model.foreground(feats, support.fg_prototype.expand(b, -1), t)
    prob_g = F.interpolate(prob[:, None], size=(s, s), mode="bilinear", align_corners=True)[:, 0]
    bg = support.bg_prototypes.expand(b, -1, -1)
    phi, heat = model.heatmaps(feats, cos, bg)
    coarse = argmax_xy(heat)
    # their query prototypes: Gaussians at the coarse points re-sorted by angle
    maps = np.stack([gaussian_maps(c[order_from_leftmost(c)], s, int(cfg.sigma)) for c in coarse])
    queries = upsampled_average(feats, torch.from_numpy(maps).to(dev))
    refined = model.refine(queries, torch.from_numpy(coarse).to(dev), bg, feats)[-1]
    return OfficialOutput(
        heatmaps=heat,
        proposals=phi,
        coarse_xy=coarse,
        refined_xy=refined.detach().float().cpu().numpy(),
        fg_prob=prob_g,
        threshold=t,
        fg_xy=[foreground_points(p, cfg.n_fg, cfg.fg_threshold) for p in prob_g],
    )


def _grid_xy_to_slice(xy: np.ndarray, shape: tuple[int, int], size: int) -> np.ndarray:
    """(N, 2) (x, y) grid pixels -> (N, 2) (row, col) pixels of a slice of `shape`."""
    return geometry.grid_to_slice(np.asarray(xy, dtype=np.float64)[:, ::-1], shape, size)


class OfficialPredictor:
    """`FobPredictor`'s interface over `OfficialFob` in the authors' inference behaviour.

    Supports are encoded once; each query uses the nearest support in slice index and is
    z-scored with that support's statistics. None of this project's in-volume additions apply
    (location prior, band exclusion, fine ring...): the weights were not trained with them.
    """

    prior_source = "support"

    def __init__(self, model: OfficialFob, *, device: str | Any = "auto") -> None:
        import torch

        from napari_fob.devices import resolve_device

        if model.config.inference != "official":
            raise ValueError(
                f"OfficialPredictor: model config {model.config.name!r} is not for the "
                "authors' inference (FobPredictor runs it)"
            )
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.model = model.to(self.device).eval()
        self._supports: list[OfficialSupport] = []

    @property
    def grid_size(self) -> int:
        return self.model.grid_size

    @property
    def support_indices(self) -> list[int | None]:
        return [s.slice_index for s in self._supports]

    def set_support(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        *,
        slice_index: int | None = None,
        committed: bool = False,
    ) -> None:
        """Add a support, (H, W) image in [0, 1] and bool mask; one with the same slice index
        is replaced. ``committed`` is accepted for the interface and changes nothing."""

        img = check_unit_slice(image, "support image")
        m = np.asarray(mask)
        if m.shape != img.shape:
            raise ValueError(f"support mask: shape {m.shape} differs from the image's {img.shape}")
        if not m.astype(bool).any():
            raise ValueError("support mask is empty: paint the structure on the support slice")
        stats = (float(np.mean(img, dtype=np.float64)), float(np.std(img, dtype=np.float64)))
        s = self.grid_size
        img_g = resize_bilinear(zscore(img, stats), s)
        mask_g = resize_bilinear(m.astype(np.float32), s)
        with exact_inference():
            sup = encode_support(self.model, img_g, mask_g, stats)
        idx = None if slice_index is None else int(slice_index)
        self._supports = [x for x in self._supports if x.slice_index != idx]
        self._supports.append(replace(sup, slice_index=idx))

    def show(self, images: Sequence[np.ndarray], slice_indices: Sequence[int]) -> None:
        """Nothing to remember: this mode has no registration prior."""

    def clear_supports(self) -> None:
        self._supports = []

    def _support_for(self, z: int | None) -> OfficialSupport:
        return nearest_support(self._supports, z)

    def predict(
        self,
        images: Sequence[np.ndarray],
        *,
        slice_indices: Sequence[int] | None = None,
        label: int = 1,
        batch_size: int = 16,
    ) -> list[PromptSet]:
        """One `PromptSet` per query slice ((H_i, W_i) in [0, 1]), points (row, col) in its
        pixels: ``bg`` the Np refined points in channel (ring) order with the heatmap value at
        each coarse point as ``bg_scores``, ``fg`` the foreground points with C there as
        ``fg_scores``; ``meta["inference"] == "official"``."""

        args = (self._supports, images, slice_indices, batch_size)
        imgs, zs = checked_queries("OfficialPredictor", *args)
        s, step = self.grid_size, min(batch_size, MAX_BATCH)
        results: list[PromptSet | None] = [None] * len(imgs)
        with exact_inference():
            for sup, members in by_support(zs, self._support_for):
                for start in range(0, len(members), step):
                    chunk = members[start : start + step]
                    batch = np.stack(
                        [resize_bilinear(zscore(imgs[i], sup.stats), s) for i in chunk]
                    )
                    out = predict_official(self.model, sup, batch)
                    for j, i in enumerate(chunk):
                        results[i] = self._prompt_set(out, j, imgs[i].shape, zs[i], label)
        return results  # type: ignore[return-value]

    def _prompt_set(
        self, out: OfficialOutput, j: int, shape: tuple[int, int], z: int | None, label: int
    ) -> PromptSet:
        s = self.grid_size
        coarse = out.coarse_xy[j].astype(int)
        heat = out.heatmaps[j].float().cpu().numpy()
        bg_scores = np.clip(heat[np.arange(len(coarse)), coarse[:, 1], coarse[:, 0]], 0, 1)
        fg = out.fg_xy[j]
        prob = out.fg_prob[j].float().cpu().numpy()
        return PromptSet(
            fg=_grid_xy_to_slice(fg, shape, s),
            bg=_grid_xy_to_slice(out.refined_xy[j], shape, s),
            label=label,
            slice_index=z,
            origin="fob",
            fg_scores=prob[fg[:, 1], fg[:, 0]],
            bg_scores=bg_scores,
            meta={"inference": "official"},
        )


def ignored_options(
    generator: Any, *, paper_inference: bool, prior_source: str | None
) -> list[str]:
    """A notice when options of this project's inference were asked for with one of the
    authors' checkpoints, which always runs their own inference (the options do nothing)."""
    config = getattr(getattr(getattr(generator, "predictor", None), "model", None), "config", None)
    asked = [
        name
        for name, given in (("--paper-inference", paper_inference), ("--fob-prior", prior_source))
        if given
    ]
    if getattr(config, "inference", None) != "official" or not asked:
        return []
    return [
        f"{' and '.join(asked)} ignored: the authors' checkpoint runs their own inference "
        "(docs/method.md, the compatibility mode)"
    ]
