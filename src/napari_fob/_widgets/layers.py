"""Translation between the session's `PromptSet`s and the annotator's napari layers.

Layers (names are the constants below): foreground points (green) and background points (red)
as Points layers whose ``features`` carry ``structure``, ``slice``, ``origin``, ``score`` and
``index`` (the point's position in its PromptSet, i.e. ring order for background points); the
ring of every slice as one **closed path** in ring order in a Shapes layer; the support and
output Labels layers. Everything is set in bulk (one ``data``/``features`` assignment per layer),
so a refresh costs one layer update whatever the number of slices (docs/development.md,
"Threads and the labels").

Library points are (row, col) per slice; napari points are (z, row, col): the conversions are
`geometry.to_napari` and `geometry.closed_path`. Imports napari (widget side only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from napari_fob import geometry
from napari_fob.core.prompts import PromptSet

FG_LAYER = "FoB foreground points"
BG_LAYER = "FoB background points"
RING_LAYER = "FoB rings"
SUPPORT_LAYER = "FoB support"
OUTPUT_LAYER = "FoB labels"
KINDS = ("fg", "bg")
FEATURE_COLUMNS = ("structure", "slice", "origin", "score", "index")
FG_COLOR = "#33dd33"
BG_COLOR = "#ff3333"
RING_COLOR = "#ffb000"
OUTPUT_COLOR_SEED = 0.27  # not napari's default 0.5: committed labels must not look like truth
RANGE_AROUND_SUPPORT = 10  # slices each side of the painted ones, until the user sets a range


def empty_features() -> pd.DataFrame:
    """An empty features table with the annotator's columns and dtypes."""
    return pd.DataFrame(
        {
            "structure": np.zeros(0, np.int64),
            "slice": np.zeros(0, np.int64),
            "origin": np.zeros(0, dtype=object),
            "score": np.zeros(0, np.float64),
            "index": np.zeros(0, np.int64),
        }
    )


def points_table(
    prompts: Mapping[tuple[int, int], PromptSet], label: int, kind: str
) -> tuple[np.ndarray, pd.DataFrame]:
    """All `kind` points ("fg" or "bg") of structure `label`, as napari Points data.

    Returns:
        data: (N, 3) float64 array of (z, row, col), slices in increasing order, each slice's
            points in PromptSet order.
        features: N rows with structure (int), slice (int), origin (str), score (float, NaN
            when the generator gave none) and index (int, position in the PromptSet).
    """
    if kind not in KINDS:
        raise ValueError(f"points kind: expected one of {KINDS}, got {kind!r}")
    keys = sorted(k for k in prompts if k[0] == label)
    chunks, slices, origins, scores, index = [], [], [], [], []
    for _, z in keys:
        ps = prompts[(label, z)]
        pts = ps.fg if kind == "fg" else ps.bg
        n = len(pts)
        if n == 0:
            continue
        got = ps.fg_scores if kind == "fg" else ps.bg_scores
        chunks.append(np.asarray(geometry.to_napari(pts, z), dtype=np.float64))
        slices.append(np.full(n, z, np.int64))
        origins.extend([ps.origin] * n)
        scores.append(np.full(n, np.nan) if got is None else np.asarray(got, float))
        index.append(np.arange(n, dtype=np.int64))
    if not chunks:
        return np.zeros((0, 3)), empty_features()
    n_all = sum(len(c) for c in chunks)
    features = pd.DataFrame(  # one table for all slices, never a frame per slice
        {
            "structure": np.full(n_all, label, np.int64),
            "slice": np.concatenate(slices),
            "origin": np.array(origins, dtype=object),
            "score": np.concatenate(scores),
            "index": np.concatenate(index),
        }
    )
    return np.concatenate(chunks), features


def ring_path(bg: np.ndarray, z: int) -> np.ndarray:
    """The closed ring of one slice: (Np + 1, 3) array of (z, row, col), first point repeated."""
    closed = np.asarray(geometry.closed_path(np.asarray(bg, dtype=np.float64)))
    return np.asarray(geometry.to_napari(closed, z), dtype=np.float64)


def ring_paths(
    prompts: Mapping[tuple[int, int], PromptSet], label: int
) -> tuple[list[np.ndarray], list[int]]:
    """One closed path per slice of structure `label` with >= 2 background points.

    Returns:
        paths: list of (Np + 1, 3) arrays (z, row, col) in ring order, slices increasing.
        slices: the slice index of each path.
    """
    paths, slices = [], []
    for _, z in sorted(k for k in prompts if k[0] == label):
        bg = prompts[(label, z)].bg
        if len(bg) >= 2:
            paths.append(ring_path(bg, z))
            slices.append(z)
    return paths, slices


def slice_points(data: np.ndarray, features: pd.DataFrame, z: int) -> np.ndarray:
    """(N, 2) (row, col) of the rows of slice `z`, in their PromptSet ``index`` order."""
    rows = np.flatnonzero(features["slice"].to_numpy() == z)
    order = np.argsort(features["index"].to_numpy()[rows], kind="stable")
    return np.asarray(data[rows[order]][:, 1:], dtype=np.float64)


@dataclass
class PromptLayers:
    """The annotator's layers (napari layer objects)."""

    fg: Any
    bg: Any
    rings: Any
    support: Any
    output: Any

    def ids(self) -> tuple[Any, ...]:
        """The layers' napari ``unique_id``s (fg, bg, rings, support, output).

        Layers are compared by these, never by ``is``: napari hands plugin widgets a
        ``PublicOnlyProxy`` of the viewer, and each lookup returns a new proxy object.
        """
        return tuple(
            layer.unique_id for layer in (self.fg, self.bg, self.rings, self.support, self.output)
        )


def _find(viewer: Any, name: str) -> Any | None:
    return viewer.layers[name] if name in viewer.layers else None


def ensure_layers(viewer: Any, image: Any, *, at_most: int | None = None) -> PromptLayers | None:
    """Return the annotator's layers on `viewer`, creating those missing (idempotent).

    Args:
        viewer: a napari Viewer.
        image: the napari Image layer being annotated ((Z, Y, X) data); new layers take its
            shape, scale and translate so they overlay it exactly.
        at_most: create at most this many missing layers (support first) and return None while
            some are still missing. Adding one napari layer holds the main thread for 100-300 ms
            on a software-rendered display, so the widget creates them one per event-loop turn
            when it opens (docs/benchmarks.md, "Main-thread stalls").
    """
    shape = tuple(image.data.shape)
    geo = {"scale": tuple(image.scale), "translate": tuple(image.translate)}
    # the image's file geometry, so File > Save of the support or the labels keeps its affine
    meta = {k: v for k, v in dict(image.metadata or {}).items() if k == "napari_fob"}
    size = max(2.0, min(shape[1:]) / 40.0)

    def labels(name: str, opacity: float) -> Any:
        return viewer.add_labels(
            np.zeros(shape, np.uint8), name=name, opacity=opacity, metadata=dict(meta), **geo
        )

    def rings() -> Any:
        return viewer.add_shapes(
            ndim=3,
            name=RING_LAYER,
            shape_type="path",
            edge_color=RING_COLOR,
            edge_width=max(0.5, size / 5.0),
            face_color="transparent",
            **geo,
        )

    def points(name: str, color: str) -> Any:
        return viewer.add_points(
            np.zeros((0, 3)),
            ndim=3,
            name=name,
            features=empty_features(),
            face_color=color,
            border_color="white",
            border_width=0.1,
            size=size,
            out_of_slice_display=False,
            **geo,
        )

    makers = {
        SUPPORT_LAYER: lambda: labels(SUPPORT_LAYER, 0.6),
        OUTPUT_LAYER: lambda: labels(OUTPUT_LAYER, 0.45),
        RING_LAYER: rings,
        FG_LAYER: lambda: points(FG_LAYER, FG_COLOR),
        BG_LAYER: lambda: points(BG_LAYER, BG_COLOR),
    }
    found: dict[str, Any] = {}
    budget = len(makers) if at_most is None else at_most
    for name, make in makers.items():
        layer = _find(viewer, name)
        stale = name in (SUPPORT_LAYER, OUTPUT_LAYER) and (
            layer is not None and tuple(layer.data.shape) != shape
        )
        if stale:  # left over from another image: replace it
            viewer.layers.remove(layer)
            layer = None
        if layer is None:
            if budget <= 0:
                return None
            budget -= 1
            layer = make()
        found[name] = layer
    output = found[OUTPUT_LAYER]
    if getattr(output.colormap, "seed", None) != OUTPUT_COLOR_SEED:
        from napari.utils.colormaps import label_colormap

        output.colormap = label_colormap(49, seed=OUTPUT_COLOR_SEED)
    return PromptLayers(
        found[FG_LAYER], found[BG_LAYER], found[RING_LAYER], found[SUPPORT_LAYER], output
    )


def show_overlays(layers: PromptLayers, ndisplay: int) -> None:
    """Points and rings in 2D views only: in 3D they are a tangle over the committed labels."""
    flat = ndisplay == 2
    for layer in (layers.fg, layers.bg, layers.rings):
        layer.visible = flat


def painted_slices(support: np.ndarray, label: int) -> list[int]:
    """Slices of the support volume holding `label`."""
    return [int(z) for z in np.flatnonzero((np.asarray(support) == label).any(axis=(1, 2)))]


def range_around(painted: list[int], n_slices: int, radius: int = RANGE_AROUND_SUPPORT):
    """(from, to): `radius` slices beyond the outermost painted slices, inside the volume."""
    return max(0, min(painted) - radius), min(n_slices - 1, max(painted) + radius)


def sample_names(layers: Any) -> dict[int, str]:
    """Structure names that readers and samples put into labels layers' ``metadata["names"]``."""
    names: dict[int, str] = {}
    for layer in layers:
        found = dict(getattr(layer, "metadata", {}) or {}).get("names")
        if isinstance(found, Mapping):
            for key, value in found.items():
                if str(key).isdigit() and str(value).strip():
                    names.setdefault(int(key), str(value).strip())
    return names


def sample_support(layers: Any, shape: tuple[int, ...]) -> Any | None:
    """A ready-made support layer (a sample's ``"support"`` role) of the image's shape, if any."""
    for layer in layers:
        meta = dict(getattr(layer, "metadata", {}) or {})
        if meta.get("role") == "support" and tuple(np.shape(layer.data)) == tuple(shape):
            return layer
    return None


def set_points(layer: Any, data: np.ndarray, features: pd.DataFrame) -> None:
    """Replace a Points layer's points and features in one go (no per-point events)."""
    layer.selected_data = set()
    layer.data = data
    layer.features = features
    layer.feature_defaults = {
        "structure": int(features["structure"].iloc[-1]) if len(features) else 0,
        "slice": 0,
        "origin": "user",
        "score": np.nan,
        "index": -1,
    }


def set_rings(layer: Any, paths: list[np.ndarray]) -> None:
    """Replace every ring of the Shapes layer by `paths` ((Np + 1, 3) arrays), as paths."""
    layer.selected_data = set()
    layer.data = []
    if paths:
        layer.add_paths(paths, edge_color=RING_COLOR, edge_width=layer.current_edge_width)
