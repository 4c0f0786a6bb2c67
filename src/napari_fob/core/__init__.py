"""The data types and pure functions everything else builds on: prompt sets, volumes and their
geometry, NIfTI io and the other formats' readers, intensity windows, metrics, paths and
atomic file writes (the torch device choice is `napari_fob.devices`).

May import numpy, scipy, scikit-image, nibabel, and pydicom and SimpleITK (the DICOM, NRRD and
MetaImage readers), and the standard library; never torch, napari, Qt or another napari_fob
sub-package except `napari_fob.geometry`.
"""
