"""Where files go: platformdirs' folders for napari-fob, overridden by $FOB_HOME / $FOB_CONFIG."""

from __future__ import annotations

import sys
from pathlib import Path

import platformdirs
import pytest

from napari_fob.core import paths


def test_env_overrides_win(tmp_path, monkeypatch):
    monkeypatch.setenv("FOB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FOB_CONFIG", "~/fob.toml")
    assert paths.home_dir() == tmp_path / "home"
    assert paths.weights_dir() == tmp_path / "home" / "weights"
    assert paths.cache_dir() == tmp_path / "home" / "embeddings"
    assert paths.user_config_file() == Path.home() / "fob.toml"  # ~ expanded


def test_without_overrides_the_platform_folders_are_used(monkeypatch):
    monkeypatch.delenv("FOB_HOME")
    monkeypatch.delenv("FOB_CONFIG")
    assert paths.home_dir() == platformdirs.user_cache_path("napari-fob", appauthor=False)
    config = platformdirs.user_config_path("napari-fob", appauthor=False)
    assert paths.user_config_file() == config / "config.yaml"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG folders are Linux's")
def test_linux_follows_xdg_and_defaults_to_dot_cache_and_dot_config(tmp_path, monkeypatch):
    monkeypatch.delenv("FOB_HOME")
    monkeypatch.delenv("FOB_CONFIG")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert paths.home_dir() == tmp_path / "cache" / "napari-fob"
    assert paths.user_config_file() == tmp_path / "config" / "napari-fob" / "config.yaml"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert paths.home_dir() == tmp_path / "user" / ".cache" / "napari-fob"
    assert paths.user_config_file() == tmp_path / "user" / ".config" / "napari-fob" / "config.yaml"
