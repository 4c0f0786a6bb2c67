"""NRRD/NHDR, MetaImage (MHA/MHD) and MGZ read by `read_volume`, on files written by other
libraries (SimpleITK, nibabel) or by hand from the format specs: array, spacing and the world
coordinates of voxels checked against what the writer set; labels written back on the source
grid; bad files named."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from napari_fob.core.formats import is_volume_path, read_support, read_volume
from napari_fob.core.io import read_labels, write_labels

VALUES = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) - 60  # (k, j, i)
_C, _S = np.cos(np.radians(25)), np.sin(np.radians(25))
DIRECTION = np.array([[_C, -_S, 0.0], [0.0, 0.0, -1.0], [_S, _C, 0.0]])  # oblique, permuted
SPACING = (0.8, 0.6, 2.0)  # i, j, k
ORIGIN = (12.5, -30.0, 44.0)  # LPS
VOXELS = [(0, 0, 0), (3, 4, 5), (1, 2, 3), (2, 0, 4)]  # (k, j, i)


def world(volume, k, j, i):
    file_index = np.array([0, 0, 0, 1.0])
    for array_axis, value in enumerate((k, j, i)):
        file_index[volume.axes[array_axis]] = value
    return (volume.affine @ file_index)[:3]


def itk_image(values=VALUES):
    img = sitk.GetImageFromArray(values)
    img.SetSpacing(SPACING)
    img.SetOrigin(ORIGIN)
    img.SetDirection(DIRECTION.ravel().tolist())
    return img


def itk_ras(img, k, j, i):
    return np.array(img.TransformIndexToPhysicalPoint((i, j, k))) * [-1, -1, 1]


@pytest.mark.parametrize("name", ["scan.nrrd", "scan.nhdr", "scan.mha", "scan.mhd"])
def test_itk_formats_written_by_simpleitk(tmp_path, name):
    img = itk_image()
    sitk.WriteImage(img, str(tmp_path / name))
    volume = read_volume(tmp_path / name)
    assert volume.data.shape == (4, 5, 6) and volume.data.dtype == np.float32
    assert np.array_equal(volume.data, VALUES)
    assert volume.spacing == pytest.approx((2.0, 0.6, 0.8))
    for k, j, i in VOXELS:
        assert world(volume, k, j, i) == pytest.approx(itk_ras(img, k, j, i))
    assert volume.to_metadata()["source"]["format"] in ("nrrd", "metaimage")


def test_a_hand_written_nrrd_header_in_ras_space(tmp_path):
    """The NRRD spec by hand (no ITK on the writing side): RAS space, axis-aligned grid."""
    (tmp_path / "raw.raw").write_bytes(VALUES.astype("<i2").tobytes())
    (tmp_path / "ras.nhdr").write_text(
        "NRRD0004\ntype: short\ndimension: 3\nspace: right-anterior-superior\n"
        "sizes: 6 5 4\nspace directions: (0,0.5,0) (-1.5,0,0) (0,0,3)\n"
        "kinds: domain domain domain\nendian: little\nencoding: raw\n"
        "space origin: (10,20,30)\ndata file: raw.raw\n"
    )
    volume = read_volume(tmp_path / "ras.nhdr")
    assert np.array_equal(volume.data, VALUES)
    assert volume.spacing == pytest.approx((3.0, 1.5, 0.5))
    for k, j, i in VOXELS:  # RAS = origin + i*(0,.5,0) + j*(-1.5,0,0) + k*(0,0,3)
        assert world(volume, k, j, i) == pytest.approx([10 - 1.5 * j, 20 + 0.5 * i, 30 + 3 * k])


def test_a_hand_written_metaimage_header_is_lps(tmp_path):
    """MetaImage by hand: ITK's LPS convention, so x and y flip sign in RAS."""
    (tmp_path / "raw.raw").write_bytes(VALUES.astype("<i2").tobytes())
    (tmp_path / "lps.mhd").write_text(
        "ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
        "TransformMatrix = 1 0 0 0 1 0 0 0 1\nOffset = 5 -6 7\nElementSpacing = 0.5 1.5 3\n"
        "DimSize = 6 5 4\nElementType = MET_SHORT\nElementDataFile = raw.raw\n"
    )
    volume = read_volume(tmp_path / "lps.mhd")
    assert np.array_equal(volume.data, VALUES)
    for k, j, i in VOXELS:
        assert world(volume, k, j, i) == pytest.approx([-5 - 0.5 * i, 6 - 1.5 * j, 7 + 3 * k])


def test_mgz_written_by_nibabel(tmp_path):
    affine = np.array([[-1.0, 0, 0, 90], [0, 0, 1.2, -100], [0, -1.1, 0, 110], [0, 0, 0, 1]])
    data = np.transpose(VALUES, (2, 1, 0)).astype(np.float32)  # (i, j, k) on disk
    nib.MGHImage(data, affine).to_filename(tmp_path / "brain.mgz")
    volume = read_volume(tmp_path / "brain.mgz")
    assert np.array_equal(volume.data, VALUES)
    assert np.allclose(volume.affine, affine)
    assert volume.spacing == pytest.approx((1.2, 1.1, 1.0))
    for k, j, i in VOXELS:
        assert world(volume, k, j, i) == pytest.approx((affine @ [i, j, k, 1])[:3])


@pytest.mark.parametrize("name", ["scan.nrrd", "scan.mha", "brain.mgz"])
def test_labels_round_trip_on_the_source_grid(tmp_path, name):
    if name.endswith(".mgz"):
        affine = np.diag([-0.9, 1.1, 2.0, 1.0])
        nib.MGHImage(np.transpose(VALUES, (2, 1, 0)), affine).to_filename(tmp_path / name)
        source = None
    else:
        source = itk_image()
        sitk.WriteImage(source, str(tmp_path / name))
    volume = read_volume(tmp_path / name)
    labels = np.zeros(volume.data.shape, np.uint8)
    labels[3, 4, 5], labels[1, 2, 3] = 1, 2
    out = write_labels(tmp_path / "labels.nii.gz", labels, like=volume)
    assert np.array_equal(read_labels(out, like=volume), labels)
    img = sitk.ReadImage(str(out))  # another library's view of the labels' world grid
    for k, j, i in [(3, 4, 5), (1, 2, 3)]:
        point = np.array(img.TransformIndexToPhysicalPoint((i, j, k))) * [-1, -1, 1]
        assert point == pytest.approx(world(volume, k, j, i), abs=1e-4)
        if source is not None:
            assert point == pytest.approx(itk_ras(source, k, j, i), abs=1e-4)
        assert sitk.GetArrayFromImage(img)[k, j, i] == labels[k, j, i]


def test_a_support_in_nrrd_on_an_nrrd_image(tmp_path):
    sitk.WriteImage(itk_image(), str(tmp_path / "image.nrrd"))
    support = (VALUES > 20).astype(np.uint8)
    sitk.WriteImage(itk_image(support), str(tmp_path / "support.seg.nrrd"))
    image = read_volume(tmp_path / "image.nrrd")
    assert np.array_equal(read_support(tmp_path / "support.seg.nrrd", like=image), support)
    shifted = itk_image(support)
    shifted.SetOrigin((0.0, 0.0, 0.0))
    sitk.WriteImage(shifted, str(tmp_path / "other.nrrd"))
    with pytest.raises(ValueError, match="other.nrrd: label affine"):
        read_support(tmp_path / "other.nrrd", like=image)


def test_bad_files_are_named(tmp_path):
    (tmp_path / "junk.nrrd").write_bytes(b"this is not an nrrd file")
    with pytest.raises(ValueError, match="junk.nrrd: cannot be read as nrrd"):
        read_volume(tmp_path / "junk.nrrd")
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((5, 6), np.int16)), str(tmp_path / "2d.mha"))
    with pytest.raises(ValueError, match=r"2d.mha: expected a 3D volume, found 2D"):
        read_volume(tmp_path / "2d.mha")
    rgb = sitk.GetImageFromArray(np.zeros((3, 5, 6, 3), np.uint8), isVector=True)
    sitk.WriteImage(rgb, str(tmp_path / "rgb.nrrd"))
    with pytest.raises(ValueError, match="rgb.nrrd: 3 components per voxel"):
        read_volume(tmp_path / "rgb.nrrd")
    (tmp_path / "scan.tif").write_bytes(b"II*\0")
    with pytest.raises(ValueError, match=r"scan.tif: unknown image format; expected NIfTI"):
        read_volume(tmp_path / "scan.tif")
    sitk.WriteImage(itk_image(), str(tmp_path / "ok.mha"))
    with pytest.raises(ValueError, match="ok.mha: a series UID"):
        read_volume(tmp_path / "ok.mha", series="1.2.3")
    assert is_volume_path("A.NRRD") and is_volume_path("b.mgz") and not is_volume_path("c.tif")
