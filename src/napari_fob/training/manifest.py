"""Training manifests: which volumes to train and validate on, with their labels and intensity.

A manifest is YAML (``volumes:`` list of mappings) or CSV (a header row) with, per volume:

- ``image`` (required): a volume path (NIfTI, a DICOM series folder, NRRD, MHA, MGZ: any
  `napari_fob.core.formats.read_volume` format), relative paths resolved from the manifest's
  folder;
- ``labels`` (optional): ground-truth labels (NIfTI or another of those formats) on its grid;
- ``pseudo`` (optional): pseudo-labels (``fob pseudolabel`` output) on the same grid;
- ``intensity`` (optional, default ``auto``): a `core.intensity` preset name, ``low,high``,
  or ``zscore`` (mean +- 3 std of the voxels above the volume's minimum -> [0, 1]);
- ``split`` (optional, default ``train``): ``train``, ``val`` or ``test``.

Pure numpy + the format readers (through `napari_fob.core`); must not import torch.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_fob.core import atomic

SPLITS = ("train", "val", "test")
ZSCORE_CLIP = 3.0


@dataclass(frozen=True)
class ManifestEntry:
    """One row of a manifest (paths already resolved)."""

    image: Path
    labels: Path | None = None
    pseudo: Path | None = None
    intensity: str = "auto"
    split: str = "train"


@dataclass
class TrainVolume:
    """A volume ready for episode sampling.

    Attributes:
        name: short name (file stem) used in logs and reports.
        image01: (Z, Y, X) float32 in [0, 1], normalised with the entry's intensity rule.
        image_raw: (Z, Y, X) float32 raw values (for segmenters, which window themselves).
        labels: (Z, Y, X) int32 ground truth or None.
        pseudo: (Z, Y, X) int32 pseudo-labels or None.
        spacing: mm per array axis (z, y, x).
        window: the intensity `Window` that made image01 (segmenters use it on image_raw).
    """

    name: str
    image01: np.ndarray
    image_raw: np.ndarray
    labels: np.ndarray | None = None
    pseudo: np.ndarray | None = None
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    window: Any = None  # the napari_fob.core.intensity.Window that made image01
    meta: dict = field(default_factory=dict)


def _resolve(base: Path, value: str | None) -> Path | None:
    if value is None or str(value).strip() == "":
        return None
    path = Path(str(value).strip()).expanduser()
    return path if path.is_absolute() else Path(os.path.normpath(base / path))


def _entry(base: Path, row: dict, where: str) -> ManifestEntry:
    if not row.get("image"):
        raise ValueError(f"manifest {where}: every volume needs an 'image' path, got {row}")
    split = str(row.get("split") or "train").strip()
    if split not in SPLITS:
        raise ValueError(f"manifest {where}: split {split!r} is not one of {SPLITS}")
    entry = ManifestEntry(
        image=_resolve(base, row["image"]),
        labels=_resolve(base, row.get("labels")),
        pseudo=_resolve(base, row.get("pseudo")),
        intensity=str(row.get("intensity") or "auto").strip(),
        split=split,
    )
    for path in (entry.image, entry.labels, entry.pseudo):
        # a file, or (the image) a DICOM series folder
        if path is not None and not (path.is_file() or (path is entry.image and path.is_dir())):
            raise FileNotFoundError(f"manifest {where}: file not found: {path}")
    return entry


def read_manifest(path: str | Path) -> list[ManifestEntry]:
    """Read a YAML (.yaml/.yml) or CSV manifest; paths are resolved and checked to exist."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    base = path.parent
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(path.read_text()) or {}
        rows = data.get("volumes") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise ValueError(f"manifest {path}: expected a 'volumes:' list of mappings")
    elif path.suffix.lower() == ".csv":
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    else:
        raise ValueError(f"manifest {path}: expected a .yaml, .yml or .csv file")
    if not rows:
        raise ValueError(f"manifest {path}: lists no volumes")
    return [_entry(base, dict(row), f"{path} row {i + 1}") for i, row in enumerate(rows)]


def write_manifest(path: str | Path, entries: list[ManifestEntry]) -> Path:
    """Write entries as a YAML manifest with paths relative to its folder where possible."""
    import yaml

    path = Path(path)

    def rel(p: Path | None) -> str | None:
        return None if p is None else os.path.relpath(p, path.parent)

    rows = []
    for e in entries:
        row = {"image": rel(e.image), "intensity": e.intensity, "split": e.split}
        if e.labels is not None:
            row["labels"] = rel(e.labels)
        if e.pseudo is not None:
            row["pseudo"] = rel(e.pseudo)
        rows.append(row)
    atomic.write_text(path, yaml.safe_dump({"volumes": rows}, sort_keys=False))
    return path


def volume_window(image: np.ndarray, rule: str = "auto"):
    """The intensity `Window` of a raw (Z, Y, X) volume for a rule: a preset name, ``low,high``,
    or ``zscore`` (mean +- 3 std over the voxels above the volume's minimum, so air/padding does
    not dominate)."""
    from napari_fob.core.intensity import Window, resolve_window

    image = np.asarray(image, dtype=np.float32)
    if rule == "zscore":
        above = image > image.min()
        values = image[above] if above.any() else image
        mean, std = float(values.mean()), float(values.std()) or 1.0
        return Window(mean - ZSCORE_CLIP * std, mean + ZSCORE_CLIP * std, "zscore")
    if "," in rule:
        low, high = (float(v) for v in rule.split(","))
        return resolve_window(image, (low, high))
    return resolve_window(image, rule)


def normalise_volume(image: np.ndarray, rule: str = "auto") -> np.ndarray:
    """Raw (Z, Y, X) -> float32 [0, 1] by an intensity rule (see `volume_window`)."""
    from napari_fob.core.intensity import normalise

    return normalise(image, volume_window(image, rule))


def load_volume(entry: ManifestEntry) -> TrainVolume:
    """Read the image and its label files (checked to be on the image's grid)."""
    from napari_fob.core.formats import read_support, read_volume, volume_stem
    from napari_fob.core.intensity import normalise

    vol = read_volume(entry.image)
    window = volume_window(vol.data, entry.intensity)
    labels = None if entry.labels is None else read_support(entry.labels, like=vol)
    pseudo = None if entry.pseudo is None else read_support(entry.pseudo, like=vol)
    name = volume_stem(entry.image)
    return TrainVolume(
        name=name,
        image01=normalise(vol.data, window),
        image_raw=np.asarray(vol.data, dtype=np.float32),
        labels=None if labels is None else np.asarray(labels, dtype=np.int32),
        pseudo=None if pseudo is None else np.asarray(pseudo, dtype=np.int32),
        spacing=tuple(float(s) for s in vol.spacing),
        window=window,
        meta={"path": str(entry.image), "split": entry.split},
    )


def load_split(entries: list[ManifestEntry], split: str) -> list[TrainVolume]:
    """Load every entry of one split (``train``, ``val`` or ``test``)."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: expected one of {SPLITS}")
    return [load_volume(e) for e in entries if e.split == split]
