"""What the SAM and SAM 2.1 segmenters share: prompts in, the mask chosen by predicted IoU, and
the embedding cache in front of the image encoder.

Both models split into an expensive image encoder (seconds per slice on a CPU) and a cheap
prompt decoder. `PromptedSegmenter` keeps every image's encoder output in an `EmbeddingCache`
keyed by the slice's data, the intensity window, the model and its input size, sets a cache
hit directly on the predictor (the encoder never runs again for that slice), and leaves each
backend only what differs: `_encode` (uint8 RGB -> arrays), `_set_state` (arrays -> predictor)
and `_mask_logits` (a binary mask -> the model's mask_input).

Mask choice: with one point and nothing else the prompt is ambiguous, so the model returns three
masks and the one with the highest *predicted IoU* is taken; with more prompts (FoB gives ~20
points) the single-mask output is used, as SAM's authors advise for unambiguous prompts. Never a
hard-coded index among several masks.

numpy only: must not import torch, napari or Qt (the backends do the torch side).
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Mapping, Sequence
from typing import Any

import numpy as np

from napari_fob.core.intensity import Window, to_uint8_rgb
from napari_fob.core.prompts import PromptSet
from napari_fob.geometry import ring_box, to_sam_xy
from napari_fob.segmenters.base import check_inputs, segment_each
from napari_fob.segmenters.cache import EmbeddingCache, array_signature, embedding_key
from napari_fob.segmenters.sam_inputs import MASK_LOGIT, SamOutput

MULTIMASK_CHOICES = ("auto", True, False)


class PromptedSegmenter:
    """The shared half of `SamSegmenter` and `Sam2Segmenter` (see the module docstring).

    A backend's set-up calls `_init_prompting` (device, model, identity, cache) and sets its
    predictor, ``img_size`` (the model's square input side) and ``low_res`` (the side of its
    low-res logits, ``img_size / 4``).
    """

    name = "prompted"
    model_id: str
    img_size: int
    low_res: int

    #: added to `describe`'s mask-choice sentence by a backend with its own rule
    mask_choice_note = ""

    def _init_prompting(
        self, model: Any, *, device: str, model_id: str, model_type: str | None,
        checkpoint: str | None, sha256: str | None, cache: EmbeddingCache | None,
        use_box: bool, multimask: Any,
    ) -> None:  # fmt: skip
        """Put ``model`` on ``device`` in eval mode and set what every backend records."""
        from napari_fob.devices import resolve_device

        if multimask not in MULTIMASK_CHOICES:
            raise ValueError(
                f"{type(self).__name__} multimask: expected 'auto', True or False, got "
                f"{multimask!r}"
            )
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.model_id = model_id
        self.model_type = model_type
        self.checkpoint = checkpoint
        self.checkpoint_sha256 = sha256
        self.cache = cache if cache is not None else EmbeddingCache(max_items=64)
        self.cache.bind(model_id)
        self.use_box = bool(use_box)
        self.multimask = multimask
        self._state_key: str | None = None  # the embedding now set on the predictor
        self._lock = threading.RLock()  # the predictor holds one image at a time

    def describe(self) -> dict[str, Any]:
        """JSON-able identity: kind, model type/id, checkpoint + sha256 prefix, options."""
        sha = self.checkpoint_sha256
        return {
            "kind": self.name,
            "model_type": self.model_type,
            "model_id": self.model_id,
            "checkpoint": self.checkpoint,
            "checkpoint_sha256": None if sha is None else sha[:16],
            "device": str(self.device),
            "input_size": self.img_size,
            "options": {
                "use_box": self.use_box,
                "multimask": self.multimask,
                "mask_choice": "highest predicted IoU among multimask outputs; single output "
                "when the prompt has more than one point (multimask='auto')"
                + self.mask_choice_note,
                "intensity": "uint8 RGB of the window (intensity.to_uint8_rgb)",
            },
        }

    # ---- what each backend provides ----------------------------------------------------------
    def _encode(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        """(H, W, 3) uint8 -> the encoder's output as numpy arrays (the cache's value)."""
        raise NotImplementedError

    def _set_state(self, value: Mapping[str, np.ndarray]) -> None:
        """Put a cached `_encode` value on the predictor, as its own set_image would."""
        raise NotImplementedError

    def _predict(self, coords, labels, box, mask_input, multimask):
        """The predictor's ``predict`` (SAM's and SAM 2.1's take the same arguments): (x, y)
        points (N, 2), labels (N,), an XYXY box or None, (1, h, h) logits or None -> (C, H, W)
        masks, (C,) predicted IoUs, (C, h, h) low-res logits."""
        return self.predictor.predict(
            point_coords=coords,
            point_labels=labels,
            box=box,
            mask_input=mask_input,
            multimask_output=multimask,
        )

    def _mask_logits(self, mask: np.ndarray) -> np.ndarray:
        """An (H, W) binary mask of the current slice -> (1, low_res, low_res) logits."""
        raise NotImplementedError

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
        """Segment one slice and return every mask, the predicted IoUs and the logits.

        Args:
            image: (H, W) raw slice.
            prompts: fg (Nf, 2) then bg (Np, 2) points, (row, col) pixels; sent as (x, y) with
                labels 1 then 0.
            window: intensity window for the uint8 RGB conversion.
            mask_input: (1, h, h) low-res logits of a neighbouring slice (`SamOutput
                .low_res_logits`, h = ``low_res``) or an (H, W) binary mask, converted to logits.
        """
        arr = check_inputs(image, prompts)
        if len(prompts.fg) == 0:  # nothing marked as the structure on this slice
            empty = np.zeros((1, *arr.shape), dtype=bool)
            logits = np.full((1, self.low_res, self.low_res), -MASK_LOGIT, dtype=np.float32)
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
            masks, iou, logits = self._predict(
                coords, labels.astype(np.int64), box, low_res, bool(multimask)
            )
        chosen = int(np.argmax(iou))
        return SamOutput(
            mask=masks[chosen].astype(bool),
            masks=masks.astype(bool),
            iou=np.asarray(iou, dtype=np.float32),
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

    def _set_embedding(self, image: np.ndarray, window: Window) -> None:
        key = self.embedding_key(image, window)
        value = self.cache.get(key)
        if value is None:
            value = self._encode(to_uint8_rgb(image, window))
            self.cache.put(key, value, self._meta(image, window))
        if key == self._state_key:
            return
        self._set_state(value)  # a cache hit skips the image encoder entirely
        self._state_key = key

    def _mask_input(
        self, mask_input: np.ndarray | None, shape: tuple[int, int]
    ) -> np.ndarray | None:
        if mask_input is None:
            return None
        low = self.low_res
        arr = np.asarray(mask_input)
        if arr.shape == (1, low, low) and np.issubdtype(arr.dtype, np.floating):
            return arr.astype(np.float32)
        if arr.shape == tuple(shape):
            return self._mask_logits(arr)
        raise ValueError(
            f"mask_input: expected (1, {low}, {low}) float logits or a {tuple(shape)} binary "
            f"mask, got {arr.dtype} {arr.shape}"
        )
