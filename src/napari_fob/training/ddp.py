"""PyTorch DDP plumbing for ``torchrun``: process group from the environment, model wrapping.

``torchrun --nproc_per_node=N -m napari_fob.cli train ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; `init_distributed` reads them and starts the
process group (NCCL on CUDA, gloo otherwise). Without them, training runs as one process. Imports
torch; only imported by the training entry points.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Only the main process writes logs and checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_dist_info() -> DistInfo:
    """Rank, world size and local rank from torchrun's environment (1 process when absent)."""
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def init_distributed(device: str = "auto") -> tuple[DistInfo, torch.device]:
    """Start the process group when launched by torchrun and pick this process's device.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` (each process takes ``cuda:LOCAL_RANK``), ``mps``.

    Returns:
        (DistInfo, torch.device).
    """
    from napari_fob.devices import resolve_device

    info = env_dist_info()
    dev = resolve_device(device)
    if dev.type == "cuda" and info.distributed:
        dev = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(dev)
    if info.distributed and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return info, dev


def wrap_model(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    """DDP-wrap `model` (already on `device`) when running distributed; else return it."""
    if not info.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside a DDP wrapper (or the model itself)."""
    return getattr(model, "module", model)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_gather_object(obj: Any) -> list[Any]:
    """[obj of rank 0, obj of rank 1, ...]; ``[obj]`` when not distributed."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def mean_across_ranks(values: dict[str, float]) -> dict[str, float]:
    """Average scalar logs over ranks (identity when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()) or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    t = t.cpu() / dist.get_world_size()
    return {k: float(v) for k, v in zip(keys, t.tolist())}


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
