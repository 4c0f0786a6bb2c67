"""The `Volume` dataclass: a ``(Z, Y, X)`` array plus the geometry of its NIfTI file.

A `Volume` holds a 3D array in the project's ``(Z, Y, X)`` order — axis 0 is the slicing axis
napari's slider moves — plus everything needed to write labels back in the file's own voxel
order and affine. The array is a pure transposition of the file's voxel array (no flips), so
the mapping is exact and reversible:

* the slicing axis (default: the file's third voxel axis, usually axial) comes first;
* of the two remaining voxel axes, the later one becomes the rows (axis 1) and the earlier one
  the columns (axis 2). For an axial slice of a file stored as (i, j, k) that is the usual
  ``data[:, :, k].T`` view: rows run along j, columns along i. Sagittal and coronal slices get
  the superior-inferior axis (k) as rows.

``Volume.axes[a]`` is the file voxel axis shown as array axis ``a``.

Reading and writing files lives in `napari_fob.core.io`; this module only describes the grid.
It imports only numpy and nibabel: never napari, Qt, magicgui or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

METADATA_VERSION = 1
# Raw header fields that define the geometry; copied verbatim so the write-back is exact.
GEOMETRY_FIELDS = (
    "sform_code",
    "qform_code",
    "srow_x",
    "srow_y",
    "srow_z",
    "quatern_b",
    "quatern_c",
    "quatern_d",
    "qoffset_x",
    "qoffset_y",
    "qoffset_z",
    "xyzt_units",
    "pixdim",
)
# An affine read back from a label file may differ from the image's by float32 rounding only.
AFFINE_ATOL_MM = 1e-4


def array_axes(slice_axis: int) -> tuple[int, int, int]:
    """File voxel axes shown as array axes (0, 1, 2) for a slicing axis; see the module doc."""
    if slice_axis not in (0, 1, 2):
        raise ValueError(f"slice_axis: expected 0, 1 or 2 (a voxel axis), got {slice_axis!r}")
    cols, rows = (a for a in range(3) if a != slice_axis)
    return (slice_axis, rows, cols)


def voxel_sizes(affine: np.ndarray) -> np.ndarray:
    """Size in mm of a step along each file voxel axis: the column norms of ``affine[:3, :3]``."""
    return np.sqrt(np.sum(np.asarray(affine, dtype=float)[:3, :3] ** 2, axis=0))


@dataclass
class Volume:
    """A 3D volume in ``(Z, Y, X)`` order plus the geometry of the file it came from.

    Attributes:
        data: ``(Z, Y, X)`` array; axis 0 is the slicing axis. float32 for images read from disk.
        affine: ``(4, 4)`` float64, file voxel (i, j, k) -> world mm (the file's own affine,
            not permuted).
        spacing: mm per *array* axis, ``(dz, dy, dx)``.
        axes: array axis ``a`` is file voxel axis ``axes[a]``.
        file_shape: the 3D shape on disk, in file voxel order.
        path: the file read, or None for a volume built in memory.
        header: raw NIfTI geometry fields (sform/qform and their codes, units) as JSON-able
            values, written back verbatim by the writers.
        source: where the voxels came from when not a NIfTI file (JSON-able): ``format``
            ("dicom", "nrrd", "metaimage", "mgh") and, for DICOM, the series/study UIDs and
            the slice files in stack order; empty for NIfTI and in-memory volumes.
    """

    data: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]
    axes: tuple[int, int, int]
    file_shape: tuple[int, int, int]
    path: Path | None = None
    header: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_array(
        cls,
        data: np.ndarray,
        *,
        affine: np.ndarray,
        axes: tuple[int, int, int] = (2, 1, 0),
        path: Path | None = None,
        xform_code: int = 1,
    ) -> Volume:
        """Wrap an in-memory ``(Z, Y, X)`` array whose file voxel order would be `axes`.

        Args:
            data: ``(Z, Y, X)`` array (kept as given, not copied).
            affine: ``(4, 4)`` file voxel (i, j, k) -> world mm. It becomes both the sform and
                the qform of any file written from this volume.
            axes: array axis ``a`` is file voxel axis ``axes[a]``; the default stores the array
                as (X, Y, Z) on disk, the usual NIfTI layout.
            path: where the volume came from, if anywhere (kept for messages).
            xform_code: the NIfTI sform/qform code (1 scanner, 2 aligned, 3 Talairach, 4 MNI).
        """
        data = np.asarray(data)
        axes = _check_axes(axes)
        if data.ndim != 3:
            raise ValueError(f"Volume.from_array: expected a 3D array, got shape {data.shape}")
        affine = _check_affine(affine, "Volume.from_array")
        hdr = nib.Nifti1Header()
        hdr.set_sform(affine, code=xform_code)
        hdr.set_qform(affine, code=xform_code)
        hdr.set_xyzt_units("mm")
        file_shape = tuple(int(data.shape[axes.index(v)]) for v in range(3))
        return cls(
            data=data,
            affine=affine,
            spacing=array_spacing(affine, axes),
            axes=axes,
            file_shape=file_shape,  # type: ignore[arg-type]
            path=path,
            header=geometry_from_header(hdr),
        )

    def to_metadata(self) -> dict[str, Any]:
        """Everything a writer needs, as plain JSON-able values (no array data)."""
        return {
            "version": METADATA_VERSION,
            "affine": np.asarray(self.affine, dtype=float).tolist(),
            "axes": list(self.axes),
            "file_shape": list(self.file_shape),
            "spacing": [float(s) for s in self.spacing],
            "path": None if self.path is None else str(self.path),
            "header": dict(self.header),
            "source": dict(self.source),
        }

    @classmethod
    def from_metadata(cls, data: np.ndarray, meta: dict[str, Any]) -> Volume:
        """Rebuild a Volume from a ``(Z, Y, X)`` array and a `to_metadata` dict."""
        volume = geometry_from_metadata(meta)
        data = np.asarray(data)
        if data.shape != volume.array_shape:
            raise ValueError(
                f"volume metadata: array shape {data.shape} does not match the source grid "
                f"{volume.array_shape} (Z, Y, X) of {volume.path or 'the source image'}"
            )
        volume.data = data
        return volume

    @property
    def array_shape(self) -> tuple[int, int, int]:
        """The ``(Z, Y, X)`` shape of arrays on this volume's grid."""
        return tuple(int(self.file_shape[a]) for a in self.axes)  # type: ignore[return-value]

    def to_file_order(self, array: np.ndarray) -> np.ndarray:
        """Transpose a ``(Z, Y, X)`` array back to the file's voxel order (a view)."""
        return np.transpose(array, np.argsort(self.axes))


def geometry_from_metadata(meta: dict[str, Any]) -> Volume:
    """A Volume with an empty data array from a `Volume.to_metadata` dict (validated)."""
    if not isinstance(meta, dict):
        raise ValueError(f"volume metadata: expected a dict, got {type(meta).__name__}")
    missing = [k for k in ("affine", "axes", "file_shape") if k not in meta]
    if missing:
        raise ValueError(f"volume metadata: missing keys {missing} (found {sorted(meta)})")
    axes = _check_axes(tuple(int(a) for a in meta["axes"]))
    affine = _check_affine(meta["affine"], "volume metadata")
    file_shape = tuple(int(s) for s in meta["file_shape"])
    if len(file_shape) != 3:
        raise ValueError(f"volume metadata: file_shape must have 3 entries, got {file_shape}")
    path = meta.get("path")
    return Volume(
        data=np.empty((0, 0, 0), dtype=np.float32),
        affine=affine,
        spacing=array_spacing(affine, axes),
        axes=axes,
        file_shape=file_shape,  # type: ignore[arg-type]
        path=None if path is None else Path(path),
        header=dict(meta.get("header") or {}),
        source=dict(meta.get("source") or {}),
    )


def geometry_from_header(header: Any) -> dict[str, Any]:
    """The raw geometry fields of a NIfTI-1/2 header as JSON-able Python values."""
    out: dict[str, Any] = {}
    for key in GEOMETRY_FIELDS:
        value = np.asarray(header[key])
        out[key] = value.tolist() if value.ndim else value.item()
    out["pixdim"] = out["pixdim"][:4]
    return out


def array_spacing(affine: np.ndarray, axes: tuple[int, int, int]) -> tuple[float, float, float]:
    sizes = voxel_sizes(affine)
    return (float(sizes[axes[0]]), float(sizes[axes[1]]), float(sizes[axes[2]]))


def _check_axes(axes: tuple[int, ...]) -> tuple[int, int, int]:
    if sorted(axes) != [0, 1, 2]:
        raise ValueError(f"axes: expected a permutation of (0, 1, 2), got {axes!r}")
    return (int(axes[0]), int(axes[1]), int(axes[2]))


def _check_affine(affine: Any, where: str) -> np.ndarray:
    arr = np.asarray(affine, dtype=float)
    if arr.shape != (4, 4) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{where}: expected a finite 4x4 affine, got shape {arr.shape}")
    if abs(np.linalg.det(arr[:3, :3])) < 1e-12:
        raise ValueError(f"{where}: the affine is singular (a voxel axis has zero size)")
    return arr
