"""3D supervoxel pseudo-labels for self-supervised training (the paper's recipe, Sec. 4).

Holds the body mask and the supervoxel clustering. Pure numpy / scipy / scikit-image: must not
import torch, napari or Qt.

Choice of algorithm: the paper's lineage (Hansen et al., ADNet) uses a 3D Felzenszwalb graph
segmentation with min size 5000. scikit-image's ``felzenszwalb`` is 2D only and a union-find over
~10^7 edges in Python is far too slow on a laptop, so this module uses 3D SLIC
(``skimage.segmentation.slic``, compiled) restricted to the body mask, with the voxel spacing in
the distance metric and the number of segments chosen from a target supervoxel volume in mm^3.
What training needs from pseudo-labels is compact, intensity-coherent 3D regions that persist over
neighbouring slices; SLIC gives that, deterministically (its mask seeding uses a fixed seed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from napari_fob.core.intensity import looks_like_ct, normalise, resolve_window

# ~ a 3 cm cube: close to ADNet's min size of 5000 voxels at abdominal CT resolution.
DEFAULT_SIZE_MM3 = 25_000.0
DEFAULT_COMPACTNESS = 0.1


def body_mask(image: np.ndarray, *, threshold: float | None = None) -> np.ndarray:
    """The patient's body: threshold, keep the largest 3D component, fill holes per slice.

    Args:
        image: raw volume (Z, Y, X), any float/int dtype (HU for CT).
        threshold: raw value separating body from air. Default: -500 HU when the volume looks
            like CT, else Otsu's threshold of the volume (MR, other modalities).

    Returns:
        (Z, Y, X) bool mask.

    Raises:
        ValueError: when the image is not 3D or nothing lies above the threshold.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"body_mask: expected a 3D volume (Z, Y, X), got shape {image.shape}")
    if threshold is None:
        if looks_like_ct(image):
            threshold = -500.0
        else:
            from skimage.filters import threshold_otsu

            threshold = float(threshold_otsu(image))
    mask = image > threshold
    labels, n = ndi.label(mask)
    if n == 0:
        raise ValueError(
            f"body_mask: no voxel above the threshold {threshold:g} "
            f"(image range {image.min():g}..{image.max():g}); pass a lower threshold"
        )
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    mask = labels == int(np.argmax(sizes))
    # Holes (bowel gas, lungs) are inside the body; fill them slice by slice.
    for z in range(mask.shape[0]):
        mask[z] = ndi.binary_fill_holes(mask[z])
    return mask


def supervoxels(
    image: np.ndarray,
    *,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    mask: np.ndarray | None = None,
    size_mm3: float = DEFAULT_SIZE_MM3,
    compactness: float = DEFAULT_COMPACTNESS,
    window: str | tuple[float, float] = "auto",
) -> np.ndarray:
    """3D SLIC supervoxels inside a mask, with the voxel spacing in the distance metric.

    Args:
        image: raw volume (Z, Y, X).
        spacing: mm per array axis (z, y, x).
        mask: (Z, Y, X) bool region to cluster; default `body_mask(image)`.
        size_mm3: target mean supervoxel volume in mm^3 (sets the number of segments).
        compactness: SLIC's balance of intensity (image normalised to [0, 1]) against distance;
            larger gives rounder, less intensity-driven supervoxels.
        window: intensity preset or (low, high) used to bring the image to [0, 1].

    Returns:
        (Z, Y, X) int32 labels: 0 outside the mask, 1..K consecutive inside.
    """
    from skimage.segmentation import slic

    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"supervoxels: expected a 3D volume (Z, Y, X), got shape {image.shape}")
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"supervoxels: spacing must be 3 positive floats, got {spacing}")
    if size_mm3 <= 0:
        raise ValueError(f"supervoxels: size_mm3 must be > 0, got {size_mm3}")
    if mask is None:
        mask = body_mask(image)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != image.shape:
        raise ValueError(f"supervoxels: mask shape {mask.shape} != image shape {image.shape}")
    if not mask.any():
        raise ValueError("supervoxels: the mask is empty; nothing to cluster")
    voxel_mm3 = float(np.prod(spacing))
    n_segments = max(1, int(round(mask.sum() * voxel_mm3 / size_mm3)))
    scaled = normalise(image, resolve_window(image, window))
    labels = slic(
        scaled,
        n_segments=n_segments,
        compactness=compactness,
        spacing=np.asarray(spacing),
        mask=mask,
        channel_axis=None,
        start_label=1,
        enforce_connectivity=True,
    )
    return relabel_consecutive(labels)


def relabel_consecutive(labels: np.ndarray) -> np.ndarray:
    """Map the non-zero values of an int array to 1..K in increasing order (0 stays 0)."""
    values, inverse = np.unique(labels, return_inverse=True)
    offset = 0 if values[0] == 0 else 1
    return (inverse.reshape(labels.shape) + offset).astype(np.int32)
