"""Episodic training data: (support, query) slice pairs showing the same (pseudo-)label.

`EpisodeDataset` turns a list of `TrainVolume`s into episodes; `EpisodeSampler` streams episode
indices for one DDP rank. Episode ``i`` is generated from ``numpy.random.default_rng([seed, i])``
alone, so a given (seed, index) always yields the identical sample, in any worker, on any rank,
after any resume. Indices are global and never repeat (there are no epochs to track): rank ``r``
of ``W`` draws ``r, r + W, r + 2W, ...`` from its position on.

Kinds of episode:
- *within-volume* (the paper's self-supervised recipe): one label (a supervoxel or, with
  ``label_source`` gt/both, a ground-truth class) on two slices ``1 <= |dz| <= max_dz`` apart,
  support above or below at random;
- *cross-volume* (when ground truth exists in >= 2 training volumes and ``p_cross`` > 0): the
  support from one volume, the query from another at the same relative position within the
  class's z extent.

Test-class exclusion (``test_labels``, ground-truth values):
- Setting I: test classes are never episode targets, but may appear unlabelled in backgrounds.
- Setting II: additionally every slice that shows test classes is dropped; ``exclude_mode``
  ``any`` (default) drops a slice showing any of them, ``all`` only a slice showing all of them
  (what the reference code does, which lets single test organs leak into training).

Numpy only at import; torch is imported when an item is converted to tensors.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from napari_fob.training.augment import (
    AugmentConfig,
    augment_pair,
    intensity_pair,
    sample_coordinates,
)
from napari_fob.training.manifest import TrainVolume

KIND_PSEUDO, KIND_GT = 0, 1


@dataclass(frozen=True)
class EpisodeConfig:
    """How episodes are drawn (sizes in pixels at the model grid)."""

    grid_size: int = 256  # model input S
    n_points: int = 10  # Np ring points
    ring_r: float = 15.0  # ring dilation radius (Eq. 1)
    ring_eps: float = 2.0  # ring band width
    ring_kernel: str = "disk"  # dilation kernel of the ring band ("disk" | "square")
    max_dz: int = 1  # support/query at most this many slices apart (1 = adjacent)
    min_area: int = 200  # label area on both slices, px at the model grid
    label_source: str = "pseudo"  # "pseudo", "gt" or "both"
    p_cross: float = 0.5  # probability of a cross-volume episode when possible
    test_labels: tuple[int, ...] = ()  # ground-truth values of the test classes
    setting: int = 1  # 1 or 2 (see module docstring)
    exclude_mode: str = "any"  # Setting II: drop slices with "any" or "all" test labels
    # within-volume episodes: one geometric transform for support and query, so they stay
    # aligned as slices of one volume are (what the location prior relies on)
    shared_geometry: bool = False
    max_tries: int = 20  # redraws before giving up on an index
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.label_source not in ("pseudo", "gt", "both"):
            raise ValueError(f"label_source {self.label_source!r}: expected pseudo, gt or both")
        if self.exclude_mode not in ("any", "all"):
            raise ValueError(f"exclude_mode {self.exclude_mode!r}: expected 'any' or 'all'")
        if self.setting not in (1, 2):
            raise ValueError(f"setting {self.setting!r}: expected 1 or 2")
        if self.max_dz < 1:
            raise ValueError(f"max_dz must be >= 1, got {self.max_dz}")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["test_labels"] = list(self.test_labels)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> EpisodeConfig:
        data = dict(data)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"episode config: unknown keys {sorted(unknown)}")
        data["augment"] = AugmentConfig.from_dict(data.get("augment"))
        data["test_labels"] = tuple(int(v) for v in data.get("test_labels") or ())
        return cls(**data)


def excluded_slices(
    labels: np.ndarray, test_labels: Sequence[int], mode: str = "any"
) -> np.ndarray:
    """(Z,) bool: slices of a (Z, Y, X) ground truth showing any / all of `test_labels`."""
    if not len(test_labels):
        return np.zeros(labels.shape[0], dtype=bool)
    present = np.stack([(labels == v).any(axis=(1, 2)) for v in test_labels], axis=1)
    return present.all(axis=1) if mode == "all" else present.any(axis=1)


def _slice_areas(labels: np.ndarray, scale: float, min_area: float) -> list[dict[int, float]]:
    """Per slice, {label: area at the grid} for labels with area >= min_area (0 excluded)."""
    out = []
    for z in range(labels.shape[0]):
        counts = np.bincount(labels[z].ravel().clip(min=0))
        ids = np.nonzero(counts * scale >= min_area)[0]
        out.append({int(i): float(counts[i] * scale) for i in ids if i != 0})
    return out


class EpisodeDataset:
    """Map-style dataset of episodes over training volumes (use with `EpisodeSampler`).

    Each item is a dict of tensors at the model grid S:
    ``support_image`` (1, S, S) float32 [0, 1], ``support_mask`` (S, S) float32 {0, 1},
    ``support_ring`` (Np, 2) float32 (row, col), ``query_image``, ``query_mask``, ``query_ring``
    likewise, plus int64 scalars ``index``, ``volume``, ``query_volume``, ``label``,
    ``support_z``, ``query_z``, ``cross`` (0/1) and ``skipped`` (redraws needed because a
    ring could not be computed or an augmented mask vanished).
    """

    def __init__(self, volumes: Sequence[TrainVolume], *, config: EpisodeConfig) -> None:
        if not volumes:
            raise ValueError("EpisodeDataset: no training volumes given")
        self.volumes = list(volumes)
        self.config = config
        self.pairs = np.zeros((0, 5), dtype=np.int64)  # (volume, kind, label, z_a, z_b)
        self.cross: dict[int, list[tuple[int, np.ndarray]]] = {}  # class -> [(vol, zs)]
        self._cross_tmp: dict[int, dict[int, list[int]]] = {}
        self._index()

    def _label_map(self, vol: TrainVolume, kind: int) -> np.ndarray | None:
        return vol.pseudo if kind == KIND_PSEUDO else vol.labels

    def _index(self) -> None:
        cfg = self.config
        kinds = {"pseudo": [KIND_PSEUDO], "gt": [KIND_GT], "both": [KIND_PSEUDO, KIND_GT]}
        pairs = []
        for v, vol in enumerate(self.volumes):
            drop = np.zeros(vol.image01.shape[0], dtype=bool)
            if cfg.setting == 2 and cfg.test_labels:
                if vol.labels is None:
                    raise ValueError(
                        f"volume {vol.name}: Setting II needs ground-truth labels to find the "
                        "slices that show test classes; add 'labels' to the manifest"
                    )
                drop = excluded_slices(vol.labels, cfg.test_labels, cfg.exclude_mode)
            h, w = vol.image01.shape[1:]
            scale = cfg.grid_size**2 / float(h * w)
            for kind in kinds[cfg.label_source]:
                labels = self._label_map(vol, kind)
                if labels is None:
                    if cfg.label_source == "both":
                        continue
                    raise ValueError(
                        f"volume {vol.name}: label_source={cfg.label_source!r} but the manifest "
                        f"gives no {'pseudo-labels' if kind == KIND_PSEUDO else 'labels'}"
                    )
                areas = _slice_areas(labels, scale, cfg.min_area)
                for z, present in enumerate(areas):
                    if drop[z]:
                        continue
                    for lab in present:
                        if kind == KIND_GT and lab in cfg.test_labels:
                            continue
                        for dz in range(1, cfg.max_dz + 1):
                            zb = z + dz
                            if zb < len(areas) and not drop[zb] and lab in areas[zb]:
                                pairs.append((v, kind, lab, z, zb))
                        if kind == KIND_GT:
                            self._add_cross(lab, v, z)
        self.pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 5)
        # Cross-volume episodes need the class in at least two volumes.
        self.cross = {
            c: [(v, np.asarray(zs)) for v, zs in per.items()]
            for c, per in self._cross_tmp.items()
            if len(per) >= 2
        }
        if len(self.pairs) == 0 and not self.cross:
            raise ValueError(
                "EpisodeDataset: no slice pair qualifies (same label on slices <= "
                f"{cfg.max_dz} apart with area >= {cfg.min_area} px at grid {cfg.grid_size}); "
                "lower min_area, raise max_dz, or check the labels"
            )

    def _add_cross(self, label: int, v: int, z: int) -> None:
        self._cross_tmp.setdefault(label, {}).setdefault(v, []).append(z)

    # -- drawing -----------------------------------------------------------------------------

    def draw(self, rng: np.random.Generator) -> tuple[int, int, int, int, int, int, bool]:
        """One (support_vol, query_vol, kind, label, support_z, query_z, cross) choice."""
        cfg = self.config
        if self.cross and (len(self.pairs) == 0 or rng.random() < cfg.p_cross):
            classes = sorted(self.cross)
            label = classes[rng.integers(len(classes))]
            per = self.cross[label]
            a, b = rng.choice(len(per), size=2, replace=False)
            (va, zs_a), (vb, zs_b) = per[a], per[b]
            zs = int(zs_a[rng.integers(len(zs_a))])
            rel = (zs - zs_a.min()) / max(zs_a.max() - zs_a.min(), 1)
            target = zs_b.min() + rel * (zs_b.max() - zs_b.min())
            zq = int(zs_b[np.argmin(np.abs(zs_b - target))])
            return va, vb, KIND_GT, label, zs, zq, True
        v, kind, label, za, zb = (int(x) for x in self.pairs[rng.integers(len(self.pairs))])
        if rng.random() < 0.5:  # support above or below the query
            za, zb = zb, za
        return v, v, kind, label, za, zb, False

    def _view(
        self,
        v: int,
        kind: int,
        label: int,
        z: int,
        rng: np.random.Generator,
        coords: np.ndarray | None = None,
    ):
        from napari_fob.geometry import resize_mask_to_grid, resize_to_grid, ring_points

        cfg = self.config
        vol = self.volumes[v]
        image = resize_to_grid(vol.image01[z], cfg.grid_size)
        mask = resize_mask_to_grid(self._label_map(vol, kind)[z] == label, cfg.grid_size)
        image, mask = augment_pair(image, mask, rng, cfg.augment, coords)
        if mask.sum() < max(1, cfg.min_area // 4):
            raise ValueError("mask left the field of view after augmentation")
        ring = ring_points(
            mask, cfg.n_points, r=cfg.ring_r, eps=cfg.ring_eps, kernel=cfg.ring_kernel
        )
        return image, mask, np.asarray(ring, dtype=np.float32)

    def sample(self, index: int) -> dict[str, np.ndarray | int]:
        """Episode `index` as numpy arrays (see the class docstring for the keys)."""
        from napari_fob.geometry import signed_distance

        rng = np.random.default_rng([self.config.seed, int(index)])
        skipped = 0
        for _ in range(self.config.max_tries):
            vs, vq, kind, label, zs, zq, cross = self.draw(rng)
            coords = None
            if self.config.shared_geometry and not cross and self.config.augment.enabled:
                coords = sample_coordinates(rng, self.config.grid_size, self.config.augment)
            try:
                s_img, s_mask, s_ring = self._view(vs, kind, label, zs, rng, coords)
                q_img, q_mask, q_ring = self._view(vq, kind, label, zq, rng, coords)
            except ValueError:  # ring outside the image, mask gone: border cases
                skipped += 1
                continue
            s_img, q_img = intensity_pair(s_img, q_img, rng, self.config.augment)
            return {
                "query_sdf": signed_distance(q_mask),
                "support_image": s_img[None],
                "support_mask": s_mask.astype(np.float32),
                "support_ring": s_ring,
                "query_image": q_img[None],
                "query_mask": q_mask.astype(np.float32),
                "query_ring": q_ring,
                "index": int(index),
                "volume": vs,
                "query_volume": vq,
                "label": label,
                "support_z": zs,
                "query_z": zq,
                "cross": int(cross),
                "skipped": skipped,
            }
        raise RuntimeError(
            f"episode {index}: no valid episode after {self.config.max_tries} draws; "
            "the labels may be too small or touch the image border"
        )

    def __getitem__(self, index: int) -> dict:
        import torch

        return {
            k: torch.from_numpy(v) if isinstance(v, np.ndarray) else torch.tensor(v)
            for k, v in self.sample(index).items()
        }


class EpisodeSampler:
    """Endless stream of global episode indices for one rank: ``p * W + r`` for p >= start.

    Args:
        rank: this process's rank r.
        world_size: number of processes W.
        start: per-rank position to start at (``step * batch_size`` when resuming).
    """

    def __init__(self, *, rank: int = 0, world_size: int = 1, start: int = 0) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"EpisodeSampler: rank {rank} outside world of size {world_size}")
        self.rank, self.world_size, self.start = rank, world_size, int(start)

    def __iter__(self) -> Iterator[int]:
        position = self.start
        while True:
            yield position * self.world_size + self.rank
            position += 1

    def state_dict(self) -> dict[str, int]:
        return {"rank": self.rank, "world_size": self.world_size, "start": self.start}
