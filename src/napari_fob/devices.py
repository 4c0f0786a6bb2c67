"""Device selection shared by every entry point (``--device auto|cpu|cuda|mps``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def exact_inference() -> Iterator[None]:
    """``torch.inference_mode()`` with cuDNN's TF32 convolutions off for its duration.

    PyTorch lets cuDNN run float32 convolutions in TF32 by default; on the flat maps of a large
    structure that moves ring points and picks other foreground pixels than on the CPU (measured
    in docs/benchmarks.md, "On a GPU"). The compact model is small enough for
    full float32 to cost nothing that matters, and the same prompts on every machine are worth
    more. The previous setting is restored afterwards.
    """
    import torch

    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.backends.cudnn.allow_tf32 = previous
