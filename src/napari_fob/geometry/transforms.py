"""Every coordinate conversion of the project, each in one named function.

Frames: slice (row, col) pixels; model grid (row, col) of an S x S plain resize of the slice,
pixel-centre aligned; SAM (x, y) = (col, row); napari (z, row, col). Pure numpy / scikit-image;
must not import torch, napari, Qt or magicgui.
"""

from __future__ import annotations

import numpy as np
from skimage.transform import resize

from napari_fob.geometry.ring import as_mask


# ----------------------------------------------------------------------------- transforms
def as_points(points: np.ndarray, name: str = "points") -> np.ndarray:
    """`points` as an (N, 2) float64 array ((0, 2) when empty); ValueError naming `name` if the
    shape is wrong or a value is not finite."""
    p = np.asarray(points, dtype=np.float64)
    if p.size == 0:
        return np.zeros((0, 2))
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"{name}: expected an (N, 2) array of (row, col), got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name}: points must be finite")
    return p


def _scales(slice_shape: tuple[int, int], grid_size: int) -> np.ndarray:
    h, w = int(slice_shape[0]), int(slice_shape[1])
    if h < 1 or w < 1 or grid_size < 1:
        raise ValueError(
            f"expected positive slice_shape and grid_size, got {slice_shape}, {grid_size}"
        )
    return np.array([grid_size / h, grid_size / w])


def slice_to_grid(points: np.ndarray, slice_shape: tuple[int, int], grid_size: int) -> np.ndarray:
    """(N, 2) (row, col) slice pixels -> (N, 2) (row, col) pixels of the S x S model grid.

    Plain anisotropic resize, pixel-centre aligned: g = (p + 0.5) * S / H - 0.5 (col: S / W).
    """
    return (as_points(points) + 0.5) * _scales(slice_shape, grid_size) - 0.5


def grid_to_slice(points: np.ndarray, slice_shape: tuple[int, int], grid_size: int) -> np.ndarray:
    """Exact inverse of `slice_to_grid`: (N, 2) grid (row, col) -> (N, 2) slice (row, col)."""
    return (as_points(points) + 0.5) / _scales(slice_shape, grid_size) - 0.5


def resize_to_grid(image: np.ndarray, grid_size: int, *, order: int = 1) -> np.ndarray:
    """(H, W) image -> (S, S) float32: plain resize, spline `order`, anti-aliased when shrinking."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"resize_to_grid: image must be (H, W), got shape {img.shape}")
    out = resize(img, (grid_size, grid_size), order=order, preserve_range=True, mode="edge")
    return out.astype(np.float32)


def resize_mask_to_grid(mask: np.ndarray, grid_size: int) -> np.ndarray:
    """(H, W) mask -> (S, S) bool by nearest neighbour (each grid pixel takes the slice pixel
    under its centre; structures thinner than H / S pixels can vanish)."""
    m = as_mask(mask)
    return _nearest(m, (grid_size, grid_size))


def _nearest(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    # index of the source pixel under each target pixel centre, same mapping as slice_to_grid
    rows = np.clip(np.floor((np.arange(shape[0]) + 0.5) * arr.shape[0] / shape[0]), 0, None)
    cols = np.clip(np.floor((np.arange(shape[1]) + 0.5) * arr.shape[1] / shape[1]), 0, None)
    return arr[np.ix_(rows.astype(int), cols.astype(int))]


def resize_from_grid(arr: np.ndarray, slice_shape: tuple[int, int], order: int = 1) -> np.ndarray:
    """(S, S) grid array -> slice_shape (H, W). bool arrays: nearest neighbour, bool out;
    others: spline `order`, float32 out."""
    a = np.asarray(arr)
    if a.ndim != 2:
        raise ValueError(f"resize_from_grid: arr must be 2D, got shape {a.shape}")
    shape = (int(slice_shape[0]), int(slice_shape[1]))
    if a.dtype == bool:
        return _nearest(a, shape)
    out = resize(a.astype(np.float64), shape, order=order, preserve_range=True, mode="edge")
    return out.astype(np.float32)


def to_sam_xy(points: np.ndarray) -> np.ndarray:
    """(N, 2) (row, col) -> (N, 2) SAM (x, y) = (col, row)."""
    return as_points(points)[:, ::-1].copy()  # SAM wants XY


def from_sam_xy(points_xy: np.ndarray) -> np.ndarray:
    """(N, 2) SAM (x, y) -> (N, 2) (row, col)."""
    return as_points(points_xy, "points_xy")[:, ::-1].copy()


def to_napari(points: np.ndarray, slice_index: int) -> np.ndarray:
    """(N, 2) (row, col) of slice `slice_index` -> (N, 3) napari (z, row, col)."""
    p = as_points(points)
    return np.concatenate([np.full((len(p), 1), float(slice_index)), p], axis=1)


def from_napari(points3: np.ndarray) -> dict[int, np.ndarray]:
    """(N, 3) napari (z, row, col) -> {slice index (rounded z): (n_z, 2) (row, col)}."""
    p = np.asarray(points3, dtype=np.float64)
    if p.size == 0:
        return {}
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"from_napari: expected an (N, 3) array of (z, row, col), got {p.shape}")
    z = np.rint(p[:, 0]).astype(int)
    return {int(k): p[z == k, 1:].copy() for k in np.unique(z)}


def ring_box(bg_points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(4,) float64 box [x0, y0, x1, y1] (SAM XY) enclosing (N, 2) (row, col) ring points,
    clipped to an image of `shape` (H, W)."""
    p = as_points(bg_points, "bg_points")
    if len(p) == 0:
        raise ValueError("ring_box: bg_points is empty, a box needs at least one point")
    h, w = int(shape[0]), int(shape[1])
    lo = np.clip(p.min(axis=0), 0, [h - 1, w - 1])
    hi = np.clip(p.max(axis=0), 0, [h - 1, w - 1])
    return np.array([lo[1], lo[0], hi[1], hi[0]], dtype=np.float64)
