"""FoB checkpoints: self-describing files written atomically and read with ``weights_only=True``.

Imports torch. A checkpoint is a dict ``{"format": "napari-fob/fob", "version": 1, "config":
FobConfig.to_dict(), "model": state_dict, "step": int, **extra}`` (extra may hold an optimizer
state, the training config, metrics...).

Every checkpoint written here also holds ``"sha256"``: the digest of its whole content (every
tensor's dtype, shape and bytes, and every other value, walked in a fixed order; see
`content_sha256`). `load_checkpoint` recomputes it and refuses a file whose content changed
(bit rot, a damaged copy); a checkpoint without one (written before the digest existed) loads
with a warning. Files are written through `napari_fob.core.atomic` (mode from the umask).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from napari_fob.core.atomic import atomic_open

from .config import FobConfig
from .fob import Fob, model_for_config
from .spr import upgrade_state_dict

FORMAT = "napari-fob/fob"
VERSION = 1
DEFAULT_NAME = "default"
DEFAULT_FILE = "fob-compact.pt"
#: Packaged models by name: the default (also by its own name, "compact", for the paths whose
#: default is another model: `session.across`), and the 1/4-scale model trained on the real MRI
#: of the real-anatomy benchmark (docs/models.md, "The real-MRI model").
BUNDLED = {DEFAULT_NAME: DEFAULT_FILE, "compact": DEFAULT_FILE, "real-mri": "fob-real-mri.pt"}
_RESERVED = ("format", "version", "config", "model", "step", "sha256")


def content_sha256(content: Any) -> str:
    """sha256 of a checkpoint's content (its ``"sha256"`` entry left out), in a fixed order.

    Tensors contribute dtype, shape and their bytes (on the CPU, contiguous); dicts their
    items sorted by key; lists and tuples their items in order; other values their ``repr``.
    """
    digest = hashlib.sha256()

    def feed(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            keys = sorted((k for k in value if value is not content or k != "sha256"), key=repr)
            digest.update(f"D{len(keys)}".encode())
            for key in keys:
                digest.update(f"K{key!r}".encode())
                feed(value[key])
        elif isinstance(value, list | tuple):
            digest.update(f"L{type(value).__name__}{len(value)}".encode())
            for item in value:
                feed(item)
        else:
            digest.update(f"V{type(value).__name__}:{value!r}".encode())

    feed(content)
    return digest.hexdigest()


def write_checkpoint(path: str | os.PathLike, content: dict[str, Any]) -> Path:
    """``torch.save`` `content` plus its `content_sha256` to `path`, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {k: v for k, v in content.items() if k != "sha256"}
    content["sha256"] = content_sha256(content)
    with atomic_open(path, "wb") as fh:
        torch.save(content, fh)
    return path


def save_checkpoint(
    path: str | os.PathLike, model: Fob, *, step: int = 0, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` (its config and state dict) to ``path`` atomically; returns the path.

    The file is written to a temporary file in the same folder and moved into place with
    ``os.replace``, so a crash leaves either the old file or the new one, never half a file;
    it holds the sha256 of its content (see the module docstring).

    Raises:
        ValueError: ``extra`` uses a reserved key.
    """
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(_RESERVED))
    if clash:
        raise ValueError(f"save_checkpoint: extra keys {clash} are reserved ({_RESERVED})")
    content = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "step": int(step),
        **extra,
    }
    return write_checkpoint(path, content)


def load_checkpoint(path: str | os.PathLike, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint dict (tensors on ``map_location``) and check its format.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a napari-fob FoB checkpoint of a known version, or its
            content does not match its sha256 (a damaged file).

    The state dict is upgraded after the digest is checked (`spr.upgrade_state_dict`: an old
    ``spr.alpha_raw`` becomes ``spr.alpha_logit``), so files written before issue 15 load.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"FoB checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle/zip errors: say which file is bad, not where torch failed
        raise ValueError(f"FoB checkpoint {path}: cannot be read ({err})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"FoB checkpoint {path}: not a {FORMAT!r} file")
    if ckpt.get("version") != VERSION:
        raise ValueError(
            f"FoB checkpoint {path}: version {ckpt.get('version')!r}, this code reads {VERSION}"
        )
    stored = ckpt.get("sha256")
    if stored is None:
        warnings.warn(
            f"FoB checkpoint {path} carries no sha256 (written by an older napari-fob): its "
            "integrity cannot be checked; save it again to add one",
            stacklevel=2,
        )
    elif content_sha256(ckpt) != stored:
        raise ValueError(
            f"FoB checkpoint {path}: its content does not match the sha256 stored in it; the "
            "file is damaged (copy it again, or use another checkpoint)"
        )
    if isinstance(ckpt.get("model"), dict):  # SPR's old clamped alpha -> its sigmoid logit
        ckpt["model"] = upgrade_state_dict(ckpt["model"])
    return ckpt


def resolve_checkpoint(path_or_name: str | os.PathLike) -> Path:
    """``"default"`` (or ``"compact"``) -> the packaged ``fob-compact.pt``, ``"real-mri"`` -> the
    packaged ``fob-real-mri.pt`` (`BUNDLED`); the name of one of the authors' checkpoints
    (``"fob-abd-ct"``, ``"fob-abd-mri"``) -> its converted file in the weights folder;
    anything else -> that path.

    Raises:
        FileNotFoundError: saying what is missing, where it was looked for and how to get it.
    """
    from napari_fob.core.paths import package_weights_dir

    from .official_weights import OFFICIAL_CHECKPOINTS, converted_path, how_to_get

    if str(path_or_name) in OFFICIAL_CHECKPOINTS:
        path = converted_path(str(path_or_name))
        if not path.is_file():
            raise FileNotFoundError(
                f"FoB checkpoint {path_or_name!r} (the authors' weights, converted) is missing: "
                f"looked for {path}. To get it: {how_to_get(str(path_or_name))}"
            )
        return path

    if str(path_or_name) in BUNDLED:
        path = package_weights_dir() / BUNDLED[str(path_or_name)]
        if not path.is_file():
            raise FileNotFoundError(
                f"the {'default' if str(path_or_name) == DEFAULT_NAME else 'packaged'} FoB "
                f"model {path.name} is missing: looked for {path}. "
                "Train one with `fob train` (it writes a checkpoint) and pass its path, "
                "or put a checkpoint at that location."
            )
        return path
    path = Path(path_or_name).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"FoB checkpoint {path} not found: pass an existing .pt file written by `fob train`, "
            f"or {DEFAULT_NAME!r} for the packaged model"
        )
    return path


def load_fob(path_or_name: str | os.PathLike = DEFAULT_NAME, *, device: Any = "cpu") -> Fob:
    """Build the model a checkpoint describes and load its weights; returns it in eval mode.

    The config's ``encoder_weights`` is ignored (the state dict already holds the encoder).

    Raises:
        FileNotFoundError: see `resolve_checkpoint`.
        ValueError: bad config, or state dict keys/shapes that do not match the config (the
            message names the checkpoint and the keys).
    """
    from napari_fob.devices import resolve_device

    path = resolve_checkpoint(path_or_name)
    ckpt = load_checkpoint(path)
    try:
        config = replace(FobConfig.from_dict(dict(ckpt["config"])), encoder_weights=None)
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"FoB checkpoint {path}: bad config ({err})") from err
    if not isinstance(ckpt.get("model"), dict):
        raise ValueError(f"FoB checkpoint {path}: holds no model weights (no 'model' entry)")
    model = model_for_config(config)
    check_state(model, ckpt["model"], source=str(path))
    model.load_state_dict(ckpt["model"], strict=True)
    dev = device if isinstance(device, torch.device) else resolve_device(str(device))
    return model.to(dev).eval()


def check_state(model: Fob, state: dict[str, torch.Tensor], *, source: str) -> None:
    """ValueError naming ``source`` and the missing, unexpected or mis-shaped keys, if any."""
    want = model.state_dict()
    missing = sorted(set(want) - set(state))
    unexpected = sorted(set(state) - set(want))
    shapes = sorted(
        f"{k}: {tuple(state[k].shape)} vs {tuple(want[k].shape)}"
        for k in set(want) & set(state)
        if tuple(state[k].shape) != tuple(want[k].shape)
    )
    if missing or unexpected or shapes:
        parts = [
            f"{label} {keys[:6]}{' ...' if len(keys) > 6 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", shapes))
            if keys
        ]
        raise ValueError(
            f"FoB checkpoint {source} does not match its config {model.config.name!r}: "
            + "; ".join(parts)
        )
