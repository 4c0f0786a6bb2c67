"""Labels of a DICOM series as a DICOM Segmentation object (highdicom), so they go back to a PACS.

`write_dicom_seg` builds one binary ``highdicom.seg.Segmentation`` from the source series'
own datasets, read back with pydicom from the paths the `Volume` kept
(``Volume.source["files"]``, in stack order, see `napari_fob.core.dicom`): highdicom takes
the study, patient, frame of reference and per-frame geometry from them, and each frame
references its source slice by SOPInstanceUID. A file that moved, or whose SOPInstanceUID is
not the one read, is refused: the object would point at other images.

Segments: one per label value present, numbered 1, 2, ... in increasing label value (DICOM
wants consecutive segment numbers, label values may have gaps); the segment label is the
structure's name when known, else "label N"; the label value itself is the segment's
TrackingID, so a reader can map segments back to the NIfTI's values. Every segment is
SEMIAUTOMATIC (prompts predicted, reviewed and segmented by SAM), with the generic coded
property "Anatomical Structure" (the product does not know what the structure is).

Imports highdicom and pydicom lazily; never napari, Qt or torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from napari_fob import __version__
from napari_fob.core.volume import Volume

ALGORITHM_NAME = "napari-fob FoB + SAM"
MANUFACTURER = "napari-fob"
# Type 2 patient/study attributes a DICOM-SEG copies from its source: they must be present but may
# be empty, and a de-identified series often drops them; an absent one is copied as empty.
TYPE2_COPIED = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)


def dicom_seg_problem(volume: Volume) -> str | None:
    """Why `volume` cannot get a DICOM-SEG (a sentence), or None when it can.

    A DICOM-SEG needs the source series: a Volume read from a DICOM folder whose slice files
    are still where they were read and whose series has a FrameOfReferenceUID (the shared
    coordinate system the segmentation is defined in).
    """
    source = volume.source or {}
    where = volume.path or "the image"
    if source.get("format") != "dicom":
        kind = source.get("format") or "NIfTI"
        return f"{where} is {kind}, not a DICOM series; DICOM-SEG references DICOM images"
    if not source.get("frame_of_reference_uid"):
        return f"{where}: the series has no FrameOfReferenceUID, which a DICOM-SEG must share"
    files = source.get("files") or []
    missing = [f for f in files if not Path(f).is_file()]
    if not files or missing:
        return f"{where}: the series' file {missing[0] if missing else '(none)'} is gone"
    return None


def write_dicom_seg(
    path: str | os.PathLike,
    labels: np.ndarray,
    volume: Volume,
    *,
    names: dict[int, str] | None = None,
) -> dict[str, Any]:
    """Write `build_dicom_seg`'s object to `path` (as given: atomic placement is the caller's,
    e.g. a `napari_fob.core.atomic.ResultFolder` path); returns its description."""
    seg, info = build_dicom_seg(labels, volume, names=names)
    seg.save_as(str(path))
    return info


def build_dicom_seg(
    labels: np.ndarray,
    volume: Volume,
    *,
    names: dict[int, str] | None = None,
    series_description: str = "napari-fob segmentation",
) -> tuple[Any, dict[str, Any]]:
    """The ``(Z, Y, X)`` integer `labels` on `volume`'s grid as a binary DICOM-SEG dataset.

    Built in memory, so a caller that cannot use it has written nothing.

    Args:
        labels: ``(Z, Y, X)`` array of label values >= 0 on the DICOM Volume's grid.
        volume: a Volume read by `napari_fob.core.dicom.read_dicom_series`.
        names: structure names by label value (segment labels); missing ones are "label N".
        series_description: the new series' description.

    Returns:
        (the ``highdicom.seg.Segmentation``, what it holds as JSON-able values: its SOP and
        series UIDs and its segments ``{segment_number: {"label": value, "name": ...}}``).

    Raises:
        ValueError: `volume` is not an intact DICOM series (see `dicom_seg_problem`), the labels
            are not on its grid, or they hold no structure.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    problem = dicom_seg_problem(volume)
    if problem:
        raise ValueError(f"no DICOM-SEG: {problem}")
    labels = np.asarray(labels)
    if labels.shape != volume.array_shape:
        raise ValueError(
            f"DICOM-SEG: labels shape {labels.shape} differs from the DICOM grid "
            f"{volume.array_shape} (Z, Y, X) of {volume.path}"
        )
    values = [int(v) for v in np.unique(labels) if v > 0]
    if not values:
        raise ValueError("no DICOM-SEG: the labels hold no structure; it needs one segment")
    sources = _source_datasets(volume)
    # file order (i, j, k) -> one (row j, column i) frame per source slice k, in stack order
    frames = np.transpose(volume.to_file_order(labels), (2, 1, 0))  # (K, J, I)
    masks = np.stack([frames == v for v in values], axis=-1)  # (K, J, I, segments)
    names = names or {}
    algorithm = hd.AlgorithmIdentificationSequence(
        name=ALGORITHM_NAME, family=codes.cid7162.ArtificialIntelligence, version=__version__
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=(names.get(v) or f"label {v}")[:64],  # LO: 64 characters
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=codes.SCT.AnatomicalStructure,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
            algorithm_identification=algorithm,
            tracking_uid=generate_uid(),
            tracking_id=str(v),
        )
        for n, v in enumerate(values, start=1)
    ]
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=masks,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=_series_number(sources[0]),
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=ALGORITHM_NAME,
        software_versions=__version__,
        device_serial_number="none",
        series_description=series_description,
        content_label="FOB_LABELS",
        content_description="labels from napari-fob (FoB prompts + SAM)",
    )
    return seg, {
        "sop_instance_uid": str(seg.SOPInstanceUID),
        "series_instance_uid": str(seg.SeriesInstanceUID),
        "segments": {
            str(n): {"label": v, "name": names.get(v)} for n, v in enumerate(values, start=1)
        },
    }


def _source_datasets(volume: Volume) -> list[Any]:
    """The source slices' headers in stack order, each checked against the UID read."""
    import pydicom

    uids = volume.source.get("sop_instance_uids") or []
    out = []
    for k, file in enumerate(volume.source["files"]):
        ds = pydicom.dcmread(file, stop_before_pixels=True)
        if k < len(uids) and str(ds.get("SOPInstanceUID", "")) != uids[k]:
            raise ValueError(
                f"no DICOM-SEG: {file} is no longer the slice read (SOPInstanceUID "
                f"{ds.get('SOPInstanceUID')}, expected {uids[k]}); the series changed on disk"
            )
        for key in TYPE2_COPIED:
            if key not in ds:
                setattr(ds, key, None)  # an empty Type 2 element (the file is not changed)
        out.append(ds)
    return out


def _series_number(source: Any) -> int:
    """A series number beside the source's (DICOM wants one; viewers sort by it)."""
    try:
        return int(source.get("SeriesNumber", 0) or 0) + 1000
    except (TypeError, ValueError):
        return 1000
