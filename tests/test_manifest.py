"""The npe2 manifest validates and every python_name in it imports and is callable."""

from __future__ import annotations

import importlib
from pathlib import Path

import npe2
import pytest

import napari_fob

MANIFEST = Path(napari_fob.__file__).parent / "napari.yaml"


def _manifest() -> npe2.PluginManifest:
    return npe2.PluginManifest.from_file(MANIFEST)


def test_manifest_validates_and_is_the_registered_one():
    manifest = _manifest()
    assert manifest.name == "napari-fob"
    # The `napari.manifest` entry point napari uses finds this same manifest.
    pm = npe2.PluginManager()
    pm.discover(include_npe1=False)
    registered = pm.get_manifest("napari-fob")
    assert [(c.id, c.python_name) for c in registered.contributions.commands] == [
        (c.id, c.python_name) for c in manifest.contributions.commands
    ]


@pytest.mark.parametrize("command", _manifest().contributions.commands or [], ids=lambda c: c.id)
def test_python_name_resolves_to_a_callable(command):
    module_name, _, attribute = command.python_name.partition(":")
    module = importlib.import_module(module_name)
    target = module
    for part in attribute.split("."):
        target = getattr(target, part)
    assert callable(target), f"{command.python_name} is not callable"


def test_every_contribution_names_a_declared_command():
    manifest = _manifest()
    ids = {c.id for c in manifest.contributions.commands or []}
    used = [r.command for r in manifest.contributions.readers or []]
    used += [w.command for w in manifest.contributions.writers or []]
    used += [s.command for s in manifest.contributions.sample_data or [] if hasattr(s, "command")]
    used += [w.command for w in manifest.contributions.widgets or []]
    assert used and set(used) <= ids
    keys = {s.key for s in manifest.contributions.sample_data or []}
    from napari_fob.samples import SAMPLE_NAMES

    assert keys == set(SAMPLE_NAMES)
