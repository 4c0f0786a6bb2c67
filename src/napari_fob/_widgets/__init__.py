"""napari dock widgets of napari-fob (the only package here, with the npe2 glue, that imports
napari, qtpy or magicgui). Modules are imported by napari through the manifest, not here."""
