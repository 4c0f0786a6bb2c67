"""napari-fob: few-shot annotation of 3D medical volumes with FoB prompts and SAM.

Importing this package is cheap: it must not import torch, napari, Qt or magicgui. Heavy modules
are imported by the functions that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
