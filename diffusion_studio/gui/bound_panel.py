"""The Bound panel: a model's variational bound on held-out images, term by term against t."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSpinBox,
    QWidget,
)

from diffusion_studio.app.bound import BoundSession, BoundSettings
from diffusion_studio.app.state import StudioState
from diffusion_studio.core.atomic import atomic_write
from diffusion_studio.core.errors import DiffusionStudioError
from diffusion_studio.core.samplers import DDPM_VARIANCES
from diffusion_studio.core.schedules import NoiseSchedule
from diffusion_studio.gui.columns import settings_column
from diffusion_studio.gui.model_box import ModelBox
from diffusion_studio.gui.panel import Panel
from diffusion_studio.gui.preferences import Preferences
from diffusion_studio.gui.tasks import DevicePicker, TaskRunner, WorkerThread

UPDATE_INTERVAL_S = 0.2
T_TICKS = [[(np.log10(t), f"{t:,}") for t in (1, 10, 100, 1000, 10_000)],
           [(np.log10(t), "") for t in (2, 5, 20, 50, 200, 500, 2000, 5000)]]
"""Ticks of the log t axes: labelled decades (pyqtgraph would label every minor tick, crowded)."""
BLUE, ORANGE, GREY = (31, 119, 180), (230, 120, 20), (120, 120, 120)


class BoundPanel(Panel):
    """Settings and Measure/Stop on the left; on the right, against t (log scale): √ᾱ_t, each term
    L_{t−1}, their running sum, and how the bound and L_simple weigh each t."""

    def __init__(self, state: StudioState, tasks: TaskRunner, preferences: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(state, tasks, preferences, parent)
        self.session = BoundSession()
        self.runner = WorkerThread(self)
        self._build()
        self.session.progressed.connect(self._show_terms)
        self.session.runningChanged.connect(self._on_running)
        self.session.finished.connect(self.status.emit)
        self.session.failed.connect(lambda message: self.failed.emit("Bound", message))
        state.modelChanged.connect(self._on_model)
        self._on_model()
        self._on_running(False)

    # ---- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        self.model_box = ModelBox(self.state, self.preferences)
        self.model_box.modelRequested.connect(self.modelRequested)
        self.data = QComboBox()
        self.data.addItem("Held-out digits (179, never trained on)", "digits")
        self.data.addItem("A folder of images…", None)
        self.data.setToolTip("The images the bound is measured on, resized to the model's size and 8-bit quantised")
        self.data.activated.connect(self._on_data)
        self.num = QSpinBox()
        self.num.setRange(1, 10_000)
        self.num.setValue(BoundSettings().num)
        self.num.setToolTip("Images measured (at most as many as the data holds); each costs T network calls")
        self.variance = QComboBox()
        for name, label in DDPM_VARIANCES.items():
            self.variance.addItem(label, name)
        self.variance.setToolTip("σ_t² of the reverse step p_θ(x_{t−1} | x_t): Ho et al.'s two choices")
        self.variance.currentIndexChanged.connect(self._show_weights)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Seeds the noise of each x_t ~ q(x_t | x_0)")
        self.device = DevicePicker(self.tasks, lambda message: self.failed.emit("Devices", message),
                                   "Where the network runs")
        self.measure_button = QPushButton("Measure")
        self.measure_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.progress = QProgressBar()
        self.progress.setFormat("t = %v / %m")
        self.readout = QLabel("Measure to see the bound's terms")
        self.readout.setWordWrap(True)
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        self.save_button = QPushButton("Save terms (CSV)…")
        self.save_button.setToolTip("Every term, as diffusion-studio bpd writes them")

        box = QGroupBox("Variational bound")
        form = QFormLayout(box)
        form.addRow(self.model_box)
        form.addRow("Data", self.data)
        form.addRow("Images", self.num)
        form.addRow("Variance", self.variance)
        form.addRow("Seed", self.seed)
        form.addRow("Device", self.device)
        buttons = QHBoxLayout()
        buttons.addWidget(self.measure_button)
        buttons.addWidget(self.stop_button)
        form.addRow(buttons)
        form.addRow(self.progress)
        form.addRow(self.readout)
        form.addRow(self.save_button)

        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setBackground("w")
        titles = (("signal", "√ᾱ<sub>t</sub>, the signal left in x<sub>t</sub>", "√ᾱ<sub>t</sub>"),
                  ("terms", "Each term L<sub>t−1</sub> (t = 1: L<sub>0</sub>, the decoder)", "bits/dim"),
                  ("sum", "Running sum L<sub>0</sub> + … + L<sub>t−1</sub>, reaching the bound at T", "bits/dim"),
                  ("weights", "Weight of each t: the bound's λ<sub>t</sub> (blue) against L<sub>simple</sub>'s (grey)",
                   "share of the loss"))
        self.plot_items: dict[str, pg.PlotItem] = {}
        for row, (key, title, unit) in enumerate(titles):
            plot = self.plot_items[key] = self.plots.addPlot(row=row, col=0, title=title)
            plot.setLogMode(x=True, y=key in ("terms", "weights"))
            plot.setLabel("left", unit)
            plot.getAxis("bottom").setTicks(T_TICKS)
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            if row:
                plot.setXLink(self.plot_items["signal"])
        self.plot_items["weights"].setLabel("bottom", "t")
        self.plots.ci.layout.setRowStretchFactor(0, 1)
        for row in (1, 2, 3):
            self.plots.ci.layout.setRowStretchFactor(row, 2)
        self.signal_curve = self.plot_items["signal"].plot(pen=pg.mkPen(BLUE, width=2))
        self.term_curve = self.plot_items["terms"].plot(pen=pg.mkPen(BLUE, width=2))
        self.sum_curve = self.plot_items["sum"].plot(pen=pg.mkPen(BLUE, width=2))
        self.total_line = pg.InfiniteLine(angle=0, pen=pg.mkPen(ORANGE, width=1, style=Qt.PenStyle.DashLine),
                                          label="bound {value:.3f}", labelOpts={"color": ORANGE, "position": 0.1})
        self.total_line.hide()
        self.plot_items["sum"].addItem(self.total_line)
        self.bound_weight_curve = self.plot_items["weights"].plot(pen=pg.mkPen(BLUE, width=2))
        self.simple_weight_curve = self.plot_items["weights"].plot(pen=pg.mkPen(GREY, width=2))

        layout = QHBoxLayout(self)
        layout.addWidget(settings_column((box,)))
        layout.addWidget(self.plots, 1)
        self.measure_button.clicked.connect(self.measure)
        self.stop_button.clicked.connect(self.session.cancel)
        self.save_button.clicked.connect(self.export)
        self.runner.done.connect(lambda: self._on_running(self.session.running))

    # ---- model and settings -------------------------------------------------------------------

    def _on_data(self) -> None:
        if self.data.currentData() is not None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Measure on the images of a folder", self.preferences.folder("images"))
        if not folder:
            self.data.setCurrentIndex(0)
            return
        self.use_folder(Path(folder))

    def use_folder(self, folder: Path) -> None:
        """Measure on the images of ``folder`` (listed as a choice of Data)."""
        index = self.data.findData(str(folder))
        if index < 0:
            self.data.insertItem(self.data.count() - 1, f"Folder: {folder.name}", str(folder))
            index = self.data.count() - 2
        self.data.setCurrentIndex(index)

    def settings(self) -> BoundSettings:
        return BoundSettings(self.data.currentData(), self.num.value(), self.variance.currentData(), self.seed.value())

    def _on_model(self) -> None:
        model = self.state.model
        self._on_running(self.session.running)
        if model is None:
            return
        schedule = NoiseSchedule(model.schedule_config)
        t = np.arange(1, schedule.timesteps + 1)
        self.signal_curve.setData(t, schedule.sqrt_alpha_bars[t])
        self.progress.setRange(0, schedule.timesteps)
        self._show_weights()

    def _show_weights(self) -> None:
        """λ_t/Σλ against L_simple's 1/T: the share of the loss each t carries (once a model is
        open, torch is loaded: core.vlb needs it)."""
        model = self.state.model
        if model is None:
            return
        from diffusion_studio.core.vlb import bound_weights

        weights = bound_weights(NoiseSchedule(model.schedule_config), self.variance.currentData())
        t = np.arange(1, len(weights) + 1)
        self.bound_weight_curve.setData(t, weights / weights.sum())
        self.simple_weight_curve.setData(t, np.full(len(t), 1.0 / len(t)))

    # ---- measuring ----------------------------------------------------------------------------

    def measure(self) -> None:
        model = self.state.model
        if model is None or self.session.running:
            return
        if not model.is_image:
            self.failed.emit("Bound", "Bits per dimension are measured on 8-bit images; this model makes 2-D points")
            return
        job = self.session.start(model, self.settings(), self.device.device())
        self._show_terms()
        self.status.emit(f"Measuring the bound: {model.schedule_config.timesteps} network calls per image…")
        self.runner.start(job, UPDATE_INTERVAL_S, self.session.on_update, self.session.on_finished, self.session.on_failed)

    def stop(self) -> None:
        """Stop the measurement and wait for its thread (the window is closing)."""
        self.runner.stop_and_wait()

    def _on_running(self, running: bool) -> None:
        idle = not running and not self.runner.running
        self.measure_button.setEnabled(idle and self.state.model is not None)
        self.stop_button.setEnabled(running)
        self.save_button.setEnabled(idle and self.session.summary is not None)
        for widget in (self.data, self.num, self.variance, self.seed, self.device):
            widget.setEnabled(idle)

    def _show_terms(self) -> None:
        terms = self.session.terms
        done = np.isfinite(terms)
        t = np.flatnonzero(done) + 1
        self.progress.setValue(self.session.done)
        positive = done & (terms > 0)
        self.term_curve.setData(np.flatnonzero(positive) + 1, terms[positive])
        self.sum_curve.setData(t, np.cumsum(terms[done]))
        summary = self.session.summary
        self.total_line.setVisible(summary is not None)
        if summary is None:
            self.readout.setText(f"{self.session.done} of {len(terms)} terms so far" if len(terms) else "")
            return
        self.total_line.setValue(summary.total)
        self.readout.setText(
            f"<b>{summary.total:.3f} bits/dim</b> on {self.session.num} images of {self.session.data_name}<br>"
            f"= L<sub>T</sub> {summary.prior:.1e} + Σ L<sub>t−1</sub> (t = 2…T) {summary.middle:.3f} "
            f"+ L<sub>0</sub> {summary.decoder:.3f}")

    def export(self) -> None:
        """Save the terms as CSV (as diffusion-studio bpd writes them)."""
        summary = self.session.summary
        if summary is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the bound's terms", str(Path(self.preferences.folder("export")) / "bound.csv"),
                                              "CSV (*.csv)")
        if not path:
            return
        try:
            with atomic_write(path) as handle:
                handle.write(summary.csv().encode("utf-8"))
        except (OSError, DiffusionStudioError) as exc:
            self.failed.emit("Save terms", str(exc))
            return
        self.status.emit(f"Saved {path}")

