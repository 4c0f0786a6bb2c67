"""The segmenter registry: `get_segmenter` builds a backend by name.

``auto`` picks SAM when a checkpoint is found and otherwise the random walker, with a notice the
caller must show. Kept apart from the protocol (`base.py`) so that the backends, which import
the protocol's helpers, are never imported by it. Must not import torch at import time
(``sam.py`` is imported only when chosen).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from napari_fob.segmenters.base import Segmenter

if TYPE_CHECKING:
    from napari_fob.segmenters.cache import EmbeddingCache

SEGMENTERS = ("auto", "sam", "random-walker")


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
