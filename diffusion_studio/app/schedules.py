"""The Schedules panel without widgets: the schedule in use beside the pinned ones, the x axis
(t, or t/T to compare schedules of different T), each schedule's values at the cursor, and CSV.

The pins are kept between launches as JSON (``pins_json``; the constructor restores them), and
the schedule in use is the shared state's: pinning it keeps it on the plots when it changes.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
from psygnal import Signal

from diffusion_studio.app.state import StudioState
from diffusion_studio.core.atomic import atomic_write
from diffusion_studio.core.errors import DiffusionStudioError
from diffusion_studio.core.schedules import NoiseSchedule, ScheduleConfig, schedule_csv

PLOTTED = ("beta", "alpha", "alpha_bar", "sqrt_alpha_bar", "sqrt_one_minus_alpha_bar", "log_snr")
"""The quantities plotted against t, in the order of the plots and of the table's rows."""
DEFAULT_PINS = (ScheduleConfig(name="cosine"),)
"""What is pinned on first launch, or when the saved pins cannot be read."""


def curve_values(schedule: NoiseSchedule, key: str) -> np.ndarray:
    """The plotted quantity for t = 1…T (t = 0 is the data, where log-SNR is infinite)."""
    arrays = {
        "beta": schedule.betas,
        "alpha": schedule.alphas,
        "alpha_bar": schedule.alpha_bars,
        "sqrt_alpha_bar": schedule.sqrt_alpha_bars,
        "sqrt_one_minus_alpha_bar": schedule.sqrt_one_minus_alpha_bars,
        "log_snr": schedule.log_snr,
    }
    return arrays[key][1:]


def restore_pins(saved: str) -> list[ScheduleConfig]:
    """The pins ``pins_json`` wrote; DEFAULT_PINS if nothing was saved, or if what was cannot be
    read or names a schedule that cannot exist (written by hand or by another version)."""
    if not saved:
        return list(DEFAULT_PINS)
    try:
        configs = [ScheduleConfig(**fields) for fields in json.loads(saved)]
        for config in configs:
            NoiseSchedule(config)  # refuses what cannot exist
    except (ValueError, TypeError, DiffusionStudioError):
        return list(DEFAULT_PINS)
    return configs


class SchedulesSession:
    """Schedules side by side: the one in use (the state's) first, then each pinned one that differs."""

    pinsChanged = Signal()  # a schedule was pinned or unpinned: ``pins`` and ``shown()`` changed
    axisChanged = Signal(bool)  # whether the x axis is t/T (True) or t (False)

    def __init__(self, state: StudioState, saved_pins: str = "") -> None:
        self.state = state
        self.pins: list[ScheduleConfig] = restore_pins(saved_pins)
        self.normalized = False  # the x axis is t/T, not t
        self._built: dict[ScheduleConfig, NoiseSchedule] = {}

    # ---- pins ---------------------------------------------------------------------------------

    def pin_current(self) -> bool:
        """Pin the schedule in use; False, and nothing changed, if it is pinned already."""
        config = self.state.schedule.config
        if config in self.pins:
            return False
        self.pins.append(config)
        self.pinsChanged.emit()
        return True

    def unpin(self, index: int) -> None:
        """Unpin pins[index] (IndexError if there is no such pin)."""
        del self.pins[index]
        self.pinsChanged.emit()

    def use_pinned(self, index: int) -> None:
        """Make pins[index] the schedule in use (IndexError if there is no such pin)."""
        self.state.set_schedule_config(self.pins[index])

    def pins_json(self) -> str:
        """The pins as JSON, for the next launch's ``restore_pins``."""
        return json.dumps([asdict(config) for config in self.pins])

    def shown(self) -> list[NoiseSchedule]:
        """The schedule in use first, then each pinned one that differs from it."""
        current = self.state.schedule
        return [current] + [self._schedule(c) for c in self.pins if c != current.config]

    def _schedule(self, config: ScheduleConfig) -> NoiseSchedule:
        """Pinned schedules are built once, not on every move of the cursor."""
        if config not in self._built:
            self._built[config] = NoiseSchedule(config)
        return self._built[config]

    # ---- the x axis and the cursor ------------------------------------------------------------

    def set_normalized(self, normalized: bool) -> None:
        """Plot against t/T (True) or t (False)."""
        if normalized != self.normalized:
            self.normalized = normalized
            self.axisChanged.emit(normalized)

    def x(self, schedule: NoiseSchedule) -> np.ndarray:
        """The x of each plotted value of ``schedule`` (t = 1…T): t, or t/T."""
        t = schedule.t.astype(np.float64)
        return t / schedule.timesteps if self.normalized else t

    def cursor_x(self) -> float:
        """Where the cursor stands on the x axis: the state's t, or t/T."""
        t = self.state.t
        return t / self.state.schedule.timesteps if self.normalized else t

    def move_cursor(self, x: float) -> None:
        """The cursor was dragged to ``x``: the state's t becomes the nearest step there."""
        self.state.set_t(round(x * self.state.schedule.timesteps) if self.normalized else round(x))

    def values_at_cursor(self) -> list[list[float | None]]:
        """For each schedule of ``shown()``, its PLOTTED values at the cursor: the same t, or on
        the t/T axis the same fraction of its own T (None where that t is outside 1…T)."""
        t, fraction = self.state.t, self.state.t / self.state.schedule.timesteps
        columns = []
        for schedule in self.shown():
            ts = round(fraction * schedule.timesteps) if self.normalized else t
            inside = 1 <= ts <= schedule.timesteps
            columns.append([float(curve_values(schedule, key)[ts - 1]) if inside else None for key in PLOTTED])
        return columns

    # ---- export -------------------------------------------------------------------------------

    def export_csv(self, path: Path) -> None:
        """Write schedule_csv of every schedule shown, atomically (DiffusionStudioError, and the
        file as it was, if it cannot be written)."""
        with atomic_write(path) as handle:
            handle.write(schedule_csv(self.shown()).encode("utf-8"))
