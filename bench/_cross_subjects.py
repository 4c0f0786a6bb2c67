"""Distinct subjects for the cross-volume benchmark, and the atlas-registration baseline.

`make_subject` turns one labelled scan (the benchmark's MRI template with its atlas, or a
phantom) into another "subject": the anatomy moved by a random rigid rotation, anisotropic
scale and translation, bent by a smooth random deformation, multiplied by a smooth bias field,
with noise, and sampled on a grid of another voxel size, field of view and storage
orientation. Everything derives from the seed. The moved labels (nearest neighbour) are the
subject's ground truth. The subject is never co-registered with the reference: the methods
see only the two images and their own affines.

`register_labels` is what users do today without FoB: register the reference to the query
with SimpleITK (centred moments init, affine by Mattes mutual information, then a B-spline
free-form deformation, both multi-resolution) and warp its labels with nearest neighbour.

numpy / scipy / SimpleITK only; arrays are in file voxel order (i, j, k) with NIfTI (RAS)
affines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

#: Ranges of the random subject transform (uniform draws, per axis where it applies).
ROTATION_DEG = 10.0
SCALE = (0.9, 1.1)
SHIFT_MM = 12.0
DEFORM_MM = 4.0  # largest displacement of the smooth deformation
BIAS = 0.25  # the bias field is exp(BIAS * f), f a smooth field in [-1, 1]
NOISE = 0.01  # Gaussian noise, in units of the image's 99th percentile


@dataclass(frozen=True)
class Subject:
    image: np.ndarray  # float32 (I, J, K), file voxel order
    labels: np.ndarray  # int16, same grid
    affine: np.ndarray  # (4, 4) voxel -> world mm (RAS)
    transform: dict  # the draws, for the record


def _rotation(angles_deg: np.ndarray) -> np.ndarray:
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _smooth(rng: np.random.Generator, shape: tuple, coarse: int = 5) -> np.ndarray:
    """A smooth random field on `shape` in [-1, 1] (cubic upsampling of a coarse grid)."""
    small = rng.normal(size=(coarse, coarse, coarse))
    field = ndi.zoom(small, [s / coarse for s in shape], order=3, mode="nearest")[
        : shape[0], : shape[1], : shape[2]
    ]
    return (field / max(np.abs(field).max(), 1e-6)).astype(np.float32)


def make_subject(
    image: np.ndarray,
    labels: np.ndarray,
    affine: np.ndarray,
    seed: int,
    *,
    spacing: tuple[float, float, float],
    flip: tuple[bool, bool, bool] = (False, False, False),
) -> Subject:
    """Another subject from a labelled scan (module doc). `spacing`: the new voxel size (mm)
    per file axis; `flip`: store that axis the other way round (another orientation)."""
    rng = np.random.default_rng(seed)
    angles = rng.uniform(-ROTATION_DEG, ROTATION_DEG, 3)
    scale = rng.uniform(*SCALE, 3)
    shift = rng.uniform(-SHIFT_MM, SHIFT_MM, 3)
    m = _rotation(angles) @ np.diag(scale)  # template mm -> subject mm, about the centre
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in image.shape], indexing="ij"))
    corners = corners.reshape(3, -1)
    world = affine[:3, :3] @ corners + affine[:3, 3:4]
    centre = world.mean(axis=1, keepdims=True)
    moved = m @ (world - centre) + centre + shift[:, None]
    lo, hi = moved.min(axis=1), moved.max(axis=1)
    sp = np.asarray(spacing, float)
    shape = tuple(int(np.ceil((h - low) / s)) + 1 for low, h, s in zip(lo, hi, sp))
    signs = np.where(flip, -1.0, 1.0)
    new_affine = np.eye(4)
    new_affine[:3, :3] = np.diag(sp * signs)
    new_affine[:3, 3] = np.where(flip, hi, lo)
    deform = [DEFORM_MM * _smooth(rng, shape) for _ in range(3)]
    bias = np.exp(BIAS * _smooth(rng, shape, coarse=4))
    grid = np.indices(shape, dtype=np.float32).reshape(3, -1)
    x = new_affine[:3, :3] @ grid + new_affine[:3, 3:4]  # subject world mm
    x = x + np.stack([d.ravel() for d in deform])
    t = np.linalg.inv(m) @ (x - centre - shift[:, None]) + centre  # template world mm
    vox = np.linalg.inv(affine)[:3, :3] @ t + np.linalg.inv(affine)[:3, 3:4]
    out = ndi.map_coordinates(image, vox, order=1, mode="constant", cval=0.0).reshape(shape)
    lab = ndi.map_coordinates(labels, vox, order=0, mode="constant", cval=0).reshape(shape)
    out = out * bias
    top = float(np.percentile(out, 99))
    out = out + rng.normal(0.0, NOISE * top, shape)
    record = {"seed": seed, "rotation_deg": angles.round(2).tolist(),
              "scale": scale.round(3).tolist(), "shift_mm": shift.round(2).tolist(),
              "spacing": sp.tolist(), "flip": list(flip), "shape": list(shape)}  # fmt: skip
    return Subject(out.astype(np.float32), lab.astype(np.int16), new_affine, record)


def _to_sitk(data: np.ndarray, affine: np.ndarray):
    """A SimpleITK image of a file-order (I, J, K) array with a NIfTI (RAS) affine."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(data, (2, 1, 0))))
    lps = np.diag([-1.0, -1.0, 1.0])
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    img.SetSpacing(spacing.tolist())
    img.SetDirection((lps @ affine[:3, :3] / spacing).ravel().tolist())
    img.SetOrigin((lps @ affine[:3, 3]).tolist())
    return img


def register_labels(
    fixed: np.ndarray,
    fixed_affine: np.ndarray,
    moving: np.ndarray,
    moving_affine: np.ndarray,
    moving_labels: np.ndarray,
    *,
    seed: int = 0,
    mesh: int = 6,
) -> np.ndarray:
    """The reference (`moving`, its labels) registered to the query (`fixed`), affine then
    B-spline; returns its labels warped onto the query's grid (file order, int16)."""
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(2)
    f = _to_sitk(fixed.astype(np.float32), fixed_affine)
    m = _to_sitk(moving.astype(np.float32), moving_affine)
    init = sitk.CenteredTransformInitializer(
        f, m, sitk.AffineTransform(3), sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    share = min(1.0, max(0.02, 20000 / f.GetNumberOfPixels()))  # small images: more samples
    reg = _method(seed, share, shrink=[4, 2, 1], sigmas=[2.0, 1.0, 0.0])
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-3, numberOfIterations=100, relaxationFactor=0.7
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetInitialTransform(init, inPlace=False)
    affine = reg.Execute(f, m)
    bspline = sitk.BSplineTransformInitializer(f, [mesh] * 3)
    reg = _method(seed, share, shrink=[4, 2], sigmas=[2.0, 1.0])
    reg.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=40)
    reg.SetMovingInitialTransform(affine)
    reg.SetInitialTransform(bspline, inPlace=True)
    reg.Execute(f, m)
    both = sitk.CompositeTransform([affine, bspline])  # the B-spline applies first
    lab = _to_sitk(moving_labels.astype(np.int16), moving_affine)
    warped = sitk.Resample(lab, f, both, sitk.sitkNearestNeighbor, 0, sitk.sitkInt16)
    return np.transpose(sitk.GetArrayFromImage(warped), (2, 1, 0)).astype(np.int16)


def _method(seed: int, share: float, *, shrink: list[int], sigmas: list[float]):
    import SimpleITK as sitk

    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(share, seed)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetShrinkFactorsPerLevel(shrink)
    reg.SetSmoothingSigmasPerLevel(sigmas)
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    return reg
