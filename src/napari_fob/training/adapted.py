"""The FoB generator over weights adapted to one scan (`napari_fob.training.adapt`).

`adapted_generator` builds it from the loaded generator and an adaptation's result; its
``describe()`` carries the adaptation's record, so the sidecar and the report of every run say
how the weights were made. Imports torch only through the model it is handed.
"""

from __future__ import annotations

import copy
from typing import Any

from napari_fob.prompting.generators import FobGenerator


class AdaptedGenerator(FobGenerator):
    """A FoB generator over adapted weights; ``describe()`` adds the ``adaptation`` record, so
    the sidecar and the report of every run say how the weights were made."""

    def __init__(
        self, *, predictor: Any, checkpoint: str | None, adaptation: dict, base: FobGenerator
    ) -> None:
        super().__init__(predictor=predictor, checkpoint=checkpoint)
        self.adaptation = dict(adaptation)
        self.base = base  # the generator it was adapted from (a new adaptation starts there)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "adaptation": dict(self.adaptation)}


def adapted_generator(base: FobGenerator, result: Any) -> AdaptedGenerator:
    """A new generator like `base` (same inference options and device) over `result`'s
    weights; `base` and its model are untouched. An adapted `base` stands for the generator it
    was adapted from (``.base``): weights are always adapted from the loaded ones."""
    from napari_fob.prompting.predictor import FobPredictor

    base = getattr(base, "base", base)  # never adapt an adaptation
    old = base.predictor
    model = copy.deepcopy(old.model)
    model.load_state_dict(result.state, strict=True)
    options = {name: getattr(old, name) for name in ADAPT_OPTIONS}
    predictor = FobPredictor(model, device=old.device, **options)
    return AdaptedGenerator(predictor=predictor, checkpoint=base.checkpoint,
                            adaptation=result.record, base=base)  # fmt: skip


# FobPredictor's in-volume options, carried from the base generator to the adapted one
ADAPT_OPTIONS = ("location_prior", "fg_relative", "inward_prior", "band_exclusion", "fine_ring",
                 "fg_core", "prior_source")  # fmt: skip
