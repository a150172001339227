"""What every tab of the window is: a Panel."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from diffusion_studio.app.state import StudioState
from diffusion_studio.gui.preferences import Preferences
from diffusion_studio.gui.tasks import TaskRunner


class Panel(QWidget):
    """A tab: it shares the studio's state, task runner and preferences, and speaks to the window
    through three signals. The window calls ``stop`` when it closes and ``export`` for File ▸ Export…"""

    status = Signal(str)  # what just happened, for the status bar
    failed = Signal(str, str)  # title, message (a summary; details after a blank line): something asked for did not work
    modelRequested = Signal(str)  # "default" or a folder: the window opens it into the state

    def __init__(self, state: StudioState, tasks: TaskRunner, preferences: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.tasks, self.preferences = state, tasks, preferences

    def stop(self) -> None:
        """Stop the panel's work and wait for it (the window is closing); a panel with no work of its own has none."""

    def export(self) -> None:
        """File ▸ Export… on this panel."""
        self.status.emit("Nothing to export on this panel")
