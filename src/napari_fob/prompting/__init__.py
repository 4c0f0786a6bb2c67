"""Prompt generators: the protocol and registry (`generators`), the FoB predictor that runs a
trained network (`predictor`) and its in-volume inference additions (`in_volume`), and the
baselines (mask-ring, copy).

May import `napari_fob.core`, `napari_fob.geometry` and, lazily inside the FoB predictor,
`napari_fob.model` (torch). Never napari, Qt, sessions or segmenters.
"""
