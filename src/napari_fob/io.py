"""NIfTI volumes in and out (nibabel), with the file's geometry kept for an exact write-back.

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

This module imports only numpy and nibabel: never napari, Qt, magicgui or torch.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

NIFTI_SUFFIXES = (".nii", ".nii.gz")
METADATA_VERSION = 1
# Raw header fields that define the geometry; copied verbatim so the write-back is exact.
_GEOMETRY_FIELDS = (
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
_AFFINE_ATOL_MM = 1e-4


def is_nifti_path(path: str | os.PathLike) -> bool:
    """True when `path` ends in ``.nii`` or ``.nii.gz`` (case-insensitive)."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


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
    """

    data: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]
    axes: tuple[int, int, int]
    file_shape: tuple[int, int, int]
    path: Path | None = None
    header: dict[str, Any] = field(default_factory=dict)

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
            spacing=_array_spacing(affine, axes),
            axes=axes,
            file_shape=file_shape,  # type: ignore[arg-type]
            path=path,
            header=_geometry_from_header(hdr),
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
        }

    @classmethod
    def from_metadata(cls, data: np.ndarray, meta: dict[str, Any]) -> Volume:
        """Rebuild a Volume from a ``(Z, Y, X)`` array and a `to_metadata` dict."""
        volume = _geometry_only(meta)
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


def _geometry_only(meta: dict[str, Any]) -> Volume:
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
        spacing=_array_spacing(affine, axes),
        axes=axes,
        file_shape=file_shape,  # type: ignore[arg-type]
        path=None if path is None else Path(path),
        header=dict(meta.get("header") or {}),
    )


def read_nifti(path: str | os.PathLike, slice_axis: int = 2) -> Volume:
    """Read a 3D NIfTI image (or 4D with one volume) as a float32 ``(Z, Y, X)`` Volume.

    Args:
        path: a ``.nii`` or ``.nii.gz`` file.
        slice_axis: the file voxel axis (0, 1 or 2) that becomes array axis 0; default 2, the
            file's third axis (axial for most scans).

    Returns:
        A Volume whose ``data`` is float32 with the header's scl_slope/scl_inter applied.
    """
    axes = array_axes(slice_axis)
    img = _load_nifti(path)
    file_shape = _spatial_shape(img.shape, path)
    data = img.get_fdata(dtype=np.float32).reshape(file_shape)
    affine = np.asarray(img.affine, dtype=float)
    return Volume(
        data=np.ascontiguousarray(np.transpose(data, axes)),
        affine=affine,
        spacing=_array_spacing(affine, axes),
        axes=axes,
        file_shape=file_shape,
        path=Path(path),
        header=_geometry_from_header(img.header),
    )


def read_labels(path: str | os.PathLike, like: Volume) -> np.ndarray:
    """Read a label (or support) file on the same grid as `like`, as a ``(Z, Y, X)`` int array.

    Integer files keep their dtype; float files holding whole numbers become int32. Raises
    ValueError naming both files when the shape or affine differs from `like`'s.
    """
    img = _load_nifti(path)
    file_shape = _spatial_shape(img.shape, path)
    source = like.path or "the image in memory"
    if file_shape != tuple(like.file_shape):
        raise ValueError(
            f"{path}: label shape {file_shape} differs from the image {source} "
            f"shape {tuple(like.file_shape)}; labels must be on the image's voxel grid"
        )
    affine = np.asarray(img.affine, dtype=float)
    if not np.allclose(affine, like.affine, rtol=0, atol=_AFFINE_ATOL_MM):
        raise ValueError(
            f"{path}: label affine\n{np.array2string(affine, precision=4)}\ndiffers from the "
            f"affine of the image {source}\n{np.array2string(like.affine, precision=4)}"
        )
    data = np.asanyarray(img.dataobj).reshape(file_shape)
    if not np.issubdtype(data.dtype, np.integer):
        if not np.all(np.isfinite(data)) or np.any(data != np.round(data)):
            raise ValueError(f"{path}: expected whole-number label values, found fractions")
        data = data.astype(np.int32)
    if data.size and data.min() < 0:
        raise ValueError(f"{path}: expected label values >= 0, found {data.min()}")
    return np.ascontiguousarray(np.transpose(data, like.axes))


def write_labels(
    path: str | os.PathLike, labels: np.ndarray, like: Volume | dict[str, Any]
) -> Path:
    """Write a ``(Z, Y, X)`` integer label array in the source file's orientation and affine.

    The dtype is uint8 when the largest label is < 256, else int16 or int32; scaling is reset
    (slope 1, intercept 0). The file is written to a temporary name in the same folder and
    then moved into place, so a reader never sees a half-written file.

    Args:
        path: output ``.nii`` or ``.nii.gz``; its folder must exist.
        labels: ``(Z, Y, X)`` integer or bool array, values >= 0, shaped like the source.
        like: the source Volume, or its `Volume.to_metadata` dict.
    """
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: labels must be an integer array, got dtype {labels.dtype}")
    lo, hi = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
    if lo < 0:
        raise ValueError(f"{path}: label values must be >= 0, found {lo}")
    if hi < 256:
        dtype = np.uint8
    elif hi <= np.iinfo(np.int16).max:
        dtype = np.int16
    elif hi <= np.iinfo(np.int32).max:
        dtype = np.int32
    else:
        raise ValueError(f"{path}: label value {hi} does not fit in int32")
    return _write_volume(path, labels, like, dtype)


def write_image(
    path: str | os.PathLike,
    image: np.ndarray,
    like: Volume | dict[str, Any],
    dtype: np.dtype | type = np.float32,
) -> Path:
    """Write a ``(Z, Y, X)`` image on `like`'s grid (file orientation and affine), atomically.

    Args:
        path: output ``.nii`` or ``.nii.gz``; its folder must exist.
        image: ``(Z, Y, X)`` array shaped like the source.
        like: the source Volume, or its `Volume.to_metadata` dict.
        dtype: the on-disk dtype (float32 by default); values are cast, not rescaled.
    """
    return _write_volume(path, np.asarray(image), like, np.dtype(dtype))


def _write_volume(
    path: str | os.PathLike, array: np.ndarray, like: Volume | dict[str, Any], dtype: Any
) -> Path:
    path = Path(path)
    if not is_nifti_path(path):
        raise ValueError(f"{path}: expected a file name ending in .nii or .nii.gz")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder {path.parent} does not exist")
    volume = like if isinstance(like, Volume) else _geometry_only(like)
    expected = volume.array_shape
    if array.shape != expected:
        raise ValueError(
            f"{path}: array shape {array.shape} does not match the source grid {expected} "
            f"(Z, Y, X) of {volume.path or 'the source image'}"
        )
    file_array = np.ascontiguousarray(volume.to_file_order(array).astype(dtype, copy=False))
    img = nib.Nifti1Image(file_array, affine=None, header=_header_for(volume, file_array.dtype))
    # The constructor clears scaling; set it after so nibabel writes slope 1 / inter 0 verbatim
    # instead of choosing its own scaling.
    img.header.set_slope_inter(1.0, 0.0)
    suffix = ".nii.gz" if str(path).lower().endswith(".gz") else ".nii"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    try:
        img.to_filename(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _header_for(volume: Volume, dtype: np.dtype) -> nib.Nifti1Header:
    """A fresh header with the source geometry copied verbatim and scaling reset."""
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(volume.file_shape)
    hdr.set_data_dtype(dtype)
    geometry = volume.header
    if "srow_x" in geometry:
        for key in _GEOMETRY_FIELDS:
            if key == "pixdim":  # qfac and the three voxel sizes; time/other dims dropped
                hdr["pixdim"][:4] = geometry["pixdim"][:4]
            else:
                hdr[key] = geometry[key]
    else:  # metadata without raw fields (written by hand): the affine is all we know
        hdr.set_sform(volume.affine, code=1)
        hdr.set_qform(volume.affine, code=1)
    return hdr


def _geometry_from_header(header: Any) -> dict[str, Any]:
    """The raw geometry fields of a NIfTI-1/2 header as JSON-able Python values."""
    out: dict[str, Any] = {}
    for key in _GEOMETRY_FIELDS:
        value = np.asarray(header[key])
        out[key] = value.tolist() if value.ndim else value.item()
    out["pixdim"] = out["pixdim"][:4]
    return out


def _load_nifti(path: str | os.PathLike) -> nib.Nifti1Image:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: expected a NIfTI file (.nii or .nii.gz), found a folder")
    try:
        img = nib.load(path)
    except Exception as err:  # nibabel raises many types for a bad file
        raise ValueError(f"{path}: cannot be read as NIfTI ({type(err).__name__}: {err})") from err
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise ValueError(
            f"{path}: expected a single-file NIfTI image (.nii/.nii.gz), found {type(img).__name__}"
        )
    return img


def _spatial_shape(shape: tuple[int, ...], path: str | os.PathLike) -> tuple[int, int, int]:
    if len(shape) < 3 or any(int(s) != 1 for s in shape[3:]):
        raise ValueError(
            f"{path}: expected a 3D volume (or 4D with a single volume), found shape {shape}"
        )
    return (int(shape[0]), int(shape[1]), int(shape[2]))


def _array_spacing(affine: np.ndarray, axes: tuple[int, int, int]) -> tuple[float, float, float]:
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
