"""A training run's log in its folder: every report as a row of loss.csv and of loss_by_t.csv, and,
when the optional ``tensorboard`` package is installed, as TensorBoard scalars in tensorboard/.

The files are appended to as training goes and flushed at every report, so a crash loses at most
the report being written. A run that starts at step s (a new run at 0, a continued one at its
checkpoint's step) first drops the rows after s, which a run that crashed after its last
checkpoint left: a continued run carries on the files where its checkpoint stands.
"""

from __future__ import annotations

import functools
import math
import numbers
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from diffusion_studio.core.atomic import atomic_write
from diffusion_studio.core.errors import FileSaveError
from diffusion_studio.core.files import open_regular
from diffusion_studio.core.training import LOSS_BUCKETS, TrainProgress

LOSS_FILE = "loss.csv"
LOSS_BY_T_FILE = "loss_by_t.csv"
TENSORBOARD_FOLDER = "tensorboard"
LOSS_COLUMNS = ("step", "loss", "learning_rate", "samples_per_second", "wall_time")
"""loss.csv: the report's step, its mean L_simple since the last report, the learning rate, the
samples (images or points) trained on per second, and the Unix time of the report in seconds."""


def csv_row(values: Iterable[Any]) -> str:
    """One line of CSV: whole numbers as they are, other numbers to 6 significant digits (NaN as
    nan), text as it is."""
    cells = []
    for value in values:
        if isinstance(value, numbers.Integral):
            cells.append(str(int(value)))
        elif isinstance(value, numbers.Real):
            cells.append(f"{value:.6g}")
        else:
            cells.append(str(value))
    return ",".join(cells) + "\n"


def loss_by_t_columns(timesteps: int, buckets: int = LOSS_BUCKETS) -> tuple[str, ...]:
    """loss_by_t.csv's header: the step, then the t each running mean covers, "t1-100" … for T =
    1000 and 10 buckets (bucket b holds the t with ⌊(t − 1)·buckets / T⌋ = b, as Trainer counts)."""
    firsts = [-(-b * timesteps // buckets) + 1 for b in range(buckets + 1)]
    return ("step", *(f"t{first}-{after - 1}" for first, after in zip(firsts, firsts[1:])))


def _keep_until(path: Path, header: str, step: int) -> None:
    """Drop the rows of a log file after ``step`` (and a last line cut short); a file with another
    header starts again."""
    if not path.exists():
        return
    with open_regular(path) as handle:
        text = handle.read().decode("utf-8", errors="replace")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0] != header:
        kept = [header]
    else:
        kept = [header] + [line for line in lines[1:] if line.endswith("\n") and _step_of(line) <= step]
    if "".join(kept) != text:
        with atomic_write(path) as handle:
            handle.write("".join(kept).encode())


def _step_of(line: str) -> float:
    """The step a log row starts with (infinity for a row that cannot be read, so it is dropped)."""
    try:
        return int(line.split(",", 1)[0])
    except ValueError:
        return float("inf")


@functools.cache
def _summary_writer_class() -> Any:
    """torch's TensorBoard SummaryWriter, or None when the optional tensorboard package is missing
    (imported once, when a run first reports)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter


class TrainingLog:
    """Appends each report of a run that starts at ``start_step`` to the log files in ``folder``.
    ``close`` before anything moves the folder (a checkpoint save swaps it); the next report opens
    the files again."""

    def __init__(self, folder: str | Path, start_step: int, timesteps: int) -> None:
        self.folder = Path(folder)
        try:  # a folder that cannot be made is said now, naming it, not after the run
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FileSaveError(self.folder, exc.strerror or str(exc)) from None
        self.headers = {LOSS_FILE: csv_row(LOSS_COLUMNS), LOSS_BY_T_FILE: csv_row(loss_by_t_columns(timesteps))}
        for name, header in self.headers.items():
            _keep_until(self.folder / name, header, start_step)
        self.bucket_tags = [f"loss_by_t/{name}" for name in loss_by_t_columns(timesteps)[1:]]
        self.purge_step: int | None = start_step + 1  # TensorBoard drops the events a crashed run left from here on
        self._files: dict[str, TextIO] = {}
        self._tensorboard: Any = None

    def write(self, report: TrainProgress) -> None:
        """One row in each file, flushed, and the scalars to TensorBoard if it is installed."""
        rows = {
            LOSS_FILE: (report.step, report.loss, report.learning_rate, report.images_per_second, f"{time.time():.3f}"),
            LOSS_BY_T_FILE: (report.step, *report.loss_by_t),
        }
        for name, row in rows.items():
            handle = self._files.get(name) or self._open(name)
            handle.write(csv_row(row))
            handle.flush()
        writer = self._tensorboard or self._open_tensorboard()
        if writer is not None:
            scalars = {"loss": report.loss, "learning_rate": report.learning_rate, "samples_per_second": report.images_per_second}
            scalars.update((tag, value) for tag, value in zip(self.bucket_tags, report.loss_by_t) if not math.isnan(value))
            for tag, value in scalars.items():
                writer.add_scalar(tag, value, report.step)
            writer.flush()

    def _open(self, name: str) -> TextIO:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = open(self.folder / name, "a", encoding="utf-8")
        except OSError as exc:
            raise FileSaveError(self.folder / name, exc.strerror or str(exc)) from None
        if handle.tell() == 0:
            handle.write(self.headers[name])
        self._files[name] = handle
        return handle

    def _open_tensorboard(self) -> Any:
        """A TensorBoard SummaryWriter on tensorboard/, or None when tensorboard is not installed."""
        summary_writer = _summary_writer_class()
        if summary_writer is None:
            return None
        self._tensorboard = summary_writer(str(self.folder / TENSORBOARD_FOLDER), purge_step=self.purge_step)
        self.purge_step = None
        return self._tensorboard

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None
