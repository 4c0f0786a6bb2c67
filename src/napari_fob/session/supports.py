"""The checks every support mask passes before a session holds it (painted, read from a support
volume or loaded from a sidecar).

A support is the user's word for where a structure is: its mask must have the slice's shape,
must not be empty, and must not cover a non-finite voxel (NaN / inf): the structure's intensity
band and the model's encoding of it would be computed from replaced values (see
`napari_fob.core.intensity`), so such a support is refused with the label, the slice and the
count rather than silently stopping propagation at the support.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from napari_fob.core.intensity import count_nonfinite

if TYPE_CHECKING:
    from napari_fob.session.annotation import AnnotationSession


def check_support(session: AnnotationSession, label: int, z: int, mask2d: Any) -> np.ndarray:
    """`mask2d` as a (Y, X) bool copy fit to be the support of `label` on slice `z`.

    Raises:
        ValueError: wrong shape, an empty mask, or NaN / inf image voxels under the mask.
    """
    mask = np.array(mask2d).astype(bool)
    where = f"support of label {label} on slice {z}"
    if mask.shape != session.shape[1:]:
        raise ValueError(
            f"{where}: expected a (Y, X) mask of shape {session.shape[1:]}, got {mask.shape}"
        )
    if not mask.any():
        raise ValueError(f"{where}: the mask is empty")
    bad = count_nonfinite(session.volume[z][mask])
    if bad:
        raise ValueError(
            f"{where}: {bad} of its {int(mask.sum())} voxels are NaN or inf in the image; "
            "a support must cover finite intensities only (repair the image, or paint the "
            "support around those voxels)"
        )
    return mask
