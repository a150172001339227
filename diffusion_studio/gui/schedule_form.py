"""The schedule in use (name, T, β range), editable wherever it is shown and always in step with the state."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from diffusion_studio.app.state import StudioState
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.gui.settings_form import SettingsForm

MAX_T = 10_000
"""The form's largest T (the engine takes any)."""


class ScheduleForm(QWidget):
    """Schedule, T, β_1 and β_T in one row; an impossible combination is refused with the reason shown beside it."""

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.form = SettingsForm(ScheduleConfig, inline=True)
        self.form["timesteps"].set_maximum(MAX_T)
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #c0392b")
        self.shared = QLabel("shared by\nevery panel")
        self.shared.setStyleSheet("color: #707070; font-size: 8pt")
        self.shared.setToolTip("One schedule for the whole studio: the forward process, the schedule lab, "
                               "training and the √ᾱ_t strip all follow a change made here")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.form)
        layout.addWidget(self.shared)
        layout.addWidget(self.problem, 1)
        self._show_state()
        self.form.edited.connect(self._on_edited)
        state.scheduleChanged.connect(self._show_state)

    def _show_state(self) -> None:
        config = self.state.schedule.config
        self.form.set_values(config)
        self.form.set_enabled(("beta_start", "beta_end"), config.name != "cosine")

    def _on_edited(self) -> None:
        try:
            self.state.set_schedule_config(ScheduleConfig(**self.form.values()))
        except SettingError as exc:
            self.problem.setText(str(exc))
            self._show_state()
        else:
            self.problem.clear()
