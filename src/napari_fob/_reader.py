"""npe2 reader: open ``.nii``/``.nii.gz`` as a napari Image layer with its spacing and geometry.

The layer's ``metadata["napari_fob"]`` holds `Volume.to_metadata()`, which the writer (and the
annotator) use to save labels in the source file's orientation and affine. Imports only
numpy/nibabel through `napari_fob.io`; napari itself is never imported here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from napari_fob.io import is_nifti_path, read_nifti

LayerData = tuple[Any, dict[str, Any], str]
METADATA_KEY = "napari_fob"


def get_reader(path: str | os.PathLike | Sequence[str]) -> Callable[..., list[LayerData]] | None:
    """Return `read_layers` when every path is a NIfTI file, else None (napari tries others)."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths or not all(is_nifti_path(p) for p in paths):
        return None
    return read_layers


def read_layers(path: str | os.PathLike | Sequence[str]) -> list[LayerData]:
    """One ``(data, kwargs, "image")`` tuple per file.

    ``data`` is the float32 ``(Z, Y, X)`` volume (axis 0 = the file's third voxel axis);
    ``kwargs`` has ``name`` (file name without extension), ``scale`` (mm per array axis) and
    ``metadata={"napari_fob": Volume.to_metadata()}``.
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
        layers.append((volume.data, kwargs, "image"))
    return layers


def layer_name(path: str | os.PathLike) -> str:
    """The file name without ``.nii``/``.nii.gz``."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
