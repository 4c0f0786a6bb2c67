"""npe2 sample data: each sample as an image, its ground truth and its one-slice support.

Thin wrappers over `napari_fob.samples` returning napari layer data tuples. The labels layers
carry the image's geometry (``metadata["napari_fob"]``) so they save back with its affine,
and the structure names (``metadata["names"]`` and a ``features`` table).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_fob.core.intensity import resolve_window
from napari_fob.samples import Sample, load_sample

LayerData = tuple[Any, dict[str, Any], str]
METADATA_KEY = "napari_fob"
GROUND_TRUTH_LAYER = "ground truth"
SUPPORT_LAYER = "support"


def mni_brain() -> list[LayerData]:
    """The MNI T1 brain: image, ground truth (ventricles, white, grey matter), support."""
    return sample_layers(load_sample("mni-brain"), image_name="MNI T1", window="mr-percentile")


def abdomen_phantom() -> list[LayerData]:
    """The CT abdomen phantom (seed 0): image, ground truth (4 organs), support."""
    return sample_layers(
        load_sample("abdomen-phantom"), image_name="abdomen CT phantom", window="ct-abdomen"
    )


def sample_layers(sample: Sample, *, image_name: str, window: str) -> list[LayerData]:
    """Layer data tuples ``[(image, ...), (ground truth, ...), (support, ...)]``.

    All three are ``(Z, Y, X)`` with ``scale`` = the image spacing in mm; the image is float32,
    the labels integer.
    """
    volume = sample.image
    geometry = volume.to_metadata()
    limits = resolve_window(volume.data, window)
    names = {str(k): v for k, v in sorted(sample.names.items())}
    features = {
        "index": np.array([0, *sorted(sample.names)]),
        "name": np.array(["background", *(sample.names[k] for k in sorted(sample.names))]),
    }
    common = {"scale": volume.spacing}
    image_meta = {METADATA_KEY: geometry, "description": sample.description}
    labels_meta = {METADATA_KEY: geometry, "names": names}
    return [
        (
            volume.data,
            {**common, "name": image_name, "metadata": image_meta,
             "contrast_limits": (limits.low, limits.high)},
            "image",
        ),
        (
            sample.labels,
            {**common, "name": GROUND_TRUTH_LAYER, "metadata": labels_meta,
             "features": features, "opacity": 0.4},
            "labels",
        ),
        (
            sample.support,
            {**common, "name": SUPPORT_LAYER, "metadata": {**labels_meta, "role": "support"},
             "features": features, "opacity": 0.8},
            "labels",
        ),
    ]  # fmt: skip
