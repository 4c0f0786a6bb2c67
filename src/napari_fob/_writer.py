"""npe2 writer: save a napari Labels layer as NIfTI in its source image's orientation and affine.

The geometry comes from ``meta["metadata"]["napari_fob"]`` (`Volume.to_metadata()`), which the
napari-fob reader, the sample data and the annotator put on their layers. Imports no napari.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from napari_fob.io import write_labels as write_labels_file

METADATA_KEY = "napari_fob"


def write_labels(path: str | os.PathLike, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write a Labels layer's ``(Z, Y, X)`` integer data to ``path`` (``.nii`` or ``.nii.gz``).

    Args:
        path: the output file chosen in napari's save dialog.
        data: the layer data, ``(Z, Y, X)`` integers on the source image's grid.
        meta: the layer attributes napari passes; ``meta["metadata"]["napari_fob"]`` must hold
            the source geometry.

    Returns:
        ``[path]`` as written.
    """
    geometry = (meta.get("metadata") or {}).get(METADATA_KEY)
    if geometry is None:
        name = meta.get("name", "labels")
        raise ValueError(
            f"cannot save layer {name!r} to {path}: it carries no source geometry "
            f"(metadata['{METADATA_KEY}']). Save labels made on an image opened with napari-fob "
            "(its reader, sample data or annotator copy the image's affine onto them), or save "
            "from Python with napari_fob.io.write_labels(path, labels, like=volume)."
        )
    written = write_labels_file(path, np.asarray(data), geometry)
    return [str(written)]
