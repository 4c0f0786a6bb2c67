"""Keep torch from importing triton inside a napari process that renders with Mesa's llvmpipe.

Mesa's software OpenGL (Xvfb, remote desktops, VMs without a GPU driver) loads its own libLLVM
into the process when napari's canvas starts. triton (which torch imports lazily, e.g. through
``torchvision.ops`` -> ``torch._dynamo``) bundles another LLVM, and loading it then crashes the
whole process with a segmentation fault. napari-fob never uses triton (no ``torch.compile``), so
when libLLVM is already mapped and triton is not yet imported, the import is blocked: torch then
sees "triton not installed" and carries on. Standard library only.
"""

from __future__ import annotations

import sys
from pathlib import Path


def block_triton_under_mesa() -> bool:
    """Block ``import triton`` when Mesa's libLLVM is loaded; True when it was blocked now."""
    if "triton" in sys.modules:
        return False
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux: no llvmpipe clash known there
        return False
    if "libLLVM" not in maps:
        return False
    sys.modules["triton"] = None  # type: ignore[assignment]  # ImportError on import
    return True
