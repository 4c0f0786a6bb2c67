"""SAM 2.1 segmenter on the ``sam2`` package's `SAM2ImagePredictor`, with the embedding cache.

Same prompts and the same rules as SAM (`prompted.PromptedSegmenter`: points as (x, y), the
ring's box on request, the mask chosen by predicted IoU, the encoder's output cached per slice).
What is SAM 2.1's own: the image goes in resized to a square (no padding), the encoder's output
is three maps (the 1/16 image embedding plus two high-resolution maps the decoder uses), and the
low-res logits are ``image_size / 4`` on a side (256 at 1024, 128 for MedSAM2 at 512).

Imports torch and sam2: import this module only when SAM 2.1 is used (never napari/Qt).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from sam2.sam2_image_predictor import SAM2ImagePredictor

from napari_fob.segmenters.cache import EmbeddingCache
from napari_fob.segmenters.prompted import PromptedSegmenter
from napari_fob.segmenters.sam2_models import build_sam2_model, check_size
from napari_fob.segmenters.sam_inputs import mask_to_logits

__all__ = ["Sam2Segmenter", "build_sam2_model"]

# the encoder's three outputs, coarse to fine, as the cache stores them: (1, 256, S/16, S/16),
# (1, 64, S/8, S/8), (1, 32, S/4, S/4)
_FEATURES = ("image_embed", "high_res_s8", "high_res_s4")


class Sam2Segmenter(PromptedSegmenter):
    """Fg points + background ring (+ optional box / previous mask) -> mask with SAM 2.1.

    Args:
        size: ``hiera_t``, ``hiera_s``, ``hiera_b+`` or ``hiera_l``.
        checkpoint: a SAM 2.1 (or MedSAM2) ``.pt`` file (see `weights.find_sam2_checkpoint`).
        image_size: the model's input side: 1024 for Meta's checkpoints, 512 for MedSAM2.
        device: ``auto``/``cpu``/``cuda``/``mps``.
        cache: embedding cache (a new 64-slice in-memory one when None); bound to this model.
        use_box: also give SAM 2.1 the box around the background ring (``ring_box``).
        multimask: ``"auto"`` (several masks only for a lone point), True or False.
    """

    name = "sam2"
    mask_choice_note = (
        ", with sam2's fallback to the multimask outputs when that single mask is unstable"
    )

    def __init__(
        self,
        *,
        size: str = "hiera_t",
        checkpoint: str | Path,
        image_size: int = 1024,
        device: str = "auto",
        cache: EmbeddingCache | None = None,
        use_box: bool = False,
        multimask: bool | str = "auto",
    ) -> None:
        from napari_fob.segmenters.weights import file_sha256

        sha = file_sha256(checkpoint)
        model = build_sam2_model(check_size(size), image_size=image_size, checkpoint=checkpoint)
        self._setup(
            model,
            model_id=f"sam2.1-{size}-{image_size}:{sha[:12]}",
            size=size,
            checkpoint=str(Path(checkpoint).resolve()),
            sha256=sha,
            options={"device": device, "cache": cache, "use_box": use_box, "multimask": multimask},
        )

    @classmethod
    def from_model(
        cls,
        model: torch.nn.Module,
        *,
        model_id: str,
        size: str | None = None,
        cache: EmbeddingCache | None = None,
        device: str = "auto",
        use_box: bool = False,
        multimask: bool | str = "auto",
    ) -> Sam2Segmenter:
        """Wrap an already built ``SAM2Base`` (e.g. random `build_sam2_model` in tests).

        ``model_id`` names the weights in the cache keys and in `describe`; give each distinct
        set of weights its own id; ``size`` is only recorded.
        """
        self = cls.__new__(cls)
        options = {"device": device, "cache": cache, "use_box": use_box, "multimask": multimask}
        self._setup(model, model_id=model_id, size=size, checkpoint=None, sha256=None,
                    options=options)  # fmt: skip
        return self

    def _setup(self, model, *, model_id, size, checkpoint, sha256, options) -> None:
        self.size = size
        self._init_prompting(model, model_id=model_id, model_type=size, checkpoint=checkpoint,
                             sha256=sha256, **options)  # fmt: skip
        self.predictor = SAM2ImagePredictor(self.model)
        self.img_size = int(self.model.image_size)
        # The predictor's feature-map sizes are written for a 1024 input; they follow the input
        # (strides 4, 8, 16), so a 512 MedSAM2 model gets its own.
        self.predictor._bb_feat_sizes = [(self.img_size // s,) * 2 for s in (4, 8, 16)]
        self.low_res = self.img_size // 4

    # ---- the backend hooks of PromptedSegmenter -------------------------------------------
    @torch.no_grad()
    def _encode(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        """(H, W, 3) uint8 -> the three feature maps, by the predictor's own ``set_image``.

        Under the predictor's lock (re-entrant): a background `precompute` and an interactive
        decode never interleave on the one predictor; the decode waits for at most one encode.
        """
        with self._lock:
            self.predictor.set_image(rgb)
            self._state_key = None  # the predictor now holds this image
            features = self.predictor._features  # {"image_embed", "high_res_feats"}
            maps = [features["image_embed"], *features["high_res_feats"][::-1]]
        value = {name: t.float().cpu().numpy() for name, t in zip(_FEATURES, maps)}
        value["original_size"] = np.asarray(rgb.shape[:2], dtype=np.int64)
        return value

    def _set_state(self, value: Mapping[str, np.ndarray]) -> None:
        # The predictor's state as its set_image leaves it (one image, not a batch).
        maps = [torch.from_numpy(np.asarray(value[name])).to(self.device) for name in _FEATURES]
        self.predictor.reset_predictor()
        # the cache stores coarse to fine; the predictor keeps the high-res maps fine to coarse
        self.predictor._features = {"image_embed": maps[0], "high_res_feats": maps[:0:-1]}
        self.predictor._orig_hw = [tuple(int(v) for v in value["original_size"])]
        self.predictor._is_image_set = True

    def _mask_logits(self, mask: np.ndarray) -> np.ndarray:
        # SAM 2.1 resizes the whole slice to the square input (no padding)
        return mask_to_logits(mask, (self.img_size, self.img_size), self.img_size)
