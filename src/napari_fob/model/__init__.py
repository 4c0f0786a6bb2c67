"""FoB as torch modules: config, encoder, BPPC, BCM, SPR, losses and checkpoints.

Importing this package is cheap: names are resolved lazily, so ``napari_fob.model.FobConfig``
does not import torch; ``build_fob`` and friends import it when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FobConfig": "config",
    "CONFIGS": "config",
    "get_config": "config",
    "Fob": "fob",
    "FobOutput": "fob",
    "SupportState": "fob",
    "build_fob": "fob",
    "fob_losses": "losses",
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_fob": "checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'napari_fob.model' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
