"""The segmenter registry: `get_segmenter` builds a backend by name.

``auto`` takes the first backend of `AUTO_ORDER` (SAM, then SAM 2.1) whose checkpoint is found,
and otherwise the random walker, with a notice the caller must show whenever it did not get its
first choice. Kept apart from the protocol (`base.py`) so that the backends, which import the
protocol's helpers, are never imported by it. Must not import torch at import time (``sam.py``
and ``sam2_segmenter.py`` are imported only when chosen).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from napari_fob.segmenters.base import Segmenter
from napari_fob.segmenters.weights import SAM2_MODEL_TYPES

if TYPE_CHECKING:
    from napari_fob.segmenters.cache import EmbeddingCache

SEGMENTERS = ("auto", "sam", "sam2", "random-walker")
#: ``auto``'s search order: the first backend whose weights are found is used (a backend given
#: an explicit checkpoint goes first). SAM first keeps the results of an existing SAM install.
AUTO_ORDER = ("sam", "sam2")
SAM2_MISSING = (
    "SAM 2.1 needs the `sam2` package: pip install 'napari-fob[sam2]' (see docs/segmenters.md "
    "for building it without its CUDA extension)"
)


def no_sam_notice(looked_in: Sequence[str]) -> str:
    """The notice shown (GUI, CLI output, report) when ``auto`` falls back to the random walker."""
    return (
        f"No SAM checkpoint found (looked in: {'; '.join(looked_in)}); using the random-walker "
        "fallback — masks will be coarser. Get SAM with `fob weights download sam-vit-b` or "
        "pass --sam-checkpoint (SAM 2.1: --sam2-checkpoint)."
    )


@dataclass(frozen=True)
class _Want:
    """One SAM-family backend asked for: its name, model, explicit checkpoint."""

    name: str
    model: str
    explicit: str | None

    def find(self):
        from napari_fob.segmenters import weights

        if self.name == "sam":
            return weights.find_sam_checkpoint(self.model, self.explicit)
        return weights.find_sam2_checkpoint(self.model, self.explicit)

    def looked(self) -> list[str]:
        from napari_fob.segmenters import weights

        rows = (
            weights.sam_search_locations(self.model)
            if self.name == "sam"
            else weights.sam2_search_locations(self.model)
        )
        return [f"{what}: {path}" for what, path in rows]

    def title(self) -> str:
        return f"SAM {self.model}" if self.name == "sam" else f"SAM 2.1 {self.model}"


def _wants(sam_model, sam_checkpoint, sam2_model, sam2_checkpoint) -> dict[str, _Want]:
    from napari_fob.segmenters import weights

    if sam_model in weights.SAM2_MODEL_TYPES:  # the widget's one model list holds both kinds
        sam2_model, sam2_checkpoint = sam_model, sam2_checkpoint or sam_checkpoint
        sam_model, sam_checkpoint = "vit_b", None
    if sam_model not in weights.SAM_MODEL_TYPES:
        raise ValueError(f"SAM model {sam_model!r}: expected one of {weights.SAM_MODEL_TYPES}")
    if sam2_model not in weights.SAM2_MODEL_TYPES:
        raise ValueError(
            f"SAM 2.1 model {sam2_model!r}: expected one of {weights.SAM2_MODEL_TYPES}"
        )
    return {
        "sam": _Want("sam", sam_model, sam_checkpoint),
        "sam2": _Want("sam2", sam2_model, sam2_checkpoint),
    }


def get_segmenter(
    name: str = "auto",
    *,
    sam_model: str = "vit_b",
    sam_checkpoint: str | None = None,
    sam2_model: str = "hiera_t",
    sam2_checkpoint: str | None = None,
    sam2_input_size: int = 1024,
    device: str = "auto",
    cache: EmbeddingCache | None = None,
    use_box: bool = False,
) -> tuple[Segmenter, str | None]:
    """Build a segmenter by name.

    Args:
        name: ``auto`` (the first of `AUTO_ORDER` whose checkpoint is found, else the random
            walker), ``sam`` / ``sam2`` (a missing checkpoint is an error) or ``random-walker``.
        sam_model: segment-anything model type: ``vit_b``, ``vit_l`` or ``vit_h``. A SAM 2.1
            size here (the widget's single model list) stands for ``sam2_model``, and
            ``sam_checkpoint`` then for ``sam2_checkpoint``.
        sam_checkpoint: explicit checkpoint path (file, or folder with the official file name);
            see `weights.find_sam_checkpoint` for the search order without it.
        sam2_model: SAM 2.1 size: ``hiera_t``, ``hiera_s``, ``hiera_b+`` or ``hiera_l``.
        sam2_checkpoint: explicit SAM 2.1 / MedSAM2 checkpoint (`weights.find_sam2_checkpoint`).
        sam2_input_size: SAM 2.1's input side (1024; MedSAM2: 512).
        device: ``auto``/``cpu``/``cuda``/``mps`` for SAM and SAM 2.1.
        cache: embedding cache (a new in-memory one when None); give one with a disk root
            (`cache.default_cache`) to keep embeddings across runs.
        use_box: SAM also gets the box around the background ring.

    Returns:
        (segmenter, notice): ``notice`` is None, or a sentence to show the user when ``auto``
        did not find its first choice (which backend it used instead, and why).

    Raises:
        ValueError: unknown name or model type.
        FileNotFoundError: ``sam``/``sam2`` without a checkpoint, or a given path is missing.
        ImportError: ``sam2`` without the sam2 package.
    """
    if name not in SEGMENTERS:
        raise ValueError(f"segmenter {name!r}: expected one of {', '.join(SEGMENTERS)}")
    if name == "sam" and sam_model in SAM2_MODEL_TYPES:
        raise ValueError(f"SAM model {sam_model!r} is a SAM 2.1 size: use the segmenter sam2")
    wants = _wants(sam_model, sam_checkpoint, sam2_model, sam2_checkpoint)
    if name == "random-walker":
        from napari_fob.segmenters.random_walker import RandomWalkerSegmenter

        return RandomWalkerSegmenter(), None
    options = {"device": device, "cache": cache, "use_box": use_box}
    if name in wants:
        want = wants[name]
        checkpoint = want.find()
        if checkpoint is None:
            download = f"sam-{want.model.replace('_', '-')}"
            download = download if name == "sam" else f"sam2.1-{want.model.replace('_', '-')}"
            flag = "--sam-checkpoint" if name == "sam" else "--sam2-checkpoint"
            raise FileNotFoundError(
                f"no {want.title()} checkpoint found (looked in: {'; '.join(want.looked())}); "
                f"get it with `fob weights download {download}` or pass {flag} PATH"
            )
        return _build(want, checkpoint, sam2_input_size, options), None
    return _auto(wants, sam2_input_size, options)


def _auto(wants, sam2_input_size, options) -> tuple[Segmenter, str | None]:
    order = sorted(AUTO_ORDER, key=lambda n: wants[n].explicit is None)  # explicit ones first
    passed: list[str] = []
    for name in order:
        want = wants[name]
        checkpoint = want.find()
        if checkpoint is None:
            passed.append(f"no {want.title()} checkpoint (looked in: {'; '.join(want.looked())})")
            continue
        try:
            segmenter = _build(want, checkpoint, sam2_input_size, options)
        except ImportError:
            passed.append(f"{want.title()} found at {checkpoint}, but {SAM2_MISSING}")
            continue
        if not passed:
            return segmenter, None
        return segmenter, f"{'; '.join(passed)}; using {want.title()} ({checkpoint})."
    from napari_fob.segmenters.random_walker import RandomWalkerSegmenter

    looked = [row for name in order for row in wants[name].looked()]
    return RandomWalkerSegmenter(), no_sam_notice(looked)


def _build(want: _Want, checkpoint, sam2_input_size: int, options) -> Segmenter:
    if want.name == "sam":
        from napari_fob.segmenters.sam import SamSegmenter

        return SamSegmenter(model_type=want.model, checkpoint=checkpoint, **options)
    try:
        from napari_fob.segmenters.sam2_segmenter import Sam2Segmenter
    except ImportError as err:
        raise ImportError(SAM2_MISSING) from err
    return Sam2Segmenter(
        size=want.model, checkpoint=checkpoint, image_size=sam2_input_size, **options
    )


_RUNNING = ("hits", "disk_hits", "misses", "evicted")  # counters that grow over a process


def cache_stats(
    segmenter: Segmenter, since: dict[str, int] | None = None
) -> dict[str, int] | None:
    """The embedding cache's counters of a SAM / SAM 2.1 segmenter (`EmbeddingCache.stats`:
    hits, disk_hits, misses, ...), or None for a backend without a cache (random walker).
    With `since` (an earlier result), the running counters count only what happened after it:
    one volume's share when a batch shares the segmenter."""
    cache = getattr(segmenter, "cache", None)
    if cache is None:
        return None
    now = cache.stats()
    if since:
        now.update({k: now[k] - since.get(k, 0) for k in _RUNNING if k in now})
    return now
