"""NIfTI read/write: exact round trips for any orientation and slicing axis, and each bad input."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_fob.core.io import Volume, read_labels, read_nifti, write_image, write_labels


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _affine(kind: str) -> np.ndarray:
    affine = np.eye(4)
    if kind == "ras":
        affine[:3, :3] = np.diag([0.9, 1.1, 2.5])
        affine[:3, 3] = [-40.0, -50.0, -30.0]
    elif kind == "lps":
        affine[:3, :3] = np.diag([-0.75, -0.75, 3.0])
        affine[:3, 3] = [60.0, 70.0, -20.0]
    else:  # oblique: rotated about all three axes, anisotropic voxels
        affine[:3, :3] = _rotation(0.2, -0.35, 0.5) @ np.diag([0.8, 1.2, 2.0])
        affine[:3, 3] = [12.5, -7.25, 3.0]
    return affine


def _save(path, array, affine, *, sform_code=2, qform_code=1):
    img = nib.Nifti1Image(array, affine)
    img.header.set_sform(affine, code=sform_code)
    img.header.set_qform(affine, code=qform_code)
    img.to_filename(path)
    return nib.load(path)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("slice_axis", [0, 1, 2])
@pytest.mark.parametrize("kind", ["ras", "lps", "oblique"])
def test_round_trip_is_exact(tmp_path, kind, slice_axis, suffix):
    rng = np.random.default_rng(0)
    source = _save(tmp_path / f"img{suffix}", rng.normal(size=(5, 6, 7)).astype(np.float32),
                   _affine(kind))  # fmt: skip
    volume = read_nifti(tmp_path / f"img{suffix}", slice_axis=slice_axis)

    file_array = np.asarray(source.dataobj)
    assert volume.data.dtype == np.float32
    assert volume.axes[0] == slice_axis
    assert np.array_equal(volume.data, np.transpose(file_array, volume.axes))
    assert np.array_equal(volume.affine, source.affine)
    sizes = np.asarray(source.header.get_zooms())
    assert np.allclose(volume.spacing, sizes[list(volume.axes)])

    labels = rng.integers(0, 5, size=volume.data.shape)
    meta = json.loads(json.dumps(volume.to_metadata()))  # must survive JSON
    out = write_labels(tmp_path / f"labels{suffix}", labels, meta)
    written = nib.load(out)
    assert np.array_equal(written.affine, source.affine)
    assert np.array_equal(written.header.get_qform(), source.header.get_qform())
    assert int(written.header["sform_code"]) == 2 and int(written.header["qform_code"]) == 1
    assert written.shape == source.shape
    assert written.get_data_dtype() == np.uint8
    assert (written.dataobj.slope, written.dataobj.inter) == (1.0, 0.0)
    assert np.array_equal(read_labels(out, volume), labels)
    # The image writer restores the file's own voxel order too.
    image_out = write_image(tmp_path / f"image_copy{suffix}", volume.data, volume)
    assert np.array_equal(np.asarray(nib.load(image_out).dataobj), file_array)


def test_axes_put_the_later_voxel_axis_on_rows(tmp_path):
    _save(tmp_path / "a.nii", np.zeros((3, 4, 5), np.float32), np.eye(4))
    assert read_nifti(tmp_path / "a.nii").data.shape == (5, 4, 3)  # (k, j, i)
    assert read_nifti(tmp_path / "a.nii", slice_axis=0).data.shape == (3, 5, 4)  # (i, k, j)
    assert read_nifti(tmp_path / "a.nii", slice_axis=1).data.shape == (4, 5, 3)  # (j, k, i)


@settings(max_examples=15, deadline=None)
@given(
    angles=st.tuples(*[st.floats(-np.pi, np.pi) for _ in range(3)]),
    sizes=st.tuples(*[st.floats(0.3, 4.0) for _ in range(3)]),
    flips=st.tuples(*[st.sampled_from([-1.0, 1.0]) for _ in range(3)]),
    slice_axis=st.sampled_from([0, 1, 2]),
)
def test_round_trip_any_rigid_affine(tmp_path_factory, angles, sizes, flips, slice_axis):
    folder = tmp_path_factory.mktemp("rt")
    affine = np.eye(4)
    affine[:3, :3] = _rotation(*angles) @ np.diag(np.multiply(sizes, flips))
    affine[:3, 3] = [1.5, -2.0, 3.25]
    source = _save(folder / "img.nii", np.arange(24, dtype=np.float32).reshape(2, 3, 4), affine)
    volume = read_nifti(folder / "img.nii", slice_axis=slice_axis)
    labels = (volume.data % 3).astype(np.int32)
    written = nib.load(write_labels(folder / "lab.nii.gz", labels, volume))
    assert np.array_equal(written.affine, source.affine)
    assert np.array_equal(read_labels(folder / "lab.nii.gz", volume), labels)


def test_4d_singleton_and_scaling(tmp_path):
    data = np.arange(60, dtype=np.int16).reshape(3, 4, 5, 1)
    img = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    img.header.set_slope_inter(0.5, -10.0)
    img.to_filename(tmp_path / "four.nii.gz")
    volume = read_nifti(tmp_path / "four.nii.gz")
    assert volume.file_shape == (3, 4, 5)
    assert volume.data.shape == (5, 4, 3)
    expected = np.transpose(data[..., 0] * 0.5 - 10.0, (2, 1, 0))
    assert volume.data.dtype == np.float32
    assert np.array_equal(volume.data, expected.astype(np.float32))
    out = write_labels(tmp_path / "l.nii.gz", np.ones(volume.data.shape, np.uint8), volume)
    assert nib.load(out).shape == (3, 4, 5)  # 3D labels for a 4D-singleton source


@pytest.mark.parametrize(
    ("top", "dtype"), [(255, np.uint8), (256, np.int16), (32767, np.int16), (40000, np.int32)]
)
def test_label_dtype_is_the_smallest_that_fits(tmp_path, top, dtype):
    volume = Volume.from_array(np.zeros((2, 3, 4), np.float32), affine=np.eye(4))
    labels = np.zeros((2, 3, 4), np.int64)
    labels[1, 1, 1] = top
    out = write_labels(tmp_path / "l.nii", labels, volume)
    assert nib.load(out).get_data_dtype() == dtype
    assert read_labels(out, volume)[1, 1, 1] == top


def test_from_array_and_hand_written_metadata(tmp_path):
    affine = np.diag([-1.5, -1.5, 2.5, 1.0])
    volume = Volume.from_array(np.zeros((4, 5, 6), np.float32), affine=affine)
    assert volume.file_shape == (6, 5, 4) and volume.spacing == (2.5, 1.5, 1.5)
    minimal = {"affine": affine.tolist(), "axes": [2, 1, 0], "file_shape": [6, 5, 4]}
    out = write_labels(tmp_path / "l.nii.gz", np.ones((4, 5, 6), np.uint8), minimal)
    assert np.array_equal(nib.load(out).affine, affine)
    assert Volume.from_metadata(np.zeros((4, 5, 6)), volume.to_metadata()).axes == (2, 1, 0)


def test_atomic_write_leaves_no_temp_files(tmp_path):
    volume = Volume.from_array(np.zeros((2, 3, 4), np.float32), affine=np.eye(4))
    write_labels(tmp_path / "l.nii.gz", np.ones((2, 3, 4), np.uint8), volume)
    write_labels(tmp_path / "l.nii.gz", np.full((2, 3, 4), 2, np.uint8), volume)  # overwrite
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.nii.gz"]
    assert read_labels(tmp_path / "l.nii.gz", volume).max() == 2
    (tmp_path / "blocked.nii").mkdir()  # os.replace onto a folder fails after the write
    with pytest.raises(OSError):
        write_labels(tmp_path / "blocked.nii", np.ones((2, 3, 4), np.uint8), volume)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked.nii", "l.nii.gz"]


# --- errors -----------------------------------------------------------------------------


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.nii"):
        read_nifti(tmp_path / "missing.nii")
    nib.Nifti1Image(np.zeros((4, 5), np.float32), np.eye(4)).to_filename(tmp_path / "flat.nii")
    with pytest.raises(ValueError, match=r"flat.nii.*3D.*\(4, 5\)"):
        read_nifti(tmp_path / "flat.nii")
    nib.Nifti1Image(np.zeros((4, 5, 6, 2), np.float32), np.eye(4)).to_filename(tmp_path / "t.nii")
    with pytest.raises(ValueError, match=r"t.nii.*\(4, 5, 6, 2\)"):
        read_nifti(tmp_path / "t.nii")
    (tmp_path / "junk.nii.gz").write_bytes(b"this is not a NIfTI file")
    with pytest.raises(ValueError, match="junk.nii.gz"):
        read_nifti(tmp_path / "junk.nii.gz")
    mgh = nib.MGHImage(np.zeros((2, 3, 4), np.float32), np.eye(4))
    mgh.to_filename(tmp_path / "brain.mgz")
    with pytest.raises(ValueError, match="brain.mgz.*NIfTI"):
        read_nifti(tmp_path / "brain.mgz")
    _save(tmp_path / "ok.nii", np.zeros((2, 3, 4), np.float32), np.eye(4))
    with pytest.raises(ValueError, match="slice_axis"):
        read_nifti(tmp_path / "ok.nii", slice_axis=3)


def test_read_labels_mismatch_names_both_files(tmp_path):
    image = read_nifti(_save(tmp_path / "img.nii", np.zeros((4, 5, 6), np.float32),
                             np.eye(4)).get_filename())  # fmt: skip
    _save(tmp_path / "small.nii", np.zeros((4, 5, 5), np.uint8), np.eye(4))
    with pytest.raises(ValueError, match=r"small.nii.*\(4, 5, 5\).*img.nii.*\(4, 5, 6\)"):
        read_labels(tmp_path / "small.nii", image)
    _save(tmp_path / "moved.nii", np.zeros((4, 5, 6), np.uint8), np.diag([1.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match=r"(?s)moved.nii.*affine.*2\..*img.nii"):
        read_labels(tmp_path / "moved.nii", image)
    _save(tmp_path / "frac.nii", np.full((4, 5, 6), 0.5, np.float32), np.eye(4))
    with pytest.raises(ValueError, match="frac.nii.*whole"):
        read_labels(tmp_path / "frac.nii", image)


def test_write_labels_rejects_bad_input(tmp_path):
    volume = Volume.from_array(np.zeros((2, 3, 4), np.float32), affine=np.eye(4))
    good = np.zeros((2, 3, 4), np.uint8)
    with pytest.raises(ValueError, match=r"l.nii.*\(3, 3, 4\).*\(2, 3, 4\)"):
        write_labels(tmp_path / "l.nii", np.zeros((3, 3, 4), np.uint8), volume)
    with pytest.raises(ValueError, match="integer"):
        write_labels(tmp_path / "l.nii", good.astype(np.float32), volume)
    with pytest.raises(ValueError, match=">= 0"):
        write_labels(tmp_path / "l.nii", good.astype(np.int8) - 1, volume)
    with pytest.raises(ValueError, match=r"l.tif.*\.nii"):
        write_labels(tmp_path / "l.tif", good, volume)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        write_labels(tmp_path / "nowhere" / "l.nii", good, volume)
    with pytest.raises(ValueError, match="missing keys"):
        write_labels(tmp_path / "l.nii", good, {"affine": np.eye(4).tolist()})
    assert list(tmp_path.iterdir()) == []


# ---- integrity and modes ------------------------------------------------------------------
def _gz_case(tmp_path):
    image = np.random.default_rng(3).normal(size=(6, 7, 8)).astype(np.float32)
    path = tmp_path / "img.nii.gz"
    write_image(path, image, Volume.from_array(image, affine=np.eye(4)))
    return path


@pytest.mark.parametrize("where", ["crc", "length", "truncated", "payload"])
def test_a_damaged_gzip_is_refused_with_the_file_named(tmp_path, where):
    path = _gz_case(tmp_path)
    data = bytearray(path.read_bytes())
    if where == "crc":
        data[-8] ^= 0xFF  # the stored CRC-32: nibabel alone reads every voxel and never sees it
    elif where == "length":
        data[-1] ^= 0x01  # the stored length (ISIZE)
    elif where == "truncated":
        data = data[:-6]
    else:
        data[len(data) // 2] ^= 0x55
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="img.nii.gz") as info:
        read_nifti(path)
    assert "gzip" in str(info.value) or "NIfTI" in str(info.value)


def test_a_crc_flip_goes_past_nibabel_alone(tmp_path):
    """Why `check_gzip` exists: nibabel stops at the last voxel and ignores the trailer."""
    path = _gz_case(tmp_path)
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF
    path.write_bytes(bytes(data))
    assert nib.load(path).get_fdata().shape == (8, 7, 6)
    with pytest.raises(ValueError, match="damaged or truncated gzip"):
        read_nifti(path)


def test_written_volumes_follow_the_umask_without_touching_it(tmp_path, monkeypatch):
    import os
    import stat

    def no_umask(*args):
        raise AssertionError("os.umask is process-wide: writers must not call it")

    monkeypatch.setattr(os, "umask", no_umask)
    probe = tmp_path / "probe"
    probe.write_text("")
    expected = stat.S_IMODE(probe.stat().st_mode)
    path = _gz_case(tmp_path)
    lab = write_labels(tmp_path / "lab.nii", np.zeros((6, 7, 8), np.uint8), read_nifti(path))
    for p in (path, lab):
        assert stat.S_IMODE(p.stat().st_mode) == expected


def test_modes_under_another_umask_in_a_child(tmp_path):
    """Under umask 077 every output is 0600; under 022, 0644 (the mode labels always had)."""
    import subprocess
    import sys

    code = (
        "import os, sys, numpy as np\n"
        "from napari_fob.core.io import Volume, write_labels\n"
        "from napari_fob.core import atomic\n"
        "os.umask(int(sys.argv[1], 8))\n"
        "a = np.zeros((2, 3, 4), np.uint8)\n"
        "write_labels(sys.argv[2] + '/l.nii.gz', a, Volume.from_array(a, affine=np.eye(4)))\n"
        "atomic.write_json(sys.argv[2] + '/p.json', {})\n"
    )
    for mask, mode in (("077", 0o600), ("022", 0o644), ("002", 0o664)):
        folder = tmp_path / mask
        folder.mkdir()
        subprocess.run([sys.executable, "-c", code, mask, str(folder)], check=True)
        for name in ("l.nii.gz", "p.json"):
            assert (folder / name).stat().st_mode & 0o777 == mode, (mask, name)
