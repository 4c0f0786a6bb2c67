"""Saving and loading an `AnnotationSession`: labels NIfTI + a versioned JSON sidecar.

``labels.nii.gz``: the committed labels on the source grid (orientation and affine of the image
the session was opened on; an identity affine for a plain array). ``prompts.json``:

- ``format`` "napari-fob/prompts", ``version`` 1, ``shape`` (Z, Y, X);
- ``source``: the image's geometry (`Volume.to_metadata`), ``window``: the intensity window;
- ``names``, ``generator`` / ``segmenter`` (their ``describe()``), ``thresholds`` per label;
- ``slices``: one record per (label, slice) with its status, confidence and prompts, points in
  voxel coordinates ``(z, row, col)``;
- ``supports``: one record per (label, slice), the mask run-length encoded over the C-order
  flattened (Y, X) slice as ``[start, length]`` pairs of foreground runs.

- ``files``: the sha256 of the ``labels.nii.gz`` written with it, checked by `load_session`
  (a labels file from another save is refused; older sidecars without it load unchecked).

The two files are one unit (`napari_fob.core.atomic.ResultFolder`): a save replaces both or neither,
even when killed half-way, and also removes a previous ``report.json`` / ``overview.png`` /
``labels.seg.dcm`` / ``labels.nrrd`` of ``fob segment`` that would no longer describe the labels.
A folder already holding a result is refused unless ``overwrite=True``. Undo history is not
saved. `load_session` checks every field of ``prompts.json`` first (`sidecar_schema`, pydantic):
a bad file is one ValueError naming the file and the field. Imports numpy, nibabel (through
`io`), pydantic (through the schema) and the standard library.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_fob.core.atomic import ResultFolder, recover, sha256_of_file
from napari_fob.core.intensity import Window
from napari_fob.core.prompts import PromptSet
from napari_fob.session.history import SliceState
from napari_fob.session.supports import check_support

if TYPE_CHECKING:
    from napari_fob.session.annotation import AnnotationSession

FORMAT = "napari-fob/prompts"
VERSION = 1
LABELS_FILE = "labels.nii.gz"
PROMPTS_FILE = "prompts.json"
# every file of one saved result: a save writes the first two and removes the others, which
# `fob segment` writes beside them and which would describe older labels
RESULT_FILES = (
    LABELS_FILE,
    PROMPTS_FILE,
    "report.json",
    "overview.png",
    "labels.seg.dcm",  # DICOM inputs: the labels as DICOM-SEG
    "labels.nrrd",  # NRRD inputs, when asked
)


def rle_encode(mask: np.ndarray) -> list[list[int]]:
    """Runs of True in the C-order flattened `mask` as [[start, length], ...]."""
    flat = np.concatenate([[0], np.asarray(mask, dtype=np.int8).ravel(), [0]])
    edges = np.flatnonzero(np.diff(flat))
    return [[int(s), int(e - s)] for s, e in zip(edges[::2], edges[1::2])]


def rle_decode(runs: list[list[int]], shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of `rle_encode`: a bool array of `shape`."""
    flat = np.zeros(int(np.prod(shape)), dtype=bool)
    for start, length in runs:
        flat[start : start + length] = True
    return flat.reshape(shape)


def _geometry(session: AnnotationSession) -> Any:
    from napari_fob.core.io import Volume

    if session.source is not None:
        return session.source
    return Volume.from_array(session.labels, affine=np.eye(4))


def _points_to_voxels(points: np.ndarray, z: int) -> list[list[float]]:
    return [[float(z), float(r), float(c)] for r, c in points]


def _prompts_record(p: PromptSet, z: int) -> dict[str, Any]:
    record = p.to_dict()
    record["fg"] = _points_to_voxels(p.fg, z)
    record["bg"] = _points_to_voxels(p.bg, z)
    return record


def _prompts_from_record(record: dict[str, Any], label: int, z: int) -> PromptSet:
    data = dict(record)
    for kind in ("fg", "bg"):
        pts = np.asarray(data.get(kind, []), dtype=np.float64).reshape(-1, 3)
        data[kind] = pts[:, 1:]
    data["label"], data["slice_index"] = label, z
    return PromptSet.from_dict(data)


def to_sidecar(session: AnnotationSession) -> dict[str, Any]:
    """The JSON-ready sidecar dict of `session` (see the module docstring)."""
    keys = session.slices.keys()
    slices = []
    for label, z in keys:
        p = session.prompts.get((label, z))
        slices.append(
            {
                "label": label,
                "slice": z,
                "status": session.slice_status(label, z),
                "confidence": session.confidence(label, z),
                "prompts": None if p is None else _prompts_record(p, z),
            }
        )
    supports = [
        {"label": label, "slice": z, "rle": rle_encode(mask)}
        for label, by_z in sorted(session.supports.items())
        for z, mask in sorted(by_z.items())
    ]
    return {
        "format": FORMAT,
        "version": VERSION,
        "shape": list(session.shape),
        "axes": "points are (z, row, col) voxel coordinates; z indexes axis 0 of the volume",
        "source": _geometry(session).to_metadata(),
        "window": session.window.to_dict(),
        "names": {str(k): v for k, v in sorted(session.names.items())},
        "generator": session.generator.describe(),
        "segmenter": session.segmenter.describe(),
        "thresholds": {str(k): v for k, v in sorted(session.thresholds.items())},
        "slices": slices,
        "supports": supports,
    }


def inputs_of(session: AnnotationSession) -> list[Path]:
    """The files a save must never replace: the session's image, when named like a result file.

    A session may be saved beside its image (``image.nii.gz`` is safe there), but never into the
    folder of an image called e.g. ``labels.nii.gz``, which the save would overwrite.
    """
    path = getattr(session.source, "path", None)
    return [Path(path)] if path and Path(path).name in RESULT_FILES else []


def stage_session(session: AnnotationSession, unit: ResultFolder) -> dict[str, Path]:
    """Write labels and sidecar into the open `unit`; returns their final paths."""
    from napari_fob.core.io import write_labels

    sidecar = to_sidecar(session)  # built first: a describe() failure writes nothing
    staged = write_labels(unit.path(LABELS_FILE), session.labels, like=_geometry(session))
    sidecar["files"] = {LABELS_FILE: sha256_of_file(staged)}
    with open(unit.path(PROMPTS_FILE), "w", encoding="utf-8") as handle:
        json.dump(sidecar, handle, indent=1, allow_nan=False)
    return {"labels": unit.final(LABELS_FILE), "prompts": unit.final(PROMPTS_FILE)}


def save_session(
    session: AnnotationSession, out_dir: Path, *, overwrite: bool = False
) -> dict[str, Path]:
    """Write ``labels.nii.gz`` and ``prompts.json`` into `out_dir` as one unit.

    Raises:
        ValueError: `out_dir` holds a previous result and `overwrite` is False, or it holds the
            session's source image.
        OSError: `out_dir` cannot be written.
    """
    with ResultFolder(
        out_dir, names=RESULT_FILES, overwrite=overwrite, protect=inputs_of(session)
    ) as unit:
        return stage_session(session, unit)


def autosave(session: AnnotationSession) -> Exception | None:
    """Save `session` into its ``autosave_dir`` (if set); returns the error of a failed save.

    Called after a commit has been applied: raising would report the commit as failed although
    the labels and the undo step are in place. A failure (a full disk, a folder gone or made
    read-only) is a `UserWarning` naming the folder instead (napari shows it as a
    notification), and the next commit tries again.
    """
    if session.autosave_dir is None:
        return None
    try:
        save_session(session, session.autosave_dir, overwrite=True)
    except (OSError, ValueError) as err:
        warnings.warn(
            f"autosave into {session.autosave_dir} failed: {err}; the commit is kept in the "
            "session (undo still works): save it somewhere else",
            stacklevel=3,
        )
        return err
    return None


def read_sidecar(path: Path) -> dict[str, Any]:
    """Read and check a ``prompts.json`` (JSON, format and version; the fields are checked by
    `sidecar_schema.validate_sidecar`)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no saved session sidecar (prompts.json) there")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a napari-fob session sidecar (not JSON: {err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: expected format {FORMAT!r}, found {data.get('format')!r}")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{path}: field version: expected a positive integer, got {version!r}")
    if version > VERSION:
        raise ValueError(
            f"{path}: sidecar version {data.get('version')} is newer than this napari-fob "
            f"reads ({VERSION}); update napari-fob"
        )
    return data


def load_session(
    cls: type[AnnotationSession], out_dir: Path, volume: Any, *, generator: Any, segmenter: Any
) -> AnnotationSession:
    """Rebuild a session saved by `save_session` for the same `volume` (Volume or array)."""
    from napari_fob.core.io import Volume, read_labels
    from napari_fob.session.sidecar_schema import validate_sidecar

    recover(out_dir)  # finish a save that was interrupted, so the pair read is one unit
    data = read_sidecar(out_dir / PROMPTS_FILE)
    arr = volume if isinstance(volume, np.ndarray) else volume.data
    validate_sidecar(data, out_dir / PROMPTS_FILE, np.shape(arr))  # every field, named
    like = volume if isinstance(volume, Volume) else Volume.from_array(arr, affine=np.eye(4))
    expected = (data.get("files") or {}).get(LABELS_FILE)
    if expected is not None and (out_dir / LABELS_FILE).is_file():
        if sha256_of_file(out_dir / LABELS_FILE) != expected:
            raise ValueError(
                f"{out_dir / LABELS_FILE} is not the labels file saved with "
                f"{out_dir / PROMPTS_FILE} (its sha256 differs): the two come from different "
                "saves, or the labels were changed by hand"
            )
    labels = read_labels(out_dir / LABELS_FILE, like=like)
    session = cls(
        volume,
        generator=generator,
        segmenter=segmenter,
        window=Window.from_dict(data["window"]),
        names={int(k): v for k, v in data.get("names", {}).items()},
        labels=labels,
    )
    session.thresholds = {int(k): float(v) for k, v in data.get("thresholds", {}).items()}
    for i, rec in enumerate(data.get("supports", [])):
        label, z = int(rec["label"]), int(rec["slice"])
        mask = rle_decode(rec["rle"], session.shape[1:])
        try:
            session.restore_support(label, z, check_support(session, label, z, mask))
        except ValueError as err:
            raise ValueError(f"{out_dir / PROMPTS_FILE}: field supports[{i}]: {err}") from None
    for rec in data.get("slices", []):
        label, z = int(rec["label"]), int(rec["slice"])
        p = rec.get("prompts")
        prompts = None if p is None else _prompts_from_record(p, label, z)
        session.slices.put((label, z), SliceState(prompts, rec["status"], rec.get("confidence")))
    return session
