"""Keyboard shortcuts of the annotator, bound on the viewer without clobbering napari's own.

Keys are bound in the viewer's keymap with ``overwrite=False``: a key somebody else already bound
on the viewer is left alone and reported. napari's **layer** keymaps keep priority over the
viewer's (that is how napari dispatches keys), so on a selected Points layer ``P`` stays napari's
"add points" mode, on a Labels layer ``P`` / ``B`` / ``Ctrl-Z`` stay the brush, "preserve
labels" and brush undo, and on an Image layer ``C`` stays napari's. For those keys a second key
that no napari layer uses (``Ctrl-P``, ``Ctrl-Enter``, ``Shift-N``) is bound too, so every
action has a key that works whatever layer is selected.
`Shortcuts.release` unbinds exactly what was bound (called when the widget closes).
Imports napari (widget side only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# (action, label for buttons and docs, primary key, extra key or None)
SHORTCUTS: tuple[tuple[str, str, str, str | None], ...] = (
    ("predict", "Predict prompts", "P", "Control-P"),
    ("commit_slice", "Commit slice", "C", "Control-Enter"),
    ("commit_range", "Commit range", "Shift-C", None),
    ("undo", "Undo", "Control-Z", None),
    ("redo", "Redo", "Control-Shift-Z", None),
    ("next_review", "Next slice to review", "N", None),
    ("previous_review", "Previous slice to review", "B", "Shift-N"),
)


def display(key: str) -> str:
    """A key as shown to users: ``Control-Shift-Z`` -> ``Ctrl+Shift+Z``."""
    return key.replace("Control", "Ctrl").replace("-", "+")


def button_key(key: str, extra: str | None) -> str:
    """The key a button advertises: the primary one unless a napari layer type owns it (then
    the extra key, which works whatever layer is selected)."""
    return extra if extra is not None and layer_shadows(key) else key


def _normal(key: str) -> str:
    from napari.utils.key_bindings import coerce_keybinding

    return str(coerce_keybinding(key))


def layer_shadows(key: str) -> list[str]:
    """Names of napari layer types whose own keymap uses `key` (they win while selected)."""
    from napari.layers import Image, Labels, Points, Shapes

    wanted = _normal(key)
    out = []
    for cls in (Image, Labels, Points, Shapes):
        if any(str(k) == wanted for k in cls.class_keymap):
            out.append(cls.__name__)
    return out


def tooltip(action: str) -> str:
    """The tooltip text of an action's button: its keys and where napari's own keys win."""
    for name, label, key, extra in SHORTCUTS:
        if name == action:
            text = f"{label} — {display(key)}"
            shadows = layer_shadows(key)
            if shadows:
                text += f" (on a selected {'/'.join(shadows)} layer {display(key)} is napari's own"
                text += f" key; use {display(extra)} there)" if extra else " key)"
            elif extra:
                text += f" or {display(extra)}"
            return text
    raise ValueError(f"shortcut action {action!r}: expected one of {[s[0] for s in SHORTCUTS]}")


@dataclass
class Shortcuts:
    """The keys this widget bound on one viewer; `release()` unbinds them."""

    viewer: Any
    bound: dict[str, Callable[..., Any]]
    skipped: dict[str, str]

    @classmethod
    def bind(cls, viewer: Any, actions: dict[str, Callable[[], Any]]) -> Shortcuts:
        """Bind each action's keys on `viewer` (skipping keys already bound on the viewer).

        Args:
            viewer: a napari Viewer.
            actions: action name (first column of `SHORTCUTS`) -> callable without arguments.
        """
        bound: dict[str, Callable[..., Any]] = {}
        skipped: dict[str, str] = {}
        for name, _label, key, extra in SHORTCUTS:
            if name not in actions:
                continue
            for k in (key, extra):
                if k is None:
                    continue

                def handler(_viewer: Any, _fn: Callable[[], Any] = actions[name]) -> None:
                    _fn()

                try:
                    viewer.bind_key(k, handler, overwrite=False)
                except ValueError:  # already bound on the viewer by someone else: keep theirs
                    skipped[k] = "already bound on the viewer"
                    continue
                bound[_normal(k)] = handler
        return cls(viewer, bound, skipped)

    def release(self) -> None:
        """Unbind the keys bound by `bind` (only if they still hold our handler)."""
        keymap = self.viewer.keymap
        for key, handler in list(self.bound.items()):
            for k in list(keymap):
                if str(k) == key and keymap[k] is handler:
                    del keymap[k]
        self.bound.clear()
