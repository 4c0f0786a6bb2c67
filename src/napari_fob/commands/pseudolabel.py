"""``fob pseudolabel``: 3D supervoxel pseudo-labels for self-supervised training.

Writes ``DIR/<name>_supervoxels.nii.gz`` on the grid and affine of each input volume; volumes are
processed in parallel worker processes. No torch here.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

HELP = "Make 3D supervoxel pseudo-labels (NIfTI) for self-supervised training."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from napari_fob.training.supervoxels import DEFAULT_COMPACTNESS, DEFAULT_SIZE_MM3

    parser.add_argument("volumes", nargs="+", metavar="VOLUME", help="NIfTI images (.nii/.nii.gz)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--size-mm3",
        type=float,
        default=DEFAULT_SIZE_MM3,
        help=f"target mean supervoxel volume in mm^3 (default {DEFAULT_SIZE_MM3:g})",
    )
    parser.add_argument(
        "--compactness",
        type=float,
        default=DEFAULT_COMPACTNESS,
        help=f"SLIC compactness on the [0, 1] image (default {DEFAULT_COMPACTNESS:g})",
    )
    parser.add_argument(
        "--body-threshold",
        type=float,
        default=None,
        help="raw value separating body from air (default: -500 for CT, Otsu otherwise)",
    )
    parser.add_argument("--window", default="auto", help="intensity preset (default auto)")
    parser.add_argument("--jobs", type=int, default=1, help="volumes processed in parallel")


def volume_stem(path: Path) -> str:
    """File name without .nii / .nii.gz."""
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def output_path(volume: Path, out_dir: Path) -> Path:
    """Where the pseudo-labels of `volume` go: ``out_dir/<name>_supervoxels.nii.gz``."""
    return out_dir / f"{volume_stem(volume)}_supervoxels.nii.gz"


def pseudolabel_one(
    volume: str,
    out_dir: str,
    *,
    size_mm3: float,
    compactness: float,
    body_threshold: float | None,
    window: str,
) -> tuple[str, int]:
    """Read one volume, cluster it, write its labels; returns (output path, number of labels)."""
    from napari_fob.core.io import read_nifti, write_labels
    from napari_fob.training.supervoxels import body_mask, supervoxels

    vol = read_nifti(volume)
    mask = body_mask(vol.data, threshold=body_threshold)
    labels = supervoxels(
        vol.data,
        spacing=vol.spacing,
        mask=mask,
        size_mm3=size_mm3,
        compactness=compactness,
        window=window,
    )
    out = output_path(Path(volume), Path(out_dir))
    write_labels(out, labels, like=vol)
    return str(out), int(labels.max())


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from napari_fob.cli import UsageError

    volumes = [Path(v) for v in args.volumes]
    missing = [str(v) for v in volumes if not v.is_file()]
    if missing:  # the environment (exit status 1), as every missing file
        raise FileNotFoundError(f"volume(s) not found: {', '.join(missing)}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    kwargs = dict(
        size_mm3=args.size_mm3,
        compactness=args.compactness,
        body_threshold=args.body_threshold,
        window=args.window,
    )
    bar = tqdm(
        total=len(volumes), desc="supervoxels", unit="vol", file=sys.stderr, disable=args.quiet
    )
    if args.jobs == 1:
        for v in volumes:
            out, n = pseudolabel_one(str(v), str(out_dir), **kwargs)
            bar.write(f"{v} -> {out} ({n} supervoxels)")
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = {
                pool.submit(pseudolabel_one, str(v), str(out_dir), **kwargs): v for v in volumes
            }
            for fut in as_completed(futures):
                out, n = fut.result()
                bar.write(f"{futures[fut]} -> {out} ({n} supervoxels)")
                bar.update()
    bar.close()
    return 0
