"""Resumable training checkpoints on top of `napari_fob.model.checkpoint`.

A training checkpoint is a model checkpoint (atomic write: temp file + rename, loadable by
`load_fob`) whose extra keys hold everything needed to continue exactly: optimiser, AMP scaler,
the learning-rate schedule, every rank's RNG states (python, numpy, torch, CUDA), the sampler
position, the step, the best validation metric and the resolved run config. All values are
tensors or plain Python containers so ``torch.load(weights_only=True)`` reads them. Imports torch.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

LATEST, BEST = "latest.pt", "best.pt"


def latest_path(out: str | Path) -> Path:
    return Path(out) / LATEST


def get_rng_state() -> dict[str, Any]:
    """This process's RNG states as weights_only-safe values."""
    # the legacy global generator is what third-party code draws from, so it is saved too
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `get_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(
    path: str | Path,
    model: torch.nn.Module,
    *,
    step: int,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    settings: Any,
    rng: list[dict[str, Any]],
    best_metric: float | None,
    config: dict,
    rank_checksums: list[float] | None = None,
) -> Path:
    """Write a resumable checkpoint atomically; returns its path."""
    from napari_fob.model.checkpoint import save_checkpoint

    extra = {
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else {},
        "scheduler": {
            "kind": "step",
            "base_lr": settings.lr,
            "gamma": settings.lr_decay,
            "every": settings.lr_decay_every,
            "last_lr": optimizer.param_groups[0]["lr"],
        },
        "rng": rng,
        "sampler": {"position": step * settings.batch_size, "world_size": len(rng)},
        "best_metric": best_metric,
        "train_config": config,
        "train_settings": asdict(settings),
        "rank_checksums": list(rank_checksums or []),
    }
    return Path(save_checkpoint(path, model, step=step, extra=extra))


def load_training_state(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_training_state` (FileNotFoundError when missing)."""
    from napari_fob.model.checkpoint import load_checkpoint

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"--resume: no checkpoint to resume from at {path}; start without --resume, or "
            "point --out at the folder of an earlier run"
        )
    state = load_checkpoint(path, map_location="cpu")
    missing = [k for k in ("model", "optimizer", "rng", "step") if k not in state]
    if missing:
        raise ValueError(
            f"{path}: not a training checkpoint (missing {missing}); use it as "
            "init_checkpoint to fine-tune from it instead"
        )
    return state


def load_resumed_model(model: torch.nn.Module, state: dict[str, Any], path: str | Path) -> None:
    """Load a training state's weights into the model this run's config built.

    Raises:
        ValueError: the checkpoint holds another model (e.g. ``--set model=...`` changed since
            the run started), naming both.
    """
    from napari_fob.model.checkpoint import check_state

    try:
        check_state(model, state["model"], source=str(path))
    except ValueError as err:
        saved = (state.get("config") or {}).get("name")
        built = model.config.name
        detail = f" ({err})" if saved == built else ""
        raise ValueError(
            f"--resume: {path} holds a {saved!r} model but this run's settings build {built!r}"
            f"{detail}; resume with the run's own settings, or start a new run in another --out"
        ) from None
    model.load_state_dict(state["model"])
