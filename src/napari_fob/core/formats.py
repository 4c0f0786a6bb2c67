"""One volume reader for every format clinicians hand over, all giving the same `Volume`.

`read_volume` opens

* NIfTI ``.nii``/``.nii.gz`` (`napari_fob.core.io.read_nifti`, as before);
* a DICOM series folder, or one ``.dcm`` file of it (`napari_fob.core.dicom`);
* NRRD ``.nrrd``/``.nhdr`` and MetaImage ``.mha``/``.mhd`` (SimpleITK);
* FreeSurfer MGH ``.mgz``/``.mgh`` (nibabel).

Every Volume has the NIfTI path's geometry: ``affine`` maps file voxel (i, j, k) to world mm in
RAS+ (ITK's and DICOM's LPS are turned into RAS by negating x and y), and the array is a pure
transposition of the file's voxel array. So labels drawn on any of them are written as NIfTI
on the source's grid by `napari_fob.core.io.write_labels` (world coordinates equal to the
source's), and `read_support` reads a label file of any of these formats on that grid.

Imports SimpleITK and pydicom lazily (only for those formats); never napari, Qt or torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from napari_fob.core.dicom import LPS_TO_RAS, is_dicom_file, read_dicom_series
from napari_fob.core.io import check_gzip, is_nifti_path, read_labels, read_nifti
from napari_fob.core.volume import AFFINE_ATOL_MM, Volume, array_axes

ITK_SUFFIXES = {".nrrd": "nrrd", ".nhdr": "nrrd", ".mha": "metaimage", ".mhd": "metaimage"}
_ITK_IO = {"nrrd": "NrrdImageIO", "metaimage": "MetaImageIO"}  # named: ITK's guess is case-bound
MGH_SUFFIXES = (".mgz", ".mgh")
VOLUME_SUFFIXES = (".nii", ".nii.gz", *ITK_SUFFIXES, *MGH_SUFFIXES, ".dcm")
FORMATS = (
    "NIfTI (.nii, .nii.gz), a DICOM series folder (or one .dcm file of it), NRRD (.nrrd, "
    ".nhdr), MetaImage (.mha, .mhd) or MGH (.mgz, .mgh)"
)


def is_volume_path(path: str | os.PathLike) -> bool:
    """True when the file name has one of the suffixes `read_volume` opens (no folder test)."""
    return str(path).lower().endswith(VOLUME_SUFFIXES)


def volume_stem(path: str | os.PathLike) -> str:
    """The file name without its volume suffix (``.nii.gz``, ``.nrrd``, ...), or a folder's name."""
    name = Path(path).name
    for suffix in sorted(VOLUME_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_volume(
    path: str | os.PathLike, *, series: str | None = None, slice_axis: int = 2
) -> Volume:
    """Read a 3D image of any supported format as a float32 ``(Z, Y, X)`` Volume.

    Args:
        path: a file, or a folder holding a DICOM series.
        series: for DICOM, the SeriesInstanceUID to read (default: the series with the most
            slices, with a warning naming the others); refused for other formats.
        slice_axis: the file voxel axis that becomes array axis 0 (default 2: for DICOM the
            slice axis, for the other formats the file's third axis).

    Raises:
        FileNotFoundError: nothing at `path`.
        ValueError: an unknown format or a file that cannot be used; the message names it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    dicom = path.is_dir() or path.suffix.lower() == ".dcm" or is_dicom_file(path)
    if series is not None and not dicom:
        raise ValueError(f"{path}: a series UID ({series}) was given, but this is not DICOM")
    if path.is_dir():
        volume = read_dicom_series(path, series=series)
    elif dicom:
        volume = _read_dicom_file(path, series)
    elif is_nifti_path(path):
        return read_nifti(path, slice_axis=slice_axis)
    elif path.suffix.lower() in ITK_SUFFIXES:
        volume = _read_itk(path)
    elif path.suffix.lower() in MGH_SUFFIXES:
        volume = _read_mgh(path)
    else:
        raise ValueError(f"{path}: unknown image format; expected {FORMATS}")
    return volume if slice_axis == 2 else _reslice(volume, slice_axis)


def read_support(path: str | os.PathLike, like: Volume) -> np.ndarray:
    """Labels of any `read_volume` format on `like`'s grid, as a ``(Z, Y, X)`` int array.

    NIfTI files go through `napari_fob.core.io.read_labels`; the others must have the same
    voxel grid (shape and affine within `AFFINE_ATOL_MM`) and whole, non-negative values.
    """
    path = Path(path)
    if is_nifti_path(path):
        return read_labels(path, like=like)
    other = read_volume(path)
    source = like.path or "the image in memory"
    if tuple(other.file_shape) != tuple(like.file_shape):
        raise ValueError(
            f"{path}: label shape {tuple(other.file_shape)} differs from the image {source} "
            f"shape {tuple(like.file_shape)}; labels must be on the image's voxel grid"
        )
    if not np.allclose(other.affine, like.affine, rtol=0, atol=AFFINE_ATOL_MM):
        raise ValueError(
            f"{path}: label affine\n{np.array2string(other.affine, precision=4)}\ndiffers from "
            f"the affine of the image {source}\n{np.array2string(like.affine, precision=4)}"
        )
    data = other.to_file_order(other.data)
    if not np.all(np.isfinite(data)) or np.any(data != np.round(data)) or data.min() < 0:
        raise ValueError(f"{path}: expected whole-number label values >= 0")
    return np.ascontiguousarray(np.transpose(data.astype(np.int32), like.axes))


def write_labels_nrrd(path: str | os.PathLike, labels: np.ndarray, like: Volume) -> Path:
    """Write ``(Z, Y, X)`` integer labels as NRRD on `like`'s file grid (SimpleITK, gzip).

    The voxel order, origin, spacing and directions are the source's (RAS affine turned back
    into ITK's LPS), so 3D Slicer shows the labels on the NRRD they were drawn on. The file is
    written as given: the caller places it (e.g. a `napari_fob.core.atomic.ResultFolder` path).
    Values: uint8 when the largest label is < 256, else uint16 or uint32.
    """
    import SimpleITK as sitk

    labels = np.asarray(labels)
    if labels.shape != like.array_shape:
        raise ValueError(
            f"{path}: labels shape {labels.shape} differs from the source grid "
            f"{like.array_shape} (Z, Y, X) of {like.path or 'the image'}"
        )
    hi = int(labels.max()) if labels.size else 0
    if labels.size and labels.min() < 0:
        raise ValueError(f"{path}: label values must be >= 0, found {labels.min()}")
    dtype = np.uint8 if hi < 256 else np.uint16 if hi < 65536 else np.uint32
    file_array = like.to_file_order(labels).astype(dtype)  # (i, j, k)
    img = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(file_array, (2, 1, 0))))
    lps = LPS_TO_RAS @ np.asarray(like.affine, dtype=float)  # the flip is its own inverse
    spacing = np.sqrt(np.sum(lps[:3, :3] ** 2, axis=0))
    img.SetSpacing([float(s) for s in spacing])
    img.SetOrigin([float(v) for v in lps[:3, 3]])
    img.SetDirection([float(v) for v in (lps[:3, :3] / spacing).ravel()])
    sitk.WriteImage(img, str(path), useCompression=True, imageIO=_ITK_IO["nrrd"])
    return Path(path)


def _read_dicom_file(path: Path, series: str | None) -> Volume:
    """One file of a series: read its folder's series (the file's own unless `series`)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        uid = str(ds.SeriesInstanceUID)
    except Exception as err:
        raise ValueError(
            f"{path}: cannot be read as DICOM ({type(err).__name__}: {err}); expected a slice "
            "of a DICOM series, or give the series' folder"
        ) from err
    return read_dicom_series(path.parent, series=series or uid)


def _read_itk(path: Path) -> Volume:
    import SimpleITK as sitk

    kind = ITK_SUFFIXES[path.suffix.lower()]
    try:
        img = sitk.ReadImage(str(path), imageIO=_ITK_IO[kind])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1] if str(err).strip() else ""
        raise ValueError(f"{path}: cannot be read as {kind} ({first})") from err
    size = img.GetSize()
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(
            f"{path}: {img.GetNumberOfComponentsPerPixel()} components per voxel (a vector or "
            "colour image); expected a scalar 3D volume"
        )
    if len(size) == 4 and size[3] == 1:
        img = img[:, :, :, 0]
    elif len(size) != 3:
        raise ValueError(f"{path}: expected a 3D volume, found {len(size)}D of size {size}")
    lps = np.eye(4)
    direction = np.array(img.GetDirection(), dtype=float).reshape(3, 3)
    lps[:3, :3] = direction * np.array(img.GetSpacing(), dtype=float)
    lps[:3, 3] = img.GetOrigin()
    data = sitk.GetArrayFromImage(img).astype(np.float32)  # (k, j, i)
    volume = Volume.from_array(data, affine=LPS_TO_RAS @ lps, axes=(2, 1, 0), path=path)
    volume.source = {"format": kind}
    return volume


def _read_mgh(path: Path) -> Volume:
    if path.suffix.lower() == ".mgz":
        check_gzip(path)
    try:
        img: Any = nib.load(path)
    except Exception as err:  # nibabel raises many types for a bad file
        raise ValueError(f"{path}: cannot be read as MGH ({type(err).__name__}: {err})") from err
    shape = img.shape
    if len(shape) < 3 or any(int(s) != 1 for s in shape[3:]):
        raise ValueError(f"{path}: expected a 3D volume (or 4D with one frame), found {shape}")
    data = img.get_fdata(dtype=np.float32).reshape(shape[:3])  # (i, j, k)
    affine = np.asarray(img.affine, dtype=float)
    volume = Volume.from_array(np.transpose(data, (2, 1, 0)), affine=affine, path=path)
    volume.source = {"format": "mgh"}
    return volume


def _reslice(volume: Volume, slice_axis: int) -> Volume:
    """The same file grid with another file axis as array axis 0."""
    axes = array_axes(slice_axis)
    data = np.ascontiguousarray(np.transpose(volume.to_file_order(volume.data), axes))
    out = Volume.from_array(data, affine=volume.affine, axes=axes, path=volume.path)
    out.source = volume.source
    return out
