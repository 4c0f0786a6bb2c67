"""Shared test set-up: every test gets its own FOB_HOME so nothing touches the user's cache."""

from __future__ import annotations

import os

import pytest

# napari's canvas needs a real X server; pytest-xvfb starts Xvfb, Qt must use xcb on it.
os.environ.setdefault("QT_QPA_PLATFORM", "xcb")


@pytest.fixture(autouse=True)
def _isolated_fob_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("fob_home")
    monkeypatch.setenv("FOB_HOME", str(home))
    monkeypatch.setenv("FOB_CONFIG", str(home / "config.yaml"))
    monkeypatch.delenv("FOB_SAM_CHECKPOINT", raising=False)
    monkeypatch.delenv("FOB_SAM2_CHECKPOINT", raising=False)
    monkeypatch.delenv("FOB_EMBEDDING_CACHE_GB", raising=False)
    monkeypatch.delenv("FOB_ADAPT_CACHE_MB", raising=False)
    yield


@pytest.fixture
def without_shipped_model(tmp_path_factory, monkeypatch):
    """Hide the packaged default FoB model (for tests of the 'no shipped model' paths)."""
    from napari_fob.core import paths

    empty = tmp_path_factory.mktemp("no_package_weights")
    monkeypatch.setattr(paths, "package_weights_dir", lambda: empty)
    yield empty


@pytest.fixture
def npe2_plugin():
    """npe2.read/write use the global plugin manager; make sure it found napari-fob."""
    import npe2

    pm = npe2.PluginManager.instance()
    try:
        pm.get_manifest("napari-fob")
    except KeyError:
        pm.discover(include_npe1=False)
    return pm.get_manifest("napari-fob")
