"""Evaluation cases of the prompt-quality benchmark and the four prompt methods it compares.

A case is one volume with ground truth: the bundled real MRI (``mni-brain``) and abdomen
phantoms with seeds 0-4 (the default model is trained on seeds 100+ only). Imports numpy and
napari_fob (torch only through the ``fob`` generator); never napari or Qt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_fob.core.intensity import Window, normalise, resolve_window
from napari_fob.core.prompts import PromptSet
from napari_fob.prompting.generators import CopyGenerator, MaskRingGenerator, make_generator

METHODS = (
    "fob",
    "fob-noprior",
    "fob-fine",
    "fob-chain",
    "fob-chain-own",
    "mask-ring",
    "mask-ring-chain",
    "mask-ring-chain-own",
    "copy",
)
DZ_BINS = ((1, 2), (3, 4), (5, 9), (10, None))


@dataclass
class Case:
    """One volume: raw ``(Z, Y, X)`` float32 image, its window, its ``(Z, Y, X)`` int labels."""

    dataset: str  # "mni-brain" or "phantom"
    name: str  # e.g. "phantom-3"
    image: np.ndarray
    window: Window
    labels: np.ndarray
    names: dict[int, str]

    def __post_init__(self) -> None:
        self.image01 = normalise(self.image, self.window)  # (Z, Y, X) float32 in [0, 1]


def load_cases(*, quick: bool, phantom_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)) -> list[Case]:
    """The benchmark volumes; ``quick``: one small phantom crop (seed 0) for the smoke test."""
    from napari_fob.samples import load_sample
    from napari_fob.samples.phantom import make_abdomen_phantom

    if quick:
        image, labels, names = make_abdomen_phantom(
            seed=0, shape=(24, 96, 96), spacing=(6, 2.5, 2.5)
        )
        labels = np.where(labels == 1, labels, 0)  # the liver only: a few seconds in all
        return [Case("phantom", "phantom-0-small", image, _ct(image), labels, {1: names[1]})]
    mni = load_sample("mni-brain")
    cases = [
        Case(
            "mni-brain",
            "mni-brain",
            mni.image.data,
            resolve_window(mni.image.data, "mr-percentile"),
            mni.labels,
            mni.names,
        )
    ]
    for seed in phantom_seeds:
        image, labels, names = make_abdomen_phantom(seed=seed)
        cases.append(Case("phantom", f"phantom-{seed}", image, _ct(image), labels, names))
    return cases


def _ct(image: np.ndarray) -> Window:
    return resolve_window(image, "ct-abdomen")


def label_slices(labels: np.ndarray, label: int) -> np.ndarray:
    """Sorted z of the slices showing `label` in a ``(Z, Y, X)`` label map."""
    return np.nonzero((labels == label).any(axis=(1, 2)))[0]


def central_slice(labels: np.ndarray, label: int) -> int:
    """The slice showing `label` nearest its centre of mass along z (the support slice)."""
    zs = label_slices(labels, label)
    zc = np.nonzero(labels == label)[0].mean()
    return int(zs[np.argmin(np.abs(zs - zc))])


def query_slices(zs: np.ndarray, zc: int, max_slices: int) -> np.ndarray:
    """Slices other than the support, at most `max_slices` of them spread evenly (0: all)."""
    queries = zs[zs != zc]
    if max_slices and len(queries) > max_slices:
        queries = queries[np.linspace(0, len(queries) - 1, max_slices).round().astype(int)]
    return queries


def make_methods(checkpoint: str, device: str = "cpu") -> dict[str, object]:
    """Method name -> generator; a ``-chain`` method sets a new support before every query."""
    from napari_fob.prompting.generators import FobGenerator
    from napari_fob.prompting.predictor import FobPredictor

    fob = make_generator("fob", checkpoint=checkpoint, device=device)  # the product's settings
    network_alone = FobPredictor(
        fob.predictor.model,
        device=device,
        location_prior=None,
        band_exclusion=None,
        fine_ring=False,
        fg_core=None,
    )  # the network alone
    fine = FobGenerator(
        predictor=FobPredictor(fob.predictor.model, device=device, fine_ring=True),
        checkpoint=checkpoint,
    )
    return {
        "fob": fob,
        "fob-noprior": FobGenerator(predictor=network_alone, checkpoint=checkpoint),
        "fob-fine": fine,
        "fob-chain": fob,
        "fob-chain-own": fob,
        "mask-ring": MaskRingGenerator(),
        "mask-ring-chain": MaskRingGenerator(),
        "mask-ring-chain-own": MaskRingGenerator(),
        "copy": CopyGenerator(),
    }


def _own_chain(
    generator, segmenter, case: Case, label: int, zc: int, queries: np.ndarray, zs: np.ndarray
) -> list[PromptSet]:
    """Chain mode as the tool runs it unattended: from the support outwards, each slice's
    prompts are drawn from the mask the segmenter committed on the slice before (an empty
    commit keeps the last non-empty one), marked committed as the product's chain mode marks
    it (the painted support is not)."""
    truth = case.labels == label
    prompts: dict[int, PromptSet] = {}
    for side in (zs[zs > zc], zs[zs < zc][::-1]):
        source_z, source_mask = zc, truth[zc]
        for z in (int(v) for v in side):
            generator.clear_supports()  # the painted support stays, as in the product's chain
            generator.set_support(case.image01[zc], truth[zc], slice_index=zc)
            if source_z != zc:
                generator.set_support(
                    case.image01[source_z], source_mask, slice_index=source_z, committed=True
                )
            between = [int(v) for v in zs if min(zc, z) < v < max(zc, z)]
            generator.show([case.image01[v] for v in between], between)  # as in a session
            (ps,) = generator.predict([case.image01[z]], slice_indices=[z], label=label)
            prompts[z] = ps
            mask = np.asarray(segmenter.segment(case.image[z], ps, window=case.window), bool)
            if mask.any():
                source_z, source_mask = z, mask
    return [prompts[int(z)] for z in queries]


def predict(
    method: str,
    generator,
    case: Case,
    label: int,
    zc: int,
    queries: np.ndarray,
    zs: np.ndarray,
    segmenter=None,
) -> list[PromptSet]:
    """Prompts of `method` for each query slice of `label`, support at slice `zc`.

    Fixed methods use the support slice for every query. Chain mode (the best case of the
    baseline): each query's support is the ground truth of the previous slice showing the
    structure on the way from the support, as if every slice had been committed perfectly;
    ``fob-chain`` is FoB in the same setting (the model then always predicts one slice ahead).
    ``mask-ring-chain-own`` and ``fob-chain-own`` chain on the `segmenter`'s own commits
    instead (`_own_chain`).
    """
    if method.endswith("-chain-own"):
        if segmenter is None:
            raise ValueError(f"{method}: chaining on the segmenter's commits needs a segmenter")
        return _own_chain(generator, segmenter, case, label, zc, queries, zs)
    truth = case.labels == label
    if not method.endswith("-chain"):
        generator.clear_supports()
        generator.set_support(case.image01[zc], truth[zc], slice_index=zc)
        generator.show([case.image01[z] for z in zs], [int(z) for z in zs])  # as in a session
        images = [case.image01[z] for z in queries]
        return generator.predict(images, slice_indices=[int(z) for z in queries], label=label)
    out = []
    for z in queries:
        inner = zs[zs < z] if z > zc else zs[zs > z]
        prev = int(inner.max() if z > zc else inner.min())
        generator.clear_supports()
        # committed as the product's chain mode marks it (FoB draws its fine ring from it)
        generator.set_support(case.image01[prev], truth[prev], slice_index=prev, committed=True)
        out += generator.predict([case.image01[z]], slice_indices=[int(z)], label=label)
    return out
