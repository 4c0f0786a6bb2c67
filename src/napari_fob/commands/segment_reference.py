"""``fob segment QUERY... --reference-image REF --reference-labels REF_LABELS``: supports from
another scan, the paper's few-shot setting (`napari_fob.session.reference` holds the rule).

One labelled reference guides many unlabelled queries: per structure, the middle slices of the
three parts of its extent in the reference are resampled by physical size onto each query's
slice grid and prompt the matching thirds of the query's extent (``--slices A:B``, or ``auto``:
the body-relative rule, whose sureness the report records). FoB runs with its in-volume
additions off (`session.reference.across_volume_options`); ``--prompts mask-ring`` redraws each
resampled support's ring; ``registration`` walks within one scan and is refused here.

A manifest row is a reference job when it fills ``reference_image`` and ``reference_labels``
(columns ``image,reference_image,reference_labels[,out]``), a support job when it fills
``support``; a file may mix both. Each job writes the same files as a support job; its
``report.json`` adds, per structure, the reference slices used, the query ranges they
prompted and how the extent was found. `write_summary` writes one CSV row per structure of
every job of this process (`summary_path`: ``--summary``, by default ``OUT/summary.csv`` when
a job takes a reference; ``.rank<R>`` is added under torchrun). `fob segment` rewrites it,
atomically, after every volume, so a batch that is killed or interrupted keeps the rows of the
volumes it finished.

Nothing heavy at import time (the CLI imports this module to build its parser).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import time
from pathlib import Path
from typing import Any

from napari_fob.cli import UsageError

REFERENCE_COLUMNS = ("reference_image", "reference_labels")
SUMMARY_COLUMNS = (
    "image", "out", "status", "supports_from", "label", "name", "predicted_slices",
    "first_slice", "last_slice", "voxels", "mean_confidence", "low_confidence_slices",
    "extent_rule", "extent_sure", "extent_note", "error",
)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reference-image",
        metavar="REF",
        help="a labelled scan whose structures guide every IMAGE (supports from another scan: "
        "the paper's few-shot setting); instead of --support",
    )
    parser.add_argument(
        "--reference-labels",
        metavar="REF_LABELS",
        help="the labels of --reference-image, on its grid (one value per structure)",
    )
    parser.add_argument(
        "--summary",
        metavar="CSV",
        help="one row per volume and structure: what was done and how confident (default: "
        "OUT/summary.csv when supports come from a reference; under torchrun one file per rank)",
    )


def command_line_pairs(args: argparse.Namespace) -> list[tuple[Path, None, None, tuple]]:
    """(image, None, None, (reference image, reference labels)) per IMAGE of the command line."""
    ref_image, ref_labels = args.reference_image, args.reference_labels
    if bool(ref_image) != bool(ref_labels):
        given = "--reference-image" if ref_image else "--reference-labels"
        raise UsageError(
            f"{given} was given alone: supports from another scan need both --reference-image "
            "REF and --reference-labels REF_LABELS"
        )
    if args.support:
        raise UsageError(
            "--support and --reference-image both given: supports come either from the image "
            "itself (--support) or from another scan (--reference-image/--reference-labels)"
        )
    return [(Path(i), None, None, (Path(ref_image), Path(ref_labels))) for i in args.images]


def check_columns(path: Path, fields: list[str]) -> None:
    """UsageError unless the manifest has an image column and one kind of support columns."""
    reference = set(REFERENCE_COLUMNS) <= set(fields)
    if "image" not in fields or not ("support" in fields or reference):
        raise UsageError(
            f"--manifest {path}: columns {fields}; expected image,support[,out] or "
            "image,reference_image,reference_labels[,out]"
        )


def manifest_row(path: Path, number: int, row: dict[str, str]) -> tuple:
    """(image, support or None, out or None, (ref image, ref labels) or None) of one row;
    relative paths are relative to the CSV's folder."""
    cell = lambda key: (row.get(key) or "").strip()  # noqa: E731
    out = Path(cell("out")) if cell("out") else None
    refs = [cell(k) for k in REFERENCE_COLUMNS]
    if cell("support") and any(refs):
        raise UsageError(
            f"--manifest {path}, row {number}: fills both support and reference_image/"
            "reference_labels; give one kind of support per row"
        )
    if any(refs):
        if not all(refs):
            raise UsageError(
                f"--manifest {path}, row {number}: reference_image and reference_labels must "
                "both be filled"
            )
        ref = tuple(path.parent / r for r in refs)
        return (path.parent / cell("image"), None, out, ref)
    if not cell("support"):
        raise UsageError(f"--manifest {path}, row {number}: no support and no reference")
    return (path.parent / cell("image"), path.parent / cell("support"), out, None)


def check_prompts(args: argparse.Namespace) -> None:
    """UsageError for what cannot cross scans: registration prompts, chain mode (both walk
    from a support through the slices of its own scan)."""
    if getattr(args, "mode", "fixed") == "chain":
        raise UsageError(
            "supports from another scan: --mode chain walks from supports painted on the scan "
            "itself; the reference's supports prompt each third of the extent directly (fixed)"
        )
    if args.prompts == "registration" or args.fob_prior == "registration":
        raise UsageError(
            "supports from another scan: registration walks from a support within one scan and "
            "cannot cross to another; use --prompts fob or mask-ring (and no --fob-prior "
            "registration)"
        )


def across_volume_generator(args: argparse.Namespace, generator: Any) -> Any:
    """The generator for reference jobs (`session.reference.across_volume`): FoB with the
    in-volume additions off (on the real-MRI network when the checkpoint is "default", else the
    same network), or the paper's inference, or mask-ring."""
    from napari_fob.session.reference import across_volume

    check_prompts(args)
    return across_volume(generator)


def read_reference(image_path: Path, labels_path: Path) -> tuple[Any, Any]:
    """The reference Volume and its (Z, Y, X) labels (UsageError naming the file otherwise)."""
    from napari_fob.core.formats import FORMATS, read_support, read_volume

    try:
        reference = read_volume(image_path)
    except ValueError as err:
        raise UsageError(
            f"--reference-image {image_path} cannot be used: {err}. The reference must be a 3D "
            f"volume ({FORMATS}); a 2D image has no extent to split, a 4D one several volumes."
        ) from None
    try:
        labels = read_support(labels_path, like=reference)
    except ValueError as err:
        raise UsageError(
            f"--reference-labels {labels_path} is not on the grid of --reference-image "
            f"{image_path}: {err}. The labels must be the reference's own (same shape and affine)."
        ) from None
    return reference, labels


def plan_all(reference, ref_labels, query, chosen, slices: str, window, where: Path) -> dict:
    """label -> `ReferencePlan` for every chosen structure (UsageError on a refusal)."""
    from napari_fob.commands.segment_job import parse_slices
    from napari_fob.session.reference import plan_supports

    zs = parse_slices(slices, query.data.shape[0])
    plans = {}
    for label in chosen:
        try:
            plans[label] = plan_supports(
                reference, ref_labels, query, label, zs, window=window, query_window=window
            )
        except ValueError as err:
            raise UsageError(f"--reference-labels {where}: {err}") from None
    return plans


def segment_from_reference(
    image_path: Path,
    reference: tuple[Path, Path],
    out_dir: Path,
    *,
    generator: Any,
    segmenter: Any,
    notices: list[str],
    labels: list[int] | None,
    slices: str,
    window: Any,
    progress: bool,
    overwrite: bool,
    series: str | None,
    dicom_seg: bool | None,
    labels_format: str,
) -> dict[str, Any]:
    """One reference job: read, plan, prompt, commit, write; returns the report."""
    import numpy as np

    from napari_fob.commands import segment_exports as exports
    from napari_fob.commands import segment_job as job
    from napari_fob.segmenters.registry import cache_stats
    from napari_fob.session import AnnotationSession
    from napari_fob.session.reference import predict_from_reference

    t0, cache_before = time.perf_counter(), cache_stats(segmenter)
    ref_image, ref_labels_path = (Path(p) for p in reference)
    image_path, out_dir = Path(image_path), Path(out_dir)
    unit = job.result_folder(out_dir, [image_path, ref_image, ref_labels_path], overwrite=overwrite)
    query = job.read_image(image_path, series=series)
    ref, ref_labels = read_reference(ref_image, ref_labels_path)
    plan = exports.plan_exports(query, image_path, dicom_seg=dicom_seg, labels_format=labels_format)
    present = [int(v) for v in np.unique(ref_labels) if v > 0]
    if not present:
        raise UsageError(f"--reference-labels {ref_labels_path} has no non-zero voxels")
    plans = plan_all(ref, ref_labels, query, labels or present, slices, window, ref_labels_path)
    nonfinite = job.warn_nonfinite(query.data, image_path)
    session = AnnotationSession(
        query, generator=generator, segmenter=segmenter, window=window,
        names=job.read_names(ref_labels_path),
    )  # fmt: skip
    timings = {"read": time.perf_counter() - t0, "predict": 0.0, "commit": 0.0}
    per_label: dict[str, Any] = {}
    for label, label_plan in plans.items():
        t = time.perf_counter()
        walk = predict_from_reference(session, label_plan)
        done = job.drive(walk, f"prompts {label}", progress)
        timings["predict"] += time.perf_counter() - t
        t = time.perf_counter()
        job.drive(session.commit(label, done), f"masks {label}", progress)
        timings["commit"] += time.perf_counter() - t
        entry = job.label_report(session, label, done)
        scores = [v for v in entry["confidence"].values() if v is not None]
        entry["mean_confidence"] = round(float(np.mean(scores)), 4) if scores else None
        per_label[str(label)] = entry | {"reference": label_plan.describe()}
    source = {"image": str(image_path), "reference_image": str(ref_image),
              "reference_labels": str(ref_labels_path)}  # fmt: skip
    settings = {"supports_from": "reference", "slices": slices, "nonfinite_voxels": nonfinite}
    return job.write_result(
        unit, out_dir, session, query, plan, source=source, settings=settings, notices=notices,
        per_label=per_label, timings=timings, t0=t0, cache_before=cache_before,
    )  # fmt: skip


def summary_rows(image: Path, out: Path, report: dict | None, error: Exception | None) -> list:
    """One CSV row per structure of a job (one row when it failed)."""
    if report is None:
        return [{"image": str(image), "out": str(out), "status": "failed", "error": str(error)}]
    rows = []
    kind = report.get("supports_from", "support")
    for label, entry in report["labels"].items():
        extent = (entry.get("reference") or {}).get("extent", {})
        scores = [v for v in entry["confidence"].values() if v is not None]
        mean = entry.get("mean_confidence")
        if mean is None and scores:
            mean = round(sum(scores) / len(scores), 4)
        slices = entry["slices_with_voxels"]
        rows.append({
            "image": str(image), "out": str(out), "status": "ok", "supports_from": kind,
            "label": label, "name": entry.get("name") or "",
            "predicted_slices": len(entry["predicted_slices"]),
            "first_slice": slices[0] if slices else "", "last_slice": slices[-1] if slices else "",
            "voxels": entry["voxels"], "mean_confidence": "" if mean is None else mean,
            "low_confidence_slices": len(entry["low_confidence"]),
            "extent_rule": extent.get("rule", report.get("slices", "")),
            "extent_sure": extent.get("sure", ""), "extent_note": extent.get("reason", ""),
        })  # fmt: skip
    return rows


def summary_path(args: argparse.Namespace, jobs: list[Any]) -> Path | None:
    """Where this process writes its summary: ``--summary``, or ``OUT/summary.csv`` when a
    job takes its supports from a reference (None otherwise: the support-only outputs stay as
    they were); under torchrun each rank writes its own file (``.rank<R>`` before ``.csv``)."""
    chosen = getattr(args, "summary", None)
    if chosen is None and not any(getattr(j, "reference", None) for j in jobs):
        return None
    path = Path(chosen) if chosen else Path(args.out) / "summary.csv"
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    return path if world == 1 else path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


def checked_summary_path(args: argparse.Namespace, jobs: list[Any]) -> Path | None:
    """`summary_path`, refused (UsageError) when it is one of the inputs (the manifest, an
    image, a support, a reference) or holds a previous summary without ``--overwrite``."""
    from napari_fob.cli import UsageError

    path = summary_path(args, jobs)
    if path is None:
        return None
    inputs = [getattr(args, "manifest", None)]
    for job in jobs:
        inputs += [job.image, job.support, *(job.reference or ())]
    if any(p is not None and Path(p).resolve() == path.resolve() for p in inputs):
        raise UsageError(f"--summary {path}: is one of the inputs; choose another file")
    if path.exists() and not getattr(args, "overwrite", False):
        raise UsageError(
            f"summary {path}: a previous run's summary is there; pass --overwrite to replace it "
            "or --summary to write another file"
        )
    return path


def write_summary(path: Path, rows: list[dict[str, Any]]) -> Path:
    """The summary CSV (`SUMMARY_COLUMNS`, one row per structure of each job), atomically."""
    from napari_fob.core.atomic import write_text

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=SUMMARY_COLUMNS, restval="")
    writer.writeheader()
    writer.writerows(rows)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, text.getvalue())
