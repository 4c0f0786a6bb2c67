"""Export a training checkpoint as the shipped default model (weights, config, step, model card).

Drops the optimiser, scheduler, RNG and sampler states (only needed to resume), so the file is
small and loads with ``torch.load(..., weights_only=True)`` / ``load_fob("default")``.

    .venv/bin/python scripts/training/export_default.py /work/fobtrain/run1/latest.pt \
        [--out src/napari_fob/weights/fob-compact.pt]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
from dataclasses import replace
from pathlib import Path

import torch

from napari_fob.model.checkpoint import DEFAULT_FILE, load_checkpoint, load_fob, save_checkpoint
from napari_fob.model.config import FobConfig

ROOT = Path(__file__).resolve().parents[2]


def training_time_s(log: Path) -> float:
    """Sum of the per-step times logged in ``train_log.csv`` (sec_per_step x log interval)."""
    total, last = 0.0, 0
    with log.open() as fh:
        for row in csv.DictReader(fh):
            step = int(row["step"])
            total += float(row["sec_per_step"]) * (step - last)
            last = step
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a fob train checkpoint (latest.pt or best.pt)")
    parser.add_argument("--out", default=str(ROOT / "src/napari_fob/weights" / DEFAULT_FILE))
    parser.add_argument("--wall-s", type=float, default=None, help="wall time of the run")
    parser.add_argument(
        "--prior-run",
        action="append",
        default=[],
        metavar="RUN=LABEL",
        help="run folder of an earlier stage these weights come from, with a label; repeat in "
        "training order (e.g. /runs/s1='stage 1 (sigma 2, from random)')",
    )
    parser.add_argument(
        "--prior-card",
        default=None,
        help="an exported checkpoint these weights were fine-tuned from: its card's stages, "
        "steps and compute are carried over",
    )
    parser.add_argument("--label", default=None, help="label of the checkpoint's own stage")
    parser.add_argument(
        "--interpolate",
        type=float,
        default=None,
        metavar="ALPHA",
        help="ship (1 - ALPHA) x the --prior-card weights + ALPHA x the checkpoint's (weight-space "
        "interpolation between the model fine-tuned from and the fine-tuned one)",
    )
    parser.add_argument(
        "--hardware",
        default=None,
        help="hardware of the checkpoint's own stage, when not this machine (e.g. a GPU)",
    )
    parser.add_argument(
        "--recipe",
        default="scripts/train_default_model.sh, scripts/training/default_model.yaml",
        help="the scripts that reproduce the weights",
    )
    parser.add_argument(
        "--card",
        default=None,
        metavar="YAML",
        help="card entries to set (name, data, labels_used_for_training, held_out, "
        "trained_from) for a model that is not the default's recipe",
    )
    args = parser.parse_args()
    if args.interpolate is not None and not (args.prior_card and 0 < args.interpolate <= 1):
        parser.error("--interpolate: needs --prior-card and 0 < ALPHA <= 1")
    src = Path(args.checkpoint)
    ckpt = load_checkpoint(src)
    model = load_fob(src)
    prior_ckpt = load_checkpoint(args.prior_card) if args.prior_card else None
    if args.interpolate is not None:
        prior_config = FobConfig.from_dict(dict(prior_ckpt["config"]))
        if replace(prior_config, encoder_weights=None) != model.config:
            parser.error("--interpolate: the prior card and the checkpoint differ in model config")
        alpha, mixed = args.interpolate, dict(prior_ckpt["model"])
        for key, value in model.state_dict().items():
            if value.is_floating_point():
                mixed[key] = (1 - alpha) * mixed[key] + alpha * value
        model.load_state_dict(mixed)
    settings = ckpt.get("train_config", {})
    log = src.parent / "train_log.csv"
    compute = training_time_s(log) if log.exists() else None
    this_machine = f"{os.cpu_count()}-core shared CPU ({platform.machine()}), no GPU"
    own_hardware = args.hardware or this_machine
    steps, stages, hardware = int(ckpt["step"]), [], own_hardware
    if prior_ckpt is not None:
        card = prior_ckpt["card"]
        if card.get("hardware") not in (None, own_hardware):
            joint = "; then: " if "last stage:" in card["hardware"] else "; last stage: "
            hardware = f"{card['hardware']}{joint}{own_hardware}"
        stages += card.get("stages") or [{"run": "earlier", "steps": card["steps"]}]
        steps += int(card["steps"])
        compute = None if compute is None else compute + float(card["train_compute_s"])
    for item in args.prior_run:
        run, _, label = item.partition("=")
        prior = Path(run)
        prior_steps = int(load_checkpoint(prior / "latest.pt")["step"])
        prior_compute = training_time_s(prior / "train_log.csv")
        stages.append({"run": label, "steps": prior_steps, "compute_s": round(prior_compute, 1)})
        steps += prior_steps
        compute = None if compute is None else compute + prior_compute
    if stages:
        own = None if not log.exists() else round(training_time_s(log), 1)
        stage = {"run": args.label or "last stage", "steps": int(ckpt["step"]), "compute_s": own}
        if args.hardware:
            stage["hardware"] = args.hardware
        if args.interpolate is not None:
            stage["interpolation"] = args.interpolate
        stages.append(stage)
    card = {
        "name": "fob-compact (napari-fob default model)",
        "trained_from": "random initialisation (no pretrained encoder)",
        "data": "supervoxel pseudo-labels of 32 abdomen phantoms (seeds 100-131, 48x128x128) "
        "and the MNI ICBM152 2009a T1 (image only); see docs/models.md",
        "labels_used_for_training": "none (self-supervised; ground truth never trained on)",
        "held_out": "phantom seeds 0-99; ground-truth structures of every volume",
        "steps": steps,
        "stages": stages or None,
        "train_compute_s": None if compute is None else round(compute, 1),
        "train_wall_s": args.wall_s,
        "hardware": hardware,
        "torch": str(torch.__version__),
        "episodes": settings.get("episodes"),
        "train": settings.get("train"),
        "recipe": args.recipe,
    }
    if args.card:
        import yaml

        given = yaml.safe_load(Path(args.card).read_text()) or {}
        allowed = {"name", "data", "labels_used_for_training", "held_out", "trained_from"}
        if not isinstance(given, dict) or set(given) - allowed:
            parser.error(f"--card {args.card}: expected a mapping of {sorted(allowed)}")
        card |= given
    out = save_checkpoint(args.out, model, step=steps, extra={"card": card})
    size_mb = out.stat().st_size / 1e6
    reloaded = torch.load(out, weights_only=True)
    assert set(reloaded) == {"format", "version", "config", "model", "step", "card", "sha256"}
    print(f"wrote {out} ({size_mb:.1f} MB, {steps} steps)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
