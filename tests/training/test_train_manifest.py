"""Training manifests (YAML / CSV) and per-volume intensity rules."""

from __future__ import annotations

import numpy as np
import pytest

from napari_fob.training.manifest import (
    load_split,
    read_manifest,
    volume_window,
    write_manifest,
)


def test_yaml_and_csv_manifests_resolve_relative_paths(phantom_files, tmp_path):
    (img0, gt0), (img1, gt1) = phantom_files[:2]
    yml = tmp_path / "m.yaml"
    yml.write_text(
        f"volumes:\n  - image: {img0}\n    labels: {gt0}\n    intensity: ct-abdomen\n"
        f"  - image: {img1}\n    split: val\n"
    )
    entries = read_manifest(yml)
    assert [e.split for e in entries] == ["train", "val"] and entries[0].labels == gt0
    again = read_manifest(write_manifest(tmp_path / "sub.yaml", entries))
    assert again == entries
    csv = tmp_path / "m.csv"
    csv.write_text(f"image,labels,split,intensity\n{img0.name},{gt0.name},test,zscore\n")
    (tmp_path / img0.name).write_bytes(img0.read_bytes())
    (tmp_path / gt0.name).write_bytes(gt0.read_bytes())
    (entry,) = read_manifest(csv)
    assert entry.image == tmp_path / img0.name and entry.intensity == "zscore"
    (vol,) = load_split([entry], "test")
    assert vol.image01.dtype == np.float32 and 0 <= vol.image01.min() <= vol.image01.max() <= 1
    assert vol.labels.shape == vol.image01.shape and vol.window.source == "zscore"


def test_manifest_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        read_manifest(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("volumes:\n  - image: missing.nii.gz\n")
    with pytest.raises(FileNotFoundError, match="missing.nii.gz"):
        read_manifest(bad)
    bad.write_text("volumes:\n  - labels: x.nii.gz\n")
    with pytest.raises(ValueError, match="'image'"):
        read_manifest(bad)
    (tmp_path / "a.nii.gz").write_bytes(b"")
    bad.write_text("volumes:\n  - image: a.nii.gz\n    split: holdout\n")
    with pytest.raises(ValueError, match="holdout"):
        read_manifest(bad)


def test_volume_windows():
    image = np.full((2, 8, 8), -1000.0, np.float32)
    image[:, 2:6, 2:6] = np.linspace(0, 100, 16).reshape(4, 4)
    z = volume_window(image, "zscore")
    body = image[image > -1000]
    assert z.low == pytest.approx(body.mean() - 3 * body.std(), rel=1e-4)
    assert volume_window(image, "-100,200").low == -100
    assert volume_window(image, "ct-abdomen").source == "ct-abdomen"
