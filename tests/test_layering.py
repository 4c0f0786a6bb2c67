"""Layering: the library imports no GUI toolkit; importing the package imports no torch.

Each check runs in a fresh interpreter so that modules imported by other tests don't count.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

GUI_MODULES = ("qtpy", "napari", "magicgui", "PyQt5", "PyQt6", "PySide6", "pandas")
GLUE = ("_widgets", "_reader", "_writer", "_sample_data")


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow  # imports every module, torch included (~20 s on 2 cores)
def test_library_modules_import_no_gui_toolkit():
    out = _run(
        f"""
        import importlib, pkgutil, sys
        import napari_fob

        gui = {GUI_MODULES!r}
        glue = {GLUE!r}
        names = []
        for info in pkgutil.walk_packages(napari_fob.__path__, "napari_fob."):
            parts = info.name.split(".")
            if parts[1] in glue or parts[-1] == "__main__":
                continue
            names.append(info.name)
        bad = []
        for name in sorted(names):
            importlib.import_module(name)
            loaded = [m for m in gui if m in sys.modules]
            if loaded:
                bad.append((name, loaded))
                break
        print(len(names), bad)
        """
    )
    count, _, bad = out.strip().partition(" ")
    assert int(count) >= 5  # the walk really found the library's modules
    assert bad == "[]", f"first module pulling in a GUI toolkit: {bad}"


def test_import_napari_fob_is_light():
    out = _run(
        f"""
        import sys
        import napari_fob
        print([m for m in ("torch", "torchvision", "segment_anything", *{GUI_MODULES!r})
               if m in sys.modules])
        """
    )
    assert out.strip() == "[]"


def test_reader_and_writer_need_only_numpy_and_nibabel():
    out = _run(
        f"""
        import sys
        import napari_fob._reader, napari_fob._writer, napari_fob.core.io, napari_fob.samples
        print([m for m in ("torch", *{GUI_MODULES!r}) if m in sys.modules])
        """
    )
    assert out.strip() == "[]"
