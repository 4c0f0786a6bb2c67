"""Adapt to this scan: fine-tune a loaded FoB for a wall-clock budget on the open volume itself.

The paper trains FoB self-supervised, on episodes cut from supervoxels (Sec. 4); nothing in
that recipe needs labels, so it can run *transductively* on the scan being annotated, in the
seconds a user is willing to wait, before the prompts are predicted. Two kinds of episode are
mixed (`AdaptSettings.p_support`):

- *supervoxel* episodes: 3D SLIC supervoxels (`supervoxels.supervoxels`) of a slab of the
  volume around the painted slices (`AdaptSettings.slab`), two slices of one supervoxel at most
  ``max_dz`` apart, as in training (`episodes.EpisodeDataset`), so the network learns this
  scan's look;
- *support* episodes: the painted support mask against its neighbouring slices, where the
  structure's mask is the support carried there by registration (`prompting.registration.
  register_step`, at most ``support_reach`` slices out), so it learns the very structure it
  will be asked to follow.

Each optimiser step is the trainer's (`trainer.train_step`, the model's own losses), with the
training recipe's augmentation, on the ring's modules only by default (`AdaptSettings.
trainable`; the batch-norm statistics stay the base model's). Episode ``i`` of a run comes
from ``(seed, i)`` alone and the torch RNG is seeded (and restored after), so two runs that
take the same number of steps give identical weights (``max_steps`` fixes that number; a
budget alone stops by the clock). The budget covers the whole adaptation, preparation
included: a step is not started when the mean step time would take the run past it (the
first step runs whenever time is left). Results are cached (`adapt_cache`). Imports torch
lazily; no napari or Qt.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# the generator over adapted weights lives in `adapted`; it is imported from here too
from napari_fob.training.adapted import AdaptedGenerator, adapted_generator  # noqa: F401

#: The budget offered by default (the annotator's box; ``--adapt`` stays off unless given):
#: chosen from the gain per second measured on the tune split (docs/training.md).
DEFAULT_SECONDS = 0.0
#: progress(elapsed_s, budget_s, steps, last_loss or None), called after preparation and steps
Progress = Callable[[float, float, int, "float | None"], None]


@dataclass(frozen=True)
class AdaptSettings:
    """How a scan adaptation runs (sizes in slices, areas at the model grid)."""

    seconds: float  # wall-clock budget of the whole adaptation
    seed: int = 0  # episodes and torch RNG
    lr: float = 1e-4  # Adam, constant (the shipped model's last training stage used 1e-4)
    p_support: float = 0.5  # share of support episodes (when the support gives any)
    max_dz: int = 6  # supervoxel episodes: slices at most this far apart
    support_reach: int = 4  # the support is carried this many slices each way
    slab: int = 16  # supervoxels on the painted slices' range +- this many slices
    # batch-norm layers keep the base model's statistics: one-episode batches of one scan
    # would replace them within a few dozen steps (batch norm's running-mean momentum)
    freeze_norm: bool = True
    # parameter-name prefixes to train (None: all). The default leaves the encoder and the
    # foreground map as they are and adapts the ring's heatmaps (BCM) and refinement (SPR):
    # adapting everything moved the foreground points off thin structures (docs/training.md)
    trainable: tuple[str, ...] | None = ("bcm", "spr")
    max_steps: int | None = None  # stop after this many steps too (reproducible step count)
    # torch threads during the steps (restored after; None: leave as set). One-episode steps of
    # the compact model are too small to share between threads (timings: docs/training.md)
    threads: int | None = 1

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"adaptation budget: expected seconds > 0, got {self.seconds}")
        if not 0.0 <= self.p_support <= 1.0:
            raise ValueError(f"p_support: expected a share in [0, 1], got {self.p_support}")
        if min(self.max_dz, self.support_reach, self.slab) < 1:
            raise ValueError("max_dz, support_reach and slab must be >= 1")

    def key_fields(self) -> dict[str, Any]:
        """What the result depends on besides the inputs (the cache key's settings)."""
        fields = {k: v for k, v in asdict(self).items() if k not in ("seconds", "threads")}
        fields["trainable"] = None if self.trainable is None else list(self.trainable)
        return fields


@dataclass
class AdaptResult:
    """The adapted weights (CPU state dict) and what the run did (JSON-able `record`)."""

    state: dict[str, Any]
    record: dict[str, Any] = field(default_factory=dict)
    snapshots: dict[float, dict[str, Any]] = field(default_factory=dict)  # budget -> state

    @property
    def cancelled(self) -> bool:
        return bool(self.record.get("cancelled"))


def _stop_flag(cancel: Any) -> Callable[[], bool]:
    if cancel is None:
        return lambda: False
    if hasattr(cancel, "is_set"):  # threading / multiprocessing Event
        return cancel.is_set
    return cancel


def _carry_support(volume01: np.ndarray, mask: np.ndarray, z: int, reach: int, min_px: float):
    """{z': mask} of the support slice `z`'s mask carried up to `reach` slices each way by
    registration, stopping where it shrinks below `min_px` pixels."""
    from napari_fob.prompting.registration import register_step

    out = {}
    for step in (-1, 1):
        current, zc = mask, z
        for _ in range(reach):
            zn = zc + step
            if not 0 <= zn < volume01.shape[0]:
                break
            current = register_step(volume01[zc], volume01[zn], current)
            if current.sum() < min_px:
                break
            out[zn], zc = current, zn
    return out


def episode_sources(
    volume01: np.ndarray,
    supports: np.ndarray,
    *,
    spacing: tuple[float, float, float],
    settings: AdaptSettings,
    fob_config: Any,
) -> tuple[Any, Any]:
    """(supervoxel dataset or None, support dataset or None), `EpisodeDataset`s over a slab.

    Args:
        volume01: (Z, Y, X) float32 in [0, 1], the scan as the predictor sees it.
        supports: (Z, Y, X) int labels, non-zero on the painted support slices only.

    Raises:
        ValueError: no painted voxel, or neither kind of episode can be drawn.
    """
    from napari_fob.training.episodes import EpisodeDataset
    from napari_fob.training.manifest import TrainVolume
    from napari_fob.training.supervoxels import supervoxels
    from napari_fob.training.trainer import episode_config

    painted = np.flatnonzero(supports.reshape(supports.shape[0], -1).any(axis=1))
    if painted.size == 0:
        raise ValueError("adaptation needs a painted support: the support has no voxel")
    lo = max(0, int(painted[0]) - settings.slab)
    hi = min(supports.shape[0], int(painted[-1]) + settings.slab + 1)
    slab = np.ascontiguousarray(volume01[lo:hi], dtype=np.float32)
    scale = fob_config.grid_size**2 / float(np.prod(slab.shape[1:]))
    min_area = max(1, round(200 * (fob_config.grid_size / 256) ** 2))  # 200 px at 256
    base = {"min_area": min_area, "label_source": "pseudo", "shared_geometry": True}
    sources: list[Any] = []
    for kind in ("supervoxels", "support"):
        if kind == "supervoxels":
            pseudo = supervoxels(slab, spacing=spacing, window=(0.0, 1.0))
            extra = {"max_dz": settings.max_dz, "seed": settings.seed}
        else:
            pseudo = np.zeros(slab.shape, np.int32)
            for label in (int(v) for v in np.unique(supports) if v > 0):
                for z in np.flatnonzero((supports == label).any(axis=(1, 2))):
                    mask = supports[z] == label
                    carried = _carry_support(slab, mask, int(z) - lo, settings.support_reach,
                                             min_area / scale)  # fmt: skip
                    for zq, m in carried.items():
                        pseudo[zq][m & (pseudo[zq] == 0)] = label
                for z in np.flatnonzero((supports == label).any(axis=(1, 2))):
                    pseudo[z - lo][supports[z] == label] = label  # painted voxels win
            extra = {"max_dz": settings.support_reach, "seed": settings.seed + 1}
        volume = TrainVolume(name=kind, image01=slab, image_raw=slab, pseudo=pseudo,
                             spacing=tuple(spacing))  # fmt: skip
        config = episode_config({"episodes": {**base, **extra}}, fob_config)
        try:
            sources.append(EpisodeDataset([volume], config=config))
        except ValueError:  # no pair qualifies (a tiny structure, a thin slab)
            sources.append(None)
    if sources[0] is None and sources[1] is None:
        raise ValueError(
            "adaptation: no episode can be drawn from this scan (no supervoxel or carried "
            f"support covers {min_area} px at the {fob_config.grid_size} grid on two slices)"
        )
    return sources[0], sources[1]


def _draw(sources: tuple[Any, Any], settings: AdaptSettings, step: int) -> dict:
    """Episode `step` of the run: its source from ``(seed, step)``, its content from the
    source's own ``(seed, index)`` (`EpisodeDataset.sample`)."""
    voxels, support = sources
    rng = np.random.default_rng([settings.seed, 7919, step])
    use_support = support is not None and (voxels is None or rng.random() < settings.p_support)
    return (support if use_support else voxels)[step]


def adapt_model(
    model: Any,
    volume01: np.ndarray,
    supports: np.ndarray,
    *,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    settings: AdaptSettings,
    progress: Progress | None = None,
    cancel: Any = None,
    device: Any = None,
    snapshots: tuple[float, ...] = (),
) -> AdaptResult:
    """Fine-tune a copy of `model` (a product `Fob`; it is left untouched) on the scan.

    Args:
        volume01: (Z, Y, X) float32 in [0, 1] (the session's windowed volume).
        supports: (Z, Y, X) int labels on the painted slices (0 elsewhere).
        spacing: mm per array axis (z, y, x), for the supervoxels.
        progress: see `Progress`; cancel: a ``threading.Event`` (or a callable returning
            True) checked before every step: set, the run stops and is marked cancelled.
        device: where to train (default: the model's device).
        snapshots: shorter budgets (s) whose weights to keep as well: the state at the step
            where a run with that budget would have stopped (the learning rate is constant,
            so it is that run's result); one long run then measures several budgets.

    Returns:
        `AdaptResult`: the state dict on the CPU and the record (budget, steps, seconds,
        prepare_s, loss_first / loss_last: the mean total loss of the first and the last
        ``min(10, steps // 2)`` steps, cancelled).
    """
    import torch

    from napari_fob.training.config import TrainSettings
    from napari_fob.training.trainer import BATCH_KEYS, train_step

    if getattr(model.config, "inference", "product") != "product":
        raise ValueError(f"adaptation: {model.config.name!r} (the authors' weights) cannot adapt")
    volume01 = np.asarray(volume01, dtype=np.float32)
    supports = np.asarray(supports)
    if volume01.ndim != 3 or supports.shape != volume01.shape:
        raise ValueError(f"adaptation: volume {volume01.shape} and support {supports.shape} "
                         "must be one (Z, Y, X) grid")  # fmt: skip
    stopped, t0 = _stop_flag(cancel), time.perf_counter()
    sources = episode_sources(volume01, supports, spacing=spacing, settings=settings,
                              fob_config=model.config)  # fmt: skip
    prepare_s = time.perf_counter() - t0
    if stopped():  # cancelled while preparing: no step, nothing to keep
        record = {"budget_s": float(settings.seconds), "steps": 0, "seconds": prepare_s,
                  "prepare_s": prepare_s, "cancelled": True}  # fmt: skip
        return AdaptResult(state=_cpu_state(model), record=record)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    net = copy.deepcopy(model).to(device).train()
    if settings.freeze_norm:
        norms = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
        for module in net.modules():
            if isinstance(module, norms):
                module.eval()
    for name, param in net.named_parameters():
        param.requires_grad_(settings.trainable is None or name.startswith(settings.trainable))
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=settings.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=False)
    train = TrainSettings(lr=settings.lr, grad_clip=1.0)
    losses: list[float] = []
    cancelled, kept, pending = False, {}, sorted(float(b) for b in snapshots)
    kept_steps: dict[str, int] = {}
    if progress is not None:
        progress(prepare_s, settings.seconds, 0, None)
    with _THREADS, torch.random.fork_rng(devices=[]), contextlib.ExitStack() as restore:
        # torch's thread count is the process's: one adaptation at a time sets and restores it
        threads = torch.get_num_threads()
        if settings.threads:
            torch.set_num_threads(settings.threads)
        restore.callback(torch.set_num_threads, threads)
        torch.manual_seed(settings.seed)
        while settings.max_steps is None or len(losses) < settings.max_steps:
            elapsed = time.perf_counter() - t0
            per_step = (elapsed - prepare_s) / len(losses) if losses else 0.0
            while pending and elapsed + per_step > pending[0]:  # a shorter run stops here
                kept_steps[f"{pending[0]:g}"] = len(losses)
                kept[pending.pop(0)] = _cpu_state(net)
            if elapsed + per_step > settings.seconds:
                break
            if stopped():
                cancelled = True
                break
            item = _draw(sources, settings, len(losses))
            batch = {k: torch.from_numpy(np.asarray(item[k]))[None].to(device)
                     for k in (*BATCH_KEYS, "query_ring")}  # fmt: skip
            logs = train_step(net, batch, optimizer, scaler, train)
            losses.append(logs["total"])
            if progress is not None:
                progress(time.perf_counter() - t0, settings.seconds, len(losses), losses[-1])
    net.eval()
    n = min(10, len(losses) // 2) or len(losses)
    record = {
        "budget_s": float(settings.seconds),
        "steps": len(losses),
        "seconds": round(time.perf_counter() - t0, 3),
        "prepare_s": round(prepare_s, 3),
        "loss_first": _finite(np.mean(losses[:n])) if losses else None,
        "loss_last": _finite(np.mean(losses[-n:])) if losses else None,
        "cancelled": cancelled,
        "episodes": {"supervoxels": sources[0] is not None, "support": sources[1] is not None},
        "settings": settings.key_fields(),
    }
    if snapshots:
        record["snapshot_steps"] = {**kept_steps, **{f"{b:g}": len(losses) for b in pending}}
    state = _cpu_state(net)
    kept.update({budget: state for budget in pending})  # budgets the run did not reach
    return AdaptResult(state=state, record=record, snapshots=kept)


_THREADS = threading.Lock()  # held while an adaptation has changed torch's thread count


def _cpu_state(net: Any) -> dict[str, Any]:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def _finite(value: float) -> float | None:
    value = float(value)
    return round(value, 6) if np.isfinite(value) else None


def model_identity(model: Any) -> str:
    """The base weights' identity: sha256 (16 hex) of the model's config and every tensor."""
    from napari_fob.model.checkpoint import content_sha256

    content = {"config": model.config.to_dict(), "model": model.state_dict()}
    return content_sha256(content)[:16]


def adapt_cached(
    model: Any,
    volume01: np.ndarray,
    supports: np.ndarray,
    *,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    settings: AdaptSettings,
    cache: Any = None,
    progress: Progress | None = None,
    cancel: Any = None,
    device: Any = None,
) -> AdaptResult:
    """`adapt_model`, through the cache (`adapt_cache.AdaptCache`; None: the default one).

    A hit returns the stored weights at once (``record["cache_hit"]`` True); a finished run is
    stored, a cancelled one never. The record also names the base weights (``base_id``).
    """
    from napari_fob.segmenters.cache import array_signature
    from napari_fob.training.adapt_cache import AdaptCache, adapt_key

    cache = AdaptCache() if cache is None else cache
    base_id = model_identity(model)
    key = adapt_key(
        data_signature=array_signature(np.asarray(volume01, dtype=np.float32)),
        base_id=base_id,
        support_signature=array_signature(np.asarray(supports)),
        seconds=settings.seconds,
        settings=settings.key_fields(),
    )
    found = cache.get(key)
    if found is not None:
        state, record = found
        return AdaptResult(state=state, record={**record, "cache_hit": True, "key": key})
    result = adapt_model(model, volume01, supports, spacing=spacing, settings=settings,
                         progress=progress, cancel=cancel, device=device)  # fmt: skip
    result.record.update(base_id=base_id, key=key, cache_hit=False)
    if not result.cancelled and not result.record["steps"]:
        raise ValueError(
            f"adaptation: the budget of {settings.seconds:g} s was spent preparing the scan's "
            f"episodes ({result.record['prepare_s']:.1f} s) and no step ran; give a budget "
            "above that"
        )
    if not result.cancelled:
        cache.put(key, result.state, result.record)
    return result
