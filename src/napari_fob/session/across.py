"""The prompt generator for supports from another scan (`napari_fob.session.reference`).

Within one scan FoB's in-volume additions place its prompts near the support's footprint
(docs/method.md); across scans the support does not lie at the query's pixels, so they are
off and the network alone places the prompts. `across_volume` turns a session's generator
into that one, with the network that localises on its own when the session runs the packaged
default.

Torch-free at import (the generator passed in may use torch; the packaged model is loaded on
first use).
"""

from __future__ import annotations

from typing import Any


def across_volume_options() -> dict[str, Any]:
    """`FobPredictor` keyword arguments for supports from another scan: every addition that
    places the support at the query's pixels off (location prior, inward penalty, band
    exclusion, support core, fine ring, registration walk); the relative foreground threshold,
    which looks only at the query's own map, stays."""
    return {
        "location_prior": None,
        "inward_prior": None,
        "band_exclusion": None,
        "fg_core": None,
        "fine_ring": False,
        "prior_source": "support",
    }


ACROSS_VOLUME_MODEL = "real-mri"
"""The packaged FoB model that prompts a scan from another's supports when the session runs the
packaged default: across scans none of the in-volume additions applies, so the network alone
places the prompts, and the default's network does not localise on its own; chosen by the
network alone's ring error on tune structures of real MRI (numbers: docs/cli.md, "Supports
from another scan"). A checkpoint named by the user is used as it is."""

PACKAGED_DEFAULT = "default"
"""The name a session's FoB generator carries when it runs the packaged default
(`napari_fob.model.checkpoint.DEFAULT_NAME`; session code does not import the model layer)."""

PREDICTOR_SETTINGS = ("location_prior", "fg_relative", "inward_prior", "band_exclusion",
                      "fine_ring", "fg_core", "prior_source")  # fmt: skip
"""The `FobPredictor` settings a generator keeps when `across_volume` swaps its network."""


def across_volume(generator: Any) -> Any:
    """The generator to prompt a scan from another's supports: a FoB generator with any
    in-volume addition on becomes one with `across_volume_options`; one over the packaged
    default model becomes one over `ACROSS_VOLUME_MODEL` (with its settings, or the paper's
    inference if it had that); mask-ring and copy are used as they are. ValueError for
    registration, which walks from a support through the slices of its own scan."""
    name = getattr(generator, "name", "")
    if name == "registration":
        raise ValueError(
            "supports from another scan: registration walks from a support within one scan and "
            "cannot cross to another; choose FoB or mask-ring prompts"
        )
    predictor = getattr(generator, "predictor", None)
    options = across_volume_options()
    config = getattr(getattr(predictor, "model", None), "config", None)
    if getattr(config, "inference", None) == "official":
        return generator  # the authors' checkpoints: their own inference, which has no additions
    checkpoint = getattr(generator, "checkpoint", None)
    swap = name == "fob" and checkpoint == PACKAGED_DEFAULT
    if name != "fob" or (
        not swap and all(getattr(predictor, k, None) == v for k, v in options.items())
    ):
        return generator
    from napari_fob.prompting.generators import FobGenerator
    from napari_fob.prompting.predictor import FobPredictor

    # the options leave fg_relative alone: the paper's inference keeps its own (off)
    settings = {k: getattr(predictor, k) for k in PREDICTOR_SETTINGS} | options
    model = predictor.model
    if swap:
        model = packaged_model(ACROSS_VOLUME_MODEL, predictor.device)
        checkpoint = ACROSS_VOLUME_MODEL
    across = FobPredictor(model, device=predictor.device, **settings)
    return FobGenerator(predictor=across, checkpoint=checkpoint)


_PACKAGED: dict[tuple[str, str], Any] = {}


def packaged_model(name: str, device: Any) -> Any:
    """The packaged FoB model `name` on `device`, loaded once per process (the widget asks for
    it on every prediction from a reference)."""
    key = (name, str(device))
    if key not in _PACKAGED:
        from napari_fob.prompting.predictor import load_predictor

        _PACKAGED[key] = load_predictor(name, device=str(device)).model
    return _PACKAGED[key]
