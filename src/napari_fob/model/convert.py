"""Convert the FoB authors' released weights into a napari-fob checkpoint of the `official` config.

Imports torch. Their training code (github primebo1/FoB_SAM, ``train.py``) saves
``model.state_dict()`` of ``FewShotSeg``; `official_state_dict` renames those keys onto
`official.OfficialFob` (the table `KEY_MAP`, checked against a state dict of their model) and
refuses, naming the keys, anything that does not fit. `convert_official` writes the result
with `checkpoint.write_checkpoint` (atomic, with its content sha256), recording where it came
from: the source file's name and sha256, the code and the weights' home, and the licence.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from .checkpoint import FORMAT, VERSION, check_state, write_checkpoint
from .config import CONFIGS

#: Their key (or key prefix, ending in ".") -> ours; the longest matching prefix wins.
KEY_MAP: dict[str, str] = {
    "encoder.backbone.": "encoder.backbone.",
    "encoder.reduce1.": "encoder.reduce.",
    "encoder.reduce1d.": "encoder.threshold.",
    "masked_attention.learnable_pos": "bcm.query_pos",
    "masked_attention.matching_head.support_proj.": "bcm.proposals.support_proj.",
    "masked_attention.matching_head.query_proj.": "bcm.proposals.query_proj.",
    "masked_attention.matching_head.self_update_proj.": "bcm.proposals.channel_mlp.",
    "masked_attention.conv.": "bcm.layer.bias_conv.",
    "masked_attention.mha.in_proj_weight": "bcm.layer.qkv.weight",
    "masked_attention.mha.in_proj_bias": "bcm.layer.qkv.bias",
    "masked_attention.mha.out_proj.": "bcm.layer.proj.",
    "masked_attention.norm1.": "bcm.layer.norm1.",
    "masked_attention.norm2.": "bcm.layer.norm2.",
    "masked_attention.ffn.": "bcm.layer.ffn.",
    "head.head.": "bcm.head.net.",
    "refine.gcn.W_theta.": "spr.theta.",
    "refine.gcn.W_phi.": "spr.phi.",
    "refine.gcn.W.": "spr.w_g.",
    "refine.gcn.mlp_mod.": "spr.gate.",
    "refine.gcn.alpha": "spr.alpha",
    "refine.self_attn.": "spr.attn.",
    "refine.deform_attn.offset_pred.": "spr.offset.",
    "refine.deform_attn.scale_mod.": "spr.scale.",
    "refine.deform_attn.attn_weight.": "spr.weight.",
    "refine.norm1.": "spr.norm1.",
    "refine.norm2.": "spr.norm2.",
    "refine.norm3.": "spr.norm3.",
}
#: Keys of their model that inference never reads: a 1x1 conv on layer4 that their forward
#: does not call, and the class weights of their training loss.
UNUSED_KEYS = ("encoder.reduce2.weight", "nllloss.weight")

ORIGIN = {
    "code": "https://github.com/primebo1/FoB_SAM",
    "weights": "https://huggingface.co/PrimeBo1/FoB_SAM",
    "licence": "Apache-2.0",
    "authors": "Bo, Zhu, Koniusz, Zhang (CVPR 2026, arXiv 2603.21287)",
}
_PREFIXES = sorted(KEY_MAP, key=len, reverse=True)


def _rename(key: str) -> str | None:
    for theirs in _PREFIXES:
        if theirs.endswith(".") and key.startswith(theirs):
            return KEY_MAP[theirs] + key[len(theirs) :]
        if key == theirs:
            return KEY_MAP[theirs]
    return None


def unwrap_state_dict(obj: Any, *, source: str) -> dict[str, torch.Tensor]:
    """The tensor dict inside a loaded file: the object itself, or under ``"state_dict"`` or
    ``"model"``; a ``module.`` prefix (DataParallel) on every key is removed.

    Raises:
        ValueError: no dict of tensors found (the message names `source`).
    """
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if (
        not isinstance(obj, dict)
        or not obj
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    ):
        raise ValueError(
            f"{source}: expected a state dict (str -> tensor), directly or under 'state_dict' "
            f"or 'model'; got {type(obj).__name__}"
        )
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return dict(obj)


def official_state_dict(state: dict[str, torch.Tensor], *, source: str) -> dict[str, torch.Tensor]:
    """Their state dict (already unwrapped) -> one that `OfficialFob` loads with strict=True.

    Raises:
        ValueError: keys that map to nothing (unexpected), keys the model needs that are absent
            (missing) or tensors of the wrong shape, each named.
    """
    from .fob import model_for_config

    renamed, unexpected = {}, []
    for key, value in state.items():
        if key in UNUSED_KEYS:
            continue
        ours = _rename(key)
        if ours is None:
            unexpected.append(key)
        else:
            renamed[ours] = value.detach().cpu().contiguous()
    if unexpected:
        raise ValueError(
            f"{source}: keys that are not in the authors' FoB network: {sorted(unexpected)[:8]}"
            f"{' ...' if len(unexpected) > 8 else ''} (is this a FoB_SAM checkpoint?)"
        )
    with torch.device("meta"):  # shapes only: no 54M random numbers drawn
        model = model_for_config(CONFIGS["official"])
    check_state(model, renamed, source=source)
    return renamed


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 hex digest of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_official(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load their ``.pth`` with ``weights_only=True`` (no pickled code runs) and unwrap it.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file cannot be read as tensors, or holds no state dict.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file; download the authors' checkpoint from {ORIGIN['weights']} "
            "(see `fob weights list`)"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle/zip errors: name the file, not torch's internals
        raise ValueError(f"{path}: cannot be read as a weights-only torch file ({err})") from err
    return unwrap_state_dict(obj, source=str(path))


def convert_official(
    source: str | os.PathLike, out: str | os.PathLike, *, name: str | None = None
) -> Path:
    """Convert their checkpoint `source` into a napari-fob checkpoint at `out` (atomic).

    The checkpoint holds the `official` config (architecture and inference "official"), the
    renamed weights and an ``"origin"`` record: source file name and sha256, code, weights'
    home, licence, and `name` (e.g. "fob-abd-ct") when given. Returns `out`.
    """
    src = Path(source).expanduser()
    state = official_state_dict(read_official(src), source=str(src))
    origin = {**ORIGIN, "source_file": src.name, "source_sha256": file_sha256(src)}
    if name:
        origin["name"] = str(name)
    content = {
        "format": FORMAT,
        "version": VERSION,
        "config": CONFIGS["official"].to_dict(),
        "model": state,
        "step": 0,
        "origin": origin,
    }
    return write_checkpoint(out, content)
