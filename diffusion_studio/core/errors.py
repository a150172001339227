"""The error types the engine raises for a user's input, each with a readable message."""

from __future__ import annotations

from pathlib import Path


class DiffusionStudioError(Exception):
    """Base of every error that is the user's input, not a bug: shown as one line."""


class SettingError(DiffusionStudioError, ValueError):
    """An impossible setting; the message names the setting and the allowed values."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"{setting}: {reason}")
        self.setting = setting
        self.reason = reason


class ImageLoadError(DiffusionStudioError):
    """A file that cannot be read as an image; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"cannot open image '{Path(path).name}': {reason}")
        self.path = Path(path)
        self.reason = reason


class FileSaveError(DiffusionStudioError):
    """A file that could not be written; whatever was at the path before is left as it was."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"cannot save '{Path(path).name}': {reason}")
        self.path = Path(path)
        self.reason = reason


class FileReadError(DiffusionStudioError):
    """A file that cannot be read: missing, not a regular file (a pipe, a device), too large or
    damaged; the message names it (with its folder) and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"cannot read '{'/'.join(Path(path).parts[-2:])}': {reason}")
        self.path = Path(path)
        self.reason = reason


class DataError(DiffusionStudioError):
    """Training data that cannot be used: a missing or empty folder, an unknown data set."""


class CheckpointError(DiffusionStudioError):
    """A checkpoint that cannot be loaded; the message names the folder and what is wrong."""


class TrainingError(DiffusionStudioError):
    """Training stopped by a problem (a non-finite loss, out of memory); the last checkpoint stays."""


class TrajectoryError(DiffusionStudioError):
    """A trajectory file that cannot be read; the message names the file and the reason."""


class MaskError(DiffusionStudioError):
    """An inpainting mask that cannot be used: unreadable, of another shape than its image, or
    marking nothing to fill; the message says which."""


class MetadataError(DiffusionStudioError):
    """An image whose recorded settings cannot be used to run again: it has none, they are damaged,
    or they record something else than one sampling run; the message names the file and says which."""
