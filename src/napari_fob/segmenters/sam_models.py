"""SAM models: `load_sam` (official checkpoints) and `build_tiny_sam` (tests, benchmarks).

`build_tiny_sam` gives a SAM with random weights, small enough for tests and benchmarks.
It is built from segment-anything's own modules (ViT encoder, prompt encoder, two-way
transformer, mask decoder) exactly like the real models, only narrower, shallower and at a
128-pixel input, so every code path of `SamSegmenter` runs in milliseconds on a CPU. Its masks
are meaningless: use it to test plumbing (shapes, caching, mask choice), never quality.

Imports torch and segment-anything (never napari/Qt).
"""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path

import torch
from segment_anything.build_sam import sam_model_registry
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)


def build_tiny_sam(seed: int = 0, *, img_size: int = 128, dim: int = 32) -> Sam:
    """A randomly initialised SAM: input ``img_size`` (multiple of 64), width ``dim``.

    With the defaults: 128 x 128 input, 8 x 8 x 32 image embedding, (1, 32, 32) low-res logits,
    three multimask outputs plus one single-mask output, as in SAM. Seeded: the same ``seed``
    gives the same weights (use the seed in the segmenter's ``model_id``).
    """
    if img_size % 64 or img_size < 64:
        raise ValueError(f"build_tiny_sam img_size: expected a multiple of 64, got {img_size}")
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        grid = img_size // 16
        sam = Sam(
            image_encoder=ImageEncoderViT(
                img_size=img_size,
                patch_size=16,
                embed_dim=dim,
                depth=2,
                num_heads=2,
                mlp_ratio=2.0,
                out_chans=dim,
                qkv_bias=True,
                norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                use_rel_pos=True,
                window_size=4,
                global_attn_indexes=(1,),
            ),
            prompt_encoder=PromptEncoder(
                embed_dim=dim,
                image_embedding_size=(grid, grid),
                input_image_size=(img_size, img_size),
                mask_in_chans=8,
            ),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=3,
                transformer=TwoWayTransformer(
                    depth=2, embedding_dim=dim, mlp_dim=2 * dim, num_heads=2
                ),  # fmt: skip
                transformer_dim=dim,
                iou_head_depth=3,
                iou_head_hidden_dim=dim,
            ),
            pixel_mean=[123.675, 116.28, 103.53],
            pixel_std=[58.395, 57.12, 57.375],
        )
    finally:
        torch.random.set_rng_state(generator_state)  # do not disturb the caller's RNG stream
    return sam.eval()


def load_sam(model_type: str, checkpoint: str | Path) -> Sam:
    """Build ``model_type`` with segment-anything's registry and load ``checkpoint`` into it.

    The state dict is read with ``torch.load(..., map_location="cpu", weights_only=True)`` (the
    registry's own loader would unpickle arbitrary objects).

    Raises:
        ValueError: unknown model type, or a checkpoint of another model type / not a SAM file.
    """
    if model_type not in ("vit_b", "vit_l", "vit_h"):
        raise ValueError(f"SAM model type {model_type!r}: expected vit_b, vit_l or vit_h")
    model = sam_model_registry[model_type](checkpoint=None)
    state = read_weights(checkpoint, what="SAM", expected="an official sam_vit_*.pth file")
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, AttributeError, TypeError) as err:
        first = str(err).strip().splitlines()[0][:200]
        raise ValueError(
            f"SAM checkpoint {checkpoint}: cannot be loaded as segment-anything {model_type} "
            f"({first}); check --sam-model matches the file (sam_vit_b_* is vit_b)"
        ) from err
    return model.eval()


def read_weights(path: str | Path, *, what: str, expected: str) -> object:
    """``torch.load(path, weights_only=True)`` on the CPU; a file that is not a weights file
    becomes a ValueError naming it, ``what`` it was meant to be and the ``expected`` file.

    Raises:
        OSError: the file cannot be read (missing, unreadable).
        ValueError: text, a pickle of Python objects, a damaged zip.
    """
    try:
        with warnings.catch_warnings():  # torch's note on the pickle protocol is not the user's
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(Path(path), map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as err:  # whatever torch's unpickler raises for a file that is not weights
        raise ValueError(
            f"{what} checkpoint {path}: not a PyTorch weights file that can be read safely "
            f"(weights only); pass {expected}"
        ) from err
