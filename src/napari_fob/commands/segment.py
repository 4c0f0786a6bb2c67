"""``fob segment``: headless batch annotation from a painted support mask.

For each IMAGE (repeatable, or rows of ``--manifest CSV`` with columns image,support[,out])
writes ``labels.nii.gz`` (the image's grid and affine), ``prompts.json`` (the session sidecar),
``report.json`` (models, notices, timings, per-slice confidence) and ``overview.png``; for a
DICOM series also ``labels.seg.dcm`` (``--no-dicom-seg`` turns it off) and for an NRRD with
``--labels-format nrrd`` also ``labels.nrrd`` (`segment_exports`). Volumes
are processed one after another; under ``torchrun`` (env RANK / WORLD_SIZE) volume i goes to
rank i % world size. The work itself is `segment_job.segment_volume`. With
``--reference-image REF --reference-labels REF_LABELS`` (or manifest columns
image,reference_image,reference_labels[,out]) the supports come from another, labelled scan
instead (`segment_reference`), and a summary CSV lists every volume and structure.

Every output folder is checked before anything is computed: it must not hold an input (IMAGE,
SUPPORT of any job) and must not hold a previous result unless ``--overwrite``; a manifest's
``out`` must stay inside ``--out``. With several volumes a failing volume is reported and the
batch goes on; the exit status is non-zero when any volume failed.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_fob.cli import UsageError
from napari_fob.commands import segment_adapt, segment_reference
from napari_fob.commands.segment_exports import LABELS_FORMATS, check_labels_format
from napari_fob.prompting import PRIOR_SOURCES
from napari_fob.segmenters.registry import SEGMENTERS
from napari_fob.segmenters.weights import SAM2_MODEL_TYPES
from napari_fob.session.walks import DEFAULT_THRESHOLD, MODES, check_threshold

HELP = (
    "Segment volumes from a painted support: prompts (FoB, mask-ring or registration) + SAM, "
    "headless."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "images",
        nargs="*",
        metavar="IMAGE",
        help="3D image(s): NIfTI, a DICOM series folder, NRRD, MHA/MHD or MGZ",
    )
    parser.add_argument(
        "--series",
        metavar="UID",
        help="the DICOM series to read (SeriesInstanceUID) when the IMAGE folder holds several "
        "(default: the one with the most slices, with a warning naming the others)",
    )
    parser.add_argument(
        "--support",
        action="append",
        default=[],
        metavar="SUPPORT",
        help="support labels on the image's grid (one per IMAGE, in the same order)",
    )
    segment_reference.add_arguments(parser)
    parser.add_argument(
        "--manifest",
        metavar="CSV",
        help="CSV with columns image,support[,out] or image,reference_image,reference_labels[,out]",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous result in the output folder(s) (refused otherwise)",
    )
    parser.add_argument("--labels", help="structures to segment, e.g. 1,3 (default: all)")
    parser.add_argument(
        "--dicom-seg",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also write the labels as DICOM-SEG (labels.seg.dcm) referencing the source series "
        "(default: on for DICOM inputs; --dicom-seg makes it required)",
    )
    parser.add_argument(
        "--labels-format",
        choices=LABELS_FORMATS,
        default="nifti",
        help="nrrd: also write labels.nrrd on the NRRD IMAGE's grid (NRRD inputs only); "
        "labels.nii.gz is always written",
    )
    parser.add_argument("--slices", default="auto", help="A:B (A included, B excluded) or auto")
    parser.add_argument("--mode", choices=MODES, default="fixed")
    parser.add_argument(
        "--threshold", type=float, default=DEFAULT_THRESHOLD,
        help="auto extent: calibrated-confidence cut (default: chosen on the real-anatomy tune "
        "split, docs/method.md 'Evidence')",
    )  # fmt: skip
    parser.add_argument(
        "--prompts",
        choices=("fob", "mask-ring", "registration"),
        default="fob",
        help="fob: the model; mask-ring: the support's ring re-drawn; registration: the support "
        "mask carried slice to slice by optical flow, its ring re-drawn (docs/method.md)",
    )
    parser.add_argument(
        "--fob-checkpoint",
        default="default",
        metavar="PATH|NAME",
        help="FoB weights: default (the packaged 'compact' model; with --reference-image the "
        "packaged 'real-mri' one), compact, real-mri, a converted authors' checkpoint or a path",
    )
    parser.add_argument(
        "--paper-inference",
        action="store_true",
        help="FoB prompts as the paper predicts them: no location prior, inward penalty, band "
        "exclusion, fine ring or support core; fixed foreground threshold (docs/method.md)",
    )
    parser.add_argument(
        "--fob-prior",
        choices=PRIOR_SOURCES,
        default=None,
        help="where FoB's location prior comes from: the support's own ring (support) or the "
        "support mask carried to each slice by registration (default: the product's, "
        "docs/method.md)",
    )
    parser.add_argument(
        "--segmenter",
        choices=SEGMENTERS,
        default="auto",
        help="auto: the first of SAM, SAM 2.1 whose checkpoint is found, else the random walker "
        "(said in a notice; docs/segmenters.md)",
    )
    parser.add_argument("--sam-model", default="vit_b", choices=("vit_b", "vit_l", "vit_h"))
    parser.add_argument("--sam-checkpoint", metavar="PATH")
    parser.add_argument("--sam2-model", default="hiera_t", choices=SAM2_MODEL_TYPES)
    parser.add_argument(
        "--sam2-checkpoint", metavar="PATH", help="a SAM 2.1 or MedSAM2 checkpoint (.pt)"
    )
    parser.add_argument(
        "--sam2-input-size",
        type=int,
        default=1024,
        help="SAM 2.1's input side: 1024 for Meta's checkpoints, 512 for MedSAM2",
    )
    parser.add_argument(
        "--embedding-cache",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep SAM / SAM 2.1 image embeddings on disk in the cache folder, so a re-run "
        "reuses them (capped at $FOB_EMBEDDING_CACHE_GB, default 4); --no-embedding-cache: "
        "memory only",
    )
    segment_adapt.add_arguments(parser)
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda|mps")
    parser.add_argument("--window", default="auto", metavar="PRESET|LO,HI")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


@dataclass(frozen=True)
class Job:
    image: Path
    support: Path | None  # None: the supports come from `reference`
    out: Path
    reference: tuple[Path, Path] | None = None  # (reference image, its labels)


def parse_window(text: str) -> str | tuple[float, float]:
    """A preset name, or "LO,HI" raw values."""
    if "," not in text:
        return text
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--window {text!r}: expected a preset name or LO,HI numbers") from None
    return (lo, hi)


def parse_labels(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        labels = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--labels {text!r}: expected label values like 1,3") from None
    if not labels or min(labels) <= 0:
        raise UsageError(f"--labels {text!r}: expected positive label values like 1,3")
    return labels


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len(".nii.gz")] if name.endswith(".nii.gz") else path.stem


def build_jobs(args: argparse.Namespace) -> list[Job]:
    """The (image, support, out) list from IMAGE/--support and --manifest, in order.

    One volume writes into --out itself; several write into --out/<image name> (or the
    manifest's ``out`` column, relative to --out).
    """
    out = Path(args.out)
    pairs: list[tuple[Path, Path | None, Path | None, tuple[Path, Path] | None]] = []
    if getattr(args, "reference_image", None) or getattr(args, "reference_labels", None):
        pairs += segment_reference.command_line_pairs(args)
    elif len(args.support) != len(args.images):
        raise UsageError(
            f"{len(args.images)} IMAGE(s) but {len(args.support)} --support: give one --support "
            "per IMAGE, in the same order (or use --manifest)."
        )
    else:
        pairs += [(Path(i), Path(s), None, None) for i, s in zip(args.images, args.support)]
    if args.manifest:
        pairs += read_manifest(Path(args.manifest))
    if not pairs:
        raise UsageError("nothing to segment: give IMAGE --support SUPPORT or --manifest CSV.")
    single = len(pairs) == 1
    stems = [_stem(image) for image, *_ in pairs]
    jobs = []
    for (image, support, sub, reference), stem in zip(pairs, stems):
        if stems.count(stem) > 1:  # same file name in different folders: keep them apart
            stem = f"{image.parent.name}_{stem}"
        if sub is not None and (sub.is_absolute() or ".." in sub.parts or sub == Path(".")):
            raise UsageError(
                f"--manifest: out {str(sub)!r} for {image} must be a folder name inside --out "
                f"{out} (relative, without '..')"
            )
        target = out / sub if sub is not None else (out if single else out / stem)
        jobs.append(Job(image, support, target, reference))
    if len({j.out for j in jobs}) != len(jobs):
        raise UsageError("two volumes would write into the same output folder; give `out` names")
    return jobs


def read_manifest(path: Path) -> list[tuple]:
    """Rows of a CSV, (image, support, out, reference) each (`segment_reference.manifest_row`:
    columns image,support[,out] or image,reference_image,reference_labels[,out]); relative
    paths are relative to the CSV's folder."""
    if not path.exists():
        raise FileNotFoundError(f"--manifest {path}: no such file")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        segment_reference.check_columns(path, list(reader.fieldnames or []))
        rows = [
            segment_reference.manifest_row(path, number, row)
            for number, row in enumerate(reader, start=2)
        ]
    return rows


def my_share(jobs: list[Job]) -> list[Job]:
    """Under torchrun, the jobs of this rank (volume i goes to rank i % world)."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    return jobs[rank::world]


def build_models(args: argparse.Namespace) -> tuple[Any, Any, list[str]]:
    """(generator, segmenter, notices); missing weights become a UsageError."""
    from napari_fob.prompting.generators import make_generator
    from napari_fob.segmenters import get_segmenter
    from napari_fob.segmenters.cache import default_cache

    try:
        generator = make_generator(
            args.prompts,
            checkpoint=args.fob_checkpoint,
            device=args.device,
            paper_inference=args.paper_inference,
            prior_source=args.fob_prior,
        )
        segmenter, notice = get_segmenter(
            args.segmenter,
            sam_model=args.sam_model,
            sam_checkpoint=args.sam_checkpoint,
            sam2_model=getattr(args, "sam2_model", "hiera_t"),
            sam2_checkpoint=getattr(args, "sam2_checkpoint", None),
            sam2_input_size=getattr(args, "sam2_input_size", 1024),
            device=args.device,
            cache=default_cache(disk=getattr(args, "embedding_cache", True)),
        )
    except FileNotFoundError as err:
        raise UsageError(f"missing weights: {err}") from None
    except ImportError as err:  # --segmenter sam2 without the sam2 package
        raise UsageError(str(err)) from None
    notices = [notice] if notice else []
    if args.prompts == "fob":  # the authors' checkpoints ignore this project's inference options
        from napari_fob.prompting.official_compat import ignored_options as ignored

        notices += ignored(generator, paper_inference=args.paper_inference,
                           prior_source=args.fob_prior)  # fmt: skip
    return generator, segmenter, notices


def check_outputs(jobs: list[Job], *, overwrite: bool) -> None:
    """Every job's output folder, checked before any work (one UsageError listing them all)."""
    from napari_fob.commands.segment_job import result_folder

    inputs = [p for job in jobs for p in (job.image, job.support, *(job.reference or ())) if p]
    problems = []
    for job in jobs:
        try:
            result_folder(job.out, inputs, overwrite=overwrite)
        except (UsageError, OSError) as err:
            problems.append(str(err))
    if problems:
        raise UsageError("\n".join(problems))


def run(args: argparse.Namespace) -> int:
    every = build_jobs(args)
    series = getattr(args, "series", None)
    if series is not None and len(every) > 1:
        raise UsageError(
            f"--series {series}: chooses the series of one DICOM IMAGE; with several "
            "volumes, give each series its own folder"
        )
    jobs = my_share(every)
    for job in jobs:  # before any model is loaded
        check_labels_format(job.image, args.labels_format)
    labels = parse_labels(args.labels)
    window = parse_window(args.window)
    check_threshold(args.threshold, "--threshold")  # before any model is loaded
    check_outputs(jobs, overwrite=args.overwrite)
    segment_adapt.check(args, jobs)
    summary = segment_reference.checked_summary_path(args, every)
    if any(job.reference for job in jobs):
        segment_reference.check_prompts(args)  # before any model is loaded
    generator, segmenter, notices = build_models(args)
    for notice in notices:
        print(f"NOTICE: {notice}", file=sys.stderr)
    across = generator
    if any(job.reference for job in jobs):
        across = segment_reference.across_volume_generator(args, generator)
    failed: list[tuple[Job, Exception]] = []
    rows: list[dict[str, Any]] = []
    for job in jobs:
        gen = across if job.reference else generator
        try:
            report = _segment_one(job, args, gen, segmenter, notices, labels, window)
            rows += segment_reference.summary_rows(job.image, job.out, report, None)
        except (UsageError, ValueError, OSError) as err:
            if len(jobs) == 1:  # one volume: its error is the command's error
                raise
            failed.append((job, err))
            rows += segment_reference.summary_rows(job.image, job.out, None, err)
            print(f"{job.image}: FAILED, nothing written to {job.out}: {err}", file=sys.stderr)
        if summary is not None:  # after every volume: a batch killed later keeps these rows
            segment_reference.write_summary(summary, rows)
    if summary is not None:
        print(f"summary: {summary}")
    if failed:
        print(
            f"fob segment: {len(failed)} of {len(jobs)} volume(s) failed:\n"
            + "\n".join(f"  {job.image}: {err}" for job, err in failed),
            file=sys.stderr,
        )
        environment = all(
            isinstance(e, OSError) and not isinstance(e, FileNotFoundError) for _, e in failed
        )
        return 1 if environment else 2
    return 0


def _segment_one(
    job: Job,
    args: argparse.Namespace,
    generator: Any,
    segmenter: Any,
    notices: list[str],
    labels: list[int] | None,
    window: Any,
) -> dict[str, Any]:
    from napari_fob.commands.segment_job import segment_volume

    if job.reference is not None:
        report = segment_reference.segment_from_reference(
            job.image, job.reference, job.out, generator=generator, segmenter=segmenter,
            notices=notices, labels=labels, slices=args.slices, window=window,
            progress=not args.quiet, overwrite=args.overwrite, series=getattr(args, "series", None),
            dicom_seg=args.dicom_seg, labels_format=args.labels_format,
        )  # fmt: skip
        _print_done(job, report)
        return report
    generator = segment_adapt.for_job(generator, job, args, labels, window)  # --adapt
    report = segment_volume(
        job.image, job.support, job.out, generator=generator, segmenter=segmenter,
        notices=notices, labels=labels, slices=args.slices, mode=args.mode, window=window,
        threshold=args.threshold, progress=not args.quiet, overwrite=args.overwrite,
        series=getattr(args, "series", None), dicom_seg=args.dicom_seg,
        labels_format=args.labels_format,
    )  # fmt: skip
    _print_done(job, report)
    return report


def _print_done(job: Job, report: dict[str, Any]) -> None:
    n = sum(len(v["slices_with_voxels"]) for v in report["labels"].values())
    print(
        f"{job.image}: {len(report['labels'])} structure(s), {n} labelled slice(s) -> "
        f"{job.out} ({report['timings_s']['total']:.1f} s)"
    )
