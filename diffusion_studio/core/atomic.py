"""Atomic file writes: a failed save never destroys the last good file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from diffusion_studio.core.errors import FileSaveError

_UMASK = os.umask(0)
os.umask(_UMASK)


def apply_umask(path: str | Path, directory: bool = False) -> None:
    """Give a temporary file (0600) or folder (0700) the permissions a plain open() would."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_UMASK)


@contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; rename it over ``path`` on success.

    If the block raises (a full disk, a bug, an interrupt), the temporary file is removed and
    whatever was at ``path`` before is left untouched. An OSError becomes FileSaveError naming
    the file and the reason.
    """
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise FileSaveError(path, exc.strerror or str(exc)) from None
    try:
        apply_umask(tmp_name)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as exc:
        Path(tmp_name).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise FileSaveError(path, exc.strerror or str(exc)) from None
        raise
