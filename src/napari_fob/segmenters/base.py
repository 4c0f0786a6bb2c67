"""The segmenter protocol (prompts -> mask on one 2D slice) and the registry `get_segmenter`.

A segmenter turns one raw (H, W) slice plus one `PromptSet` into a (H, W) bool mask. Backends:
``sam`` (segment-anything, `sam.py`) and ``random-walker`` (scikit-image, `random_walker.py`,
the offline fallback). ``auto`` picks SAM when a checkpoint is found and otherwise the random
walker, with a notice the caller must show.

Must not import torch, napari or Qt at import time (``sam.py`` is imported only when chosen).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from napari_fob.intensity import Window
from napari_fob.prompts import PromptSet

if TYPE_CHECKING:
    from napari_fob.cache import EmbeddingCache

SEGMENTERS = ("auto", "sam", "random-walker")


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


def no_sam_notice(looked_in: Sequence[str]) -> str:
    """The notice shown (GUI, CLI output, report) when ``auto`` falls back to the random walker."""
    return (
        f"No SAM checkpoint found (looked in: {'; '.join(looked_in)}); using the random-walker "
        "fallback — masks will be coarser. Get SAM with `fob weights download sam-vit-b` or "
        "pass --sam-checkpoint."
    )


def get_segmenter(
    name: str = "auto",
    *,
    sam_model: str = "vit_b",
    sam_checkpoint: str | None = None,
    device: str = "auto",
    cache: EmbeddingCache | None = None,
    use_box: bool = False,
) -> tuple[Segmenter, str | None]:
    """Build a segmenter by name.

    Args:
        name: ``auto`` (SAM when a checkpoint is found, else the random walker), ``sam`` (a
            missing checkpoint is an error) or ``random-walker``.
        sam_model: segment-anything model type: ``vit_b``, ``vit_l`` or ``vit_h``.
        sam_checkpoint: explicit checkpoint path (file, or folder with the official file name);
            see `weights.find_sam_checkpoint` for the search order without it.
        device: ``auto``/``cpu``/``cuda``/``mps`` for SAM.
        cache: embedding cache for SAM (a new in-memory one when None).
        use_box: SAM also gets the box around the background ring.

    Returns:
        (segmenter, notice): ``notice`` is None, or a sentence to show the user when ``auto``
        fell back to the random walker.

    Raises:
        ValueError: unknown name or model type.
        FileNotFoundError: ``sam`` without a checkpoint, or a given checkpoint path is missing.
    """
    from napari_fob.segmenters import weights

    if name not in SEGMENTERS:
        raise ValueError(f"segmenter {name!r}: expected one of {', '.join(SEGMENTERS)}")
    if sam_model not in weights.SAM_MODEL_TYPES:
        raise ValueError(f"SAM model {sam_model!r}: expected one of {weights.SAM_MODEL_TYPES}")
    if name == "random-walker":
        from napari_fob.segmenters.random_walker import RandomWalkerSegmenter

        return RandomWalkerSegmenter(), None
    checkpoint = weights.find_sam_checkpoint(sam_model, sam_checkpoint)
    if checkpoint is None:
        looked = [f"{what}: {path}" for what, path in weights.sam_search_locations(sam_model)]
        if name == "sam":
            raise FileNotFoundError(
                f"no SAM {sam_model} checkpoint found (looked in: {'; '.join(looked)}); get it "
                f"with `fob weights download {weights.SAM_CHECKPOINTS[sam_model].name}` or pass "
                "--sam-checkpoint PATH"
            )
        from napari_fob.segmenters.random_walker import RandomWalkerSegmenter

        return RandomWalkerSegmenter(), no_sam_notice(looked)
    from napari_fob.segmenters.sam import SamSegmenter

    segmenter = SamSegmenter(
        model_type=sam_model, checkpoint=checkpoint, device=device, cache=cache, use_box=use_box
    )
    return segmenter, None
