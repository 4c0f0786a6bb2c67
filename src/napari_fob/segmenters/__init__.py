"""Prompt -> mask backends behind one protocol (`base.Segmenter`), and their registry.

Importing this package stays light (no torch): ``SamSegmenter`` and ``build_tiny_sam`` load
``sam.py`` (and torch) only when first accessed.
"""

from __future__ import annotations

from typing import Any

from napari_fob.segmenters.base import Segmenter
from napari_fob.segmenters.random_walker import RandomWalkerSegmenter
from napari_fob.segmenters.registry import SEGMENTERS, get_segmenter

__all__ = [
    "SEGMENTERS",
    "RandomWalkerSegmenter",
    "SamSegmenter",
    "Segmenter",
    "build_tiny_sam",
    "get_segmenter",
]


def __getattr__(name: str) -> Any:
    if name in ("SamSegmenter", "build_tiny_sam"):
        from napari_fob.segmenters import sam

        return getattr(sam, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
