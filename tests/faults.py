"""Fault injection for the kill-during-write tests (a helper module, not a test file)."""

from __future__ import annotations

import os
import signal


def die_before_step(n: int) -> None:
    """In a forked child: SIGKILL itself before its n-th file-system step (an ``os.open``,
    ``fsync``, ``replace`` or ``unlink``), so a test sees every state a write can leave."""
    steps = [0]

    def counted(fn):
        def wrapped(*args, **kwargs):
            steps[0] += 1
            if steps[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return fn(*args, **kwargs)

        return wrapped

    for name in ("open", "fsync", "replace", "unlink"):  # os itself: this is a forked child
        setattr(os, name, counted(getattr(os, name)))
