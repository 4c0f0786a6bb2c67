"""npe2 writer: save a napari Labels layer as NIfTI in its source image's orientation and affine.

The geometry comes from ``meta["metadata"]["napari_fob"]`` (`Volume.to_metadata()`), which the
napari-fob reader, the sample data and the annotator put on their layers; a Labels layer made in
napari (no metadata) takes the geometry of the image it lies on. napari is imported only for
that lookup, inside the function.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from napari_fob.core.io import write_labels as write_labels_file

METADATA_KEY = "napari_fob"


def geometry_of_image_under(shape: tuple[int, ...], meta: dict[str, Any]) -> Any | None:
    """The geometry of the image a Labels layer was drawn on, for a layer made in napari.

    A Labels layer created with napari's "new labels" button has the image's shape, scale and
    translate but no metadata. The image is found in the current viewer: a layer carrying
    napari-fob geometry with the same shape, scale and translate (napari's own viewer lookup,
    so this is npe2 glue, like the rest of this module).
    """
    try:
        import napari
    except ImportError:
        return None
    viewer = napari.current_viewer()
    if viewer is None:
        return None
    scale = np.asarray(meta.get("scale", np.ones(len(shape))), dtype=float)
    translate = np.asarray(meta.get("translate", np.zeros(len(shape))), dtype=float)
    for layer in viewer.layers:
        geometry = dict(getattr(layer, "metadata", {}) or {}).get(METADATA_KEY)
        if (
            geometry is not None
            and tuple(np.shape(layer.data)) == tuple(shape)
            and np.allclose(np.asarray(layer.scale, dtype=float), scale)
            and np.allclose(np.asarray(layer.translate, dtype=float), translate)
        ):
            return geometry
    return None


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
        geometry = geometry_of_image_under(np.shape(data), meta)
    if geometry is None:
        name = meta.get("name", "labels")
        raise ValueError(
            f"cannot save layer {name!r} to {path}: it carries no source geometry "
            f"(metadata['{METADATA_KEY}']) and no image of its shape {tuple(np.shape(data))} "
            "opened with napari-fob lies under it. Open the image with napari-fob first (its "
            "reader, sample data or annotator give labels the image's affine), or save from "
            "Python with napari_fob.core.io.write_labels(path, labels, like=volume)."
        )
    written = write_labels_file(path, np.asarray(data), geometry)
    return [str(written)]
