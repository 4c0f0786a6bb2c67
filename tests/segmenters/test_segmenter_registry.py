"""get_segmenter: names, the random-walker fallback notice, and a real SAM checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from napari_fob.core import paths
from napari_fob.segmenters import (
    SEGMENTERS,
    RandomWalkerSegmenter,
    Segmenter,
    get_segmenter,
)


def test_auto_without_checkpoint_falls_back_with_a_notice():
    seg, notice = get_segmenter("auto")
    assert isinstance(seg, RandomWalkerSegmenter) and isinstance(seg, Segmenter)
    assert notice.startswith("No SAM checkpoint found (looked in: ")
    assert str(paths.weights_dir() / "sam_vit_b_01ec64.pth") in notice
    assert "random-walker fallback" in notice
    assert "`fob weights download sam-vit-b`" in notice and "--sam-checkpoint" in notice


def test_names_and_errors(tmp_path):
    assert SEGMENTERS == ("auto", "sam", "sam2", "random-walker")
    seg, notice = get_segmenter("random-walker")
    assert isinstance(seg, RandomWalkerSegmenter) and notice is None
    with pytest.raises(ValueError, match="auto, sam, sam2, random-walker"):
        get_segmenter("watershed")
    with pytest.raises(ValueError, match="vit_q"):
        get_segmenter("auto", sam_model="vit_q")
    with pytest.raises(FileNotFoundError, match="fob weights download sam-vit-l"):
        get_segmenter("sam", sam_model="vit_l")
    with pytest.raises(FileNotFoundError, match="missing.pth"):  # never a silent fallback
        get_segmenter("auto", sam_checkpoint=str(tmp_path / "missing.pth"))


def test_layering_segmenters_import_no_torch_or_qt():
    import subprocess
    import sys

    code = (
        "import sys; import napari_fob.segmenters, napari_fob.segmenters.cache, "
        "napari_fob.commands.weights; "
        "bad = [m for m in ('torch', 'napari', 'qtpy', 'magicgui') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_auto_finds_a_real_vit_b_checkpoint_and_loads_it(tmp_path):
    """Writes a full-size (random) vit_b state dict where `fob weights download` puts it."""
    import torch
    from segment_anything import sam_model_registry

    from napari_fob.segmenters.sam import SamSegmenter, load_sam
    from napari_fob.segmenters.weights import file_sha256

    target = paths.weights_dir() / "sam_vit_b_01ec64.pth"
    target.parent.mkdir(parents=True)
    torch.manual_seed(0)
    model = sam_model_registry["vit_b"](checkpoint=None)
    torch.save(model.state_dict(), target)
    seg, notice = get_segmenter("auto", device="cpu")
    assert isinstance(seg, SamSegmenter) and notice is None
    info = seg.describe()
    assert info["model_type"] == "vit_b" and info["checkpoint"] == str(target.resolve())
    assert info["checkpoint_sha256"] == file_sha256(target)[:16]
    assert seg.model_id == f"sam-vit_b:{file_sha256(target)[:12]}"
    weight = "image_encoder.patch_embed.proj.weight"
    assert torch.equal(seg.model.state_dict()[weight], model.state_dict()[weight])
    with pytest.raises(ValueError, match="cannot be loaded as segment-anything vit_l"):
        load_sam("vit_l", target)
    np.testing.assert_equal(seg.img_size, 1024)
