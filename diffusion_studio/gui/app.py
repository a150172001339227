"""Start the desktop app: ``diffusion-studio`` with no arguments."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication

from diffusion_studio import __version__
from diffusion_studio.gui.main_window import MainWindow


def application() -> QApplication:
    """The QApplication, named so that QSettings files land in one place per user."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("DiffusionStudio")
    app.setApplicationName("Diffusion Studio")
    app.setApplicationVersion(__version__)
    return app


def main() -> int:
    """Open the window and run until it closes; returns the exit code."""
    app = application()
    window = MainWindow()
    window.show()
    return app.exec()
