"""Sampling: run the reverse process from a model, record it, scrub it frame by frame, export it.

The panel binds to a SamplingSession (diffusion_studio.app.sampling), which holds the recorded
trajectories, the playhead and playback; its Job samples in a GeneratorWorker on a QThread. Each
frame shows x_t, the network's x̂_0 and ε̂ at that step (x_t = √ᾱ_t x̂_0 + √(1 − ᾱ_t) ε̂).
Scrubbing only displays what was recorded; nothing is recomputed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from diffusion_studio.core.compare import distance_name
from diffusion_studio.core.errors import DiffusionStudioError, SettingError
from diffusion_studio.core.export import batch_grid, grid_columns, reference_points, view_bounds
from diffusion_studio.core.sample_config import MAX_POINTS, default_num
from diffusion_studio.core.samplers import sampler_class
from diffusion_studio.core.schedules import NoiseSchedule, ScheduleConfig
from diffusion_studio.core.trajectory import frame_bytes, recorded_frame_count
from diffusion_studio.gui.comparison_view import ComparisonView
from diffusion_studio.gui.model_box import ModelBox
from diffusion_studio.gui.sampler_settings import SamplerSettings
from diffusion_studio.gui.timeline import TimelineBar
from diffusion_studio.gui.columns import settings_column
from diffusion_studio.gui.image_views import ImageViews
from diffusion_studio.gui.imaging import show_pixels
from diffusion_studio.gui.panel import Panel
from diffusion_studio.gui.point_style import data_cloud, sample_cloud
from diffusion_studio.gui.preferences import Preferences
from diffusion_studio.app.exports import ExportProgress, ExportSession, GifOptions
from diffusion_studio.app.jobs import Job
from diffusion_studio.app.sampling import SamplingPreview, SamplingSession, model_forward_marginals
from diffusion_studio.app.state import StudioState
from diffusion_studio.gui.tasks import TaskRunner, WorkerThread

VIEWS = ("x_t", "pred_x0", "pred_eps")
STRIPS = {"signal": "√ᾱ_t", "std": "std of x_t", "mean": "mean of x_t"}
RUN_COLOURS = ((31, 119, 180), (230, 120, 20), (44, 160, 44), (214, 39, 40), (148, 103, 189))
"""The marginals strip's curve for each trajectory (a comparison's rows in order)."""
TITLES = {"x_t": "x<sub>t</sub>", "pred_x0": "predicted x<sub>0</sub>", "pred_eps": "predicted noise ε"}
GRID_PAD = 2  # pixels between tiles, as core.export.batch_grid draws them
PREVIEW_INTERVAL_S = 0.1
"""At most this often a preview crosses to the UI thread, whatever the step rate."""
MAX_SAMPLES = 1024
"""The most images one run draws from the form (each is a grid cell, recorded at every frame)."""


class GifDialog(QDialog):
    """The GIF export options, over a trajectory of ``frames`` frames, numbered 1…frames as the
    timeline numbers them."""

    def __init__(self, frames: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export GIF")
        self.content = QComboBox()
        self.content.addItems(["x_t", "x_t and x̂_0 side by side"])
        self.start = QSpinBox()
        self.start.setRange(1, frames)
        self.stop = QSpinBox()
        self.stop.setRange(1, frames)
        self.stop.setValue(frames)
        self.start.valueChanged.connect(self.stop.setMinimum)
        self.every = QSpinBox()
        self.every.setRange(1, max(1, frames))
        self.every.setValue(max(1, frames // 100))
        self.every.setToolTip("Keep every k-th frame (the last one is always kept)")
        self.fps = QDoubleSpinBox()
        self.fps.setRange(0.5, 60)
        self.fps.setValue(12)
        self.loop = QCheckBox("Loop forever")
        self.loop.setChecked(True)
        self.scale = QSpinBox()
        self.scale.setRange(1, 16)
        self.scale.setValue(4)
        self.labels = QCheckBox("Write t on each frame")
        self.labels.setChecked(True)
        form = QFormLayout(self)
        for label, widget in (("Show", self.content), ("From frame", self.start), ("To frame", self.stop),
                              ("Every k-th frame", self.every), ("Frames per second", self.fps), ("", self.loop),
                              ("Scale", self.scale), ("", self.labels)):
            form.addRow(label, widget)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def options(self) -> GifOptions:
        return GifOptions(self.content.currentIndex() == 1, self.start.value() - 1, self.stop.value(), self.every.value(),
                          self.fps.value(), self.loop.isChecked(), self.scale.value(), self.labels.isChecked())


def tile_at(x: float, y: float, count: int, height: int, width: int) -> int | None:
    """Which sample of a batch_grid of ``count`` tiles of height×width lies under pixel (x, y)."""
    columns = grid_columns(count)
    column, row = int(x // (width + GRID_PAD)), int(y // (height + GRID_PAD))
    index = row * columns + column
    inside = 0 <= x and 0 <= y and x % (width + GRID_PAD) < width and y % (height + GRID_PAD) < height
    return index if inside and column < columns and index < count else None


class SamplingPanel(Panel):
    """Settings, Run/Cancel, three synchronized views and a timeline."""

    exported = Signal(str)  # an export finished: the path written

    def __init__(self, state: StudioState, tasks: TaskRunner, preferences: Preferences, session: SamplingSession,
                 exports: ExportSession, parent: QWidget | None = None) -> None:
        super().__init__(state, tasks, preferences, parent)
        self.session, self.exports = session, exports
        self.runner = WorkerThread(self)
        self.runner.done.connect(lambda: self._set_idle(True))
        self.export_runner = WorkerThread(self)
        self._reference: np.ndarray | None = None  # the training points behind a 2-D model's cloud
        self._shown_shape: tuple[int, ...] | None = None
        self._runs_total = 0  # runs in the comparison going on
        self._build()
        self.session.listedChanged.connect(self._on_listed)
        self.session.forwardChanged.connect(self._show_strip)
        self.exports.progressed.connect(self._on_export_progress)
        self.exports.exported.connect(self._on_exported)
        self.exports.stopped.connect(lambda: self.export_progress.hide())  # psygnal cannot read a Qt builtin's signature
        self.session.previewed.connect(self._on_progress)
        self.session.trajectoriesChanged.connect(self._on_trajectories)
        self.session.playheadChanged.connect(self._on_playhead)
        self.session.focusChanged.connect(lambda _: self._on_playhead(self.session.t))
        self.session.finished.connect(self.status.emit)
        self.session.failed.connect(lambda message: self.failed.emit("Sampling", message))
        state.modelChanged.connect(self._on_model)
        self._on_model()

    # ---- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        self.model_box = ModelBox(self.state, self.preferences)
        self.settings = SamplerSettings(self.tasks)
        self.settings.run_form["num"].set_maximum(MAX_SAMPLES)
        self.memory = QLabel()
        self.memory.setToolTip("x_t, x̂_0 and ε̂ of every recorded frame, one byte per pixel")
        self.run_button = QPushButton("Run")
        self.run_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m steps")
        self.gif_button = QPushButton("Export GIF…")
        self.frames_button = QPushButton("Export frames…")
        self.save_button = QPushButton("Save trajectory…")
        self.load_button = QPushButton("Open trajectory…")
        self.load_button.setToolTip("A .npz written by this panel or by diffusion-studio sample --trajectory")

        settings = QGroupBox("Reverse process")
        form = QFormLayout(settings)
        form.addRow(self.model_box)
        form.addRow(self.settings)
        form.addRow(self.memory)
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.cancel_button)
        form.addRow(run_row)
        form.addRow(self.progress)
        files = QGridLayout()
        for i, button in enumerate((self.gif_button, self.frames_button, self.save_button, self.load_button)):
            files.addWidget(button, i // 2, i % 2)
        form.addRow(files)
        self.export_progress = QProgressBar()
        self.export_progress.hide()
        form.addRow(self.export_progress)

        self.compare_list = QListWidget()
        self.compare_list.setToolTip("Runs to compare, all from the seed and number of samples above")
        self.compare_list.setMaximumHeight(90)
        self.add_run_button = QPushButton("Add these settings")
        self.add_run_button.setToolTip("Add the sampler and settings above as a run of the comparison")
        self.remove_run_button = QPushButton("Remove")
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip("Run each from the same x_T and show them as rows, scrubbed together in t")
        self.fork_row = QComboBox()
        self.fork_row.setToolTip("The run to fork: the one just sampled, or a row of the comparison")
        self.fork_button = QPushButton("Fork here")
        self.fork_button.setToolTip("Go back to this run's frame at the playhead and go on from there with the "
                                    "sampler and settings above (seed included): a new row")
        comparison = QGroupBox("Compare samplers")
        compare_layout = QGridLayout(comparison)
        compare_layout.addWidget(self.compare_list, 0, 0, 1, 3)
        compare_layout.addWidget(self.add_run_button, 1, 0)
        compare_layout.addWidget(self.remove_run_button, 1, 1)
        compare_layout.addWidget(self.compare_button, 1, 2)
        compare_layout.addWidget(self.fork_row, 2, 0, 1, 2)
        compare_layout.addWidget(self.fork_button, 2, 2)
        self.left = settings_column((settings, comparison))

        self.image_views = ImageViews(TITLES)
        self.items = self.image_views.items
        self.point_views = pg.GraphicsLayoutWidget()
        self.point_views.setBackground("w")
        self.clouds: dict[str, pg.ScatterPlotItem] = {}
        self.references: dict[str, pg.ScatterPlotItem] = {}
        self.point_plots: dict[str, pg.PlotItem] = {}
        for column, key in enumerate(VIEWS):
            plot = self.point_plots[key] = self.point_views.addPlot(row=0, col=column, title=TITLES[key])
            plot.setAspectLocked(True)
            self.references[key] = data_cloud()
            self.clouds[key] = sample_cloud()
            plot.addItem(self.references[key])
            plot.addItem(self.clouds[key])
            if column:
                plot.setXLink(self.point_plots[VIEWS[0]])
                plot.setYLink(self.point_plots[VIEWS[0]])
        self._fit_points()
        for key, canvas in self.image_views.canvases.items():
            canvas.scene().sigMouseClicked.connect(lambda event, key=key: self._on_view_clicked(key, event))
        self.image_views.setToolTip("Click a sample to enlarge it; click again for the whole grid")
        self.comparison_view = ComparisonView()
        self.views = QStackedWidget()
        self.views.addWidget(self.image_views)
        self.views.addWidget(self.point_views)
        self.views.addWidget(self.comparison_view)

        self.timeline = TimelineBar(self.session)
        self.timeline.bind_keys(self)
        self.schedule_plot = pg.PlotWidget(background="w")
        self.schedule_plot.setFixedHeight(110)
        self.schedule_plot.setLabel("bottom", "t")
        self.schedule_plot.setLabel("left", "√ᾱ<sub>t</sub>")
        self.schedule_plot.setMouseEnabled(x=False, y=False)
        self.schedule_plot.invertX(True)  # T at the left, as the timeline starts from x_T
        self.schedule_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.schedule_plot.setXRange(0, ScheduleConfig().timesteps)
        self.schedule_curve = self.schedule_plot.plot(pen=pg.mkPen((31, 119, 180), width=2))
        self.schedule_marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("r", width=2))
        self.schedule_plot.addItem(self.schedule_marker)
        self.schedule_plot.setToolTip("√ᾱ_t, the signal left in x_t; the red line is the frame's t")
        self.strip_kind = QComboBox()
        for key, label in STRIPS.items():
            self.strip_kind.addItem(label, key)
        self.strip_kind.setToolTip("The strip: the schedule's √ᾱ_t, or the marginals check: the mean or std of each "
                                   "run's x_t (solid) against the forward process q(x_t) on the model's training data "
                                   "(dashed grey), where the network learned. Apart: exposure bias, or x_T ≠ q(x_T)")
        self.strip_kind.currentIndexChanged.connect(self._show_strip)
        self.forward_curve = self.schedule_plot.plot(pen=pg.mkPen((90, 90, 90), width=2, style=Qt.PenStyle.DashLine))
        self.marginal_curves = [self.schedule_plot.plot(pen=pg.mkPen(colour, width=2)) for colour in RUN_COLOURS]
        strip_choice = QVBoxLayout()
        strip_choice.addWidget(QLabel("Strip"))
        strip_choice.addWidget(self.strip_kind)
        strip_choice.addStretch(1)
        strip = QHBoxLayout()
        strip.addLayout(strip_choice)
        strip.addWidget(self.schedule_plot, 1)

        right = QVBoxLayout()
        right.addWidget(self.views, 1)
        right.addWidget(self.timeline)
        right.addLayout(strip)
        layout = QHBoxLayout(self)
        layout.addWidget(self.left)
        layout.addLayout(right, 1)

        self.model_box.modelRequested.connect(self.modelRequested)
        self.settings.edited.connect(self._show_memory)
        self.settings.failed.connect(self.failed)
        self.run_button.clicked.connect(self.run)
        self.add_run_button.clicked.connect(self.add_run)
        self.remove_run_button.clicked.connect(self.remove_run)
        self.compare_button.clicked.connect(self.compare)
        self.fork_button.clicked.connect(self.fork)
        self.cancel_button.clicked.connect(self.cancel)
        self.gif_button.clicked.connect(self.ask_export_gif)
        self.frames_button.clicked.connect(self.ask_export_frames)
        self.save_button.clicked.connect(self.ask_save_trajectory)
        self.load_button.clicked.connect(self.ask_open_trajectory)
        self._set_idle(True)

    # ---- model and settings -------------------------------------------------------------------

    def _on_model(self) -> None:
        model = self.state.model
        self.run_button.setEnabled(model is not None and not self.running)
        if model is None:
            return
        schedule = NoiseSchedule(model.schedule_config)
        self.settings.set_model(model)
        points = model.training_points()
        self._reference = reference_points(points)
        self.settings.run_form["num"].set_maximum(MAX_SAMPLES if model.is_image else MAX_POINTS)
        self.settings.run_form.set_values({"num": default_num(model.is_image)})
        self._show_memory()
        if self.session.trajectory is None and not self.running:
            self._show_kind(model.is_image, schedule, schedule.timesteps)

    def _show_memory(self) -> None:
        model = self.state.model
        if model is None:
            self.memory.clear()
            return
        settings = self.settings.run_form.values()
        frames = recorded_frame_count(settings["steps"], settings["record_every"])
        size = frames * frame_bytes((settings["num"], *model.sample_shape), model.is_image)
        self.memory.setText(f"{frames} frames ≈ {size / 1e6:.1f} MB")

    # ---- running ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.runner.running

    def run(self) -> None:
        if self.state.model is None or self.running:
            return
        try:
            config = self.settings.config()
            job = self.session.start(self.state.model, config, self.settings.device.device())
        except SettingError as exc:
            self.failed.emit("Sampling", str(exc))
            return
        self.progress.setRange(0, config.steps or 1)
        self._launch(job, self.session.on_finished,
                     f"Sampling {config.num} with {sampler_class(config.sampler).label}, {config.steps} steps…")

    def _launch(self, job: Job, on_finished: Callable, status: str) -> None:
        """Start a session's Job on the worker: the bar counts steps, the views follow the model at
        once, and the result reaches ``on_finished`` on this thread."""
        self.progress.setFormat("%v / %m steps")
        self.progress.setValue(0)
        self._set_idle(False)
        model = self.state.model
        self._show_kind(model.is_image, NoiseSchedule(model.schedule_config), model.schedule_config.timesteps)
        self.status.emit(status)
        self.runner.start(job, PREVIEW_INTERVAL_S, self.session.on_update, on_finished, self.session.on_failed)

    # ---- comparing samplers -------------------------------------------------------------------

    def add_run(self) -> None:
        """The settings on screen become a run of the comparison (up to core.compare.MAX_RUNS)."""
        timesteps = self.state.model.schedule_config.timesteps if self.state.model is not None else 0
        try:
            self.session.list_run(self.settings.config(), timesteps)
        except DiffusionStudioError as exc:
            self.failed.emit("Compare samplers", str(exc))

    def remove_run(self) -> None:
        row = self.compare_list.currentRow()
        if 0 <= row < len(self.session.listed):
            self.session.unlist_run(row)

    def _on_listed(self) -> None:
        self.compare_list.clear()
        self.compare_list.addItems([run.label for run in self.session.listed])
        self._set_idle(not self.running)

    def compare(self) -> None:
        """Run every listed run from the seed and number of samples on screen, one after another."""
        if self.state.model is None or self.running or not self.session.listed:
            return
        shared = self.settings.run_form.values()
        try:
            job = self.session.start_listed(self.state.model, shared["seed"], shared["num"], self.settings.device.device())
        except SettingError as exc:
            self.failed.emit("Compare samplers", str(exc))
            return
        self._runs_total = len(self.session.listed)
        self._launch(job, self.session.on_compared, f"Comparing {self._runs_total} runs from one x_T…")

    def fork(self) -> None:
        """Fork the chosen run (of the comparison, or the single run) at its frame nearest the playhead,
        with the settings on screen."""
        row = self.fork_row.currentIndex()
        if self.state.model is None or self.running or not 0 <= row < len(self.session.forkable):
            return
        parent = self.session.trajectories[row]
        t = int(parent.timesteps[self.session.frame(row)])
        try:
            job = self.session.start_fork(self.state.model, row, t, self.settings.config(), self.settings.device.device())
        except SettingError as exc:
            self.failed.emit("Fork", str(exc))
            return
        self._launch(job, self.session.on_forked, f"Forking {self.session.forkable[row].label} at t = {t}…")

    def cancel(self) -> None:
        if self.running:
            self.session.cancel()
            self.status.emit("Cancelling…")

    def stop(self) -> None:
        """Cancel and wait for the workers (the window is closing)."""
        self.session.stop_playing()
        self.runner.stop_and_wait()
        self.export_runner.stop_and_wait()

    def _set_idle(self, idle: bool) -> None:
        self.run_button.setEnabled(idle and self.state.model is not None)
        self.cancel_button.setEnabled(not idle)
        for button in (self.gif_button, self.frames_button, self.save_button):
            button.setEnabled(idle and self.session.trajectory is not None)
        self.load_button.setEnabled(idle)
        self.compare_button.setEnabled(idle and self.state.model is not None and bool(self.session.listed))
        self.fork_button.setEnabled(idle and self.state.model is not None and bool(self.session.forkable))
        self.remove_run_button.setEnabled(bool(self.session.listed))
        self.timeline.set_enabled(idle and self.session.trajectory is not None)

    def _on_progress(self, preview: SamplingPreview) -> None:
        self.progress.setMaximum(preview.total)
        self.progress.setValue(preview.index)
        self._show_arrays(preview.x_t, preview.pred_x0, preview.pred_eps, preview.t)
        which = "step "
        if self.session.comparing:
            which = "the reference ODE (DDIM, η = 0) " if preview.run == self._runs_total else f"run {preview.run + 1}/{self._runs_total}: "
        self.timeline.label.setText(f"sampling {which}{preview.index}/{preview.total}, t = {preview.t}")
        self.schedule_marker.setValue(preview.t)

    # ---- the timeline -------------------------------------------------------------------------

    def _on_trajectories(self) -> None:
        """New trajectories (just sampled, or opened from a file): views, schedule strip and timeline."""
        trajectory = self.session.trajectory
        with QSignalBlocker(self.fork_row):
            self.fork_row.clear()
            self.fork_row.addItems([f"{i + 1}. {run.label}" for i, run in enumerate(self.session.forkable)])
        if trajectory is None:  # nothing to show: empty views, no timeline
            for key in VIEWS:
                self.items[key].clear()
                self.clouds[key].setData(pos=np.zeros((0, 2)))
            self.timeline.label.clear()
            self._show_strip()
            self._set_idle(not self.running)
            return
        T = int(trajectory.metadata.get("T", int(trajectory.timesteps.max())))
        model = self.state.model
        config = model.schedule_config if model is not None and model.schedule_config.timesteps == T else None
        self._show_kind(trajectory.is_image, NoiseSchedule(config) if config is not None else None, T,
                        None if trajectory.is_image else trajectory.x_t[-1])
        if self.session.runs:
            self.views.setCurrentWidget(self.comparison_view)  # first: views laid out while hidden lose their range
            self.comparison_view.show_runs(self.session.runs, self._reference, distance_name(trajectory.is_image))
        self.timeline.set_stops()
        self._set_idle(not self.running)

    def _show_kind(self, is_image: bool, schedule: NoiseSchedule | None, T: int, result: np.ndarray | None = None) -> None:
        """Image grids or point clouds, the training data (when known) behind x_t and x̂_0, and the
        √ᾱ_t strip of this schedule over 0…T (no curve when the schedule is unknown)."""
        self.views.setCurrentIndex(0 if is_image else 1)
        if schedule is not None:
            self.schedule_curve.setData(schedule.t, schedule.sqrt_alpha_bars[1:])
        else:
            self.schedule_curve.setData([], [])
        self.schedule_plot.setXRange(0, T)
        self._show_strip()
        reference = None if is_image else self._reference
        for key in VIEWS:
            behind = reference if reference is not None and key != "pred_eps" else np.zeros((0, 2))
            self.references[key].setData(pos=behind)
        if not is_image:
            self._fit_points(reference, result)

    def _show_strip(self) -> None:
        """√ᾱ_t, or the marginals check: each trajectory's mean or std of x_t per step and the forward
        process's on the model's training data (computed once per model, in the background)."""
        kind = self.strip_kind.currentData()
        self.schedule_plot.setLabel("left", "√ᾱ<sub>t</sub>" if kind == "signal" else f"{kind} of x<sub>t</sub>")
        self.schedule_curve.setVisible(kind == "signal")
        marginals = [tr.marginals() for tr in self.session.trajectories] if kind != "signal" else []
        for i, curve in enumerate(self.marginal_curves):
            m = marginals[i] if i < len(marginals) else None
            curve.setData([] if m is None else m.t, [] if m is None else getattr(m, kind))
        model = self.state.model
        if kind != "signal" and model is not None and self.session.needs_forward(model):
            self.tasks.start(partial(model_forward_marginals, model), partial(self.session.on_forward, model),
                             lambda message: self.failed.emit("Marginals", message))
        forward = self.session.forward_marginals(model)
        shown = forward is not None and kind != "signal"
        self.forward_curve.setData(forward.t if shown else [], getattr(forward, kind) if shown else [])
        self.schedule_plot.enableAutoRange(axis="y")

    def _fit_points(self, *clouds: np.ndarray | None) -> None:
        """Square point views that hold x_T ~ N(0, I) and these points (core.export.view_bounds)."""
        x_min, x_max, y_min, y_max = view_bounds(*clouds)
        self.point_plots[VIEWS[0]].setRange(xRange=(x_min, x_max), yRange=(y_min, y_max), padding=0)

    def _on_playhead(self, t: int) -> None:
        """Show the frame at the playhead in every view, the timeline and the schedule strip."""
        trajectory = self.session.trajectory
        if trajectory is None:
            return
        if self.session.runs:
            self.comparison_view.show_t([self.session.frame(i) for i in range(len(self.session.runs))])
            self.timeline.label.setText("x₀, the results" if t == 0 else f"t = {t}")
            self.schedule_marker.setValue(t)
            return
        k = self.session.frame()
        eps = trajectory.pred_eps[k] if trajectory.pred_eps is not None else None
        t = int(trajectory.timesteps[k])
        self._show_arrays(trajectory.x_t[k], trajectory.pred_x0[k], eps, t)
        self.timeline.label.setText(f"frame {k + 1} of {len(trajectory)}: " + ("x₀, the result" if t == 0 else f"t = {t}"))
        self.schedule_marker.setValue(t)

    def _show_arrays(self, x_t: np.ndarray, pred_x0: np.ndarray, pred_eps: np.ndarray | None, t: int) -> None:
        focus = self.session.focus
        for key, batch in zip(VIEWS, (x_t, pred_x0, pred_eps)):
            if batch is None:
                self.items[key].clear()
                self.clouds[key].setData(pos=np.zeros((0, 2)))
            elif batch.ndim == 4:
                show_pixels(self.items[key], batch[focus] if focus is not None and focus < len(batch) else batch_grid(batch))
            else:
                self.clouds[key].setData(pos=batch)
        shape = self.items["x_t"].image.shape if x_t.ndim == 4 else None
        if shape != self._shown_shape:  # a new grid size (or one sample enlarged): fit it in the views
            self._shown_shape = shape
            if shape is not None:
                self.image_views.fit()

    def shown_frame(self, key: str = "x_t") -> np.ndarray:
        """What a view shows now (an image grid, or the N×2 points)."""
        if self.views.currentIndex() == 0:
            return np.asarray(self.items[key].image)
        x, y = self.clouds[key].getData()
        return np.stack([x, y], axis=1)

    def _on_view_clicked(self, key: str, event) -> None:
        """A click on a sample in view ``key`` enlarges it in all three views; another click brings the grid back."""
        trajectory = self.session.trajectory
        if trajectory is None or not trajectory.is_image:
            return
        if self.session.focus is not None:
            self.session.set_focus(None)
            return
        item = self.items[key]
        if item.sceneBoundingRect().contains(event.scenePos()):
            point = item.mapFromScene(event.scenePos())
            _, n, h, w, _ = trajectory.x_t.shape
            self.session.set_focus(tile_at(point.x(), point.y(), n, h, w))

    # ---- files --------------------------------------------------------------------------------

    def _save_path(self, title: str, name: str, kind: str) -> Path | None:
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path(self.preferences.folder("export")) / name), kind)
        if path:
            self.preferences.remember_folder("export", path)
        return Path(path) if path else None

    def export(self) -> None:
        """File ▸ Export… on this panel: a GIF of the trajectory."""
        self.ask_export_gif()

    def ask_export_gif(self) -> None:
        if self.session.trajectory is None:
            return
        dialog = GifDialog(len(self.session.times), self)
        if dialog.exec() and (path := self._save_path("Export GIF", "denoising.gif", "GIF (*.gif)")):
            self.export_gif(path, dialog.options())

    def export_gif(self, path: Path, options: GifOptions) -> None:
        """Write the GIF, with the runs' settings, on a worker, with progress; a message when done or if it fails."""
        self._start_export(lambda: self.exports.gif(self.session, path, options, self._reference), "Export GIF")

    def ask_export_frames(self) -> None:
        if self.session.trajectory is not None:
            folder = QFileDialog.getExistingDirectory(self, "Export frames as PNGs into", self.preferences.folder("export"))
            if folder:
                self.export_frames(Path(folder))

    def export_frames(self, folder: Path, options: GifOptions = GifOptions(scale=1)) -> None:  # noqa: B008 (frozen)
        """One PNG per frame, frame_0000.png …, as the GIF would show them, each with the runs' settings."""
        self._start_export(lambda: self.exports.frames(self.session, folder, options, self._reference), "Export frames")

    def _start_export(self, make: Callable[[], Job], title: str) -> None:
        """Run the export Job ``make()`` builds on a worker, with a bar of its own under the export
        buttons (the sampling bar keeps showing the run); one export at a time."""
        if self.export_runner.running:
            return
        try:
            job = make()
        except DiffusionStudioError as exc:
            self.failed.emit(title, str(exc))
            return
        self.export_progress.setFormat(f"{title}: %v / %m frames")
        self.export_progress.setRange(0, 0)
        self.export_progress.show()
        self.status.emit(f"{title}…")

        def failed(message: str) -> None:
            self.export_progress.hide()
            self.exports.on_failed(message)
            self.failed.emit(title, message)

        self.export_runner.start(job, PREVIEW_INTERVAL_S, self.exports.on_update, self.exports.on_finished, failed)

    def _on_export_progress(self, progress: ExportProgress) -> None:
        self.export_progress.setRange(0, progress.total)
        self.export_progress.setValue(progress.done)

    def _on_exported(self, path: str) -> None:
        self.export_progress.hide()
        self.status.emit(f"Wrote {path}")
        self.exported.emit(path)

    def ask_save_trajectory(self) -> None:
        if self.session.trajectory is not None and (path := self._save_path("Save trajectory", "trajectory.npz", "Trajectory (*.npz)")):
            self.save_trajectory(path)

    def save_trajectory(self, path: Path) -> bool:
        try:
            self.session.save(path)
        except DiffusionStudioError as exc:
            self.failed.emit("Save trajectory", str(exc))
            return False
        self.status.emit(f"Saved {path}")
        return True

    def ask_open_trajectory(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open trajectory", self.preferences.folder("export"), "Trajectory (*.npz)")
        if path:
            self.open_trajectory(Path(path))

    def open_trajectory(self, path: Path) -> bool:
        try:
            trajectory = self.session.open_file(path)
        except DiffusionStudioError as exc:
            self.failed.emit("Open trajectory", str(exc))
            return False
        self.status.emit(f"Opened {path.name}: {len(trajectory)} frames")
        return True
