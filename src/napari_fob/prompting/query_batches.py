"""The query checks and the grouping by support that every FoB predictor applies, written once.

numpy only. `FobPredictor` and `official_compat.OfficialPredictor` take the same queries
(slices in [0, 1], optional slice indices) and send each to the support nearest to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from napari_fob.core.intensity import check_unit_slice
from napari_fob.core.prompts import nearest_slice


def checked_queries(
    who: str,
    supports: Sequence[Any],
    images: Sequence[np.ndarray],
    slice_indices: Sequence[int] | None,
    batch_size: int,
) -> tuple[list[np.ndarray], list[int | None]]:
    """The query slices as float32 (H, W) in [0, 1] and their slice indices (None each when
    not given).

    Raises:
        RuntimeError: no support is set (`who` names the predictor).
        ValueError: a bad slice, a batch size below 1, or as many indices as images.
    """
    if not supports:
        raise RuntimeError(f"{who}.predict: no support set; call set_support() first")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    imgs = [check_unit_slice(im, f"query image {i}") for i, im in enumerate(images)]
    if slice_indices is not None and len(slice_indices) != len(imgs):
        raise ValueError(f"slice_indices: {len(slice_indices)} given for {len(imgs)} query images")
    indices = [None] * len(imgs) if slice_indices is None else [int(z) for z in slice_indices]
    return imgs, indices


def by_support(
    indices: Sequence[int | None], support_for: Callable[[int | None], Any]
) -> list[tuple[Any, list[int]]]:
    """(support, positions of the queries it serves) in first-use order."""
    groups: dict[int, tuple[Any, list[int]]] = {}
    for i, z in enumerate(indices):
        support = support_for(z)
        groups.setdefault(id(support), (support, []))[1].append(i)
    return list(groups.values())


def nearest_support(supports: Sequence[Any], slice_index: int | None) -> Any:
    """The support (an object with ``slice_index``) nearest to a query on `slice_index`; the
    only one when a single support is set.

    Raises:
        ValueError: several supports but the query's or a support's slice index is unknown.
    """
    if len(supports) == 1:
        return supports[0]
    if slice_index is None:
        raise ValueError(
            f"{len(supports)} supports are set: pass slice_indices so each query uses the "
            "nearest one"
        )
    if any(s.slice_index is None for s in supports):
        raise ValueError("several supports are set but some have no slice_index")
    return nearest_slice(supports, slice_index, key=lambda s: s.slice_index)
