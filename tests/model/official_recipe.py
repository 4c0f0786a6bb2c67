"""The recipe of the official-equivalence fixture: weights made from tensor names, and inputs.

Shared by tests/model/test_official.py and scripts/official_reference.py (which runs the
authors' code with the same weights and inputs and wrote tests/model/fixtures/
official_equivalence.json). numpy/torch and napari_fob.samples only.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch

LABEL = 1  # lateral ventricles of the bundled MNI T1
SUPPORT_Z = 45
QUERY_Z = (43, 47, 49)


def key_seed(key: str) -> int:
    """The generator seed of one tensor: the first 8 hex digits of sha256(key)."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)


def deterministic_tensor(
    key: str, shape: tuple[int, ...], dtype: str = "torch.float32"
) -> torch.Tensor:
    """A tensor that depends only on its name and shape (their key names).

    Matrices and kernels: N(0, 1) / sqrt(fan_in); 1-D ``weight`` (norm layers): 1 + 0.02 N;
    1-D ``bias`` and BatchNorm ``running_mean``: 0.02 N; ``running_var``: 1 + 0.1 U; counters
    0; the 0-d SPR alpha 0.25 + 0.5 U.
    """
    if dtype == "torch.int64":
        return torch.zeros(shape, dtype=torch.int64)
    g = torch.Generator().manual_seed(key_seed(key))
    normal = torch.randn(shape, generator=g, dtype=torch.float64)
    leaf = key.rsplit(".", 1)[-1]
    if len(shape) == 0:
        value = 0.25 + 0.5 * torch.rand((), generator=g, dtype=torch.float64)
    elif leaf == "running_var":
        value = 1.0 + 0.1 * torch.rand(shape, generator=g, dtype=torch.float64)
    elif len(shape) == 1 and leaf == "weight":
        value = 1.0 + 0.02 * normal
    elif len(shape) == 1:
        value = 0.02 * normal
    else:
        value = normal / math.sqrt(math.prod(shape[1:]))
    return value.float()


def deterministic_state(keys: list[tuple[str, list[int], str]]) -> dict[str, torch.Tensor]:
    """Their state dict rebuilt from ``(key, shape, dtype)`` rows."""
    return {k: deterministic_tensor(k, tuple(shape), dtype) for k, shape, dtype in keys}


def mni_inputs() -> dict:
    """The support and query slices in [0, 1] (volume / its maximum) and the support mask."""
    from napari_fob.samples.mni import load_mni_brain

    image, labels, _ = load_mni_brain()
    vol = image.data.astype(np.float32)
    vol01 = vol / float(vol.max())
    return {
        "support_image": vol01[SUPPORT_Z],
        "support_mask": labels[SUPPORT_Z] == LABEL,
        "query_images": [vol01[z] for z in QUERY_Z],
    }


def contour_masks(count: int = 24) -> list[np.ndarray]:
    """Seeded random blob masks (some touching the border, several components) on which the
    fixture records OpenCV's largest outer contour (`official_contour` must give the same)."""
    from scipy import ndimage

    masks = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        field = ndimage.gaussian_filter(rng.random((40, 48)), 1.0 + seed % 4)
        masks.append(field > np.quantile(field, 0.55 + 0.01 * (seed % 10)))
    return masks


RECIPE = {
    "data": "napari_fob.samples.mni.load_mni_brain(): MNI ICBM152 2009a T1, 2 mm, axial (Z, Y, X)",
    "image01": "volume / volume.max() (min is 0)",
    "label": LABEL,
    "support_z": SUPPORT_Z,
    "query_z": list(QUERY_Z),
    "zscore": "every slice: (x - mean(support01)) / std(support01), numpy float64, ddof=0",
    "their_input": "z-scored slice repeated to (1, 3, H, W); support mask (1, H, W) float; their "
    "FewShotSeg resizes both to 256 with torchvision Resize",
    "weights": "tests/model/official_recipe.py deterministic_tensor(key, shape)",
}
