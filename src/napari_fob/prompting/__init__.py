"""Prompt generators: the protocol and registry (`generators`), the FoB predictor that runs a
trained network (`predictor`) and its in-volume inference additions (`in_volume`), and the
baselines (mask-ring, copy).

May import `napari_fob.core`, `napari_fob.geometry` and, lazily inside the FoB predictor,
`napari_fob.model` (torch). Never napari, Qt, sessions or segmenters.
"""

PRIOR_SOURCES = ("support", "registration")
"""Where FoB's in-volume additions take a query's footprint from (`FobPredictor`
``prior_source``): the nearest support's own, or its mask carried to the query by registration
(`registration.MaskTracker`). Here, not in `in_volume`, so that the CLI can offer the choices
without importing scipy."""
