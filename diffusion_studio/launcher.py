"""The ``diffusion-studio`` command: no arguments open the desktop app; a command runs headless.

This is the one module that may reach both front ends; the CLI itself never imports Qt.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from diffusion_studio.display import display_problem


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``diffusion-studio`` and ``python -m diffusion_studio``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        problem = display_problem()
        if problem:
            print(problem, file=sys.stderr)
            return 2
        from diffusion_studio.gui.app import main as open_app

        return open_app()
    from diffusion_studio.cli import main as run_command

    return run_command(args)
