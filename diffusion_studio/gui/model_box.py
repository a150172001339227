"""The model a panel works with: a line saying what it is, and buttons to open another.

Every panel that runs a model shows one; they all show the studio state's model, which the window
opens (``modelRequested``). On a panel's first show with no model yet, the bundled one is opened,
so that each works on first launch.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QGridLayout, QLabel, QPushButton, QWidget

from diffusion_studio.app.state import StudioState
from diffusion_studio.gui.preferences import Preferences
from diffusion_studio.gui.guard import guarded


def model_summary(model) -> str:
    """Rich text: the model's folder name, what it makes, its target and schedule."""
    shape = model.sample_shape
    kind = f"{shape[1]}×{shape[2]} {'gray' if shape[0] == 1 else 'RGB'}" if model.is_image else f"{shape[0]}-D points"
    return (f"<b>{Path(model.source).name}</b>: {kind}, {model.prediction}-prediction, "
            f"{model.schedule_config.name} T = {model.schedule_config.timesteps}")


def ask_model_folder(parent: QWidget, preferences: Preferences, title: str = "Open a model (checkpoint folder)") -> str:
    """A checkpoint folder chosen in a dialog (its parent folder remembered), or "" if cancelled."""
    folder = QFileDialog.getExistingDirectory(parent, title, preferences.folder("model"))
    if folder:
        preferences.remember_folder("model", Path(folder).parent)
    return folder


class ModelBox(QWidget):
    """The state's model in words, "Bundled model" and "Open…"."""

    modelRequested = Signal(str)  # "default" or a folder

    def __init__(self, state: StudioState, preferences: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.preferences = state, preferences
        self.label = QLabel("No model yet")
        self.label.setWordWrap(True)
        self.default_button = QPushButton("Bundled model")
        self.default_button.setToolTip("The bundled digits U-Net (16×16 gray)")
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("A checkpoint folder (ours or a diffusers UNet2DModel); or drop it on the window")
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 0, 0, 1, 2)
        layout.addWidget(self.default_button, 1, 0)
        layout.addWidget(self.open_button, 1, 1)
        self.default_button.clicked.connect(lambda: self.modelRequested.emit("default"))
        self.open_button.clicked.connect(self._ask)
        self._shown_before = False
        state.modelChanged.connect(self._show_model)
        self._show_model()

    def _ask(self) -> None:
        folder = ask_model_folder(self, self.preferences)
        if folder:
            self.modelRequested.emit(folder)

    def _show_model(self) -> None:
        if self.state.model is not None:
            self.label.setText(model_summary(self.state.model))

    @guarded
    def showEvent(self, event) -> None:
        """The first show with no model yet opens the bundled one."""
        if not self._shown_before:
            self._shown_before = True
            if self.state.model is None:
                self.label.setText("Opening the bundled model…")
                self.modelRequested.emit("default")
        super().showEvent(event)
