"""The labels of one ``fob segment`` job in the source's own format, beside ``labels.nii.gz``.

``labels.nii.gz`` is always written: it is the file the session sidecar describes (its sha256)
and the one ``fob``/napari reload, on the source's grid for every input format. Besides it:

* ``labels.seg.dcm``, a DICOM-SEG (`napari_fob.core.dicom_seg`), for a DICOM series input:
  on by default (``dicom_seg=None``), so the labels can go back to the PACS the series came
  from; ``dicom_seg=False`` turns it off; ``dicom_seg=True`` makes it required (an input that
  cannot get one is refused before any work). When it was not asked for and cannot be made
  (no FrameOfReferenceUID, source files gone, highdicom refusing the series), the job still
  writes the NIfTI and the report says why there is no DICOM-SEG.
* ``labels.nrrd`` for an NRRD input with ``labels_format="nrrd"``
  (`core.formats.write_labels_nrrd`): 3D Slicer's format on the NRRD's own grid. Refused for
  other inputs: their geometry is not an NRRD's, and a silent conversion would hide that.

The files go into the job's `napari_fob.core.atomic.ResultFolder`, so they are replaced with the
rest of the result or not at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_fob.cli import UsageError

log = logging.getLogger(__name__)
DICOM_SEG_FILE = "labels.seg.dcm"
NRRD_FILE = "labels.nrrd"
LABELS_FORMATS = ("nifti", "nrrd")  # --labels-format: nrrd adds labels.nrrd to labels.nii.gz


@dataclass(frozen=True)
class Exports:
    """Which extra label files one job writes (decided before any work, by `plan_exports`)."""

    dicom_seg: bool  # write labels.seg.dcm
    dicom_seg_required: bool  # asked for explicitly: a failure fails the job
    nrrd: bool  # write labels.nrrd
    notices: tuple[str, ...] = ()  # why an export that was on by default is not written


def check_labels_format(image_path: Path, labels_format: str) -> None:
    """Refuse ``--labels-format nrrd`` for an IMAGE that is not NRRD, from its name alone."""
    from napari_fob.core.formats import ITK_SUFFIXES

    if labels_format not in LABELS_FORMATS:
        raise UsageError(
            f"--labels-format {labels_format!r}: expected one of {', '.join(LABELS_FORMATS)}"
        )
    if labels_format == "nrrd" and ITK_SUFFIXES.get(Path(image_path).suffix.lower()) != "nrrd":
        raise UsageError(
            f"--labels-format nrrd: IMAGE {image_path} is not an NRRD file (.nrrd, .nhdr); NRRD "
            "labels are written on an NRRD image's own grid only. labels.nii.gz is written for "
            "every input; drop --labels-format nrrd for this one."
        )


def plan_exports(
    image: Any, image_path: Path, *, dicom_seg: bool | None, labels_format: str
) -> Exports:
    """The extra files for `image` (the Volume read); UsageError for an impossible request."""
    from napari_fob.core.dicom_seg import dicom_seg_problem

    check_labels_format(image_path, labels_format)
    notices: list[str] = []
    problem = dicom_seg_problem(image) if dicom_seg is not False else None
    if dicom_seg and problem:
        raise UsageError(f"--dicom-seg: {problem}. Drop --dicom-seg for this IMAGE.")
    is_dicom = (image.source or {}).get("format") == "dicom"
    write_seg = dicom_seg is True or (dicom_seg is None and is_dicom and problem is None)
    if dicom_seg is None and is_dicom and problem:
        notices.append(f"no {DICOM_SEG_FILE}: {problem}")
        log.warning("%s (labels.nii.gz is written)", notices[-1])
    return Exports(
        dicom_seg=write_seg,
        dicom_seg_required=dicom_seg is True,
        nrrd=labels_format == "nrrd",
        notices=tuple(notices),
    )


def write_exports(
    unit: Any, session: Any, image: Any, plan: Exports
) -> tuple[dict[str, Path], dict, list]:
    """Write the planned files for `session`'s labels on `image` (the Volume read) into `unit`.

    Returns:
        (final paths by output name, the DICOM-SEG's description or {}, notices).
    """
    from napari_fob.core.dicom_seg import build_dicom_seg
    from napari_fob.core.formats import write_labels_nrrd

    outputs: dict[str, Path] = {}
    notices = list(plan.notices)
    seg: dict[str, Any] = {}
    if plan.nrrd:
        write_labels_nrrd(unit.path(NRRD_FILE), session.labels, image)
        outputs["labels_nrrd"] = unit.final(NRRD_FILE)
    if plan.dicom_seg:
        try:  # built in memory first: a refusal leaves no file staged in the unit
            dataset, seg = build_dicom_seg(session.labels, image, names=session.names)
        except Exception as err:  # highdicom raises many types for a series it cannot use
            if plan.dicom_seg_required:
                raise UsageError(f"--dicom-seg: {DICOM_SEG_FILE} cannot be made: {err}") from err
            notice = f"no {DICOM_SEG_FILE}: {type(err).__name__}: {err}"
            log.warning("%s (labels.nii.gz is written)", notice)
            notices.append(notice)
        else:
            dataset.save_as(str(unit.path(DICOM_SEG_FILE)))
            outputs["dicom_seg"] = unit.final(DICOM_SEG_FILE)
    return outputs, seg, notices


def describe_source(image: Any) -> dict[str, Any] | None:
    """The DICOM series the labels are on, for the report (None for other formats)."""
    source = image.source or {}
    if source.get("format") != "dicom":
        return None
    keys = ("series_uid", "study_uid", "frame_of_reference_uid", "modality")
    return {k: source.get(k) for k in keys} | {"slices": len(source.get("files") or [])}
