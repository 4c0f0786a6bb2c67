"""Episode augmentation: gamma, random affine and elastic deformation of an (image, mask) pair,
and an episode-level intensity look (inversion, a CT-like window, bias field, noise).

Numpy / scipy only (no torch): augmentation runs in DataLoader workers on (S, S) slices at the
model grid. Every draw comes from the `numpy.random.Generator` passed in, so an episode seeded
identically is augmented identically. Affine and elastic are composed into one coordinate map and
resampled once (linear for the image, nearest for the mask), so the mask stays aligned with the
image exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transforms (all at the model grid)."""

    enabled: bool = True
    gamma: tuple[float, float] = (0.5, 1.5)  # image ** gamma, gamma drawn log-uniformly
    rotate_deg: float = 15.0  # rotation in [-x, x] degrees
    scale: tuple[float, float] = (0.9, 1.1)  # isotropic zoom
    shear: float = 0.05  # shear factor in [-x, x]
    translate: float = 0.05  # shift in [-x, x] of the grid size, per axis
    elastic_alpha: float = 0.03  # displacement amplitude, fraction of the grid size
    elastic_sigma: float = 0.08  # smoothness of the displacement, fraction of the grid size
    p_affine: float = 0.8  # probability of the affine part
    p_elastic: float = 0.5  # probability of the elastic part
    # Episode-level intensity (`intensity_pair`), one draw for support and query (one scan has
    # one look) except the noise; all off by default, so older recipes draw as they did.
    p_invert: float = 0.0  # probability of 1 - image (the whole frame: background turns bright)
    p_window: float = 0.0  # probability of a random sub-window of [0, 1] stretched to [0, 1]
    bias: float = 0.0  # up to this amplitude b of a smooth multiplicative field exp(b f)
    noise: float = 0.0  # Gaussian noise of a std drawn up to this, per slice

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> AugmentConfig:
        data = dict(data or {})
        for key in ("gamma", "scale"):
            if key in data:
                data[key] = tuple(float(v) for v in data[key])
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"augment config: unknown keys {sorted(unknown)}")
        return cls(**data)


def _affine_matrix(rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """2x2 matrix mapping output offsets to input offsets (rotation, zoom, shear)."""
    theta = np.deg2rad(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
    zoom = rng.uniform(*cfg.scale)
    shear = rng.uniform(-cfg.shear, cfg.shear)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return rot @ np.array([[1.0, shear], [0.0, 1.0]]) / zoom


def sample_coordinates(rng: np.random.Generator, size: int, cfg: AugmentConfig) -> np.ndarray:
    """Input coordinates (2, S, S) (row, col) to sample for each output pixel."""
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    grid = np.stack([rows, cols]).astype(np.float64)  # (2, S, S)
    centre = (size - 1) / 2.0
    if rng.random() < cfg.p_affine:
        mat = _affine_matrix(rng, cfg)
        shift = rng.uniform(-cfg.translate, cfg.translate, size=2) * size
        offsets = (grid - centre).reshape(2, -1)
        grid = (mat @ offsets).reshape(2, size, size) + centre + shift[:, None, None]
    if rng.random() < cfg.p_elastic and cfg.elastic_alpha > 0:
        noise = rng.uniform(-1.0, 1.0, size=(2, size, size))
        sigma = max(cfg.elastic_sigma * size, 1.0)
        field = np.stack([ndi.gaussian_filter(n, sigma) for n in noise])
        peak = np.abs(field).max() or 1.0
        grid = grid + field / peak * cfg.elastic_alpha * size
    return grid


def augment_pair(
    image: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    coords: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Augment one slice and its mask with one random draw.

    Args:
        image: (S, S) float32 in [0, 1].
        mask: (S, S) bool.
        rng: the episode's generator (consumed).
        cfg: transform ranges.
        coords: (2, S, S) sampling coordinates from `sample_coordinates` to use instead of a
            new draw (one geometric transform shared by two slices); gamma is still drawn.

    Returns:
        (image (S, S) float32 in [0, 1], mask (S, S) bool).
    """
    if image.shape != mask.shape or image.ndim != 2:
        raise ValueError(f"augment_pair: image {image.shape} and mask {mask.shape} must be (S, S)")
    if not cfg.enabled:
        return image.astype(np.float32), mask.astype(bool)
    lo, hi = np.log(cfg.gamma[0]), np.log(cfg.gamma[1])
    gamma = float(np.exp(rng.uniform(lo, hi)))
    out = np.power(np.clip(image, 0.0, 1.0), gamma)
    if image.shape[0] != image.shape[1]:
        raise ValueError(f"augment_pair: expected a square slice, got {image.shape}")
    if coords is None:
        coords = sample_coordinates(rng, image.shape[0], cfg)
    elif coords.shape != (2, *image.shape):
        raise ValueError(f"augment_pair: coords {coords.shape} must be (2, {image.shape})")
    out = ndi.map_coordinates(out, coords, order=1, mode="constant", cval=0.0)
    warped = ndi.map_coordinates(mask.astype(np.float32), coords, order=0, mode="constant")
    return np.clip(out, 0.0, 1.0).astype(np.float32), warped > 0.5


def intensity_pair(
    support: np.ndarray, query: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Give an episode's two slices one random intensity look, so the network cannot learn the
    contrast of the few scans it trains on.

    One draw of inversion, window and bias field serves both slices (they come from one scan);
    noise is drawn per slice. Nothing is drawn when every probability and amplitude is 0, so an
    episode of an older recipe is the same as before.

    Args:
        support, query: (S, S) float32 in [0, 1].

    Returns:
        the two slices, float32 in [0, 1].
    """
    if not cfg.enabled or not (cfg.p_invert or cfg.p_window or cfg.bias or cfg.noise):
        return support, query
    invert = rng.random() < cfg.p_invert
    window = None
    if rng.random() < cfg.p_window:
        low = rng.uniform(0.0, 0.4)
        window = (low, rng.uniform(low + 0.2, 1.0))
    field = 1.0
    if cfg.bias > 0:
        coarse = rng.uniform(-1.0, 1.0, size=(4, 4))
        size = support.shape[0]
        smooth = ndi.zoom(coarse, size / 4.0, order=3, mode="nearest")[:size, :size]
        field = np.exp(rng.uniform(0.0, cfg.bias) * smooth)
    noise_std = [rng.uniform(0.0, cfg.noise) if cfg.noise > 0 else 0.0 for _ in range(2)]
    out = []
    for image, std in zip((support, query), noise_std, strict=True):
        x = image.astype(np.float32)
        if window is not None:
            x = (x - window[0]) / (window[1] - window[0])
        x = np.clip(x, 0.0, 1.0)
        if invert:
            x = 1.0 - x
        x = x * field
        if std > 0:
            x = x + rng.normal(0.0, std, size=x.shape)
        out.append(np.clip(x, 0.0, 1.0).astype(np.float32))
    return out[0], out[1]
