"""A montage PNG of an annotation: slices with their rings, points and mask contours.

Drawn with matplotlib's Agg canvas on a private `Figure` (no pyplot, no global state, no
display), so it runs headless and in threads. Must not import napari, Qt or torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from napari_fob import geometry
from napari_fob.core.atomic import atomic_path
from napari_fob.core.intensity import Window, normalise
from napari_fob.core.prompts import PromptSet

# One colour per structure for contours (tab10 without red/green, kept for bg/fg points).
CONTOUR_COLOURS = ("#1f77b4", "#ff7f0e", "#9467bd", "#17becf", "#e377c2", "#bcbd22", "#8c564b")


def pick_slices(
    labels: np.ndarray, prompts: Mapping[tuple[int, int], PromptSet], max_panels: int = 12
) -> list[int]:
    """Up to `max_panels` slice indices spread evenly over those holding labels or prompts."""
    used = set(np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1)).tolist())
    used |= {z for _, z in prompts}
    used_sorted = sorted(int(z) for z in used) or [labels.shape[0] // 2]
    if len(used_sorted) <= max_panels:
        return used_sorted
    picks = np.linspace(0, len(used_sorted) - 1, max_panels).round().astype(int)
    return [used_sorted[i] for i in picks]


def write_overview(
    path: str | os.PathLike,
    volume: np.ndarray,
    window: Window,
    labels: np.ndarray,
    prompts: Mapping[tuple[int, int], PromptSet],
    *,
    slices: Sequence[int] | None = None,
    max_panels: int = 12,
    names: Mapping[int, str] | None = None,
    title: str = "",
) -> Path:
    """Write the montage PNG.

    Args:
        path: output ``.png``; written to a temporary name in the same folder, then moved.
        volume: (Z, Y, X) raw intensities; shown through `window`.
        labels: (Z, Y, X) integer labels; each structure's outline is drawn.
        prompts: (label, z) -> PromptSet; the bg ring is drawn as a closed red path with its
            points, fg points in green.
        slices: slice indices to show (default: `pick_slices`).
        names: structure names for the legend line.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    zs = list(slices) if slices is not None else pick_slices(labels, prompts, max_panels)
    cols = min(4, len(zs))
    rows = -(-len(zs) // cols)
    aspect = volume.shape[1] / volume.shape[2]
    fig = Figure(figsize=(3.0 * cols, 3.0 * rows * aspect + 0.6), dpi=100)
    FigureCanvasAgg(fig)
    structures = sorted({int(v) for v in np.unique(labels) if v > 0} | {k[0] for k in prompts})
    colour = {lab: CONTOUR_COLOURS[i % len(CONTOUR_COLOURS)] for i, lab in enumerate(structures)}
    for i, z in enumerate(zs):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(normalise(volume[z], window), cmap="gray", vmin=0, vmax=1)
        for lab in structures:
            mask = labels[z] == lab
            if mask.any():
                ax.contour(mask.astype(float), levels=[0.5], colors=colour[lab], linewidths=1.0)
            p = prompts.get((lab, z))
            if p is None:
                continue
            if len(p.bg):
                ring = geometry.closed_path(p.bg)
                ax.plot(ring[:, 1], ring[:, 0], "-", color="red", linewidth=0.8)
                ax.plot(p.bg[:, 1], p.bg[:, 0], "o", color="red", markersize=2.5)
            if len(p.fg):
                ax.plot(p.fg[:, 1], p.fg[:, 0], "o", color="lime", markersize=2.5)
        ax.set_title(f"slice {z}", fontsize=8)
        ax.set_axis_off()
    legend = "  ".join(f"{lab}: {(names or {}).get(lab, 'label')}" for lab in structures)
    fig.suptitle(f"{title}\n{legend}  (red: bg ring, green: fg points)".strip(), fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
