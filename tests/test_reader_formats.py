"""The npe2 reader on the other formats, as napari calls it: a DICOM series folder (written with
pydicom), NRRD/MHA (SimpleITK) and MGZ (nibabel) open with their spacing and geometry, labels
save back as NIfTI on the source's world grid; a folder without DICOM is left to other readers."""

from __future__ import annotations

import nibabel as nib
import npe2
import numpy as np
import pytest
import SimpleITK as sitk

from dicom_series import ct_values, expected_ras, write_series
from napari_fob._reader import get_reader

pytestmark = pytest.mark.usefixtures("npe2_plugin")


def read(path):
    return npe2.read([str(path)], stack=False, plugin_name="napari-fob")


def test_a_dicom_folder_opens_with_spacing_and_saves_labels_on_its_grid(tmp_path):
    info = write_series(tmp_path / "CT_abdomen", ct_values(), intercept=-1000)
    [(data, kwargs, kind)] = read(tmp_path / "CT_abdomen")
    assert kind == "image" and kwargs["name"] == "CT_abdomen"
    assert np.array_equal(data, ct_values() - 1000.0)
    assert tuple(kwargs["scale"]) == pytest.approx((2.5, 0.7, 0.9))
    meta = kwargs["metadata"]["napari_fob"]
    assert meta["source"]["format"] == "dicom" and meta["source"]["series_uid"] == info["uid"]
    labels = np.zeros(data.shape, np.uint8)
    labels[2, 3, 4] = 1
    out = tmp_path / "labels.nii.gz"
    attrs = {"name": "mask", "metadata": kwargs["metadata"], "scale": kwargs["scale"]}
    assert npe2.write(str(out), [(labels, attrs, "labels")], plugin_name="napari-fob") == [str(out)]
    img = nib.load(out)
    i, j, k = np.argwhere(np.asarray(img.dataobj) == 1)[0]
    assert (img.affine @ [i, j, k, 1])[:3] == pytest.approx(expected_ras(info, 2, 3, 4), abs=1e-4)


def test_several_dicom_files_of_one_series_open_once(tmp_path):
    info = write_series(tmp_path / "ct", ct_values())
    reader = get_reader([str(p) for p in info["files"]])
    assert reader is not None
    layers = reader([str(p) for p in info["files"]])
    assert len(layers) == 1 and layers[0][0].shape == (4, 6, 5)


def test_a_folder_of_several_series_warns_in_napari(tmp_path):
    write_series(tmp_path / "mixed", ct_values(n=4), description="abdomen")
    small = write_series(tmp_path / "mixed", ct_values(n=2), description="scout", prefix="S")
    with pytest.warns(UserWarning, match=small["uid"]):
        [(data, _, _)] = read(tmp_path / "mixed")
    assert data.shape[0] == 4


def test_folders_without_dicom_are_left_to_other_readers(tmp_path):
    (tmp_path / "pngs").mkdir()
    (tmp_path / "pngs" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert get_reader(str(tmp_path / "pngs")) is None
    (tmp_path / "empty").mkdir()
    assert get_reader(str(tmp_path / "empty")) is None
    write_series(tmp_path / "ct", ct_values())
    assert callable(get_reader(str(tmp_path / "ct")))
    assert get_reader([str(tmp_path / "ct"), str(tmp_path / "pngs")]) is None


def test_nrrd_labels_mha_image_and_mgz_open(tmp_path):
    seg = sitk.GetImageFromArray((ct_values() > 0).astype(np.uint8) * 3)
    seg.SetSpacing((0.5, 0.6, 1.5))
    sitk.WriteImage(seg, str(tmp_path / "liver.seg.nrrd"))
    [(data, kwargs, kind)] = read(tmp_path / "liver.seg.nrrd")
    assert kind == "labels" and data.dtype == np.uint8 and kwargs["name"] == "liver.seg"
    assert tuple(kwargs["scale"]) == pytest.approx((1.5, 0.6, 0.5))

    image = sitk.GetImageFromArray(ct_values())
    sitk.WriteImage(image, str(tmp_path / "scan.mha"))
    (tmp_path / "scan.mha").rename(tmp_path / "scan.MHA")  # upper case, as some exports
    [(data, kwargs, kind)] = read(tmp_path / "scan.MHA")
    assert kind == "image" and np.array_equal(data, ct_values())

    affine = np.diag([-1.0, 1.0, 1.3, 1.0])
    nib.MGHImage(np.transpose(ct_values(), (2, 1, 0)).astype(np.float32), affine).to_filename(
        tmp_path / "T1.mgz"
    )
    [(data, kwargs, kind)] = read(tmp_path / "T1.mgz")
    assert kind == "image" and kwargs["name"] == "T1"
    assert np.allclose(kwargs["metadata"]["napari_fob"]["affine"], affine)


@pytest.mark.gui
def test_napari_offers_and_opens_a_dicom_folder_and_an_nrrd(make_napari_viewer, tmp_path):
    """napari lists napari-fob among the readers of a DICOM folder and an NRRD (the choice its
    Open dialog offers, napari's builtins being the other), and opens them with the geometry."""
    from napari.plugins import _npe2

    write_series(tmp_path / "CT", ct_values())
    sitk.WriteImage(sitk.GetImageFromArray(ct_values()), str(tmp_path / "scan.nrrd"))
    assert "napari-fob" in _npe2.get_readers(str(tmp_path / "CT"))
    assert "napari-fob" in _npe2.get_readers(str(tmp_path / "scan.nrrd"))
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "CT"), plugin="napari-fob")
    viewer.open(str(tmp_path / "scan.nrrd"), plugin="napari-fob")
    ct, scan = viewer.layers["CT"], viewer.layers["scan"]
    assert ct.data.shape == (4, 6, 5) and tuple(ct.scale) == pytest.approx((2.5, 0.7, 0.9))
    assert ct.metadata["napari_fob"]["source"]["format"] == "dicom"
    assert scan.metadata["napari_fob"]["source"]["format"] == "nrrd"
