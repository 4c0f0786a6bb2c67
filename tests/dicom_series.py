"""Synthetic DICOM CT series written with pydicom's own Dataset API (never the product's code).

`write_series` writes one slice per file, in shuffled file-name order (so a reader that sorts
by name, not by position, gets it wrong), with a deliberately wrong SliceThickness (so a reader
that trusts it gets the spacing wrong). `expected_ras` is the world position of a voxel computed
by hand from what was written: IPP + i * PixelSpacing[1] * row + j * PixelSpacing[0] * col +
k * step, in LPS, then x and y negated for RAS.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

# an oblique orientation: rows rotated 30 deg about z, columns tilted 20 deg out of the plane
_A, _B = np.radians(30), np.radians(20)
OBLIQUE_ROW = np.array([np.cos(_A), np.sin(_A), 0.0])
OBLIQUE_COL = np.array([-np.sin(_A) * np.cos(_B), np.cos(_A) * np.cos(_B), -np.sin(_B)])


def ds_numbers(values) -> list[str]:
    return [format_number_as_ds(float(v)) for v in values]


def written(values) -> np.ndarray:
    """The numbers as a reader sees them after the DS (16-character) formatting."""
    return np.array([float(v) for v in ds_numbers(values)])


def series_geometry(row, col, step_normal: float, shift=(0.0, 0.0)):
    """The slice step vector: `step_normal` mm along the normal plus a sideways `shift`."""
    row, col = written(row), written(col)
    normal = np.cross(row / np.linalg.norm(row), col / np.linalg.norm(col))
    return normal * step_normal + shift[0] * row + shift[1] * col


def write_series(
    folder: Path,
    stored: np.ndarray,
    *,
    origin=(-40.0, 25.0, 110.0),
    row=OBLIQUE_ROW,
    col=OBLIQUE_COL,
    pixel_spacing=(0.7, 0.9),
    step=None,
    positions=None,
    slope: float = 1.0,
    intercept: float = -1024.0,
    series_uid: str | None = None,
    description: str = "synthetic CT",
    seed: int = 0,
    prefix: str = "IM",
    frame_of_reference: bool = True,
) -> dict:
    """Write `stored` ((n_slices, rows, columns) int16 stored values) as a CT series.

    `step` (LPS mm vector between consecutive slices) defaults to 2.5 mm along the normal;
    `positions` (n, 3) overrides the positions altogether; `frame_of_reference` False leaves out
    the FrameOfReferenceUID. Returns what was written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    n, rows, cols = stored.shape
    series_uid = series_uid or generate_uid()
    study_uid = "1.2.826.0.1.3680043.8.498.1"
    frame_uid = generate_uid()
    if positions is None:
        step = series_geometry(row, col, 2.5) if step is None else np.asarray(step, float)
        positions = np.asarray(origin, float) + np.outer(np.arange(n), step)
    positions = np.array([written(p) for p in positions])
    order = np.random.default_rng(seed).permutation(n)  # file names not in position order
    files = []
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        if frame_of_reference:
            ds.FrameOfReferenceUID = frame_uid
        ds.Modality = "CT"
        ds.SeriesDescription = description
        ds.PatientName = "Phantom^Synthetic"
        ds.InstanceNumber = int(order[k]) + 1
        ds.ImagePositionPatient = ds_numbers(positions[k])
        ds.ImageOrientationPatient = ds_numbers([*row, *col])
        ds.PixelSpacing = ds_numbers(pixel_spacing)
        ds.SliceThickness = "7.0"  # wrong on purpose: the spacing must come from the positions
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope = format_number_as_ds(float(slope))
        ds.RescaleIntercept = format_number_as_ds(float(intercept))
        ds.RescaleType = "HU"
        ds.PixelData = np.ascontiguousarray(stored[k], dtype="<i2").tobytes()
        path = folder / f"{prefix}{order[k]:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return {
        "uid": series_uid,
        "frame_uid": frame_uid,
        "positions": positions,
        "row": written(row),
        "col": written(col),
        "pixel_spacing": written(pixel_spacing),
        "files": files,
    }


def expected_ras(info: dict, k: int, j: int, i: int) -> np.ndarray:
    """World RAS mm of slice k, row j, column i, by hand from the written tags."""
    dr, dc = info["pixel_spacing"]
    lps = info["positions"][k] + i * dc * info["row"] + j * dr * info["col"]
    return lps * np.array([-1.0, -1.0, 1.0])


def ct_values(n: int = 4, rows: int = 6, cols: int = 5) -> np.ndarray:
    """Distinct int16 stored values per voxel, so a wrong order or transpose shows."""
    return np.arange(n * rows * cols, dtype=np.int16).reshape(n, rows, cols) * 7 - 300
