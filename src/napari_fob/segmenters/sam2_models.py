"""SAM 2.1 models: built from the ``sam2`` package's own configs, weights loaded safely.

`build_sam2_model` composes the package's hydra config of one size (``configs/sam2.1/
sam2.1_hiera_<size>.yaml``) and instantiates it with ``sam2.build_sam.build_sam2``, so a model is
exactly what Meta's code builds. Without a checkpoint its weights are random (seeded): tests and
benchmarks use that, never for quality. A checkpoint is read with
``torch.load(..., weights_only=True)`` and compared key by key and shape by shape with the chosen
size before loading, so a file of another size (or SAM 2.0, or not SAM 2 at all) is refused with
a message naming the file, the size asked for and the size the file looks like.

MedSAM2 (bowang-lab) ships SAM 2.1 hiera_t weights trained at a 512-pixel input: build it with
``size="hiera_t", image_size=512`` (its own config ``sam2.1_hiera_t512.yaml`` differs from
Meta's tiny config only there and in the video memory's RoPE grid, which follows).

Imports torch and sam2 (which sets up hydra's global config search path on import): import this
module only when SAM 2.1 is used (never napari/Qt).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

#: The SAM 2.1 sizes: command-line name -> the package's config file of that size.
SAM2_CONFIGS = {
    "hiera_t": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "hiera_s": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "hiera_b+": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "hiera_l": "configs/sam2.1/sam2.1_hiera_l.yaml",
}
#: Hiera's block count when a config leaves ``stages`` at the class default (b+).
_HIERA_DEFAULT_STAGES = (2, 3, 16, 3)
_BLOCK = re.compile(r"^image_encoder\.trunk\.blocks\.(\d+)\.")
_PATCH = "image_encoder.trunk.patch_embed.proj.weight"


def check_size(size: str) -> str:
    """``size`` if it names a SAM 2.1 size, else a ValueError listing them."""
    if size not in SAM2_CONFIGS:
        raise ValueError(f"SAM 2.1 model {size!r}: expected one of {', '.join(SAM2_CONFIGS)}")
    return size


def check_image_size(image_size: int) -> int:
    """SAM 2.1's input side: a multiple of 64 (Hiera's four stages and the 4x mask head)."""
    if int(image_size) != image_size or image_size < 128 or int(image_size) % 64:
        raise ValueError(
            f"SAM 2.1 input size {image_size!r}: expected a multiple of 64 >= 128 "
            "(1024 for Meta's checkpoints, 512 for MedSAM2)"
        )
    return int(image_size)


def _overrides(image_size: int) -> list[str]:
    grid = image_size // 16  # the memory attention's RoPE grid follows the input, as in MedSAM2
    return [
        f"++model.image_size={image_size}",
        f"++model.memory_attention.layer.self_attention.feat_sizes=[{grid},{grid}]",
        f"++model.memory_attention.layer.cross_attention.feat_sizes=[{grid},{grid}]",
    ]


def trunk_shape(size: str) -> tuple[int, int]:
    """(embed_dim, number of Hiera blocks) of a size, read from the package's config."""
    import sam2  # noqa: F401  (registers the package's configs with hydra)
    from hydra import compose

    trunk = compose(config_name=SAM2_CONFIGS[check_size(size)]).model.image_encoder.trunk
    return int(trunk.embed_dim), int(sum(trunk.get("stages", _HIERA_DEFAULT_STAGES)))


def build_sam2_model(
    size: str = "hiera_t",
    *,
    image_size: int = 1024,
    checkpoint: str | Path | None = None,
    seed: int = 0,
) -> torch.nn.Module:
    """A SAM 2.1 ``SAM2Base`` of ``size`` at ``image_size`` on the CPU, in eval mode.

    Args:
        size: ``hiera_t``, ``hiera_s``, ``hiera_b+`` or ``hiera_l``.
        image_size: the square input side (1024; MedSAM2: 512).
        checkpoint: a SAM 2.1 ``.pt`` file (``{"model": state_dict}`` as Meta ships them, or a
            bare state dict); None keeps the random weights.
        seed: the random initialisation's seed (the caller's RNG stream is left as it was).

    Raises:
        ValueError: unknown size, bad input size, or a checkpoint that is not a SAM 2.1 file
            of this size (the message says which size it looks like).
    """
    from sam2.build_sam import build_sam2

    check_size(size)
    image_size = check_image_size(image_size)
    rng = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        # apply_postprocessing as the package's default: an unstable single mask falls back to
        # the best of the multimask outputs by predicted IoU.
        model = build_sam2(
            SAM2_CONFIGS[size], None, device="cpu", hydra_overrides_extra=_overrides(image_size)
        )
    finally:
        torch.random.set_rng_state(rng)
    if checkpoint is not None:
        model.load_state_dict(read_checkpoint(checkpoint, model, size))
    return model.eval()


def read_checkpoint(path: str | Path, model: torch.nn.Module, size: str) -> dict[str, Any]:
    """The state dict in ``path``, checked against ``model`` (of ``size``) before loading."""
    from napari_fob.segmenters.sam_models import read_weights

    expected = "an official sam2.1_hiera_*.pt or a MedSAM2 .pt file"
    data = read_weights(path, what="SAM 2.1", expected=expected)
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(
            f"SAM 2.1 checkpoint {path}: expected a state dict (or {{'model': state dict}}) of "
            f"tensors, got {type(data).__name__}"
        )
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or reshaped:
        examples = ", ".join((missing + unexpected + reshaped)[:3])
        raise ValueError(
            f"SAM 2.1 checkpoint {path} does not fit --sam2-model {size}: {len(missing)} "
            f"missing, {len(unexpected)} unexpected and {len(reshaped)} differently shaped "
            f"weight(s) (e.g. {examples}); {_looks_like(state)}"
        )
    return state


def _looks_like(state: dict[str, Any]) -> str:
    """A hint naming the size whose Hiera trunk matches ``state``, when one does."""
    patch = state.get(_PATCH)
    blocks = {int(m.group(1)) for k in state if (m := _BLOCK.match(k))}
    if patch is None or not blocks:
        return "it holds no SAM 2 image encoder (is it a SAM 2.1 / MedSAM2 file?)"
    shape = (int(patch.shape[0]), max(blocks) + 1)
    for size in SAM2_CONFIGS:
        if trunk_shape(size) == shape:
            if "no_obj_embed_spatial" not in state:
                return f"its encoder is {size}'s, but it lacks SAM 2.1's weights (a SAM 2.0 file?)"
            return f"it looks like {size}: pass --sam2-model {size}"
    return f"its Hiera trunk (width {shape[0]}, {shape[1]} blocks) matches no SAM 2.1 size"
