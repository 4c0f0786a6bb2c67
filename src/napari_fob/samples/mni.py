"""The ``mni-brain`` sample: real T1 MRI (MNI ICBM152 2009a template) with ground truth.

Reads the files committed under ``samples/data/`` (built by ``scripts/make_mni_sample.py``;
licence in ``data/LICENSE-MNI.txt``). Needs only numpy and nibabel: no nilearn, napari or Qt.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from napari_fob.core.io import Volume, read_labels, read_nifti

DATA_DIR = Path(__file__).parent / "data"
IMAGE_FILE = DATA_DIR / "mni_t1.nii.gz"
LABELS_FILE = DATA_DIR / "mni_labels.nii.gz"
NAMES_FILE = DATA_DIR / "mni_labels.json"
LICENSE_FILE = DATA_DIR / "LICENSE-MNI.txt"
DESCRIPTION = (
    "MNI ICBM152 2009a symmetric T1 template (real MRI average, skull-stripped), 2 mm voxels, "
    "axial slices. Ground truth from the template's own tissue maps: 1 lateral ventricles, "
    "2 white matter, 3 grey matter. Copyright (C) 1993-2004 Louis Collins, McConnell Brain "
    "Imaging Centre, Montreal Neurological Institute, McGill University; see LICENSE-MNI.txt."
)


def load_mni_brain() -> tuple[Volume, np.ndarray, dict[int, str]]:
    """(image, labels, names): float32 ``(Z, Y, X)`` T1 Volume, its ``(Z, Y, X)`` uint8 labels
    on the same grid, and label value -> structure name."""
    for path in (IMAGE_FILE, LABELS_FILE, NAMES_FILE):
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: sample file missing from the installed package; rebuild it with "
                "scripts/make_mni_sample.py or reinstall napari-fob"
            )
    image = read_nifti(IMAGE_FILE)
    labels = read_labels(LABELS_FILE, like=image)
    names = {int(k): str(v) for k, v in json.loads(NAMES_FILE.read_text()).items()}
    return image, labels, names
