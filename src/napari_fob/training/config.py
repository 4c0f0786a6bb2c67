"""Training run configuration: the packaged YAML defaults, a user file, ``--set key=value``.

`load_run_config` merges ``napari_fob/configs/train_default.yaml`` <- the user's YAML <- dotted
overrides (``train.lr=3e-4``; values parsed as YAML scalars) and checks every key, so a typo fails
loudly, and every value against its setting's type (`check_value`, pydantic in strict mode on
the settings dataclasses' type hints, ``model_overrides`` against `FobConfig`'s), so
``train.iterations=2.7`` or ``train.amp=1`` is refused with a message naming the key instead of
becoming 2 or False. The resolved dict is what `save_run_config` writes beside the checkpoints.
No torch here.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml
from pydantic import ConfigDict, TypeAdapter, ValidationError

TOP_KEYS = (
    "model",
    "model_overrides",
    "init_checkpoint",
    "manifest",
    "out",
    "device",
    "episodes",
    "train",
    "val",
)
# Top-level settings that are text (a name or a path): a ``--set`` value is taken as typed, so
# ``--set out=2024`` is the folder "2024" (YAML would make it a number); ``null`` means none.
TEXT_KEYS = ("model", "init_checkpoint", "manifest", "out", "device")


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings (defaults: the paper's recipe, Sec. 4)."""

    iterations: int = 36_000  # total optimiser steps (paper: 36k)
    batch_size: int = 1  # episodes per step and per process (paper: 1)
    lr: float = 1e-4  # Adam learning rate (paper: 1e-4)
    lr_decay: float = 0.95  # multiplied every lr_decay_every steps (paper: 0.95)
    lr_decay_every: int = 1000  # (paper: 1k iterations)
    weight_decay: float = 0.0  # Adam weight decay (paper: silent)
    grad_clip: float = 1.0  # max global grad norm; 0 disables (guards the 1e3-weighted L_heat)
    amp: bool = True  # mixed precision, used on CUDA only
    seed: int = 0  # torch / numpy / python seed; the episode seed lives in `episodes`
    num_workers: int = 2  # DataLoader worker processes per rank
    checkpoint_every: int = 1000  # write latest.pt every N steps (and at the end)
    log_every: int = 10  # CSV / TensorBoard / PROGRESS line every N steps
    # where the location prior (the model's `location_prior`) is centred in training: "support"
    # (the support's ring, as the support prior at inference) or "query-drift" (the query's
    # true ring moved by a random similarity and jitter of about `prior_drift` grid px, as the
    # registered ring drifts from the truth: SPR learns to correct the registration prior)
    prior_centre: str = "support"
    prior_drift: float = 2.5


PRIOR_CENTRES = ("support", "query-drift")


@dataclass(frozen=True)
class ValSettings:
    """Validation on the manifest's ``val`` volumes (annotation protocol, see evaluate.py)."""

    every: int = 1000  # validate every N steps (0: never); also at the end
    segmenter: str = "random-walker"  # "none", "random-walker", "sam", "auto"
    metric: str = "dice"  # best.pt kept by: dice, bg_inside, fg_outside, ring_error, ring_coverage
    max_slices: int = 16  # query slices per structure (evenly spread); 0 = all


HIGHER_IS_BETTER = {"dice": True, "ring_coverage": True, "bg_inside": False}
HIGHER_IS_BETTER.update({"fg_outside": False, "ring_error": False})


def default_config_path() -> Path:
    """The packaged defaults (``napari_fob/configs/train_default.yaml``)."""
    return Path(str(resources.files("napari_fob") / "configs" / "train_default.yaml"))


def apply_override(config: dict, item: str) -> dict:
    """Set ``a.b.c=value`` (value parsed as YAML; text as typed for `TEXT_KEYS`) in a copy of
    `config`; ValueError naming the key for an unknown key or a value of the wrong type."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--set {item!r}: expected key=value, e.g. train.lr=3e-4")
    if key in TEXT_KEYS:
        value = None if text.strip() in ("", "null", "~") else text.strip()
    else:
        value = _parse_value(text)
    nested: Any = value
    for part in reversed(key.split(".")):
        nested = {part: nested}
    return _merge_checked(config, nested, source=f"--set {item}")


def _parse_value(text: str) -> Any:
    """YAML scalar, except that ``3e-4`` (a string in YAML 1.1) becomes a float."""
    value = yaml.safe_load(text) if text.strip() else None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


# What a setting of each kind takes, by pydantic's error type (its own text otherwise).
_EXPECTED = {
    "bool_type": "true or false",
    "int_type": "a whole number",
    "float_type": "a number",
    "string_type": "text (quote it in YAML)",
    "tuple_type": "a list",
}


@functools.cache
def _adapter(kind: Any) -> TypeAdapter:
    # strict: no guessing (1 is not True, True is not 1, "2" is not 2); see `_as_python`
    return TypeAdapter(kind, config=ConfigDict(strict=True))


def _as_python(value: Any) -> Any:
    """What strict validation should see of a YAML value: lists as tuples (YAML has no tuples)
    and whole floats as ints (``3e4`` is read as 30000.0 but means 30000)."""
    if isinstance(value, list | tuple):
        return tuple(_as_python(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _tuple_length(kind: Any) -> int:
    """Items of the fixed-length tuple in `kind` (``tuple[float, float] | None`` -> 2)."""
    if get_origin(kind) is tuple:
        return len(get_args(kind))
    return next(_tuple_length(k) for k in get_args(kind) if get_origin(k) is tuple)


def check_value(key: str, value: Any, kind: Any) -> Any:
    """`value` of setting `key` validated by pydantic (strict) against its type `kind` (bool,
    int, float, str, ``tuple[...]``, ``X | None``); returns it as that type. Nothing is rounded or
    guessed: an int setting takes a whole number (``3e4`` is 30000; ``2.7`` is refused), a bool
    setting only true or false. ValueError ``"<key>: expected ..., got ..."`` otherwise."""
    try:
        return _adapter(kind).validate_python(_as_python(value))
    except ValidationError as err:
        first = err.errors()[0]
        items = [i for i in first["loc"] if isinstance(i, int)]  # the list item at fault
        if first["type"] in ("too_short", "too_long", "missing"):  # a list of the wrong length
            items, expected = [], f"a list of {_tuple_length(kind)} values"
        else:
            expected = _EXPECTED.get(first["type"], first["msg"])
        where = key + "".join(f"[{i}]" for i in items)
        bad = first["input"] if items else value  # the value as typed
        got = f"{bad!r} ({type(bad).__name__})"
        raise ValueError(f"{where}: expected {expected}, got {got}") from None


def setting_types() -> dict[str, dict[str, Any]]:
    """Section -> {field: type} of every typed setting (``train``, ``val``, ``episodes``,
    ``episodes.augment``, ``model_overrides``), read from the settings dataclasses."""
    from napari_fob.model.config import FobConfig
    from napari_fob.training.augment import AugmentConfig
    from napari_fob.training.episodes import EpisodeConfig

    episodes = get_type_hints(EpisodeConfig)
    return {
        "train": get_type_hints(TrainSettings),
        "val": get_type_hints(ValSettings),
        "episodes": {k: v for k, v in episodes.items() if k not in MODEL_DRIVEN + ("augment",)},
        "episodes.augment": get_type_hints(AugmentConfig),
        "model_overrides": get_type_hints(FobConfig),
    }


def check_types(config: dict, *, source: str = "training config") -> dict:
    """A copy of (partial) `config` with every value checked by `check_value`; ValueError
    ``"<source>: <key>: expected ..., got ..."`` for the first one of the wrong type."""
    types = setting_types()
    out = copy.deepcopy(config)
    try:
        for key in TEXT_KEYS:
            if key in out and out[key] is not None:
                check_value(key, out[key], str)
        for section, kinds in types.items():
            data = out
            for part in section.split("."):
                data = data.get(part) if isinstance(data, dict) else None
            if data is None:
                continue
            if not isinstance(data, dict):
                raise ValueError(f"{section}: expected a mapping of settings, got {data!r}")
            for name, kind in kinds.items():
                if name in data:
                    value = check_value(f"{section}.{name}", data[name], kind)
                    data[name] = list(value) if isinstance(value, tuple) else value  # YAML lists
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None
    return out


def _coerce(cls: type, data: dict) -> Any:
    """Build a settings dataclass from its section of the run config (values type-checked)."""
    kinds = get_type_hints(cls)
    prefix = "train" if cls is TrainSettings else "val"
    names = {f.name for f in fields(cls)}
    return cls(
        **{k: check_value(f"{prefix}.{k}", v, kinds[k]) for k, v in data.items() if k in names}
    )


def _merge_checked(config: dict, extra: dict, *, source: str = "training config") -> dict:
    check_keys(extra, allow_partial=True)
    return _deep_update(config, check_types(extra, source=source))


def _deep_update(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = _deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def check_keys(config: dict, *, allow_partial: bool = False) -> None:
    """Raise ValueError for keys that are not settings (typos must not pass silently)."""
    from napari_fob.model.config import FobConfig
    from napari_fob.training.augment import AugmentConfig
    from napari_fob.training.episodes import EpisodeConfig

    sections = {
        "model_overrides": {f.name for f in fields(FobConfig)},
        "train": {f.name for f in fields(TrainSettings)},
        "val": {f.name for f in fields(ValSettings)},
        "episodes": {f.name for f in fields(EpisodeConfig)} - set(MODEL_DRIVEN),
    }
    for key, value in config.items():
        if key not in TOP_KEYS:
            raise ValueError(f"training config: unknown key {key!r}; expected one of {TOP_KEYS}")
        if key in sections and isinstance(value, dict):
            unknown = set(value) - sections[key]
            if unknown:
                raise ValueError(
                    f"training config: unknown key(s) {sorted(unknown)} under {key!r}; "
                    f"expected some of {sorted(sections[key])}"
                )
            if key == "episodes" and isinstance(value.get("augment"), dict):
                AugmentConfig.from_dict(value["augment"])


# Episode settings that must match the model and are therefore taken from its config.
MODEL_DRIVEN = ("grid_size", "n_points", "ring_r", "ring_eps", "ring_kernel")


def load_run_config(path: str | Path | None = None, overrides: list[str] | tuple = ()) -> dict:
    """Defaults <- YAML file at `path` <- ``key=value`` overrides; returns the resolved dict."""
    config = yaml.safe_load(default_config_path().read_text())
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config not found: {path}")
        user = yaml.safe_load(path.read_text()) or {}
        if not isinstance(user, dict):
            raise ValueError(f"training config {path}: expected a YAML mapping at the top level")
        config = _merge_checked(config, user, source=f"training config {path}")
    for item in overrides:
        config = apply_override(config, item)
    check_keys(config)
    return config


def train_settings(config: dict) -> TrainSettings:
    settings = _coerce(TrainSettings, config.get("train", {}))
    if settings.prior_centre not in PRIOR_CENTRES:
        raise ValueError(
            f"train.prior_centre {settings.prior_centre!r}: expected one of {PRIOR_CENTRES}"
        )
    if not (math.isfinite(settings.prior_drift) and settings.prior_drift >= 0):
        raise ValueError(
            f"train.prior_drift {settings.prior_drift!r}: expected finite >= 0 grid px"
        )
    return settings


def val_settings(config: dict) -> ValSettings:
    settings = _coerce(ValSettings, config.get("val", {}))
    if settings.metric not in HIGHER_IS_BETTER:
        raise ValueError(
            f"val.metric {settings.metric!r}: expected one of {sorted(HIGHER_IS_BETTER)}"
        )
    if settings.metric == "dice" and settings.segmenter == "none":
        raise ValueError("val.metric 'dice' needs a segmenter; set val.segmenter or another metric")
    return settings


def save_run_config(config: dict, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomically: temp file + rename)."""
    from napari_fob.core import atomic

    return atomic.write_text(Path(path), yaml.safe_dump(config, sort_keys=False))


def as_dict(settings: TrainSettings | ValSettings) -> dict:
    return asdict(settings)
