"""What the panels share, observed through events: the schedule, the current t, the notation, the model."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from psygnal import Signal

from diffusion_studio.core.schedules import NoiseSchedule, ScheduleConfig

if TYPE_CHECKING:
    from diffusion_studio.core.loaded_model import LoadedModel

NOTATIONS = ("ho", "seed000")
"""Ho et al. (2020), the default, and seed 000's α^S, β^S letters (the table in DESIGN.md)."""


class StudioState:
    """The app's shared state. Panels read it and call its setters; they never talk to each other."""

    scheduleChanged = Signal()  # schedule (and so T) replaced; t has been clamped to 0…T
    tChanged = Signal(int)
    notationChanged = Signal(str)
    modelChanged = Signal()

    def __init__(self) -> None:
        self._schedule = NoiseSchedule(ScheduleConfig())
        self._t = self._schedule.timesteps // 4
        self._notation = NOTATIONS[0]
        self._model: LoadedModel | None = None

    @property
    def schedule(self) -> NoiseSchedule:
        return self._schedule

    @property
    def t(self) -> int:
        return self._t

    @property
    def notation(self) -> str:
        return self._notation

    @property
    def model(self) -> LoadedModel | None:
        return self._model

    def set_schedule_config(self, config: ScheduleConfig) -> None:
        """Replace the schedule (raises SettingError, leaving the state as it was, if impossible).

        t keeps its fraction of T, so a view that showed x at half-way still does.
        """
        if config == self._schedule.config:
            return
        schedule = NoiseSchedule(config)
        fraction = self._t / self._schedule.timesteps
        self._schedule = schedule
        self._t = round(fraction * schedule.timesteps)
        self.scheduleChanged.emit()
        self.tChanged.emit(self._t)

    def update_schedule(self, **changes: object) -> None:
        """set_schedule_config with some fields of the current config changed."""
        self.set_schedule_config(replace(self._schedule.config, **changes))

    def set_t(self, t: int) -> None:
        t = max(0, min(int(t), self._schedule.timesteps))
        if t != self._t:
            self._t = t
            self.tChanged.emit(t)

    def set_notation(self, notation: str) -> None:
        if notation not in NOTATIONS:
            raise ValueError(f"unknown notation '{notation}'")
        if notation != self._notation:
            self._notation = notation
            self.notationChanged.emit(notation)

    def set_model(self, model: LoadedModel) -> None:
        self._model = model
        self.modelChanged.emit()
