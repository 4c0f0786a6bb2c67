"""Shared fixtures of the training tests: small abdomen phantoms written as NIfTI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_fob.core.io import Volume, write_image, write_labels
from napari_fob.samples.phantom import make_abdomen_phantom, phantom_affine
from napari_fob.training.manifest import TrainVolume, normalise_volume, volume_window

SHAPE = (24, 96, 96)
SPACING = (2.5, 1.5, 1.5)


def write_phantom(folder: Path, seed: int) -> tuple[Path, Path]:
    """Write phantom `seed` as image + ground-truth NIfTI; returns both paths."""
    image, labels, _ = make_abdomen_phantom(seed=seed, shape=SHAPE, spacing=SPACING)
    like = Volume.from_array(image, affine=phantom_affine(SHAPE, SPACING))
    img_path = write_image(folder / f"case{seed}.nii.gz", image, like)
    lab_path = write_labels(folder / f"case{seed}_gt.nii.gz", labels, like)
    return Path(img_path), Path(lab_path)


@pytest.fixture(scope="session")
def phantom_files(tmp_path_factory) -> list[tuple[Path, Path]]:
    """Three small phantoms (image, labels) on disk."""
    folder = tmp_path_factory.mktemp("phantoms")
    return [write_phantom(folder, seed) for seed in range(3)]


def _phantom_volume(seed: int = 0, *, pseudo: np.ndarray | None = None) -> TrainVolume:
    image, labels, _ = make_abdomen_phantom(seed=seed, shape=SHAPE, spacing=SPACING)
    return TrainVolume(
        name=f"case{seed}",
        image01=normalise_volume(image, "ct-abdomen"),
        window=volume_window(image, "ct-abdomen"),
        image_raw=image.astype(np.float32),
        labels=labels.astype(np.int32),
        pseudo=pseudo,
        spacing=SPACING,
    )


@pytest.fixture
def phantom_volume():
    """Factory: phantom_volume(seed, pseudo=None) -> in-memory TrainVolume (GT as labels)."""
    return _phantom_volume
