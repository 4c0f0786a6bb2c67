"""NIfTI volumes in and out (nibabel), with the file's geometry kept for an exact write-back.

`read_nifti` gives a `Volume` (``napari_fob.core.volume``; re-exported here) whose array is the
file's voxel array transposed so the slicing axis comes first; `write_labels` and
`write_image` transpose back and copy the source's sform/qform (with their codes) verbatim.
Writes are atomic (`napari_fob.core.atomic`): a temporary file in the same folder, then
``os.replace``; the file mode follows the user's umask. Reading a ``.nii.gz`` checks the whole
gzip stream (its CRC and length) first: nibabel alone stops at the last voxel and would use a
damaged file silently.

This module imports only numpy and nibabel: never napari, Qt, magicgui or torch.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from napari_fob.core.atomic import atomic_path
from napari_fob.core.volume import (
    AFFINE_ATOL_MM,
    GEOMETRY_FIELDS,
    Volume,
    array_axes,
    array_spacing,
    geometry_from_header,
    geometry_from_metadata,
    voxel_sizes,
)

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti_path(path: str | os.PathLike) -> bool:
    """True when `path` ends in ``.nii`` or ``.nii.gz`` (case-insensitive)."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


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
    data = _voxels(img, path, lambda: img.get_fdata(dtype=np.float32)).reshape(file_shape)
    affine = np.asarray(img.affine, dtype=float)
    return Volume(
        data=np.ascontiguousarray(np.transpose(data, axes)),
        affine=affine,
        spacing=array_spacing(affine, axes),
        axes=axes,
        file_shape=file_shape,
        path=Path(path),
        header=geometry_from_header(img.header),
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
    if not np.allclose(affine, like.affine, rtol=0, atol=AFFINE_ATOL_MM):
        raise ValueError(
            f"{path}: label affine\n{np.array2string(affine, precision=4)}\ndiffers from the "
            f"affine of the image {source}\n{np.array2string(like.affine, precision=4)}"
        )
    data = _voxels(img, path, lambda: np.asanyarray(img.dataobj)).reshape(file_shape)
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
    volume = like if isinstance(like, Volume) else geometry_from_metadata(like)
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
    with atomic_path(path) as tmp:  # the temporary name keeps the .nii/.nii.gz ending
        img.to_filename(tmp)
    return path


def _header_for(volume: Volume, dtype: np.dtype) -> nib.Nifti1Header:
    """A fresh header with the source geometry copied verbatim and scaling reset."""
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(volume.file_shape)
    hdr.set_data_dtype(dtype)
    geometry = volume.header
    if "srow_x" in geometry:
        for key in GEOMETRY_FIELDS:
            if key == "pixdim":  # qfac and the three voxel sizes; time/other dims dropped
                hdr["pixdim"][:4] = geometry["pixdim"][:4]
            else:
                hdr[key] = geometry[key]
    else:  # metadata without raw fields (written by hand): the affine is all we know
        hdr.set_sform(volume.affine, code=1)
        hdr.set_qform(volume.affine, code=1)
    return hdr


def _load_nifti(path: str | os.PathLike) -> nib.Nifti1Image:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: expected a NIfTI file (.nii or .nii.gz), found a folder")
    if str(path).lower().endswith(".gz"):
        check_gzip(path)
    try:
        img = nib.load(path)
    except Exception as err:  # nibabel raises many types for a bad file
        raise ValueError(f"{path}: cannot be read as NIfTI ({type(err).__name__}: {err})") from err
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise ValueError(
            f"{path}: expected a single-file NIfTI image (.nii/.nii.gz), found {type(img).__name__}"
        )
    return img


def _voxels(img: nib.Nifti1Image, path: str | os.PathLike, read: Any) -> np.ndarray:
    """The voxels `read()` returns, or a ValueError naming the file: a NIfTI of several numbers
    per voxel (RGB, complex) is not a greyscale volume, and a file shorter than its header says
    is damaged, not an environment fault."""
    dtype = img.get_data_dtype()
    if dtype.fields is not None or dtype.kind not in "biuf":
        raise ValueError(
            f"{path}: voxels of type {dtype} (e.g. RGB or complex); expected one real number "
            "per voxel (a greyscale volume)"
        )
    try:
        return read()
    except (OSError, EOFError, ValueError) as err:
        said = " ".join(str(err).split())  # nibabel's messages span lines
        raise ValueError(f"{path}: damaged or truncated NIfTI data ({said})") from err


def check_gzip(path: str | os.PathLike) -> None:
    """Read a gzip file to its end, so its CRC-32 and length are checked.

    Raises:
        ValueError: the file is truncated, damaged or not gzip; the message names it.
    """
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 24):
                pass
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise ValueError(
            f"{path}: damaged or truncated gzip file ({type(err).__name__}: {err}); the volume "
            "cannot be trusted, copy it again from its source"
        ) from err


def _spatial_shape(shape: tuple[int, ...], path: str | os.PathLike) -> tuple[int, int, int]:
    if len(shape) < 3 or any(int(s) != 1 for s in shape[3:]):
        raise ValueError(
            f"{path}: expected a 3D volume (or 4D with a single volume), found shape {shape}"
        )
    return (int(shape[0]), int(shape[1]), int(shape[2]))


__all__ = [
    "NIFTI_SUFFIXES",
    "Volume",
    "array_axes",
    "is_nifti_path",
    "read_labels",
    "read_nifti",
    "voxel_sizes",
    "write_image",
    "write_labels",
]
