"""DICOM series folders as a `Volume` (pydicom), on the same world grid as the NIfTI path.

A folder (searched recursively) may hold several series; `read_dicom_series` reads one: the
one named by ``series`` (its SeriesInstanceUID), else the one with the most slices, with a
warning naming the others. Its slices are sorted by position along the slice normal
(ImageOrientationPatient's row x column direction), the slice spacing comes from the
ImagePositionPatient values (never SliceThickness), and RescaleSlope/RescaleIntercept are
applied slice by slice, so a CT is in Hounsfield units.

Geometry: file voxel (i, j, k) is (column, row, slice), so the Volume's ``(Z, Y, X)`` array is
the stack of the slices' pixel arrays, and

    world_LPS = IPP_0 + i * PixelSpacing[1] * row_dir + j * PixelSpacing[0] * col_dir
                + k * spacing * normal

turned into NIfTI's RAS+ (x and y negated), the convention `read_nifti` uses. This is the voxel
order and affine that ITK/SimpleITK (and so a NIfTI written from it) give the same series.

Refused with a message naming the folder: no DICOM images, a single slice, multi-frame or
colour images, slices without position/orientation, mixed orientations or sizes in a series,
two slices at one position, gantry tilt (slices shifted sideways along the stack) and uneven
spacing (a missing slice). Imports pydicom lazily; never napari, Qt or torch.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_fob.core.volume import Volume

log = logging.getLogger(__name__)

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
SPACING_RTOL = 0.01  # a gap between slices may differ from the mean step by 1 %
DRIFT_PIXELS = 0.05  # slices may shift sideways by 5 % of a pixel over the whole stack
ORIENTATION_ATOL = 1e-4  # direction cosines of one series' slices must agree to this
MAX_SNIFF_FILES = 64  # files looked at by `is_dicom_folder`


@dataclass
class _Slice:
    path: Path
    ds: Any  # pydicom Dataset without pixel data


def is_dicom_file(path: str | os.PathLike) -> bool:
    """True when the file has the DICOM preamble ("DICM" at byte 128)."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def is_dicom_folder(path: str | os.PathLike) -> bool:
    """True when `path` is a folder and one of its first files (recursively) is DICOM."""
    path = Path(path)
    if not path.is_dir():
        return False
    for n, file in enumerate(_files(path)):
        if n >= MAX_SNIFF_FILES:
            return False
        if is_dicom_file(file):
            return True
    return False


def list_series(folder: str | os.PathLike) -> dict[str, list[_Slice]]:
    """SeriesInstanceUID -> its image slices (headers only), for every series in `folder`."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise ValueError(f"{folder}: expected a folder of DICOM files, found a file")
    files = list(_files(folder))
    if not files:
        raise ValueError(f"{folder}: the folder is empty; expected the files of a DICOM series")
    series: dict[str, list[_Slice]] = {}
    others: list[Path] = []
    for file in files:
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True)
        except InvalidDicomError:
            others.append(file)
            continue
        except Exception as err:  # a damaged file inside a series: name it
            raise ValueError(
                f"{file}: cannot be read as DICOM ({type(err).__name__}: {err}); the series in "
                f"{folder} is incomplete, copy it again from its source"
            ) from err
        if "Rows" not in ds or "SeriesInstanceUID" not in ds:  # DICOMDIR, reports, SR ...
            others.append(file)
            continue
        series.setdefault(str(ds.SeriesInstanceUID), []).append(_Slice(file, ds))
    if not series:
        example = ", ".join(p.name for p in others[:3])
        raise ValueError(
            f"{folder}: no DICOM image found among its {len(files)} file(s) (e.g. {example}); "
            "expected a folder holding the .dcm files of a series"
        )
    return series


def read_dicom_series(folder: str | os.PathLike, *, series: str | None = None) -> Volume:
    """Read one DICOM series of `folder` as a float32 ``(Z, Y, X)`` Volume in real units.

    Args:
        folder: a folder holding the series' files (subfolders are searched too).
        series: the SeriesInstanceUID to read; default the series with the most slices.
    """
    folder = Path(folder)
    found = list_series(folder)
    uid = _choose(folder, found, series)
    slices = found[uid]
    where = f"{folder}: series {uid}"
    affine, order = _geometry(where, slices)
    slices = [slices[i] for i in order]
    data = np.stack([_pixels(s, where) for s in slices])
    volume = Volume.from_array(data, affine=affine, axes=(2, 1, 0), path=folder)
    first = slices[0].ds
    volume.source = {
        "format": "dicom",
        "series_uid": uid,
        "study_uid": str(first.get("StudyInstanceUID", "")),
        "frame_of_reference_uid": str(first.get("FrameOfReferenceUID", "")),
        "modality": str(first.get("Modality", "")),
        "files": [str(s.path) for s in slices],
        "sop_instance_uids": [str(s.ds.get("SOPInstanceUID", "")) for s in slices],
        "other_series": [describe(u, s) for u, s in sorted(found.items()) if u != uid],
    }
    return volume


def describe(uid: str, slices: list[_Slice]) -> str:
    """One series in a message: UID, slice count, modality and description."""
    ds = slices[0].ds
    text = f"{uid} ({len(slices)} slice(s)"
    for key in ("Modality", "SeriesDescription"):
        if ds.get(key):
            text += f", {ds.get(key)}"
    return text + ")"


def _choose(folder: Path, found: dict[str, list[_Slice]], series: str | None) -> str:
    if series is not None:
        if series not in found:
            raise ValueError(
                f"{folder}: no series {series}; the folder holds "
                + "; ".join(describe(u, s) for u, s in found.items())
            )
        return series
    # the most slices; ties broken by UID so the choice never depends on the file order
    uid = max(sorted(found), key=lambda u: len(found[u]))
    if len(found) > 1:
        rest = "; ".join(describe(u, s) for u, s in sorted(found.items()) if u != uid)
        log.warning(
            "%s holds %d DICOM series: reading the largest, %s; also there: %s. Choose another "
            "with --series UID (series=UID in Python).",
            folder, len(found), describe(uid, found[uid]), rest,
        )  # fmt: skip
    return uid


def _vector(ds: Any, key: str, size: int, path: Path) -> np.ndarray:
    value = ds.get(key)
    if value is None:
        raise ValueError(f"{path}: no {key}; cannot place this DICOM slice in space")
    try:
        arr = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        arr = np.array([])
    if arr.shape != (size,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{path}: {key} {value!r} is not {size} numbers")
    return arr


def _geometry(where: str, slices: list[_Slice]) -> tuple[np.ndarray, np.ndarray]:
    """The RAS affine of the sorted stack and the order that sorts `slices`."""
    for s in slices:
        frames = int(s.ds.get("NumberOfFrames", 1) or 1)
        if frames > 1:
            raise ValueError(
                f"{s.path}: a multi-frame DICOM object ({frames} frames in one file); only "
                "classic series (one slice per file) are read — export the series as single "
                "frames, or convert it to NIfTI first"
            )
    if len(slices) < 2:
        raise ValueError(
            f"{where} has a single slice ({slices[0].path.name}); expected a 3D series of "
            "at least 2 slices"
        )
    first = slices[0]
    orient = _vector(first.ds, "ImageOrientationPatient", 6, first.path)
    shape = (int(first.ds.Rows), int(first.ds.Columns))
    pixel = _vector(first.ds, "PixelSpacing", 2, first.path)
    positions = []
    for s in slices:
        o = _vector(s.ds, "ImageOrientationPatient", 6, s.path)
        if not np.allclose(o, orient, atol=ORIENTATION_ATOL):
            raise ValueError(
                f"{where} mixes slice orientations: {s.path.name} has {o.round(4).tolist()}, "
                f"{first.path.name} {orient.round(4).tolist()} (a localizer?); expected one "
                "orientation per series"
            )
        if (int(s.ds.Rows), int(s.ds.Columns)) != shape:
            raise ValueError(
                f"{where} mixes slice sizes: {s.path.name} is {int(s.ds.Rows)}x"
                f"{int(s.ds.Columns)}, {first.path.name} {shape[0]}x{shape[1]} (rows x columns)"
            )
        positions.append(_vector(s.ds, "ImagePositionPatient", 3, s.path))
    row, col = orient[:3], orient[3:]
    row, col = row / np.linalg.norm(row), col / np.linalg.norm(col)
    normal = np.cross(row, col)
    pos = np.array(positions)
    along = pos @ normal
    order = np.argsort(along, kind="stable")
    pos, along = pos[order], along[order]
    names = [slices[i].path.name for i in order]
    gaps = np.diff(along)
    if np.any(gaps < 1e-3):
        k = int(np.argmin(gaps))
        raise ValueError(
            f"{where}: {names[k]} and {names[k + 1]} lie at the same position (several echoes, "
            "phases or time points in one series?); expected one slice per position"
        )
    step = (along[-1] - along[0]) / (len(along) - 1)
    lateral = np.linalg.norm((pos - pos[0]) - np.outer(along - along[0], normal), axis=1)
    drift = float(lateral.max())
    if drift > DRIFT_PIXELS * float(pixel.min()):
        angle = np.degrees(np.arctan2(float(lateral[-1]), float(along[-1] - along[0])))
        tilt = first.ds.get("GantryDetectorTilt")
        raise ValueError(
            f"{where} is tilted: its slices shift sideways by up to {drift:.3g} mm across the "
            f"stack (gantry tilt about {angle:.2f} deg"
            + (f", GantryDetectorTilt {tilt}" if tilt is not None else "")
            + "), so they are not stacked along their normal; resample the series to an "
            "untilted grid first (e.g. dcm2niix corrects gantry tilt)"
        )
    worst = int(np.argmax(np.abs(gaps - step)))
    if abs(gaps[worst] - step) > SPACING_RTOL * step:
        raise ValueError(
            f"{where} has uneven slice spacing: gaps from {gaps.min():.4g} to {gaps.max():.4g} mm "
            f"(mean {step:.4g} mm), e.g. {gaps[worst]:.4g} mm between {names[worst]} and "
            f"{names[worst + 1]} (a missing slice?); expected evenly spaced slices — export the "
            "complete series, or resample it to an even grid first"
        )
    lps = np.eye(4)
    lps[:3, 0] = row * pixel[1]  # i: along a row, one column to the next
    lps[:3, 1] = col * pixel[0]  # j: down a column, one row to the next
    lps[:3, 2] = normal * step
    lps[:3, 3] = pos[0]
    return LPS_TO_RAS @ lps, order


def _pixels(s: _Slice, where: str) -> np.ndarray:
    """One slice's pixels in real units (RescaleSlope/Intercept applied), float32."""
    import pydicom

    samples = int(s.ds.get("SamplesPerPixel", 1) or 1)
    if samples != 1:
        raise ValueError(
            f"{s.path}: a colour DICOM image ({samples} samples per pixel, "
            f"{s.ds.get('PhotometricInterpretation')}); expected a greyscale CT/MR series"
        )
    ds = None
    try:
        ds = pydicom.dcmread(s.path)
        arr = ds.pixel_array
    except Exception as err:  # truncated pixel data, unsupported compression ...
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        raise ValueError(
            f"{s.path}: the pixel data of this slice of {where} cannot be decoded "
            f"({type(err).__name__}: {err}; transfer syntax {syntax}); a damaged file, or a "
            "compression pydicom cannot decode here — export the series uncompressed"
        ) from err
    if arr.shape != (int(ds.Rows), int(ds.Columns)):
        raise ValueError(f"{s.path}: pixel array shape {arr.shape}, expected (Rows, Columns)")
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    return (arr.astype(np.float64) * slope + intercept).astype(np.float32)


def _files(folder: Path):
    """Every regular file under `folder` (hidden ones skipped), in a stable order."""
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if not name.startswith("."):
                yield Path(root) / name
