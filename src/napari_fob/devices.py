"""Device selection shared by every entry point (``--device auto|cpu|cuda|mps``)."""

from __future__ import annotations

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto"):
    """Return a ``torch.device``; ``auto`` picks cuda > mps > cpu.

    Raises:
        ValueError: for an unknown name, or a device that is not available here.
    """
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    base = name.split(":")[0]
    if base not in DEVICE_CHOICES:
        raise ValueError(f"device {name!r}: expected one of {DEVICE_CHOICES} (cuda may be cuda:N)")
    if base == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA GPU here")
    if base == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device {name!r} asked for, but MPS is not available here")
    return torch.device(name)
