"""Sample volumes with ground truth and a one-slice support mask per structure.

Two samples, both pure numpy/nibabel (no napari, Qt or torch):

* ``mni-brain``: real T1 MRI (MNI ICBM152 2009a template) read from files shipped with the
  package; ventricles, white and grey matter.
* ``abdomen-phantom``: a procedural CT-like abdomen (liver, spleen, kidneys) built in memory,
  different for every seed (see `napari_fob.samples.phantom`).

The support mask holds, for each structure, its ground truth on exactly one slice: the slice
through its centre of mass along axis 0 — what a user would paint before asking for prompts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_fob.core import atomic
from napari_fob.core.io import Volume, write_image, write_labels

SAMPLE_NAMES = ("mni-brain", "abdomen-phantom")
SAMPLE_FILES = {
    "image": "image.nii.gz",
    "labels": "labels.nii.gz",
    "support": "support.nii.gz",
    "names": "labels.json",
}


@dataclass
class Sample:
    """One sample volume and its annotations, all on the image's grid.

    Attributes:
        image: the image Volume; ``image.data`` is float32 ``(Z, Y, X)``.
        labels: ``(Z, Y, X)`` integer ground truth, 0 background.
        support: ``(Z, Y, X)`` integer, each structure's ground truth on one slice only.
        names: label value -> structure name.
        description: one paragraph saying what the data is and where it comes from.
    """

    image: Volume
    labels: np.ndarray
    support: np.ndarray
    names: dict[int, str]
    description: str


def support_slices(labels: np.ndarray) -> dict[int, int]:
    """Label value -> the axis-0 index of its support slice, for every label in `labels`.

    The slice is the rounded centre of mass along axis 0; when that slice misses the
    structure (a curved shape), the nearest slice that holds it (the lower one on a tie).
    """
    out: dict[int, int] = {}
    for value in np.unique(labels):
        if value == 0:
            continue
        counts = (labels == value).sum(axis=(1, 2))
        zs = np.nonzero(counts)[0]
        centre = int(np.round(np.sum(zs * counts[zs]) / counts[zs].sum()))
        out[int(value)] = int(zs[np.argmin(np.abs(zs - centre))])
    return out


def support_from_labels(labels: np.ndarray) -> np.ndarray:
    """The ``(Z, Y, X)`` support mask (same dtype as `labels`); see `support_slices`."""
    support = np.zeros_like(labels)
    for value, z in support_slices(labels).items():
        support[z][labels[z] == value] = value
    return support


def load_sample(name: str, *, seed: int | None = None) -> Sample:
    """Load a sample by name (one of `SAMPLE_NAMES`).

    Args:
        name: ``"mni-brain"`` or ``"abdomen-phantom"``.
        seed: phantom seed (default 0); only the phantom takes one.
    """
    if name == "mni-brain":
        if seed is not None:
            raise ValueError("sample 'mni-brain' is a fixed real volume: it takes no seed")
        from napari_fob.samples.mni import DESCRIPTION, load_mni_brain

        image, labels, names = load_mni_brain()
        description = DESCRIPTION
    elif name == "abdomen-phantom":
        from napari_fob.samples.bundled import BUNDLED_SEED, load_bundled
        from napari_fob.samples.phantom import NAMES, make_abdomen_phantom, phantom_affine

        seed = BUNDLED_SEED if seed is None else int(seed)
        stored = load_bundled() if seed == BUNDLED_SEED else None
        if stored is not None:  # the file: no second of scipy on napari's main thread
            (data, labels), names = stored, dict(NAMES)
        else:
            data, labels, names = make_abdomen_phantom(seed=seed)
        spacing = (2.5, 1.5, 1.5)
        image = Volume.from_array(data, affine=phantom_affine(data.shape, spacing))
        description = (
            f"Synthetic CT-like abdomen phantom (seed {seed}), HU values, 2.5 x 1.5 x 1.5 mm "
            "voxels: 1 liver, 2 spleen, 3 left kidney, 4 right kidney, with body wall, spine, "
            "aorta, IVC, stomach and bowel as distractors."
        )
    else:
        raise ValueError(f"unknown sample {name!r}; expected one of {', '.join(SAMPLE_NAMES)}")
    return Sample(image, labels, support_from_labels(labels), names, description)


def write_sample(
    name: str, out_dir: str | os.PathLike, *, seed: int | None = None
) -> dict[str, Path]:
    """Write a sample's image, labels, support and names into `out_dir` (created if needed).

    Returns:
        ``{"image", "labels", "support", "names"}`` -> the paths written (see `SAMPLE_FILES`);
        the three NIfTI files share the image's grid and affine.
    """
    return save_sample(load_sample(name, seed=seed), out_dir)


def save_sample(sample: Sample, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write an already loaded `Sample` into `out_dir`; same files and result as `write_sample`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {key: out / file for key, file in SAMPLE_FILES.items()}
    write_image(paths["image"], sample.image.data, sample.image, dtype=_image_dtype(sample))
    write_labels(paths["labels"], sample.labels, sample.image)
    write_labels(paths["support"], sample.support, sample.image)
    names = {str(k): v for k, v in sorted(sample.names.items())}
    atomic.write_text(paths["names"], json.dumps(names, indent=2) + "\n")
    return paths


def _image_dtype(sample: Sample) -> type:
    """int16 when that stores the image exactly (CT in HU, the 8-bit MNI T1), else float32."""
    data = sample.image.data
    whole = np.array_equal(data, np.round(data))
    fits = data.min() >= np.iinfo(np.int16).min and data.max() <= np.iinfo(np.int16).max
    return np.int16 if whole and fits else np.float32


__all__ = [
    "SAMPLE_NAMES",
    "Sample",
    "load_sample",
    "save_sample",
    "support_from_labels",
    "support_slices",
    "write_sample",
]
