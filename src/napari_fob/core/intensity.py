"""Intensity windows: from raw CT/MR values to the model's float input and SAM's uint8 RGB.

Pure numpy (scipy inside `structure_region` only). A `Window` is always resolved to absolute
bounds (``low``, ``high``) before use, so the parameters recorded next to a result reproduce it
exactly, whatever preset produced them.

Non-finite voxels (NaN, +inf, -inf; `count_nonfinite` counts them) are handled explicitly:
windows (presets, percentiles, ``auto``'s CT test) are computed from the finite voxels only,
and `normalise` maps NaN to 0 (the window's low end, as if it were background), +inf to 1 and
-inf to 0, so the models never see a NaN. A volume without any finite voxel has no window
(ValueError). A support must not cover any (`session`); ``fob segment`` warns with the count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from napari_fob.core.prompts import nearest_slice

# CT presets as (centre, width) in Hounsfield units.
CT_PRESETS: dict[str, tuple[float, float]] = {
    "ct-soft-tissue": (40.0, 400.0),
    "ct-abdomen": (60.0, 400.0),
    "ct-liver": (80.0, 150.0),
    "ct-bone": (400.0, 1800.0),
    "ct-lung": (-600.0, 1500.0),
    "ct-brain": (40.0, 80.0),
}
# MR / generic presets as (low, high) percentiles of the volume's non-zero voxels.
PERCENTILE_PRESETS: dict[str, tuple[float, float]] = {
    "mr-percentile": (0.5, 99.5),
    "full-range": (0.0, 100.0),
}
PRESETS = tuple(CT_PRESETS) + tuple(PERCENTILE_PRESETS) + ("auto",)


@dataclass(frozen=True)
class Window:
    """Absolute intensity bounds mapped to [0, 1]; values outside are clipped.

    Attributes:
        low: raw value mapped to 0.
        high: raw value mapped to 1 (must be > low).
        source: how the bounds were chosen (a preset name, "user", "contrast-limits").
    """

    low: float
    high: float
    source: str = "user"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.low) and np.isfinite(self.high)) or self.high <= self.low:
            raise ValueError(
                "intensity window: expected finite low < high, "
                f"got low={self.low}, high={self.high}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Window:
        return cls(float(data["low"]), float(data["high"]), str(data.get("source", "user")))


def count_nonfinite(values: Any) -> int:
    """How many NaN / +inf / -inf values `values` holds (0 for integer arrays)."""
    arr = np.asarray(values)
    if not np.issubdtype(arr.dtype, np.inexact):
        return 0
    return int(arr.size - np.count_nonzero(np.isfinite(arr)))


def finite_values(volume: Any) -> np.ndarray:
    """The finite values of `volume`, flattened (the array itself, raveled, when all are).

    Raises:
        ValueError: no value of `volume` is finite (or it is empty).
    """
    arr = np.asarray(volume)
    if count_nonfinite(arr):
        arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        raise ValueError(
            f"intensity window: the volume of shape {np.shape(volume)} holds no finite voxel "
            "(all NaN or inf)"
        )
    return arr.ravel()


def looks_like_ct(volume: np.ndarray) -> bool:
    """Heuristic: CT in HU has air around -1000 and a wide range (finite voxels only)."""
    lo, hi = np.percentile(finite_values(volume), [0.5, 99.5])
    return bool(lo < -500 and hi > 0)


def resolve_window(
    volume: np.ndarray, preset: str | Window | tuple[float, float] = "auto"
) -> Window:
    """Turn a preset name, a (low, high) pair or a Window into absolute bounds for `volume`.

    Args:
        volume: the raw array (any shape) the window will apply to; used by percentile presets
            and by ``auto`` (CT soft tissue when the volume looks like HU, MR percentiles
            otherwise). NaN and inf voxels are ignored.
        preset: a name from `PRESETS`, a (low, high) tuple in raw units, or a Window.

    Raises:
        ValueError: an unknown preset, bounds that are not finite with low < high, or a
            percentile preset / ``auto`` on a volume without any finite voxel.
    """
    if isinstance(preset, Window):
        return preset
    if isinstance(preset, tuple | list):
        low, high = preset
        return Window(float(low), float(high), "user")
    if preset == "auto":
        preset = "ct-soft-tissue" if looks_like_ct(volume) else "mr-percentile"
    if preset in CT_PRESETS:
        centre, width = CT_PRESETS[preset]
        return Window(centre - width / 2, centre + width / 2, preset)
    if preset in PERCENTILE_PRESETS:
        p_lo, p_hi = PERCENTILE_PRESETS[preset]
        values = finite_values(volume)
        nz = values[values != 0]
        values = nz if nz.size > 0.05 * values.size else values
        low, high = np.percentile(values, [p_lo, p_hi])
        if high <= low:
            high = low + 1.0
        return Window(float(low), float(high), preset)
    raise ValueError(f"intensity preset {preset!r}: expected one of {PRESETS} or (low, high)")


def normalise(image: np.ndarray, window: Window) -> np.ndarray:
    """Map raw values to float32 in [0, 1] with the window (any shape in, same shape out).

    Non-finite voxels are replaced, never passed on: NaN -> 0 (the window's low end), +inf -> 1,
    -inf -> 0.
    """
    out = (np.asarray(image, dtype=np.float32) - window.low) / (window.high - window.low)
    np.clip(out, 0.0, 1.0, out=out)  # +inf -> 1, -inf -> 0; NaN stays NaN
    if count_nonfinite(out):
        np.nan_to_num(out, copy=False, nan=0.0)
    return out


def to_uint8_rgb(image: np.ndarray, window: Window) -> np.ndarray:
    """A 2D slice (H, W) of raw values -> (H, W, 3) uint8 RGB, as SAM expects."""
    if np.ndim(image) != 2:
        raise ValueError(f"to_uint8_rgb: expected a 2D slice (H, W), got shape {np.shape(image)}")
    grey = np.round(normalise(image, window) * 255.0).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def intensity_band(
    image01: np.ndarray, mask: np.ndarray, tolerance: float = 0.05
) -> tuple[float, float]:
    """The central intensity band of a structure on one slice: its 5th..95th percentiles of
    the (H, W) [0, 1] image under the (H, W) bool mask, widened by `tolerance` on each side.

    Raises:
        ValueError: shapes differ or the mask is empty.
    """
    image01, mask = np.asarray(image01), np.asarray(mask, dtype=bool)
    if image01.shape != mask.shape or not mask.any():
        raise ValueError(
            f"intensity_band: expected a non-empty mask of the image's shape {image01.shape}, "
            f"got {mask.shape} with {int(mask.sum())} pixels"
        )
    lo, hi = np.percentile(image01[mask], [5.0, 95.0])
    return float(lo) - tolerance, float(hi) + tolerance


def band_overlap(image01: np.ndarray, mask: np.ndarray, band: tuple[float, float]) -> float:
    """Fraction of the (H, W) bool `mask` footprint whose (H, W) [0, 1] intensity is in `band`.

    The evidence that a structure found under `mask` on a reference slice is still present on
    this slice: ~1 while the structure fills the reference footprint, falling towards 0 where
    other tissue takes its place (used by automatic extent; see prompting.generators).
    """
    image01, mask = np.asarray(image01), np.asarray(mask, dtype=bool)
    if image01.shape != mask.shape:
        raise ValueError(
            f"band_overlap: query slice shape {image01.shape} differs from the reference "
            f"mask's {mask.shape}"
        )
    values = image01[mask]
    if values.size == 0:
        return 0.0
    return float(np.mean((values >= band[0]) & (values <= band[1])))


def reference_support(supports: Sequence[Any], support: Any) -> Any:
    """The support whose intensity band stands for `support`: itself when painted; for a
    committed one, the painted support nearest in slice index (itself when none is painted),
    because a committed mask that leaked into other tissue must not vouch for itself. Each
    support has ``committed`` and ``slice_index``."""
    if not support.committed:
        return support
    painted = [s for s in supports if not s.committed]
    if not painted:
        return support
    z = support.slice_index
    if z is None or any(s.slice_index is None for s in painted):
        return painted[0]
    return nearest_slice(painted, z, key=lambda s: s.slice_index)


def reference_band(supports: Sequence[Any], support: Any) -> tuple[float, float]:
    """The intensity band a support's evidence is measured with: ``band`` of
    `reference_support` (each support has ``band``, ``committed`` and ``slice_index``)."""
    return reference_support(supports, support).band


def structure_region(
    image01: np.ndarray, mask: np.ndarray, band: tuple[float, float], reach: float
) -> np.ndarray:
    """Where a structure painted as `mask` on a nearby slice continues on this one: the (H, W)
    bool pixels of the [0, 1] `image01` whose intensity is in `band` and that are connected,
    through such pixels no farther than `reach` pixels from `mask`, to a pixel of `mask`.

    A cheap, image-only estimate that FoB's predictor keeps background points out of
    (`predictor.FobPredictor`, ``band_exclusion``); it leaks into touching tissue of the same
    intensity, which `reach` bounds.
    """
    from scipy import ndimage as ndi

    image01, mask = np.asarray(image01), np.asarray(mask, dtype=bool)
    if image01.shape != mask.shape:
        raise ValueError(
            f"structure_region: image shape {image01.shape} differs from the mask's {mask.shape}"
        )
    near = ndi.distance_transform_edt(~mask) <= float(reach)
    candidate = (image01 >= band[0]) & (image01 <= band[1]) & near
    labels, _ = ndi.label(candidate)
    touching = np.unique(labels[mask & candidate])
    return np.isin(labels, touching[touching > 0])


def check_unit_slice(image: Any, name: str) -> np.ndarray:
    """`image` as an (H, W) float32 slice in [0, 1], or a ValueError naming `name`.

    Models take normalised slices (`normalise`); a NaN or an unnormalised slice would give
    silent garbage, so it is refused with what was found.
    """
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise ValueError(f"{name}: expected an (H, W) slice, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: holds NaN or inf values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(
            f"{name}: expected intensities in [0, 1] (see intensity.normalise), got [{lo}, {hi}]"
        )
    return np.clip(arr, 0.0, 1.0)
