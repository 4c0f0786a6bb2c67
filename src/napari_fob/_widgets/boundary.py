"""The annotator's error boundary: no traceback reaches the user.

A refusal (bad input, a missing file) is shown in the message line; an environment error
(permissions, a full disk) also as a napari notification; anything unexpected says what failed,
with the traceback in the log. Actions change the session only when they succeed, so after a
refusal it is as it was. Imports napari (widget side only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("napari_fob._widgets.annotator")


def notify(message: str) -> None:
    """A napari warning notification (shown in the viewer's corner, kept in its history)."""
    from napari.utils.notifications import show_warning

    show_warning(message)


def reported(action: Callable[[], Any], say: Callable[[str], None]) -> None:
    """Run a button/key action inside the boundary (see the module docstring)."""
    try:
        action()
    except (ValueError, FileNotFoundError) as exc:
        say(str(exc))
    except OSError as exc:
        say(str(exc))
        notify(f"napari-fob: {exc}")
    except Exception as exc:  # the boundary: report, never crash the viewer
        log.exception("annotator action failed")
        say(f"Unexpected error ({type(exc).__name__}: {exc}); details in the log.")
        notify(f"napari-fob: unexpected {type(exc).__name__}: {exc}")
