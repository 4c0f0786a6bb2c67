"""The segmenter protocol (prompts -> mask on one 2D slice) and the helpers backends share.

A segmenter turns one raw (H, W) slice plus one `PromptSet` into a (H, W) bool mask. Backends:
``sam`` (segment-anything, `sam.py`) and ``random-walker`` (scikit-image, `random_walker.py`,
the offline fallback); `registry.get_segmenter` builds one by name.

Must not import torch, napari or Qt at import time (``sam.py`` is imported only when chosen).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from napari_fob.core.intensity import Window
from napari_fob.core.prompts import PromptSet

if TYPE_CHECKING:
    pass


@runtime_checkable
class Segmenter(Protocol):
    """Prompts -> mask on one slice.

    Attributes:
        name: the registry name (``"sam"``, ``"random-walker"``).
    """

    name: str

    def describe(self) -> dict[str, Any]:
        """A JSON-able identity (kind, model type, checkpoint + sha256 prefix, options)."""
        ...

    def segment(
        self,
        image: np.ndarray,
        prompts: PromptSet,
        *,
        window: Window,
        mask_input: np.ndarray | None = None,
    ) -> np.ndarray:
        """One slice -> mask.

        Args:
            image: (H, W) raw slice (any real dtype; CT in HU, MR in scanner units).
            prompts: fg (Nf, 2) and bg (Np, 2) points in (row, col) pixels of ``image``.
            window: the intensity window that maps ``image`` to [0, 1].
            mask_input: optional prior for the mask (the neighbouring slice's result), used by
                backends that can (SAM); others ignore it.

        Returns:
            (H, W) bool mask. No foreground point gives an empty mask.
        """
        ...

    def segment_many(
        self,
        images: Sequence[np.ndarray],
        prompts_list: Sequence[PromptSet],
        *,
        window: Window,
    ) -> list[np.ndarray]:
        """The batch form: one (H, W) bool mask per (image, prompts) pair, in order."""
        ...


def segment_each(
    segmenter: Segmenter,
    images: Sequence[np.ndarray],
    prompts_list: Sequence[PromptSet],
    *,
    window: Window,
) -> list[np.ndarray]:
    """`segment_many` for backends without a faster batch path: one `segment` call per pair."""
    if len(images) != len(prompts_list):
        raise ValueError(f"segment_many: {len(images)} images but {len(prompts_list)} prompt sets")
    return [segmenter.segment(im, p, window=window) for im, p in zip(images, prompts_list)]


def check_inputs(image: np.ndarray, prompts: PromptSet) -> np.ndarray:
    """Validate a slice and its prompts; returns the slice as a float32 (H, W) array."""
    arr = np.asarray(image)
    if arr.ndim != 2 or min(arr.shape) < 2:
        raise ValueError(f"segmenter: expected a 2D slice (H, W), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"segmenter: expected a real-valued slice, got dtype {arr.dtype}")
    if not isinstance(prompts, PromptSet):
        raise ValueError(f"segmenter: expected a PromptSet, got {type(prompts).__name__}")
    return arr.astype(np.float32, copy=False)
