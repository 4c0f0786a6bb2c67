"""SAM segmenter on segment-anything's `SamPredictor`, with the embedding cache.

The image embedding (seconds per slice on a CPU) is computed once per (slice, window, model) and
kept in an `EmbeddingCache`; a prompt edit then costs only SAM's decoder. `precompute` fills the
cache in the order slices will be needed (nearest to the current slice first), skipping what is
cached, so it resumes after a restart when the cache has a disk folder.

Mask choice: with one point and nothing else SAM's prompt is ambiguous, so SAM returns three
masks and the one with the highest *predicted IoU* is taken; with more prompts (FoB gives ~20
points) SAM's single-mask output is used, as its authors advise for unambiguous prompts. Never a
hard-coded index among several masks.

Imports torch and segment-anything: import this module only when SAM is used (never napari/Qt).
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from segment_anything import SamPredictor
from segment_anything.modeling import Sam

from napari_fob.core.intensity import Window, to_uint8_rgb
from napari_fob.core.prompts import PromptSet
from napari_fob.geometry import ring_box, to_sam_xy
from napari_fob.segmenters.base import check_inputs, segment_each
from napari_fob.segmenters.cache import EmbeddingCache, array_signature, embedding_key
from napari_fob.segmenters.sam_inputs import (
    MASK_LOGIT,
    SamOutput,
    mask_to_logits,
)
from napari_fob.segmenters.sam_models import build_tiny_sam, load_sam

__all__ = ["SamOutput", "SamSegmenter", "build_tiny_sam", "load_sam"]


class SamSegmenter:
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
            device=device,
            cache=cache,
            use_box=use_box,
            multimask=multimask,
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
        self._setup(
            sam_model,
            model_id=model_id,
            model_type=None,
            checkpoint=None,
            sha256=None,
            device=device,
            cache=cache,
            use_box=use_box,
            multimask=multimask,
        )
        return self

    def _setup(self, model: Sam, *, model_id, model_type, checkpoint, sha256, device, cache,
               use_box, multimask) -> None:  # fmt: skip
        from napari_fob.devices import resolve_device

        if multimask not in ("auto", True, False):
            raise ValueError(
                f"SamSegmenter multimask: expected 'auto', True or False, got {multimask!r}"
            )
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.predictor = SamPredictor(self.model)
        self.model_id = model_id
        self.model_type = model_type
        self.checkpoint = checkpoint
        self.checkpoint_sha256 = sha256
        self.cache = cache if cache is not None else EmbeddingCache(max_items=64)
        self.cache.bind(model_id)
        self.use_box = bool(use_box)
        self.multimask = multimask
        self.img_size = int(self.model.image_encoder.img_size)
        self._state_key: str | None = None  # the embedding now set on the predictor
        self._lock = threading.Lock()  # the predictor holds one image at a time

    def describe(self) -> dict[str, Any]:
        """JSON-able identity: kind, model type/id, checkpoint + sha256 prefix, options."""
        return {
            "kind": "sam",
            "model_type": self.model_type,
            "model_id": self.model_id,
            "checkpoint": self.checkpoint,
            "checkpoint_sha256": None
            if self.checkpoint_sha256 is None
            else self.checkpoint_sha256[:16],
            "device": str(self.device),
            "input_size": self.img_size,
            "options": {
                "use_box": self.use_box,
                "multimask": self.multimask,
                "mask_choice": "highest predicted IoU among multimask outputs; single output "
                "when the prompt has more than one point (multimask='auto')",
                "intensity": "uint8 RGB of the window (intensity.to_uint8_rgb)",
            },
        }

    # ---- segmentation --------------------------------------------------------------------
    def segment(
        self,
        image: np.ndarray,
        prompts: PromptSet,
        *,
        window: Window,
        mask_input: np.ndarray | None = None,
    ) -> np.ndarray:
        """(H, W) raw slice + prompts -> (H, W) bool mask (see `segment_detailed`)."""
        return self.segment_detailed(image, prompts, window=window, mask_input=mask_input).mask

    def segment_many(
        self,
        images: Sequence[np.ndarray],
        prompts_list: Sequence[PromptSet],
        *,
        window: Window,
    ) -> list[np.ndarray]:
        """One (H, W) bool mask per (image, prompts) pair; each embedding goes through the cache."""
        return segment_each(self, images, prompts_list, window=window)

    def segment_detailed(
        self,
        image: np.ndarray,
        prompts: PromptSet,
        *,
        window: Window,
        mask_input: np.ndarray | None = None,
    ) -> SamOutput:
        """Segment one slice and return every mask, SAM's IoU predictions and the logits.

        Args:
            image: (H, W) raw slice.
            prompts: fg (Nf, 2) then bg (Np, 2) points, (row, col) pixels; sent to SAM as (x, y)
                with labels 1 then 0.
            window: intensity window for the uint8 RGB conversion.
            mask_input: (1, h, h) low-res logits of a neighbouring slice (`SamOutput
                .low_res_logits`) or an (H, W) binary mask, converted to logits.
        """
        arr = check_inputs(image, prompts)
        if len(prompts.fg) == 0:  # nothing marked as the structure on this slice
            empty = np.zeros((1, *arr.shape), dtype=bool)
            h = 4 * self.model.prompt_encoder.image_embedding_size[0]
            logits = np.full((1, h, h), -MASK_LOGIT, dtype=np.float32)
            return SamOutput(empty[0], empty, np.zeros(1, np.float32), 0, logits, False,
                             window.to_dict())  # fmt: skip
        coords = to_sam_xy(np.concatenate([prompts.fg, prompts.bg]))
        labels = np.concatenate([np.ones(len(prompts.fg)), np.zeros(len(prompts.bg))])
        box = ring_box(prompts.bg, arr.shape) if self.use_box and len(prompts.bg) >= 2 else None
        with self._lock:
            self._set_embedding(arr, window)
            low_res = self._mask_input(mask_input, arr.shape)
            multimask = self.multimask
            if multimask == "auto":
                multimask = len(coords) == 1 and box is None and low_res is None
            masks, iou, logits = self.predictor.predict(
                point_coords=coords,
                point_labels=labels.astype(np.int64),
                box=box,
                mask_input=low_res,
                multimask_output=bool(multimask),
            )
        chosen = int(np.argmax(iou))
        return SamOutput(
            mask=masks[chosen].astype(bool),
            masks=masks.astype(bool),
            iou=iou.astype(np.float32),
            chosen=chosen,
            low_res_logits=logits[chosen : chosen + 1].astype(np.float32),
            multimask=bool(multimask),
            window=window.to_dict(),
        )

    # ---- embeddings ----------------------------------------------------------------------
    def embedding_key(self, image: np.ndarray, window: Window) -> str:
        """The cache key of ``image`` (H, W) under ``window`` for this model."""
        return embedding_key(array_signature(image), window, self.model_id, self.img_size)

    def precompute(
        self,
        images: Mapping[int, np.ndarray] | np.ndarray,
        *,
        window: Window,
        center: int,
        indices: Sequence[int] | None = None,
    ) -> Generator[tuple[int, int], None, None]:
        """Fill the cache, nearest slice to ``center`` first; yields (done, total) after each.

        Cached slices are skipped (counted as done), so a run resumes where a previous one
        stopped. Without a disk folder only the ``cache.max_items`` nearest slices are computed:
        more would evict the nearest ones, which are needed first.

        Args:
            images: {slice index: (H, W) slice} or a (Z, H, W) volume.
            window: the intensity window the slices will be segmented with.
            center: the current slice index.
            indices: which slices (default: all of ``images``).
        """
        if isinstance(images, Mapping):
            keys = list(images) if indices is None else list(indices)
        else:
            if np.ndim(images) != 3:
                raise ValueError(f"precompute: expected a (Z, H, W) volume, got {np.shape(images)}")
            keys = list(range(len(images))) if indices is None else list(indices)
        order = sorted(keys, key=lambda i: (abs(i - center), i))
        if self.cache.disk_dir is None and len(order) > self.cache.max_items:
            order = order[: self.cache.max_items]
        total = len(order)
        for done, index in enumerate(order, start=1):
            arr = check_inputs(images[index], PromptSet(fg=[], bg=[]))
            key = self.embedding_key(arr, window)
            if key not in self.cache:
                self.cache.put(
                    key, self._encode(to_uint8_rgb(arr, window)), self._meta(arr, window)
                )
            yield done, total

    def _meta(self, image: np.ndarray, window: Window) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "data": array_signature(image),
            "shape": list(image.shape),
            "window": window.to_dict(),
            "input_size": self.img_size,
        }

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

    def _set_embedding(self, image: np.ndarray, window: Window) -> None:
        key = self.embedding_key(image, window)
        value = self.cache.get(key)
        if value is None:
            value = self._encode(to_uint8_rgb(image, window))
            self.cache.put(key, value, self._meta(image, window))
        if key == self._state_key:
            return
        # Set the predictor's state directly: a cache hit skips the image encoder entirely.
        self.predictor.reset_image()
        self.predictor.features = torch.from_numpy(value["features"]).to(self.device)
        self.predictor.original_size = tuple(int(v) for v in value["original_size"])
        self.predictor.input_size = tuple(int(v) for v in value["input_size"])
        self.predictor.is_image_set = True
        self._state_key = key

    def _mask_input(
        self, mask_input: np.ndarray | None, shape: tuple[int, int]
    ) -> np.ndarray | None:
        if mask_input is None:
            return None
        low = 4 * self.model.prompt_encoder.image_embedding_size[0]
        arr = np.asarray(mask_input)
        if arr.shape == (1, low, low) and np.issubdtype(arr.dtype, np.floating):
            return arr.astype(np.float32)
        if arr.shape == tuple(shape):
            return mask_to_logits(arr, self.predictor.input_size, self.img_size)
        raise ValueError(
            f"mask_input: expected (1, {low}, {low}) float logits or a {tuple(shape)} binary "
            f"mask, got {arr.dtype} {arr.shape}"
        )
