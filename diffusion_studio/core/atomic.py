"""Atomic writes of files and folders: a failed save never destroys the last good one."""

from __future__ import annotations

import fcntl
import glob
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
STAGING_SUFFIX = ".partial"
"""A folder's replacement is filled as ``.<name>.<random>.partial`` beside it."""

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


def claim_folder(folder: str | Path) -> Path:
    """Create and return ``folder``, or ``folder-2``, ``folder-3`` …: the first name that neither a
    folder nor an interrupted save's ``<name>.previous`` has. os.mkdir fails on a name that exists,
    so two processes claiming the same name at once get two folders. An OSError other than the
    name being taken becomes FileSaveError."""
    folder = Path(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileSaveError(folder, exc.strerror or str(exc)) from None
    candidate, n = folder, 1
    while True:
        if not candidate.with_name(candidate.name + PREVIOUS_SUFFIX).exists():
            try:
                os.mkdir(candidate)
                return candidate
            except FileExistsError:
                pass
            except OSError as exc:
                raise FileSaveError(candidate, exc.strerror or str(exc)) from None
        n += 1
        candidate = folder.with_name(f"{folder.name}-{n}")


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


def _link_or_copy(source: str, destination: str) -> None:
    """A hard link to ``source`` at ``destination`` (a copy where the file system has no links)."""
    try:
        os.link(source, destination, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, destination, follow_symlinks=False)


def _link_others(path: Path, staging: Path, own: Collection[str]) -> None:
    """Hard-link the files of ``path`` that are not in ``own`` (a run's logs, previews, tensorboard/)
    into ``staging``. Linking, not moving: until the swap they stay in ``path`` too, so a kill at
    any point of a save leaves them in the folder that holds the checkpoint it can load."""
    for item in path.iterdir():
        if item.name in own:
            continue
        if item.is_dir() and not item.is_symlink():
            shutil.copytree(item, staging / item.name, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(str(item), str(staging / item.name))


def _restore_previous(path: Path) -> None:
    """Put ``<name>.previous`` back as ``path`` when a swap stopped between its two renames."""
    previous = path.with_name(path.name + PREVIOUS_SUFFIX)
    if not path.exists() and previous.is_dir():
        os.replace(previous, path)


def _swap_in(staging: Path, path: Path) -> None:
    """Put ``staging`` in place of ``path``, the old copy kept as ``<name>.previous`` until the new
    one is in (and put back if the new one cannot be)."""
    previous = path.with_name(path.name + PREVIOUS_SUFFIX)
    if path.exists():
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(path, previous)
    try:
        os.replace(staging, path)
    except BaseException:
        _restore_previous(path)
        raise


def _lock(folder: Path) -> int:
    """An open descriptor of ``folder`` holding an exclusive flock: the folder is in use while the
    process that took it lives (the kernel releases the lock when it dies). Raises BlockingIOError
    if another holds it."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


def recover_folder(path: str | Path) -> None:
    """Finish what a killed ``atomic_folder`` left beside ``path``: staging folders (``.<name>.*.partial``)
    whose process is gone are removed, and, when no save of ``path`` is still going on, a
    ``<name>.previous`` left without its replacement is put back as ``path``. An OSError
    becomes FileSaveError naming the folder."""
    path = Path(path)
    busy = False
    try:
        for staging in path.parent.glob(f".{glob.escape(path.name)}.*{STAGING_SUFFIX}"):
            try:
                fd = _lock(staging)
            except BlockingIOError:
                busy = True  # a save in another process (or thread) is filling it
                continue
            except OSError:
                continue  # gone meanwhile, or not a folder
            try:
                shutil.rmtree(staging, ignore_errors=True)
            finally:
                os.close(fd)
        if not busy:
            _restore_previous(path)
    except OSError as exc:
        raise FileSaveError(path, exc.strerror or str(exc)) from None


@contextmanager
def atomic_folder(path: str | Path, own: Collection[str] | None = None) -> Iterator[Path]:
    """A temporary folder beside ``path`` to fill; on success it takes the place of ``path``.

    With ``own`` (the names the new folder writes), the old folder's other files (a run's logs and
    previews) are hard-linked into the new one just before the swap, so they are never only in
    the temporary folder.

    First, what a killed save left is cleaned up (``recover_folder``). The temporary folder is
    locked while it is filled. A folder already at ``path`` is renamed to ``<name>.previous``, the
    new one renamed into place, then the previous one removed: a kill at any point leaves the old
    folder or the new one (the old one perhaps as ``<name>.previous``, which the next save or
    ``recover_folder`` puts back), each with the run's files. If the block raises, the temporary
    folder is removed and ``path`` is as it was. An OSError becomes FileSaveError naming the folder
    and the reason.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        recover_folder(path)
        staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=STAGING_SUFFIX))
        lock = _lock(staging)
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
        if own is not None and path.is_dir():
            _link_others(path, staging, own)
        _fsync_dir(staging)
        _swap_in(staging, path)
        _fsync_dir(path.parent)
        shutil.rmtree(path.with_name(path.name + PREVIOUS_SUFFIX), ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise FileSaveError(path, exc.strerror or str(exc)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        os.close(lock)
