"""Reading the files a user hands us: regular files only, and never more bytes than are meant.

A FIFO, a socket or a device (``/dev/zero``) named where a file is read would block the reader
or feed it without end; ``open_regular`` refuses them at once. It opens without blocking (so a
FIFO with no writer cannot stall the open), checks with fstat that the open file is a regular
one, then reads as usual. Every loader of a file a user can name reads through it.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

from diffusion_studio.core.errors import FileReadError

MAX_JSON_BYTES = 16 * 2**20
"""The most a JSON file we read may hold (configs, scheduler configs, mixtures: a few kB each)."""

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | Path) -> BinaryIO:
    """``path`` opened for binary reading, if it is a regular file (symbolic links followed);
    FileReadError naming it otherwise, or if it cannot be opened."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileReadError(path, "no such file") from None
    except OSError as exc:
        raise FileReadError(path, (exc.strerror or str(exc)).lower()) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FileReadError(path, f"it is {_kind(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_regular(path: str | Path) -> Path:
    """``path``, once open_regular has found it a regular file: for a library that opens it by name."""
    open_regular(path).close()
    return Path(path)


def read_limited(path: str | Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (FileReadError otherwise); no more than
    ``limit + 1`` are ever read, whatever the file claims."""
    with open_regular(path) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise FileReadError(path, exc.strerror or str(exc)) from None
    if len(data) > limit:
        raise FileReadError(path, f"it is larger than the {limit:,} bytes such a file may hold")
    return data


def read_json(path: str | Path, limit: int = MAX_JSON_BYTES) -> Any:
    """A regular file's JSON value; FileReadError naming the file if it cannot be read, is too
    large, or is not JSON (nesting too deep included)."""
    try:
        return parse_json(read_limited(path, limit))
    except ValueError as exc:
        raise FileReadError(path, f"it is not valid JSON ({exc})") from None


def parse_json(text: str | bytes) -> Any:
    """json.loads, with nesting too deep to parse a ValueError like any other damage."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
