"""Where napari-fob keeps and looks for files: weights, caches, the user config.

Pure standard library. Nothing here downloads anything.
"""

from __future__ import annotations

import os
from pathlib import Path


def home_dir() -> Path:
    """The project's folder for weights and caches: ``$FOB_HOME`` or ``~/.cache/napari-fob``."""
    env = os.environ.get("FOB_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "napari-fob"


def weights_dir() -> Path:
    """The standard folder for downloaded checkpoints (SAM, FoB)."""
    return home_dir() / "weights"


def cache_dir() -> Path:
    """The on-disk embedding cache root."""
    return home_dir() / "embeddings"


def user_config_file() -> Path:
    """The user config file (TOML or YAML keys such as ``sam_checkpoint``)."""
    env = os.environ.get("FOB_CONFIG")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "napari-fob" / "config.yaml"


def package_weights_dir() -> Path:
    """Weights shipped inside the package (the default FoB model)."""
    return Path(__file__).resolve().parents[1] / "weights"  # napari_fob/weights
