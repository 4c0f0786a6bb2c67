"""The data types and pure functions everything else builds on: prompt sets, volumes and their
geometry, NIfTI io, intensity windows, metrics, devices, paths and atomic file writes.

May import numpy, scipy, scikit-image and nibabel (and the standard library); never torch,
napari, Qt or another napari_fob sub-package except `napari_fob.geometry`.
"""
