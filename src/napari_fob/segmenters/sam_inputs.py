"""SAM inputs and outputs: a binary mask -> SAM's mask_input logits, and `SamOutput`.

The (row, col) -> (x, y) flip and the ring's box live in `napari_fob.geometry` (`to_sam_xy`,
`ring_box`), the one place each conversion is defined.

Pure numpy / scikit-image: must not import torch, napari or Qt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from skimage.transform import resize

# Logit of 0.999: a binary mask given as SAM's mask_input becomes +-6.9, the range of logits
# SAM itself produces for confident pixels.
MASK_LOGIT = float(np.log(0.999 / 0.001))


def mask_to_logits(mask: np.ndarray, input_size: tuple[int, int], img_size: int) -> np.ndarray:
    """An (H, W) binary mask -> (1, img_size/4, img_size/4) float32 logits for SAM's mask_input.

    The inverse of SAM's ``postprocess_masks``: resize to the resized-input frame ``input_size``
    (h, w) (long side = ``img_size``), pad bottom/right to (img_size, img_size) as SAM pads the
    image, average 4 x 4 blocks, and map the coverage p to +-`MASK_LOGIT` (p >= 0.5 inside).
    """
    h, w = (int(v) for v in input_size)
    frame = np.zeros((img_size, img_size), dtype=np.float32)
    frame[:h, :w] = resize(np.asarray(mask, dtype=np.float32), (h, w), order=1, anti_aliasing=False)
    low = img_size // 4
    coverage = frame.reshape(low, 4, low, 4).mean(axis=(1, 3))
    logits = np.where(coverage >= 0.5, MASK_LOGIT, -MASK_LOGIT).astype(np.float32)
    return logits[None]


@dataclass
class SamOutput:
    """Everything SAM returned for one slice.

    Attributes:
        mask: (H, W) bool, the chosen mask.
        masks: (C, H, W) bool, every mask SAM returned (C = 3 with multimask output, else 1).
        iou: (C,) float32, SAM's predicted IoU of each mask.
        chosen: index of ``mask`` in ``masks`` (the highest predicted IoU).
        low_res_logits: (1, h, h) float32 logits of the chosen mask (h = 256 for SAM); pass them
            as ``mask_input`` for the neighbouring slice.
        multimask: whether SAM was asked for several masks.
        window: the intensity window used, as a dict.
    """

    mask: np.ndarray
    masks: np.ndarray
    iou: np.ndarray
    chosen: int
    low_res_logits: np.ndarray
    multimask: bool
    window: dict[str, Any]
