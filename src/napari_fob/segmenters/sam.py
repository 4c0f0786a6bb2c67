"""SAM segmenter on segment-anything's `SamPredictor`, with the embedding cache.

The prompt handling, the mask choice by predicted IoU, the embedding cache and `precompute` are
`prompted.PromptedSegmenter`'s (shared with SAM 2.1); this module holds what is SAM's own: the
model, its image encoder call and its predictor's state.

Imports torch and segment-anything: import this module only when SAM is used (never napari/Qt).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from segment_anything import SamPredictor
from segment_anything.modeling import Sam

from napari_fob.segmenters.cache import EmbeddingCache
from napari_fob.segmenters.prompted import PromptedSegmenter
from napari_fob.segmenters.sam_inputs import SamOutput, mask_to_logits
from napari_fob.segmenters.sam_models import build_tiny_sam, load_sam

__all__ = ["SamOutput", "SamSegmenter", "build_tiny_sam", "load_sam"]


class SamSegmenter(PromptedSegmenter):
    """Fg points + background ring (+ optional box / previous mask) -> mask with SAM.

    Args:
        model_type: ``vit_b``, ``vit_l`` or ``vit_h``.
        checkpoint: the checkpoint file (see `weights.find_sam_checkpoint`).
        device: ``auto``/``cpu``/``cuda``/``mps``.
        cache: embedding cache (a new 64-slice in-memory one when None); bound to this model.
        use_box: also give SAM the box around the background ring (``ring_box``).
        multimask: ``"auto"`` (several masks only for a lone point), True or False.
    """

    name = "sam"

    def __init__(
        self,
        *,
        model_type: str = "vit_b",
        checkpoint: str | Path,
        device: str = "auto",
        cache: EmbeddingCache | None = None,
        use_box: bool = False,
        multimask: bool | str = "auto",
    ) -> None:
        from napari_fob.segmenters.weights import file_sha256

        sha = file_sha256(checkpoint)
        self._setup(
            load_sam(model_type, checkpoint),
            model_id=f"sam-{model_type}:{sha[:12]}",
            model_type=model_type,
            checkpoint=str(Path(checkpoint).resolve()),
            sha256=sha,
            options={"device": device, "cache": cache, "use_box": use_box, "multimask": multimask},
        )

    @classmethod
    def from_model(
        cls,
        sam_model: Sam,
        *,
        model_id: str,
        cache: EmbeddingCache | None = None,
        device: str = "auto",
        use_box: bool = False,
        multimask: bool | str = "auto",
    ) -> SamSegmenter:
        """Wrap an already built `Sam` (e.g. `build_tiny_sam` in tests and benchmarks).

        ``model_id`` names the weights in the cache keys and in `describe`; give each distinct
        set of weights its own id.
        """
        self = cls.__new__(cls)
        options = {"device": device, "cache": cache, "use_box": use_box, "multimask": multimask}
        self._setup(sam_model, model_id=model_id, model_type=None, checkpoint=None, sha256=None,
                    options=options)  # fmt: skip
        return self

    def _setup(self, model: Sam, *, model_id, model_type, checkpoint, sha256, options) -> None:
        self._init_prompting(model, model_id=model_id, model_type=model_type,
                             checkpoint=checkpoint, sha256=sha256, **options)  # fmt: skip
        self.predictor = SamPredictor(self.model)
        self.img_size = int(self.model.image_encoder.img_size)
        self.low_res = 4 * int(self.model.prompt_encoder.image_embedding_size[0])

    # ---- the backend hooks of PromptedSegmenter -------------------------------------------
    @torch.no_grad()
    def _encode(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        """(H, W, 3) uint8 -> SAM predictor state, as `SamPredictor.set_image` computes it."""
        resized = self.predictor.transform.apply_image(rgb)
        tensor = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()[None]
        features = self.model.image_encoder(self.model.preprocess(tensor))  # (1, C, E, E)
        return {
            "features": features.float().cpu().numpy(),
            "original_size": np.asarray(rgb.shape[:2], dtype=np.int64),
            "input_size": np.asarray(tensor.shape[-2:], dtype=np.int64),
        }

    def _set_state(self, value: Mapping[str, np.ndarray]) -> None:
        # Set the predictor's state directly, as SamPredictor.set_image leaves it.
        self.predictor.reset_image()
        self.predictor.features = torch.from_numpy(value["features"]).to(self.device)
        self.predictor.original_size = tuple(int(v) for v in value["original_size"])
        self.predictor.input_size = tuple(int(v) for v in value["input_size"])
        self.predictor.is_image_set = True

    def _mask_logits(self, mask: np.ndarray) -> np.ndarray:
        # SAM resizes the long side to img_size and pads bottom/right (mask_to_logits inverts it)
        return mask_to_logits(mask, self.predictor.input_size, self.img_size)
