"""``fob evaluate``: the paper's protocol or the annotation protocol on labelled volumes.

Writes ``OUT/results.json`` and ``OUT/results.md`` (one row per structure; per |dz| bin for the
annotation protocol). The paper protocol runs FoB with the paper's inference by default
(``--paper-inference``): its supports lie in another volume, where the product's in-volume
heuristics (a location prior, band exclusion seeded from the support's footprint) do not hold.
Torch is imported only for the ``fob`` generator.
"""

from __future__ import annotations

import argparse

HELP = "Evaluate prompts (and masks) with the paper's or the annotation protocol."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, help="volumes with ground-truth labels")
    parser.add_argument(
        "--split",
        default="auto",
        help="manifest split to evaluate: test, val, train, all, or auto (test if any, else all)",
    )
    parser.add_argument("--protocol", choices=("paper", "annotation"), default="paper")
    parser.add_argument(
        "--generator", choices=("fob", "mask-ring", "copy", "registration"), default="fob"
    )
    parser.add_argument("--checkpoint", default="default", help="FoB checkpoint (.pt) or default")
    parser.add_argument(
        "--paper-inference",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fob: predict as the paper does, without this project's in-volume additions "
        "(location prior, band exclusion, ...; docs/method.md). Default: on for the paper "
        "protocol (its supports come from another volume), off for the annotation protocol",
    )
    parser.add_argument(
        "--segmenter",
        default="random-walker",
        help="none, random-walker, sam or auto (Dice needs one)",
    )
    parser.add_argument("--sam-checkpoint", default=None, help="SAM weights for --segmenter sam")
    parser.add_argument("--sam-model", default="vit_b", help="vit_b, vit_l or vit_h")
    parser.add_argument("--labels", default=None, help="label values, e.g. 1,2,3 (default: all)")
    parser.add_argument("--names", default=None, help="labels.json mapping value -> name")
    parser.add_argument("--folds", type=int, default=1, help="paper protocol: volume groups")
    parser.add_argument("--max-slices", type=int, default=0, help="annotation: cap per structure")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True, help="output folder")


def _volumes(args: argparse.Namespace):
    from napari_fob.cli import UsageError
    from napari_fob.training.manifest import load_volume, read_manifest

    entries = read_manifest(args.manifest)
    split = args.split
    if split == "auto":
        split = "test" if any(e.split == "test" for e in entries) else "all"
    chosen = [e for e in entries if split == "all" or e.split == split]
    if not chosen:
        raise UsageError(f"manifest {args.manifest}: no volume in split {split!r}")
    missing = [str(e.image) for e in chosen if e.labels is None]
    if missing:
        raise UsageError(f"evaluation needs ground-truth 'labels' for: {', '.join(missing)}")
    return [load_volume(e) for e in chosen]


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import numpy as np

    from napari_fob.cli import UsageError
    from napari_fob.core.metrics import METRIC_GRID
    from napari_fob.prompting.generators import make_generator
    from napari_fob.training.evaluate import annotation_protocol, paper_protocol
    from napari_fob.training.report import markdown_table, write_report

    if args.folds < 1:
        raise UsageError(f"--folds must be >= 1, got {args.folds}")
    volumes = _volumes(args)
    if args.labels:
        labels = [int(v) for v in args.labels.split(",")]
    else:
        labels = sorted({int(v) for vol in volumes for v in np.unique(vol.labels) if v != 0})
    names = None
    if args.names:
        names = {int(k): str(v) for k, v in json.loads(Path(args.names).read_text()).items()}
    paper_inference = args.paper_inference
    if paper_inference is None:
        paper_inference = args.protocol == "paper"
    generator = make_generator(
        args.generator,
        checkpoint=args.checkpoint,
        device=args.device,
        paper_inference=paper_inference,
    )
    grid = METRIC_GRID  # every method at the same grid and ring (256, r = 15, eps = 2)
    segmenter, notice = None, None
    if args.segmenter != "none":
        from napari_fob.segmenters import get_segmenter

        segmenter, notice = get_segmenter(
            args.segmenter,
            sam_model=args.sam_model,
            sam_checkpoint=args.sam_checkpoint,
            device=args.device,
        )
        if notice:
            print(notice)
    if args.protocol == "paper":
        results = paper_protocol(
            generator, segmenter, volumes, labels, folds=args.folds, grid_size=grid
        )
    else:
        results = annotation_protocol(
            generator, segmenter, volumes, labels, max_slices=args.max_slices, grid_size=grid
        )
    results["title"] = f"{args.protocol} protocol: {args.generator} prompts"
    results["settings"] = {
        "protocol": args.protocol,
        "generator": generator.describe(),
        "segmenter": None if segmenter is None else segmenter.describe(),
        "volumes": [v.name for v in volumes],
        "labels": labels,
        "folds": args.folds,
        "paper_inference": bool(paper_inference) if args.generator == "fob" else None,
        "metrics_grid": grid,
    }
    json_path, md_path = write_report(results, args.out, names=names)
    print(markdown_table(results, names))
    print(f"wrote {json_path} and {md_path}")
    return 0
