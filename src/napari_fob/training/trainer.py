"""The training loop: a pure learning-rate function, `train_step`, and a thin `Trainer`.

`Trainer` wires the run config to the episode data, the model (DDP-wrapped under torchrun), the
optimiser, checkpoints (`checkpoints.py`) and logs (`logs.py`); validation is `evaluate.validate`.
Machine-readable lines on stdout (rank 0 only; see docs/training.md):
``PROGRESS step=.. total=.. loss=.. lr=..``, ``VALIDATION step=.. <metric>=..``,
``CHECKPOINT path=..``, ``DONE step=.. path=..``. Imports torch.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from napari_fob.training import ddp
from napari_fob.training.config import (
    HIGHER_IS_BETTER,
    MODEL_DRIVEN,
    TrainSettings,
    save_run_config,
    train_settings,
    val_settings,
)
from napari_fob.training.logs import emit

PROGRESS_INTERVAL_ENV = "FOB_PROGRESS_INTERVAL"


def progress_interval(stream: Any) -> float:
    """Seconds between redraws of the progress bar: 0.1 on a terminal; elsewhere (a log file,
    a pipe) ``$FOB_PROGRESS_INTERVAL`` or 30, so a long run does not fill its log with
    carriage-return redraws (the ``PROGRESS`` lines on stdout carry the step in any case)."""
    if getattr(stream, "isatty", lambda: False)():
        return 0.1
    value = os.environ.get(PROGRESS_INTERVAL_ENV, "30")
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(
            f"{PROGRESS_INTERVAL_ENV}={value!r}: expected a number of seconds"
        ) from None
    if seconds < 0:
        raise ValueError(f"{PROGRESS_INTERVAL_ENV}={value!r}: expected seconds >= 0")
    return seconds


BATCH_KEYS = (
    "support_image",
    "support_mask",
    "support_ring",
    "query_image",
    "query_mask",
    "support_z",
    "query_z",
    "cross",
    "query_sdf",
)


def lr_at(step: int, settings: TrainSettings) -> float:
    """Learning rate for optimiser step `step` (0-based): lr * decay ** (step // every)."""
    return settings.lr * settings.lr_decay ** (step // max(1, settings.lr_decay_every))


def train_step(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    settings: TrainSettings,
) -> dict[str, float]:
    """One optimiser step on one batch of episodes (tensors already on the model's device).

    Args:
        model: a `Fob` or a DDP-wrapped `Fob` in train mode.
        batch: `EpisodeDataset` items collated: images (B, 1, S, S), masks (B, S, S), rings
            (B, Np, 2) (row, col) at the grid.
        optimizer, scaler: the scaler is disabled off CUDA (AMP runs on CUDA only).
        settings: gradient clipping.

    Returns:
        Python floats: every loss term ("total", "rac", "heat", "coor", "fore"), "grad_norm".
    """
    from napari_fob.model.losses import fob_losses

    fob = ddp.unwrap(model)
    device_type = batch["query_image"].device.type
    # Forward and loss under autocast, as the AMP recipe prescribes (autocast keeps fp32 for the
    # reductions that need it). bf16 where the GPU has it: the 1e3-weighted L_heat and the
    # pixel-scale L_coor overflow fp16 more easily. The Trainer enables the scaler on CUDA only.
    dtype = torch.bfloat16 if device_type != "cuda" or torch.cuda.is_bf16_supported() else None
    prior = episode_log_prior(fob.config, batch, settings)
    with torch.autocast(device_type=device_type, dtype=dtype, enabled=scaler.is_enabled()):
        out = model(
            batch["support_image"],
            batch["support_mask"],
            batch["support_ring"],
            batch["query_image"],
            prior,
        )
        losses = fob_losses(
            out,
            query_ring=batch["query_ring"],
            query_mask=batch["query_mask"],
            support_mask=batch["support_mask"],
            config=fob.config,
            query_sdf=batch.get("query_sdf"),
        )
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(losses["total"]).backward()
    scaler.unscale_(optimizer)
    params = [p for p in model.parameters() if p.grad is not None]
    max_norm = settings.grad_clip if settings.grad_clip > 0 else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    scaler.step(optimizer)
    scaler.update()
    logs = {k: float(v.detach()) for k, v in losses.items()}
    logs["grad_norm"] = float(grad_norm)
    return logs


def episode_log_prior(
    config: Any, batch: dict, settings: TrainSettings | None = None
) -> torch.Tensor | None:
    """The location log-prior of a batch of episodes when ``config.location_prior`` is set:
    width from the episode's |dz| (flat for cross-volume episodes, whose slice distance means
    nothing), around each support ring, or with ``settings.prior_centre == "query-drift"``
    around the query's true ring moved by `drifted_ring`. (B, Np, S, S) or None. It seeds SPR
    during training as the predictor's prior does at inference, so L_coor trains SPR on the
    points it will refine; the heat loss stays on the maps alone."""
    drift = settings is not None and settings.prior_centre == "query-drift"
    if config.location_prior is None:
        if drift:  # else the setting would quietly do nothing
            raise ValueError("train.prior_centre 'query-drift' needs a model with a location_prior")
        return None
    from napari_fob.model.fob import location_log_prior, prior_widths
    from napari_fob.training.priors import drifted_ring

    dz = (batch["query_z"] - batch["support_z"]).float()
    dz = torch.where(batch["cross"].bool(), torch.full_like(dz, float("nan")), dz)
    sigma = prior_widths(config.location_prior, dz, config.grid_size).to(
        batch["support_ring"].device
    )
    centre = batch["support_ring"]
    if drift:
        centre = drifted_ring(batch["query_ring"].float(), settings.prior_drift)
    return location_log_prior(centre, sigma, config.grid_size)


def build_model(config: dict, device: torch.device) -> torch.nn.Module:
    """The FoB model of the run: from `init_checkpoint` when given, else a fresh named config."""
    from napari_fob.model import build_fob
    from napari_fob.model.checkpoint import load_fob

    init = config.get("init_checkpoint")
    overrides = dict(config.get("model_overrides") or {})
    if init:
        model = load_fob(init, device="cpu")
        if overrides:
            raise ValueError(
                "model_overrides cannot change a model loaded from init_checkpoint "
                f"({init}); its architecture comes from the checkpoint"
            )
    else:
        model = build_fob(config.get("model") or "compact", **overrides)
    return model.to(device)


def episode_config(config: dict, fob_config: Any):
    """`EpisodeConfig` from the run config, with the grid and ring taken from the model."""
    from napari_fob.training.episodes import EpisodeConfig

    data = dict(config.get("episodes") or {})
    data.update(
        grid_size=fob_config.grid_size,
        n_points=fob_config.n_bg,
        ring_r=float(fob_config.ring_r),
        ring_eps=float(fob_config.ring_eps),
        ring_kernel=fob_config.ring_kernel,
    )
    assert set(MODEL_DRIVEN) <= set(data)
    return EpisodeConfig.from_dict(data)


class Trainer:
    """Runs one training job from a resolved run config (see `config.load_run_config`).

    Args:
        config: the resolved run-config dict.
        resume: continue from ``OUT/latest.pt`` at its step, learning rate and RNG states.
    """

    def __init__(self, config: dict, *, resume: bool = False) -> None:
        from napari_fob.training.checkpoints import (
            latest_path,
            load_resumed_model,
            load_training_state,
        )
        from napari_fob.training.manifest import load_split, read_manifest

        self.config = config
        self.settings = train_settings(config)
        self.val = val_settings(config)
        self.out = Path(config.get("out") or "runs/fob")
        self.info, self.device = ddp.init_distributed(config.get("device") or "auto")
        if not config.get("manifest"):
            raise ValueError("training config: 'manifest' is required (a YAML or CSV of volumes)")
        entries = read_manifest(config["manifest"])
        self.train_volumes = load_split(entries, "train")
        self.val_volumes = [v for v in load_split(entries, "val") if v.labels is not None]
        if not self.train_volumes:
            raise ValueError(f"manifest {config['manifest']}: no volume has split 'train'")
        state = None
        if resume:
            state = load_training_state(latest_path(self.out))
        self.step = 0 if state is None else int(state["step"])
        self._seed_everything()
        self.model = build_model(config, self.device)
        if state is not None:
            load_resumed_model(self.model, state, latest_path(self.out))
        self.episodes = episode_config(config, self.model.config)
        self.ddp_model = ddp.wrap_model(self.model, self.info, self.device)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=lr_at(self.step, self.settings),
            weight_decay=self.settings.weight_decay,
        )
        amp = self.settings.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp)
        self.best: float | None = None
        if state is not None:
            self._restore(state)
        if self.info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            save_run_config(config, self.out / "config.yaml")

    def _seed_everything(self) -> None:
        import random

        import numpy as np

        seed = self.settings.seed + self.info.rank  # ranks draw different dropout etc.
        random.seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002 (global state used by other libraries)
        torch.manual_seed(seed)

    def _restore(self, state: dict) -> None:
        from napari_fob.training.checkpoints import set_rng_state

        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.best = state.get("best_metric")
        rng = state.get("rng") or []
        if self.info.rank < len(rng):
            set_rng_state(rng[self.info.rank])

    def loader(self):
        """DataLoader over this rank's shard of episodes, from the current step on."""
        from napari_fob.training.episodes import EpisodeDataset, EpisodeSampler

        dataset = EpisodeDataset(self.train_volumes, config=self.episodes)
        sampler = EpisodeSampler(
            rank=self.info.rank,
            world_size=self.info.world_size,
            start=self.step * self.settings.batch_size,
        )
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=self.settings.batch_size,
            sampler=sampler,
            num_workers=self.settings.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=self.settings.num_workers > 0,
            # Its own generator, so creating the loader leaves the global torch RNG untouched
            # (resume then continues with exactly the RNG state that was saved).
            generator=torch.Generator().manual_seed(self.settings.seed),
        )

    def fit(self, *, progress: bool = True) -> Path | None:
        """Train until `iterations`; returns the path of ``latest.pt`` (rank 0) or None.
        `progress`: the progress bar on stderr (rank 0 only)."""
        from tqdm import tqdm

        from napari_fob.training.logs import RunLog

        s = self.settings
        log = RunLog(self.out) if self.info.is_main else None
        bar = tqdm(
            total=s.iterations,
            initial=self.step,
            desc="train",
            file=sys.stderr,
            disable=not (self.info.is_main and progress),
            mininterval=progress_interval(sys.stderr),
        )
        self.ddp_model.train()
        latest = None
        window: list[dict[str, float]] = []
        t0 = time.perf_counter()
        batches = iter(self.loader()) if self.step < s.iterations else iter(())
        while self.step < s.iterations:
            batch = next(batches)
            lr = lr_at(self.step, s)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            tensors = {k: batch[k].to(self.device, non_blocking=True) for k in BATCH_KEYS}
            tensors["query_ring"] = batch["query_ring"].to(self.device, non_blocking=True)
            logs = train_step(self.ddp_model, tensors, self.optimizer, self.scaler, s)
            logs["skipped"] = float(batch["skipped"].sum())
            logs["alpha"] = float(self.model.spr.alpha.detach())
            window.append(logs)
            self.step += 1
            bar.update()
            if self.step % s.log_every == 0 or self.step == s.iterations:
                mean = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
                mean = ddp.mean_across_ranks(mean)
                mean["sec_per_step"] = (time.perf_counter() - t0) / len(window)
                window, t0 = [], time.perf_counter()
                if log is not None:
                    log.scalars(self.step, lr, mean)
                    emit("PROGRESS", step=self.step, total=s.iterations, loss=mean["total"], lr=lr)
                    bar.set_postfix(loss=f"{mean['total']:.4g}", lr=f"{lr:.3g}", refresh=False)
            validate_now = self.val.every and self.step % self.val.every == 0
            if validate_now or self.step == s.iterations:
                metric = self._validate(log)
                latest = self._checkpoint(metric)
            elif self.step % s.checkpoint_every == 0:
                latest = self._checkpoint(None)
        bar.close()
        if log is not None:
            log.close()
            emit("DONE", step=self.step, path=self.out / "latest.pt")
        return latest

    def _validate(self, log) -> float | None:
        from napari_fob.training.evaluate import validate

        metric = None
        if self.info.is_main and self.val_volumes and self.val.every:
            results = validate(self.model, self.val_volumes, settings=self.val, device=self.device)
            metric = results.get(self.val.metric)
            if log is not None:
                log.validation(self.step, results)
            fields = {k: v for k, v in results.items() if isinstance(v, float)}
            emit("VALIDATION", step=self.step, **fields)
        ddp.barrier()
        return metric

    def _checkpoint(self, metric: float | None) -> Path | None:
        from napari_fob.training.checkpoints import get_rng_state, save_training_state

        rng = ddp.all_gather_object(get_rng_state())  # every rank's state, rank order
        # One parameter checksum per rank: DDP keeps them equal; a mismatch shows a broken job.
        checksums = ddp.all_gather_object(parameter_checksum(self.model))
        improved = metric is not None and (
            self.best is None
            or (metric > self.best if HIGHER_IS_BETTER[self.val.metric] else metric < self.best)
        )
        if improved:
            self.best = metric
        path = None
        if self.info.is_main:
            kwargs = dict(
                step=self.step,
                optimizer=self.optimizer,
                scaler=self.scaler,
                settings=self.settings,
                rng=rng,
                best_metric=self.best,
                config=self.config,
                rank_checksums=checksums,
            )
            path = save_training_state(self.out / "latest.pt", self.model, **kwargs)
            emit("CHECKPOINT", step=self.step, kind="latest", path=path)
            if improved:
                best = save_training_state(self.out / "best.pt", self.model, **kwargs)
                emit("CHECKPOINT", step=self.step, kind="best", path=best)
        ddp.barrier()
        return path


def parameter_checksum(model: torch.nn.Module) -> float:
    """Sum of every parameter's values (float64): equal on all ranks of an in-sync DDP job."""
    with torch.no_grad():
        return float(sum(p.detach().double().sum().cpu() for p in model.parameters()))
