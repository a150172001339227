"""What the app remembers between launches (QSettings): last folders, recent files, choices."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

MAX_RECENT = 8


class Preferences:
    """Typed access to QSettings; tests pass their own (an INI file in a temporary folder)."""

    def __init__(self, settings: QSettings | None = None) -> None:
        self.settings = settings if settings is not None else QSettings()

    def folder(self, kind: str) -> str:
        """The folder a file dialog for ``kind`` ('images', 'model', 'export') last used, or home."""
        folder = self.settings.value(f"folders/{kind}", "", type=str)
        return folder if folder and Path(folder).is_dir() else str(Path.home())

    def remember_folder(self, kind: str, path: str | Path) -> None:
        path = Path(path)
        self.settings.setValue(f"folders/{kind}", str(path if path.is_dir() else path.parent))

    def recent(self, kind: str) -> list[str]:
        """Recently opened paths of ``kind`` ('images', 'models'), newest first, those still there."""
        values = self.settings.value(f"recent/{kind}", [], type=list) or []
        return [p for p in values if isinstance(p, str) and Path(p).exists()]

    def add_recent(self, kind: str, path: str | Path) -> None:
        path = str(Path(path).resolve())
        values = [path] + [p for p in self.recent(kind) if p != path]
        self.settings.setValue(f"recent/{kind}", values[:MAX_RECENT])

    def value(self, key: str, default: object, kind: type) -> object:
        return self.settings.value(key, default, type=kind)

    def set_value(self, key: str, value: object) -> None:
        self.settings.setValue(key, value)
