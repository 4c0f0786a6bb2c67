"""The FoB authors' released checkpoints: names, where they come from, where a converted one goes.

Standard library only (the CLI lists these without importing torch). The authors publish their
trained weights on the Hugging Face Hub (their README, "Inference": PrimeBo1/FoB_SAM, "still
being updated"); their code and weights are Apache-2.0. napari-fob downloads nothing itself:
the user fetches a ``.pth`` from the hub while online and converts it once with
``fob weights convert FILE.pth --out <weights folder>/<name>.pt``; the converted file is then
found by its name (``--fob-checkpoint fob-abd-ct``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HUB_REPO = "PrimeBo1/FoB_SAM"
HUB_URL = f"https://huggingface.co/{HUB_REPO}/tree/main"
CODE_URL = "https://github.com/primebo1/FoB_SAM"
LICENCE = "Apache-2.0"


@dataclass(frozen=True)
class OfficialCheckpoint:
    """One of the authors' checkpoints, as napari-fob names and stores it once converted."""

    name: str  # the name napari-fob gives it (and the converted file's stem)
    trained_on: str  # the data the authors trained it on
    paper_dice: str  # what the paper reports with SAM ViT-H (Setting I, Table 1)

    @property
    def filename(self) -> str:
        return f"{self.name}.pt"


OFFICIAL_CHECKPOINTS: dict[str, OfficialCheckpoint] = {
    c.name: c
    for c in (
        OfficialCheckpoint(
            "fob-abd-ct", "abdominal CT (SABS, MICCAI 2015 multi-atlas)", "86.21 (Setting I)"
        ),
        OfficialCheckpoint("fob-abd-mri", "abdominal MRI (CHAOS T2-SPIR)", "84.46 (Setting I)"),
    )
}


def converted_path(name: str) -> Path:
    """Where the converted checkpoint `name` lives: the user's weights folder."""
    from napari_fob.core.paths import weights_dir

    return weights_dir() / OFFICIAL_CHECKPOINTS[name].filename


def how_to_get(name: str) -> str:
    """The steps that give the converted checkpoint `name`, for messages and `fob weights list`."""
    target = converted_path(name)
    return (
        f"while online, download the authors' {OFFICIAL_CHECKPOINTS[name].trained_on} "
        f"checkpoint (.pth) from {HUB_URL} (e.g. `hf download {HUB_REPO} --local-dir "
        f"FoB_SAM`), then run `fob weights convert FILE.pth --out {target}`"
    )
