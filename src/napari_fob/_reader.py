"""npe2 reader: open ``.nii``/``.nii.gz`` as a napari Image or Labels layer with its spacing and
geometry.

A file opens as **Labels** when it looks like a label map: every voxel a non-negative integer,
at most `MAX_LABEL_VALUES` distinct values, and few of them for its size (at most
`FEW_VALUES`, or one value per `VOXELS_PER_VALUE` voxels) — a CT is integer too but has
thousands of values; a segmentation has a handful. Otherwise it opens as an Image.

The layer's ``metadata["napari_fob"]`` holds `Volume.to_metadata()`, which the writer (and the
annotator) use to save labels in the source file's orientation and affine. Imports only
numpy/nibabel through `napari_fob.core.io`; napari itself is never imported here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_fob.core.io import is_nifti_path, read_nifti

LayerData = tuple[Any, dict[str, Any], str]
METADATA_KEY = "napari_fob"
MAX_LABEL_VALUES = 256
FEW_VALUES = 16
VOXELS_PER_VALUE = 100


def label_dtype(data: np.ndarray) -> np.dtype | None:
    """The integer dtype to hold `data` as labels, or None when it is not a label map."""
    flat = np.ravel(data)
    probe = flat[:: max(1, flat.size // 200_000)]  # cheap refusal of ordinary images first
    for values in (probe, flat):
        if not np.all(np.isfinite(values)) or values.min(initial=0) < 0:
            return None
        if np.any(values != np.round(values)):
            return None
        n = len(np.unique(values))
        if n > MAX_LABEL_VALUES:
            return None
    if n > FEW_VALUES and n * VOXELS_PER_VALUE > flat.size:
        return None
    top = float(flat.max(initial=0))
    return np.dtype(np.uint8 if top < 256 else np.uint16 if top < 65536 else np.uint32)


def get_reader(path: str | os.PathLike | Sequence[str]) -> Callable[..., list[LayerData]] | None:
    """Return `read_layers` when every path is a NIfTI file, else None (napari tries others)."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths or not all(is_nifti_path(p) for p in paths):
        return None
    return read_layers


def read_layers(path: str | os.PathLike | Sequence[str]) -> list[LayerData]:
    """One ``(data, kwargs, "image" | "labels")`` tuple per file.

    ``data`` is the ``(Z, Y, X)`` volume (axis 0 = the file's third voxel axis): float32 for an
    image, the smallest unsigned integer type for labels; ``kwargs`` has ``name`` (file name
    without extension), ``scale`` (mm per array axis) and
    ``metadata={"napari_fob": Volume.to_metadata()}``, so labels save back on their geometry.
    """
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    layers: list[LayerData] = []
    for p in paths:
        volume = read_nifti(p)
        kwargs = {
            "name": layer_name(p),
            "scale": volume.spacing,
            "metadata": {METADATA_KEY: volume.to_metadata()},
        }
        dtype = label_dtype(volume.data)
        if dtype is None:
            layers.append((volume.data, kwargs, "image"))
        else:
            layers.append((volume.data.astype(dtype), kwargs, "labels"))
    return layers


def layer_name(path: str | os.PathLike) -> str:
    """The file name without ``.nii``/``.nii.gz``."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
