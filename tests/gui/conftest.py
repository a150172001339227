"""Widget tests build the real window around its own settings file, never the user's."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent

from diffusion_studio.gui.main_window import MainWindow
from diffusion_studio.gui.preferences import Preferences


@pytest.fixture
def settings_file(tmp_path) -> Path:
    return tmp_path / "settings.ini"


@pytest.fixture
def make_window(qtbot, settings_file):
    """Build a MainWindow on a settings file in the test's folder (call again to 'relaunch')."""

    def make() -> MainWindow:
        window = MainWindow(Preferences(QSettings(str(settings_file), QSettings.Format.IniFormat)))
        qtbot.addWidget(window)
        return window

    return make


@pytest.fixture
def window(make_window) -> MainWindow:
    return make_window()


def drop(window: MainWindow, *paths: Path) -> None:
    """Drop files on the window as a file manager would: a QDropEvent with file URLs."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)


def write_image(path: Path, size=(40, 30), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path
