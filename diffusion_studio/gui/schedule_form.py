"""The schedule in use (name, T, β range), editable wherever it is shown and always in step with the state."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QSpinBox, QWidget

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.schedules import SCHEDULE_NAMES
from diffusion_studio.app.state import StudioState

MAX_T = 10_000

SCHEDULE_TIPS = {
    "linear": "β_t rises linearly from β_1 to β_T (Ho et al. 2020)",
    "scaled_linear": "linear, with the β range scaled by 1000/T so that any T ends as noisy as T = 1000",
    "cosine": "ᾱ_t = f(t)/f(0), f(t) = cos²(((t/T) + s)/(1 + s)·π/2), s = 0.008; β_t ≤ 0.999 (Nichol & Dhariwal)",
    "quadratic": "√β_t rises linearly from √β_1 to √β_T (Ho et al.'s 'quad')",
    "sigmoid": "β_t follows a sigmoid from β_1 to β_T",
}


class ScheduleForm(QWidget):
    """Schedule, T, β_1 and β_T; an impossible combination is refused with the reason shown beside it."""

    def __init__(self, state: StudioState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.name = QComboBox()
        self.name.addItems(SCHEDULE_NAMES)
        for i, name in enumerate(SCHEDULE_NAMES):
            self.name.setItemData(i, SCHEDULE_TIPS.get(name, name), Qt.ItemDataRole.ToolTipRole)
        self.name.setToolTip("The β schedule: how much noise each step adds")
        self.timesteps = QSpinBox()
        self.timesteps.setRange(1, MAX_T)
        self.timesteps.setToolTip("T, the number of diffusion steps: t runs 1…T, x_0 is the data")
        self.beta_start = self._beta_box("β_1, the noise variance of the first step")
        self.beta_end = self._beta_box("β_T, the noise variance of the last step")
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #c0392b")

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for label, widget in (("Schedule", self.name), ("T", self.timesteps), ("β₁", self.beta_start), ("β_T", self.beta_end)):
            layout.addWidget(QLabel(label))
            layout.addWidget(widget)
        layout.addWidget(self.problem, 1)

        self._show_state()
        self.name.currentTextChanged.connect(self._on_edited)
        self.timesteps.editingFinished.connect(self._on_edited)
        self.beta_start.editingFinished.connect(self._on_edited)
        self.beta_end.editingFinished.connect(self._on_edited)
        state.scheduleChanged.connect(self._show_state)

    @staticmethod
    def _beta_box(tip: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setDecimals(5)
        box.setRange(0.00001, 0.999)
        box.setSingleStep(0.0001)
        box.setToolTip(tip + " (not used by the cosine schedule)")
        return box

    def _show_state(self) -> None:
        config = self.state.schedule.config
        for widget, value in (
            (self.name, None),
            (self.timesteps, config.timesteps),
            (self.beta_start, config.beta_start),
            (self.beta_end, config.beta_end),
        ):
            with QSignalBlocker(widget):
                if value is None:
                    widget.setCurrentText(config.name)
                else:
                    widget.setValue(value)
        cosine = config.name == "cosine"
        self.beta_start.setEnabled(not cosine)
        self.beta_end.setEnabled(not cosine)

    def _on_edited(self) -> None:
        try:
            self.state.update_schedule(
                name=self.name.currentText(),
                timesteps=self.timesteps.value(),
                beta_start=self.beta_start.value(),
                beta_end=self.beta_end.value(),
            )
        except SettingError as exc:
            self.problem.setText(str(exc))
            self._show_state()
        else:
            self.problem.clear()
