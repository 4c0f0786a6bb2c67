"""One ``fob segment`` job: an image and its support in, labels + sidecar + report + overview out.

`segment_volume` is the whole headless pipeline for one volume, shared by ``fob segment`` and
``fob demo``: read and check the inputs, predict prompts (FoB or a baseline) per structure,
commit them with the segmenter, then write ``labels.nii.gz``, ``prompts.json``, ``report.json``
and ``overview.png``, plus the labels in the source's format when it has one
(``labels.seg.dcm`` for DICOM, ``labels.nrrd`` when asked: `segment_exports`). The files are
one unit (`core.atomic.ResultFolder`): the folder is checked before any work (not holding the
inputs; no previous result unless ``overwrite``), and a failure or a kill at any point leaves
the previous result whole. Bad input raises
`napari_fob.cli.UsageError` with one paragraph.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_fob.cli import UsageError

log = logging.getLogger(__name__)
REPORT_FILE = "report.json"
OVERVIEW_FILE = "overview.png"


def parse_slices(text: str, n_slices: int) -> str | list[int]:
    """ "auto" or "A:B" (Python slice semantics: A included, B excluded, either may be empty)."""
    if text == "auto":
        return "auto"
    parts = text.split(":")
    if len(parts) != 2:
        raise UsageError(f"--slices {text!r}: expected 'auto' or A:B (e.g. 10:40)")
    try:
        a, b = (int(p) if p.strip() else None for p in parts)
    except ValueError:
        raise UsageError(f"--slices {text!r}: A and B must be integers (e.g. 10:40)") from None
    zs = list(range(*slice(a, b).indices(n_slices)))
    if not zs:
        raise UsageError(f"--slices {text!r} selects no slice of a volume with {n_slices} slices")
    return zs


def read_inputs(
    image_path: Path, support_path: Path, *, series: str | None = None
) -> tuple[Any, np.ndarray]:
    """The image Volume and the (Z, Y, X) support labels on its grid (UsageError otherwise).

    The image is any `napari_fob.core.formats.read_volume` format (NIfTI, a DICOM series
    folder, NRRD, MetaImage, MGH); `series` picks a DICOM series by its SeriesInstanceUID.
    """
    from napari_fob.core.formats import read_support

    image = read_image(image_path, series=series)
    try:
        support = read_support(support_path, like=image)
    except ValueError as err:
        others = image.source.get("other_series")
        hint = (
            f" IMAGE holds other DICOM series too ({'; '.join(others)}): choose the support's "
            "with --series UID."
            if others
            else ""
        )
        raise UsageError(
            f"SUPPORT {support_path} is not on the grid of IMAGE {image_path}: {err}. Paint the "
            f"support on the image itself (same shape and affine).{hint}"
        ) from None
    return image, support


def read_image(image_path: Path, *, series: str | None = None) -> Any:
    """The IMAGE as a Volume (any `read_volume` format; UsageError naming it otherwise)."""
    from napari_fob.core.formats import FORMATS, read_volume

    try:
        return read_volume(image_path, series=series)
    except ValueError as err:
        raise UsageError(
            f"IMAGE {image_path} cannot be used: {err}. fob segment needs a 3D volume (a 2D "
            f"image has no slices to propagate prompts along): {FORMATS}."
        ) from None


def choose_labels(support: np.ndarray, wanted: Sequence[int] | None, where: Path) -> list[int]:
    """Structures to segment: `wanted` (each must have support voxels) or all in the support."""
    present = [int(v) for v in np.unique(support) if v > 0]
    if not present:
        raise UsageError(
            f"SUPPORT {where} has no non-zero voxels: paint at least one slice of the structure "
            "with its label value (e.g. 1) before running fob segment."
        )
    if wanted is None:
        return present
    unknown = [lab for lab in wanted if lab not in present]
    if unknown:
        raise UsageError(
            f"--labels {','.join(map(str, unknown))}: no support voxels for "
            f"{'this label' if len(unknown) == 1 else 'these labels'} in {where}; the support "
            f"holds labels {','.join(map(str, present))}."
        )
    return list(wanted)


def check_supports_in_range(
    support: np.ndarray, chosen: Sequence[int], zs: str | list[int], text: str, where: Path
) -> None:
    """Refuse support slices outside the ``--slices`` range: they would be committed as
    painted, beside a range the user said holds the structure (UsageError naming them)."""
    if isinstance(zs, str):
        return
    inside = set(zs)
    outside = {}
    for label in chosen:
        painted = np.flatnonzero((support == label).any(axis=(1, 2)))
        off = [int(z) for z in painted if int(z) not in inside]
        if off:
            outside[label] = off
    if outside:
        listed = "; ".join(
            f"label {lab} on slice(s) {', '.join(map(str, off))}" for lab, off in outside.items()
        )
        raise UsageError(
            f"SUPPORT {where} has support slices outside --slices {text} (slices {zs[0]} to "
            f"{zs[-1]}): {listed}. Widen --slices to include them, or choose the structures "
            "with --labels."
        )


def warn_nonfinite(data: np.ndarray, where: Path) -> int:
    """Warn once when the image holds NaN / inf voxels; returns their count (in the report)."""
    from napari_fob.core.intensity import count_nonfinite

    n = count_nonfinite(data)
    if n:
        log.warning(
            "IMAGE %s: %d of its %d voxels are NaN or inf; they are ignored when the intensity "
            "window is computed and given to the models as the window's low end (NaN, -inf) or "
            "high end (+inf). A support covering one is refused.",
            where,
            n,
            int(np.size(data)),
        )
    return n


def read_names(support_path: Path) -> dict[int, str]:
    """Structure names from a ``labels.json`` ({"1": "liver", ...}) beside the support, if any."""
    path = support_path.parent / "labels.json"
    if not path.exists():
        return {}
    return {int(k): str(v) for k, v in json.loads(path.read_text()).items()}


def drive(gen, desc: str, progress: bool):
    """Run a session generator under a tqdm bar (terminals only); returns its result."""
    from tqdm import tqdm

    from napari_fob.session import run

    # disable=None: a bar on a terminal, none when stderr is a file or a pipe (logs stay clean)
    with tqdm(desc=desc, disable=None if progress else True, leave=False, unit="slice") as bar:

        def update(p):
            bar.total = p.total
            bar.n = p.done
            bar.refresh()

        return run(gen, update)


def segment_volume(
    image_path: Path,
    support_path: Path,
    out_dir: Path,
    *,
    generator: Any,
    segmenter: Any,
    notices: Sequence[str] = (),
    labels: Sequence[int] | None = None,
    slices: str = "auto",
    mode: str = "fixed",
    window: Any = "auto",
    threshold: float | None = None,
    progress: bool = True,
    overwrite: bool = False,
    series: str | None = None,
    dicom_seg: bool | None = None,
    labels_format: str = "nifti",
) -> dict[str, Any]:
    """Segment one volume and write its output files as one unit; returns the report.

    `series` chooses the DICOM series (SeriesInstanceUID) when `image_path` is a DICOM folder.
    `dicom_seg` (None: on for DICOM inputs) and `labels_format` ("nrrd": also labels.nrrd,
    NRRD inputs only) choose the extra label files (`segment_exports`).

    Raises:
        UsageError: bad input, or `out_dir` holds the inputs / a previous result (without
            `overwrite`); both checked before any computation.
    """
    from napari_fob.commands import segment_exports as exports
    from napari_fob.segmenters.registry import cache_stats
    from napari_fob.session import AnnotationSession

    t0, cache_before = time.perf_counter(), cache_stats(segmenter)
    out_dir = Path(out_dir)
    unit = result_folder(out_dir, [Path(image_path), Path(support_path)], overwrite=overwrite)
    timings: dict[str, float] = {}
    image, support = read_inputs(Path(image_path), Path(support_path), series=series)
    plan = exports.plan_exports(
        image, Path(image_path), dicom_seg=dicom_seg, labels_format=labels_format
    )
    chosen = choose_labels(support, labels, Path(support_path))
    zs = parse_slices(slices, image.data.shape[0])
    check_supports_in_range(support, chosen, zs, slices, Path(support_path))
    nonfinite = warn_nonfinite(image.data, Path(image_path))
    session = AnnotationSession(
        image,
        generator=generator,
        segmenter=segmenter,
        window=window,
        names=read_names(Path(support_path)),
    )
    session.set_supports_from_volume(np.where(np.isin(support, chosen), support, 0))
    timings["read"] = time.perf_counter() - t0
    timings["predict"] = timings["commit"] = 0.0
    per_label: dict[str, Any] = {}
    if threshold is None:  # the calibrated confidence's cut (napari_fob.prompting.confidence)
        from napari_fob.prompting.confidence import AUTO_THRESHOLD as threshold
    for label in chosen:
        t = time.perf_counter()
        predicted = drive(
            session.predict(label, zs, mode=mode, threshold=threshold), f"prompts {label}", progress
        )
        timings["predict"] += time.perf_counter() - t
        t = time.perf_counter()
        todo = sorted(set(predicted) | set(session.supports[label]))
        if mode == "chain":  # the chain committed as it went; only the painted slices remain
            todo = sorted(session.supports[label])
        drive(session.commit(label, todo), f"masks {label}", progress)
        timings["commit"] += time.perf_counter() - t
        per_label[str(label)] = label_report(session, label, predicted)
    source = {"image": str(image_path), "support": str(support_path)}
    settings = dict(mode=mode, slices=slices, threshold=threshold, nonfinite_voxels=nonfinite)
    return write_result(
        unit, out_dir, session, image, plan, source=source, settings=settings, notices=notices,
        per_label=per_label, timings=timings, t0=t0, cache_before=cache_before,
    )  # fmt: skip


def write_result(
    unit: Any,
    out_dir: Path,
    session: Any,
    image: Any,
    plan: Any,
    *,
    source: dict[str, Any],
    settings: dict[str, Any],
    notices: Sequence[str],
    per_label: dict[str, Any],
    timings: dict[str, float],
    t0: float,
    cache_before: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Write a job's files into its open `unit` (labels, sidecar, exports, overview, report)
    and return the report: `source` (the input paths) and `settings` (how the prompts were
    placed) are recorded as given; `cache_before`, the segmenter's cache counters when the job
    began, makes the report's counters this volume's. Shared by the support and the reference
    jobs."""
    from napari_fob.commands import segment_exports as exports
    from napari_fob.commands.overview import write_overview
    from napari_fob.segmenters.registry import cache_stats
    from napari_fob.session.sidecar import stage_session

    t = time.perf_counter()
    with unit:
        written = stage_session(session, unit)
        extra, seg, export_notices = exports.write_exports(unit, session, image, plan)
        timings["save"] = time.perf_counter() - t
        t = time.perf_counter()
        write_overview(
            unit.path(OVERVIEW_FILE),
            session.volume,
            session.window,
            session.labels,
            session.prompts,
            names=session.names,
            title=Path(source["image"]).name,
        )
        timings["overview"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        report = {
            **source,
            "outputs": {k: str(v) for k, v in (written | extra).items()}
            | {"overview": str(out_dir / OVERVIEW_FILE), "report": str(out_dir / REPORT_FILE)},
            "dicom_series": exports.describe_source(image),
            "dicom_seg": seg or None,
            "shape": list(session.shape),
            **settings,
            "window": session.window.to_dict(),
            "prompts": session.generator.describe(),
            "segmenter": session.segmenter.describe(),
            "embedding_cache": cache_stats(session.segmenter, since=cache_before),
            "notices": [*notices, *export_notices],
            "labels": per_label,
            "timings_s": {k: round(v, 4) for k, v in timings.items()},
        }
        unit.path(REPORT_FILE).write_text(json.dumps(report, indent=1, allow_nan=False))
    return report


def result_folder(out_dir: Path, inputs: Sequence[Path], *, overwrite: bool) -> Any:
    """The `ResultFolder` of one job, checked now (UsageError naming the folder otherwise)."""
    from napari_fob.core.atomic import ResultFolder, check_folder
    from napari_fob.session.sidecar import RESULT_FILES

    try:
        check_folder(out_dir, RESULT_FILES, overwrite=overwrite, protect=inputs, what="--out")
    except ValueError as err:
        raise UsageError(str(err)) from None
    return ResultFolder(out_dir, names=RESULT_FILES, overwrite=overwrite, protect=inputs)


def label_report(session: Any, label: int, predicted: list[int]) -> dict[str, Any]:
    keys = [z for (_, z) in session.slices.keys(label) if session.confidence(label, z) is not None]
    committed = [int(z) for z in np.flatnonzero((session.labels == label).any(axis=(1, 2)))]
    return {
        "name": session.names.get(label),
        "support_slices": sorted(session.supports.get(label, {})),  # none from a reference
        "predicted_slices": sorted(predicted),
        "slices_with_voxels": committed,
        "voxels": int((session.labels == label).sum()),
        "confidence": {str(z): session.confidence(label, z) for z in keys},
        "low_confidence": [z for z in keys if session.low_confidence(label, z)],
    }
