"""Geometry of FoB prompts and every coordinate conversion of the project.

- `ring`: the ring band of Eq. 1, angles around a centre, ordered ring sampling.
- `points`: Gaussian heatmaps; foreground points spread over a probability map or a mask.
- `transforms`: slice <-> model grid <-> SAM (x, y) <-> napari (z, row, col); resizes; ring box.

Pure numpy / scipy / scikit-image. Must not import torch, napari, Qt or magicgui.

Conventions (docs/geometry.md):
- Points are ``(N, 2)`` float arrays of ``(row, col)`` pixel coordinates of a 2D slice; integer
  values are pixel centres.
- Angles are measured around a centre from "up" (the -row direction), clockwise on screen
  (towards +col), in radians in ``[0, 2*pi)``, minus ``start_angle``.
- The model grid is ``S x S``, reached by a plain (anisotropic) resize of the slice, pixel-centre
  aligned: ``g = (p + 0.5) * S / H - 0.5``.
"""

from napari_fob.geometry.points import (
    fg_points_from_mask,
    foreground_points,
    gaussian_heatmaps,
    mask_depth,
)
from napari_fob.geometry.ring import (
    EMPTY_MASK_MESSAGE,
    KERNELS,
    RING_DEFINITION,
    RING_DEFINITIONS,
    RING_EPS,
    RING_METHODS,
    RING_R,
    as_mask,
    closed_path,
    mask_centroid,
    order_by_angle,
    point_angles,
    ring_band,
    ring_definition,
    ring_points,
    signed_distance,
)
from napari_fob.geometry.transforms import (
    as_points,
    from_napari,
    from_sam_xy,
    grid_to_slice,
    resize_from_grid,
    resize_mask_to_grid,
    resize_to_grid,
    ring_box,
    slice_to_grid,
    to_napari,
    to_sam_xy,
)

__all__ = [
    "EMPTY_MASK_MESSAGE",
    "KERNELS",
    "RING_DEFINITION",
    "RING_DEFINITIONS",
    "RING_EPS",
    "RING_METHODS",
    "RING_R",
    "as_mask",
    "as_points",
    "closed_path",
    "fg_points_from_mask",
    "mask_depth",
    "foreground_points",
    "from_napari",
    "from_sam_xy",
    "gaussian_heatmaps",
    "grid_to_slice",
    "mask_centroid",
    "order_by_angle",
    "point_angles",
    "resize_from_grid",
    "resize_mask_to_grid",
    "resize_to_grid",
    "ring_band",
    "ring_box",
    "ring_definition",
    "ring_points",
    "signed_distance",
    "slice_to_grid",
    "to_napari",
    "to_sam_xy",
]
