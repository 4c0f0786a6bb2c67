"""`fob weights list|path|download` through the real CLI entry point."""

from __future__ import annotations

from napari_fob.cli import main
from napari_fob.core import paths


def test_list_and_path(capsys):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "sam-vit-b" in out and "sam_vit_h_4b8939.pth" in out and "[missing]" in out
    assert main(["weights", "path", "sam-vit-b"]) == 1
    assert "not found" in capsys.readouterr().err
    ckpt = paths.weights_dir() / "sam_vit_b_01ec64.pth"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x")
    assert main(["weights", "path", "sam-vit-b"]) == 0
    assert capsys.readouterr().out.strip() == str(ckpt)
    assert main(["weights", "list"]) == 0
    assert f"found: {ckpt}" in capsys.readouterr().out


def test_unknown_name_is_a_usage_error(capsys):
    assert main(["weights", "download", "sam-vit-q"]) == 2
    assert "sam-vit-b" in capsys.readouterr().err


def test_list_and_path_know_the_sam2_checkpoints(capsys):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for name, filename in [("sam2.1-hiera-t", "sam2.1_hiera_tiny.pt"),
                           ("sam2.1-hiera-b+", "sam2.1_hiera_base_plus.pt")]:  # fmt: skip
        assert name in out and filename in out
        assert f"https://dl.fbaipublicfiles.com/segment_anything_2/092824/{filename}" in out
    assert "sha256 unknown" in out and "--sam2-checkpoint" in out
    assert main(["weights", "path", "sam2.1-hiera-l"]) == 1
    assert "sam2.1_hiera_large.pt" in capsys.readouterr().err
    ckpt = paths.weights_dir() / "sam2.1_hiera_large.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x")
    assert main(["weights", "path", "sam2.1-hiera-l"]) == 0
    assert capsys.readouterr().out.strip() == str(ckpt)
