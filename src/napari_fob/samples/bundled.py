"""The abdomen phantom's seed 0, shipped as a file so that opening the sample is instant.

napari runs sample-data functions on its main thread, and generating the phantom costs about a
second of scipy there (docs/benchmarks.md, "Main-thread stalls"). The file holds the image as
int16 (the phantom's HU values are whole numbers) and the labels as uint8, compressed (about
2 MB). `scripts/make_phantom_sample.py` writes it; a test checks that it still equals the
generator's output. numpy only: reading it must not import scipy.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_fob.core import atomic

BUNDLED_SEED = 0
FILE_NAME = "abdomen_phantom_seed0.npz"
DATA_DIR = Path(__file__).resolve().parent / "data"


def load_bundled(folder: str | os.PathLike = DATA_DIR) -> tuple[np.ndarray, np.ndarray] | None:
    """(image float32, labels uint8) of the bundled seed, or None when the file is not there."""
    path = Path(folder) / FILE_NAME
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return data["image"].astype(np.float32), data["labels"].astype(np.uint8)


def save_bundled(folder: str | os.PathLike, image: np.ndarray, labels: np.ndarray) -> Path:
    """Write the bundled file into `folder` atomically; the image must be whole HU values."""
    if not np.array_equal(image, np.round(image)):
        raise ValueError("phantom image: expected whole HU values to store as int16")
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, image=image.astype(np.int16), labels=labels.astype(np.uint8))
    path = Path(folder) / FILE_NAME
    atomic.write_bytes(path, buffer.getvalue())
    return path
