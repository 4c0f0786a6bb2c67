"""Where napari-fob keeps and looks for files: weights, caches, the user config.

The platform's folders come from platformdirs (XDG on Linux, ``~/Library`` on macOS,
``%LOCALAPPDATA%`` on Windows); ``$FOB_HOME`` and ``$FOB_CONFIG`` override them. Standard library
and platformdirs only. Nothing here downloads anything.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "napari-fob"


def home_dir() -> Path:
    """The project's folder for weights and caches: ``$FOB_HOME``, else the platform's user
    cache folder for napari-fob (``$XDG_CACHE_HOME/napari-fob``, by default
    ``~/.cache/napari-fob``, on Linux)."""
    env = os.environ.get("FOB_HOME")
    if env:
        return Path(env).expanduser()
    return platformdirs.user_cache_path(APP_NAME, appauthor=False)


def weights_dir() -> Path:
    """The standard folder for downloaded checkpoints (SAM, FoB)."""
    return home_dir() / "weights"


def cache_dir() -> Path:
    """The on-disk embedding cache root."""
    return home_dir() / "embeddings"


def size_from_env(name: str, default: float, *, unit: str, zero: str) -> float:
    """A size >= 0 in `unit` from the environment variable `name` (unset or empty: `default`),
    as the caches' caps are given; `zero` says what 0 means, for the message.

    Raises:
        ValueError: naming the variable, when its value is not a number >= 0.
    """
    text = os.environ.get(name, "").strip()
    try:
        value = float(text) if text else float(default)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise ValueError(f"${name}={text!r}: expected a size in {unit} >= 0 (0: {zero})")
    return value


def user_config_file() -> Path:
    """The user config file (TOML or YAML keys such as ``sam_checkpoint``): ``$FOB_CONFIG``, else
    ``config.yaml`` in the platform's user config folder for napari-fob
    (``$XDG_CONFIG_HOME/napari-fob``, by default ``~/.config/napari-fob``, on Linux)."""
    env = os.environ.get("FOB_CONFIG")
    if env:
        return Path(env).expanduser()
    return platformdirs.user_config_path(APP_NAME, appauthor=False) / "config.yaml"


def package_weights_dir() -> Path:
    """Weights shipped inside the package (the default FoB model)."""
    return Path(__file__).resolve().parents[1] / "weights"  # napari_fob/weights
