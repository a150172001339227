"""Atomic writes of files and folders: a failed save never destroys the last good one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from diffusion_studio.core.errors import FileSaveError

PREVIOUS_SUFFIX = ".previous"
"""A folder being replaced is kept as ``<name>.previous`` until its replacement is in place."""

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


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _swap_in(staging: Path, path: Path, own: Collection[str] | None) -> None:
    """Put ``staging`` in place of ``path``, the old copy kept as ``<name>.previous`` until the new
    one is in; with ``own``, the old copy's other files move over first (and back on a failure)."""
    previous = path.with_name(path.name + PREVIOUS_SUFFIX)
    moved = []
    try:
        if own is not None and path.is_dir():
            for item in path.iterdir():
                if item.name not in own:
                    os.replace(item, staging / item.name)
                    moved.append(item.name)
        if path.exists():
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(path, previous)
        os.replace(staging, path)
    except BaseException:
        home = path if path.is_dir() else previous
        for name in moved:
            os.replace(staging / name, home / name)
        raise


@contextmanager
def atomic_folder(path: str | Path, own: Collection[str] | None = None) -> Iterator[Path]:
    """A temporary folder beside ``path`` to fill; on success it takes the place of ``path``.

    With ``own`` (the names the new folder writes), the old folder's other files (a run's logs and
    previews) move into the new one just before the swap, and back if the swap fails.

    A folder already at ``path`` is renamed to ``<name>.previous``, the new one renamed into place,
    then the previous one removed: a crash at any point leaves the old folder or the new one (the
    old one perhaps as ``<name>.previous``). If the block raises, the temporary folder is removed
    and ``path`` is untouched. An OSError becomes FileSaveError naming the folder and the reason.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial"))
    except OSError as exc:
        raise FileSaveError(path, exc.strerror or str(exc)) from None
    try:
        apply_umask(staging, directory=True)
        yield staging
        for item in sorted(staging.rglob("*"), reverse=True):  # files before the folders holding them
            if item.is_dir():
                _fsync_dir(item)
            else:
                with open(item, "rb") as handle:
                    os.fsync(handle.fileno())
        _fsync_dir(staging)
        _swap_in(staging, path, own)
        _fsync_dir(path.parent)
        shutil.rmtree(path.with_name(path.name + PREVIOUS_SUFFIX), ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise FileSaveError(path, exc.strerror or str(exc)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
