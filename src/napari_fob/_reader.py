"""npe2 reader: open a 3D volume as a napari Image or Labels layer with its spacing and geometry.

Opens every `napari_fob.core.formats.read_volume` format: NIfTI (``.nii``/``.nii.gz``), a
folder holding a DICOM series (or ``.dcm`` files of one), NRRD (``.nrrd``/``.nhdr``),
MetaImage (``.mha``/``.mhd``) and MGH (``.mgz``/``.mgh``). A folder is taken only when it
really holds DICOM files; otherwise `get_reader` returns None and napari tries other readers.
A folder with several series opens the largest, and the warning naming the others shows as a
napari notification (a Python warning).

A file opens as **Labels** when it looks like a label map: every voxel a non-negative integer,
at most `MAX_LABEL_VALUES` distinct values, and few of them for its size (at most
`FEW_VALUES`, or one value per `VOXELS_PER_VALUE` voxels) — a CT is integer too but has
thousands of values; a segmentation has a handful. Otherwise it opens as an Image.

The layer's ``metadata["napari_fob"]`` holds `Volume.to_metadata()`, which the writer (and the
annotator) use to save labels as NIfTI on the source's grid and world coordinates. Imports
only numpy and `napari_fob.core`; napari itself is never imported here.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from napari_fob.core.dicom import is_dicom_folder
from napari_fob.core.formats import is_volume_path, read_volume

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
    """Return `read_layers` for volume files or a DICOM folder, else None (napari tries others)."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths:
        return None
    if all(os.path.isdir(p) for p in paths):
        return read_layers if all(is_dicom_folder(p) for p in paths) else None
    if not all(is_volume_path(p) and not os.path.isdir(p) for p in paths):
        return None
    return read_layers


def read_layers(path: str | os.PathLike | Sequence[str]) -> list[LayerData]:
    """One ``(data, kwargs, "image" | "labels")`` tuple per volume.

    ``data`` is the ``(Z, Y, X)`` volume (axis 0 = the file's third voxel axis, a DICOM
    series' slice axis): float32 for an image, the smallest unsigned integer type for labels;
    ``kwargs`` has ``name`` (file name without extension, or the DICOM folder's name),
    ``scale`` (mm per array axis) and ``metadata={"napari_fob": Volume.to_metadata()}``, so
    labels save back on their geometry. Several ``.dcm`` files of one series give one layer.
    """
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    layers: list[LayerData] = []
    seen: set[str] = set()
    for p in paths:
        with _warnings_from_log():
            volume = read_volume(p)
        uid = volume.source.get("series_uid")
        if uid is not None:
            if uid in seen:  # another file of a series already opened
                continue
            seen.add(uid)
        kwargs = {
            "name": layer_name(volume.path if uid is not None and volume.path else p),
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
    """The file name without its volume extension (``.nii.gz``, ``.nrrd``, ...), or a folder's."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".mgz", ".mgh", ".dcm"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


@contextmanager
def _warnings_from_log() -> Iterator[None]:
    """Re-issue the readers' log warnings (e.g. 'several series') as Python warnings, which
    napari shows as notifications."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("napari_fob.core")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    for record in records:
        warnings.warn(record.getMessage(), UserWarning, stacklevel=3)
