"""Copy a FoB checkpoint's weights to another model grid (e.g. the 128 grid to the paper's 256).

Every FoB weight but one is a convolution, attention or MLP weight whose shape does not depend
on the grid; the learnt positional map of the proposal queries (C x S/8 x S/8) is resampled
bilinearly to the new feature size. The grid-scale lengths (``ring_r``, ``sigma``,
``rac_band``, ``spr_offset_radius``) are given for the new grid. The network then needs
fine-tuning at the new grid (its heatmaps and SPR offsets were learnt in the old grid's
pixels). Usage:
``regrid.py IN.pt OUT.pt grid_size=256 ring_r=15 sigma=8 rac_band=8 [spr_offset_radius=8]``.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import torch.nn.functional as F

from napari_fob.model.checkpoint import load_fob, save_checkpoint
from napari_fob.model.fob import Fob

GRID_FIELDS = {
    "grid_size": int,
    "ring_r": int,
    "ring_eps": int,
    "rac_band": int,
    "sigma": float,
    "spr_offset_radius": float,
}


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst, *pairs = argv
    changes = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in GRID_FIELDS:
            raise ValueError(f"regrid: {key!r} is not one of {sorted(GRID_FIELDS)}")
        changes[key] = GRID_FIELDS[key](value)
    old = load_fob(src)
    model = Fob(config=replace(old.config, **changes))
    target = model.state_dict()
    state = {}
    for key, value in old.state_dict().items():
        if value.shape != target[key].shape:
            if value.ndim != 4 or value.shape[:2] != target[key].shape[:2]:
                raise ValueError(
                    f"regrid: {key} {tuple(value.shape)} cannot be resampled "
                    f"to {tuple(target[key].shape)}"
                )
            value = F.interpolate(
                value, size=target[key].shape[2:], mode="bilinear", align_corners=False
            )
            print(f"resampled {key}: {tuple(value.shape)}")
        state[key] = value
    model.load_state_dict(state, strict=True)
    save_checkpoint(dst, model, step=0)
    print(f"wrote {dst}: {changes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
