"""Qt's calls into Python overrides, kept from crashing the process.

PySide6 (6.11.3 here) ends the process with a segmentation fault when some exceptions raised by C
code, an IndexError or a ZeroDivisionError among them, leave a Python override of a C++ virtual
(resizeEvent, showEvent, paint …); a ``raise`` in Python code, or any exception in a slot, is
reported and survived. So every override the GUI defines is ``guarded``: a bug in one is printed
with its traceback, and the window lives on.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from typing import Any

Handler = Callable[..., Any]


def guarded(handler: Handler | None = None, *, fallback: Any = None) -> Any:
    """``handler`` unchanged, but an exception in it is printed and ``fallback`` returned to Qt
    (``@guarded``, or ``@guarded(fallback=False)`` for an event filter, whose False lets the event on)."""
    if handler is None:
        return functools.partial(guarded, fallback=fallback)

    @functools.wraps(handler)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except Exception:
            traceback.print_exc()
            return fallback

    return call
