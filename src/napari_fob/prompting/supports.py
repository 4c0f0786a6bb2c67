"""The FoB predictor's supports: `EncodedSupport`, what one support is to the network, and
`support_key`, the content digest its encoding is cached under.

numpy and the standard library at module level; must not import torch, napari or Qt.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from napari_fob.prompting.in_volume import Footprint

if TYPE_CHECKING:
    from napari_fob.model.fob import SupportState


ENCODED_SUPPORTS_KEPT = 32
"""Encoded supports kept by content after they were replaced or cleared: enough for every
painted and recently committed slice of a few structures; each is a few feature maps."""


def support_key(image: np.ndarray, mask: np.ndarray, committed: bool) -> bytes:
    """A digest of a support's content (image, mask, committed): the version its encoding is
    cached under; equal content, equal key."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str((image.shape, image.dtype.str, bool(committed))).encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    digest.update(np.packbits(mask).tobytes())
    return digest.digest()


@dataclass
class EncodedSupport:
    """One support as the network sees it: its encoded state and its footprint at the grid (the
    geometric baselines' `geometric.Support` holds the mask at slice resolution instead)."""

    slice_index: int | None
    state: SupportState
    footprint: Footprint  # ring, mask, inward depth, fine ring, depth (painted only)
    band: tuple[float, float]  # the structure's intensity band on the support slice
    core_band: tuple[float, float]  # its 5th..95th percentiles, not widened (band exclusion)
    committed: bool = False  # committed by the segmenter (chain mode), not painted
    image: np.ndarray | None = None  # (S, S) float32 support slice at the grid (`confidence`)
