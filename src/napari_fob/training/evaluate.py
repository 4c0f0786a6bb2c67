"""Evaluation protocols: the paper's (few-shot, across volumes) and the annotation one (in-volume).

- `paper_protocol`: per structure, its z extent in the *support* volume is split in 3 parts and
  the middle slice of each part is the support for the matching third of each *query* volume's
  extent; only query slices showing the structure are predicted; Dice in 3D per query volume
  (over those slices), averaged per structure. `folds` splits the volumes into groups; in each
  group the first volume is the support and the others are queries (the SSL-ALPNet/ADNet setup).
- `annotation_protocol`: per volume and structure, the support is the structure's central slice;
  every other slice showing it is a query; metrics are reported by distance |dz| (`DZ_BINS`).

Prompt metrics (docs/geometry.md, "Metrics") are measured at one grid and ring for every
method and model (`core.metrics.METRIC_GRID`: 256, r = 15, eps = 2), never at a model's own
grid; Dice needs a segmenter (``None`` skips it). `validate` runs the annotation protocol on
held-out volumes during training. Numpy here; torch only through the generator.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_fob.core.metrics import METRIC_GRID
from napari_fob.training.manifest import TrainVolume

DZ_BINS: tuple[tuple[int, int | None], ...] = ((1, 2), (3, 4), (5, 9), (10, None))
PROMPT_KEYS = ("bg_inside", "fg_outside", "ring_error", "ring_coverage")


def bin_name(lo: int, hi: int | None) -> str:
    return f"{lo}+" if hi is None else f"{lo}-{hi}"


def dz_bin(dz: int) -> str | None:
    for lo, hi in DZ_BINS:
        if dz >= lo and (hi is None or dz <= hi):
            return bin_name(lo, hi)
    return None


def label_slices(labels: np.ndarray, label: int) -> np.ndarray:
    """Sorted z indices of the slices of a (Z, Y, X) label map that show `label`."""
    return np.nonzero((labels == label).any(axis=(1, 2)))[0]


def central_slice(labels: np.ndarray, label: int) -> int:
    """The slice showing `label` nearest the structure's mean z."""
    zs = label_slices(labels, label)
    if len(zs) == 0:
        raise ValueError(f"label {label} does not occur in the volume")
    zc = np.nonzero(labels == label)[0].mean()
    return int(zs[np.argmin(np.abs(zs - zc))])


def _predict_and_score(
    generator, segmenter, vol: TrainVolume, label: int, zs, grid: int, *, in_volume: bool
):
    """Prompts for slices `zs` of `vol` (supports already set), their metrics and masks.

    `in_volume`: the support lies in the same volume, so slice indices pick the nearest
    support; across volumes they mean nothing and the single support set is used."""
    from napari_fob.core.metrics import prompt_metrics

    images = [vol.image01[z] for z in zs]
    indices = [int(z) for z in zs] if in_volume else None
    prompts = generator.predict(images, slice_indices=indices, label=label)
    rows, masks = [], []
    for z, ps in zip(zs, prompts):
        truth = vol.labels[z] == label
        row = {"z": int(z), **prompt_metrics(ps, truth, scale_to_grid=grid)}
        if segmenter is not None:
            mask = np.asarray(segmenter.segment(vol.image_raw[z], ps, window=vol.window), bool)
            masks.append(mask)
        rows.append(row)
    return rows, masks


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _dice3d(masks: list[np.ndarray], truth: np.ndarray) -> float:
    from napari_fob.core.metrics import dice

    return dice(np.stack(masks), truth)


def paper_protocol(
    generator: Any,
    segmenter: Any | None,
    volumes: Sequence[TrainVolume],
    labels: Sequence[int],
    *,
    folds: int = 1,
    n_parts: int = 3,
    grid_size: int = METRIC_GRID,
) -> dict[str, Any]:
    """The paper's protocol; returns {"per_label": {label: {...}}, "dice": mean, ...}."""
    groups = [list(g) for g in np.array_split(np.arange(len(volumes)), folds) if len(g) >= 2]
    if not groups:
        raise ValueError(
            f"paper protocol: needs >= 2 volumes per fold ({len(volumes)} volumes, {folds} folds)"
        )
    per_label: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for fold, group in enumerate(groups):
        support, queries = volumes[group[0]], [volumes[i] for i in group[1:]]
        for label in labels:
            s_zs = label_slices(support.labels, label)
            if len(s_zs) == 0:
                continue
            s_parts = np.array_split(s_zs, min(n_parts, len(s_zs)))
            for query in queries:
                q_zs = label_slices(query.labels, label)
                if len(q_zs) == 0:
                    continue
                rows, masks = [], []
                for part, q_part in zip(s_parts, np.array_split(q_zs, len(s_parts))):
                    if len(q_part) == 0:
                        continue
                    z_sup = int(part[len(part) // 2])
                    generator.clear_supports()
                    generator.set_support(support.image01[z_sup], support.labels[z_sup] == label)
                    r, m = _predict_and_score(
                        generator, segmenter, query, label, q_part, grid_size, in_volume=False
                    )
                    rows += r
                    masks += m
                entry = per_label[label]
                for key in PROMPT_KEYS:
                    entry[key] += [row[key] for row in rows]
                if segmenter is not None:
                    truth = query.labels[q_zs] == label
                    entry["dice_per_volume"].append(_dice3d(masks, truth))
                    entry["volumes"].append(f"fold{fold}:{query.name}")
    return _summarise(per_label, segmenter is not None)


def annotation_protocol(
    generator: Any,
    segmenter: Any | None,
    volumes: Sequence[TrainVolume],
    labels: Sequence[int],
    *,
    max_slices: int = 0,
    grid_size: int = METRIC_GRID,
) -> dict[str, Any]:
    """Support at each structure's central slice; metrics by |dz| bin and overall."""
    per_label: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    by_dz: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for vol in volumes:
        for label in labels:
            zs = label_slices(vol.labels, label)
            if len(zs) < 2:
                continue
            zc = central_slice(vol.labels, label)
            queries = zs[zs != zc]
            if max_slices and len(queries) > max_slices:
                queries = queries[np.linspace(0, len(queries) - 1, max_slices).round().astype(int)]
            generator.clear_supports()
            generator.set_support(vol.image01[zc], vol.labels[zc] == label, slice_index=zc)
            show = getattr(generator, "show", None)  # optional in the protocol
            if show is not None:  # a walking generator sees every slice, as in use
                show([vol.image01[z] for z in zs], [int(z) for z in zs])
            rows, masks = _predict_and_score(
                generator, segmenter, vol, label, queries, grid_size, in_volume=True
            )
            entry = per_label[label]
            for i, row in enumerate(rows):
                if segmenter is not None:
                    from napari_fob.core.metrics import dice

                    row["dice"] = dice(masks[i], vol.labels[row["z"]] == label)
                b = by_dz[dz_bin(abs(row["z"] - zc))]
                for key in PROMPT_KEYS + (("dice",) if segmenter is not None else ()):
                    entry[key].append(row[key])
                    b[key].append(row[key])
            if segmenter is not None:
                entry["dice_per_volume"].append(_dice3d(masks, vol.labels[queries] == label))
                entry["volumes"].append(vol.name)
    out = _summarise(per_label, segmenter is not None)
    out["by_dz"] = {
        bin_name(lo, hi): {k: _mean(v) for k, v in by_dz[bin_name(lo, hi)].items()}
        | {"n_slices": len(by_dz[bin_name(lo, hi)]["bg_inside"])}
        for lo, hi in DZ_BINS
        if bin_name(lo, hi) in by_dz
    }
    return out


def _summarise(per_label: dict, with_dice: bool) -> dict[str, Any]:
    summary: dict[str, Any] = {"per_label": {}}
    for label, entry in sorted(per_label.items()):
        row = {k: _mean(entry[k]) for k in PROMPT_KEYS}
        row["n_slices"] = len(entry["bg_inside"])
        if with_dice:
            row["dice"] = _mean(entry["dice_per_volume"])  # 3D Dice, mean over query volumes
            row["dice_per_volume"] = dict(zip(entry["volumes"], entry["dice_per_volume"]))
        summary["per_label"][int(label)] = row
    rows = list(summary["per_label"].values())
    for key in PROMPT_KEYS + (("dice",) if with_dice else ()):
        summary[key] = _mean([r[key] for r in rows])  # mean over structures
    return summary


def validate(model: Any, volumes: Sequence[TrainVolume], *, settings: Any, device: Any) -> dict:
    """Annotation protocol on held-out volumes with the model being trained.

    Runs without gradients and puts the model back in train mode. Returns the summary of
    `annotation_protocol` (flat floats "dice", "bg_inside", ... at the top level). Prompts are
    scored at `METRIC_GRID` whatever the model's own grid (best-checkpoint selection reads
    these numbers, so they must mean the same for every model).
    """
    import torch

    from napari_fob.prompting.generators import make_generator

    was_training = model.training
    segmenter = None
    if settings.segmenter != "none":
        from napari_fob.segmenters import get_segmenter

        segmenter, _ = get_segmenter(settings.segmenter, device=str(device))
    labels = sorted({int(v) for vol in volumes for v in np.unique(vol.labels) if v != 0})
    try:
        with torch.no_grad():
            generator = make_generator("fob", model=model, device=str(device))
            return annotation_protocol(
                generator,
                segmenter,
                volumes,
                labels,
                max_slices=settings.max_slices,
                grid_size=METRIC_GRID,
            )
    finally:
        model.train(was_training)
