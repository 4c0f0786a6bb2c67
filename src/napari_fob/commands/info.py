"""``fob info``: versions, the device found, where weights are looked for and which exist."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import platform

HELP = "Print versions, the compute device, and where weights are looked for."

PACKAGES = (
    "napari-fob",
    "torch",
    "torchvision",
    "segment-anything",
    "numpy",
    "scipy",
    "scikit-image",
    "nibabel",
    "napari",
    "magicgui",
    "qtpy",
    "npe2",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="device to check (auto|cpu|cuda|mps)")


def _version(name: str) -> str:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "not installed"


def weight_locations() -> list[tuple[str, str, bool]]:
    """(what, path, found) for every place weights are looked for."""
    from napari_fob.core import paths

    rows: list[tuple[str, str, bool]] = []
    try:
        from napari_fob.segmenters.weights import sam_search_locations
    except ImportError:
        sam_search_locations = None
    if sam_search_locations is not None:
        for what, path in sam_search_locations():
            rows.append((what, str(path), path.exists()))
    else:
        rows.append(("weights folder", str(paths.weights_dir()), paths.weights_dir().exists()))
    pkg = paths.package_weights_dir()
    for ckpt in sorted(pkg.glob("*.pt")) if pkg.exists() else []:
        rows.append(("shipped FoB model", str(ckpt), True))
    return rows


def run(args: argparse.Namespace) -> int:
    from napari_fob.devices import resolve_device

    print(f"python {platform.python_version()} on {platform.platform()}")
    for name in PACKAGES:
        print(f"  {name:18s} {_version(name)}")
    print(f"device: {resolve_device(args.device)}")
    print("weights:")
    for what, path, found in weight_locations():
        print(f"  [{'found' if found else 'missing'}] {what}: {path}")
    return 0
