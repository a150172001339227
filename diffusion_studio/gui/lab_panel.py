"""The 2-D lab: the whole reverse process of a 2-D model at once. Thousands of points at t over the
data, the drift field as arrows (beside the exact one for Gaussian mixtures), chosen particles'
DDPM and DDIM paths from one x_T, and the marginals check; draw your own data and train on it here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGraphicsSceneMouseEvent, QGroupBox, QHBoxLayout, QLabel,
    QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from diffusion_studio.app.lab import DRAW_MODES, FIELD_KINDS, PATHS, RUN_KINDS, LabSession
from diffusion_studio.app.state import StudioState
from diffusion_studio.app.training import TrainingSession, restore_settings
from diffusion_studio.core.export import reference_points
from diffusion_studio.core.errors import DiffusionStudioError
from diffusion_studio.core.sample_config import MAX_POINTS, POINT_SAMPLES, SampleConfig
from diffusion_studio.gui.columns import settings_column
from diffusion_studio.gui.model_box import ask_model_folder, model_summary
from diffusion_studio.gui.panel import Panel
from diffusion_studio.gui.point_style import DATA_COLOUR, data_cloud
from diffusion_studio.gui.preferences import Preferences
from diffusion_studio.gui.tasks import TaskRunner, WorkerThread
from diffusion_studio.gui.timeline import TimelineBar
from diffusion_studio.gui.training_panel import SETTINGS_KEY
from diffusion_studio.gui.guard import guarded

UPDATE_INTERVAL_S = 0.1
TOY_LABELS = {"swiss_roll": "Swiss roll", "two_moons": "Two moons", "eight_gaussians": "Eight Gaussians",
              "checkerboard": "Checkerboard"}
COLOURS = {"sde": (31, 119, 180), "ode": (230, 120, 20), "data": DATA_COLOUR, "q": (90, 90, 90),
           "learned": (40, 40, 40), "exact": (44, 160, 44), "difference": (214, 39, 40)}
KEY = ("<span style='color:#969696'>●</span> data &nbsp; <span style='color:#1f77b4'>●</span> DDPM (SDE) &nbsp; "
       "<span style='color:#e67814'>●</span> DDIM (ODE) &nbsp; arrows: <b>model</b>, "
       "<span style='color:#2ca02c'>exact</span>, <span style='color:#d62728'>model − exact</span>")
PATH_PENS = {"sde": (150, 1.0), "ode": (255, 2.5)}  # (alpha, width)
HEAD = 0.3  # arrow heads: this fraction of the arrow, at ±25°


def arrow_segments(points: np.ndarray, vectors: np.ndarray, scale: float) -> np.ndarray:
    """Line segments drawing each vector as an arrow from its point (shaft and two head strokes):
    (6G, 2), consecutive pairs, for a PlotDataItem with connect="pairs"."""
    tips = points + scale * vectors
    back = (points - tips) * HEAD
    cos, sin = np.cos(np.radians(25)), np.sin(np.radians(25))
    left = tips + np.stack([cos * back[:, 0] - sin * back[:, 1], sin * back[:, 0] + cos * back[:, 1]], axis=1)
    right = tips + np.stack([cos * back[:, 0] + sin * back[:, 1], -sin * back[:, 0] + cos * back[:, 1]], axis=1)
    return np.stack([points, tips, tips, left, tips, right], axis=1).reshape(-1, 2)


def path_lines(paths: np.ndarray) -> np.ndarray:
    """Frames×P×2 positions as one polyline per particle, separated by NaN: ((frames + 1)·P, 2)."""
    gaps = np.full((1, paths.shape[1], 2), np.nan, dtype=np.float32)
    return np.concatenate([paths, gaps]).transpose(1, 0, 2).reshape(-1, 2)


class DrawingArea(pg.GraphicsObject):
    """An invisible layer over the view that takes the mouse while the data is being drawn: a
    press and every move while pressed put a mark at the pointer (``marked``)."""

    marked = Signal(float, float)

    def __init__(self) -> None:
        super().__init__()
        self.rect = QRectF(-1, -1, 2, 2)
        self._pressed = False
        self.setCursor(Qt.CursorShape.CrossCursor)

    def set_rect(self, rect: QRectF) -> None:
        self.prepareGeometryChange()
        self.rect = rect

    def boundingRect(self) -> QRectF:
        return self.rect

    @guarded
    def paint(self, painter, *args) -> None:
        pass

    @guarded
    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        event.accept()  # grab the mouse until release: no pan while drawing
        self._pressed = True
        self.marked.emit(event.pos().x(), event.pos().y())

    @guarded
    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._pressed:
            self.marked.emit(event.pos().x(), event.pos().y())

    @guarded
    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        self._pressed = False


class LabPanel(Panel):
    """Data, model and run settings on the left; the plane at t in the middle, over the timeline;
    the marginals check on the right."""

    def __init__(self, state: StudioState, tasks: TaskRunner, preferences: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(state, tasks, preferences, parent)
        self.session = LabSession()
        self.training = TrainingSession()
        self.runner = WorkerThread(self)
        self.trainer = WorkerThread(self)
        self._recipe_data: str | None = None  # the data whose recipe's steps Steps was set to
        self._build()
        self.session.dataChanged.connect(self._on_data)
        self.session.modelChanged.connect(self._on_model)
        self.session.runsChanged.connect(self._on_runs)
        self.session.playheadChanged.connect(self._show_frame)
        self.session.progressed.connect(lambda p: (self.progress.setRange(0, p.total), self.progress.setValue(p.done)))
        self.session.runningChanged.connect(lambda _running: self._set_idle())
        self.session.failed.connect(lambda message: self.failed.emit("2-D lab", message))
        self.training.progressed.connect(self._on_training_progress)
        self.training.finished.connect(self._on_trained)
        self.training.failed.connect(lambda message: self.failed.emit("2-D lab training", message))
        self.training.stateChanged.connect(lambda _state: self._set_idle())
        state.modelChanged.connect(self._on_state_model)
        self.session.set_data("swiss_roll")
        self._on_model()
        self._on_state_model()
        self._set_idle()

    # ---- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        self.data_choice = QComboBox()
        for name, label in TOY_LABELS.items():
            self.data_choice.addItem(label, name)
        self.data_choice.addItem("Your drawing", "drawing")
        self.data_choice.setToolTip("The data: a bundled set, or points you draw on the plot")
        self.draw_mode = QComboBox()
        for name, label in DRAW_MODES.items():
            self.draw_mode.addItem(label, name)
        self.draw_mode.setToolTip("Points: each click or drag step adds a point. Gaussians: each click places a "
                                  "Gaussian of the std below; the data is drawn from their mixture, whose exact score is known")
        self.draw_std = QDoubleSpinBox()
        self.draw_std.setRange(0.02, 2.0)
        self.draw_std.setSingleStep(0.05)
        self.draw_std.setValue(self.session.drawing.std)
        self.draw_std.setToolTip("The std of the next Gaussian placed")
        self.undo_button = QPushButton("Undo")
        self.clear_button = QPushButton("Clear")
        self.draw_hint = QLabel("Click or drag on the plot to draw")
        draw_buttons = QHBoxLayout()
        draw_buttons.addWidget(self.undo_button)
        draw_buttons.addWidget(self.clear_button)
        data_box = QGroupBox("Data")
        data_form = self.data_form = QFormLayout(data_box)
        data_form.addRow("Data", self.data_choice)
        data_form.addRow("Draw", self.draw_mode)
        data_form.addRow("Std", self.draw_std)
        data_form.addRow(draw_buttons)
        data_form.addRow(self.draw_hint)
        self.draw_widgets = (self.draw_mode, self.draw_std, self.undo_button, self.clear_button, self.draw_hint)
        self.draw_rows = range(1, data_form.rowCount())

        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.train_button = QPushButton("Train on this data")
        self.train_button.setToolTip("Train an MLP on the data with its recipe; the cloud forms live")
        self.train_stop_button = QPushButton("Stop")
        self.open_button = QPushButton("Open a 2-D model…")
        self.exact = QCheckBox("Exact denoiser instead")
        self.exact.setToolTip("Sample with the perfect ε of the data's Gaussian mixture: what a model should learn")
        self.train_steps = QSpinBox()
        self.train_steps.setRange(1, 1_000_000)
        self.train_steps.setSingleStep(500)
        self.train_steps.setToolTip("Training steps (set to the data's recipe when the data changes)")
        self.train_progress = QProgressBar()
        self.train_progress.setFormat("step %v / %m")
        train_buttons = QHBoxLayout()
        train_buttons.addWidget(self.train_button)
        train_buttons.addWidget(self.train_stop_button)
        model_box = QGroupBox("Model")
        model_form = QFormLayout(model_box)
        model_form.addRow(self.model_label)
        model_form.addRow("Steps", self.train_steps)
        model_form.addRow(train_buttons)
        model_form.addRow(self.train_progress)
        model_form.addRow(self.open_button)
        model_form.addRow(self.exact)

        self.num = QSpinBox()
        self.num.setRange(1, MAX_POINTS)
        self.num.setValue(POINT_SAMPLES)
        self.num.setSingleStep(500)
        self.num.setToolTip("Points in each run")
        self.steps = QSpinBox()
        self.steps.setRange(0, 10_000)
        self.steps.setSpecialValueText("all T")
        self.steps.setToolTip("Steps of both runs (all T: every timestep)")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Seeds x_T, shared by both runs, and DDPM's noise")
        self.run_button = QPushButton("Run DDPM and DDIM")
        self.run_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.progress = QProgressBar()
        self.progress.setFormat("step %v / %m")
        self.progress.hide()
        run_buttons = QHBoxLayout()
        run_buttons.addWidget(self.run_button)
        run_buttons.addWidget(self.stop_button)
        run_box = QGroupBox("Reverse process")
        run_form = QFormLayout(run_box)
        run_form.addRow("Points", self.num)
        run_form.addRow("Steps", self.steps)
        run_form.addRow("Seed", self.seed)
        run_form.addRow(run_buttons)
        run_form.addRow(self.progress)

        self.show_boxes: dict[str, QCheckBox] = {}
        show_box = QGroupBox("Show")
        show_layout = QVBoxLayout(show_box)
        for key, label, on in (("data", "Data", True), ("sde", "DDPM cloud (SDE)", True), ("ode", "DDIM cloud (ODE)", True),
                               ("paths", "Paths of a few particles", True), ("learned", "Drift field", True),
                               ("exact", "Exact field (mixtures)", True), ("difference", "Learned − exact", False)):
            box = self.show_boxes[key] = QCheckBox(label)
            box.setChecked(on)
            box.toggled.connect(self._show_frame)
            show_layout.addWidget(box)
        self.field_kind = QComboBox()
        for name, label in FIELD_KINDS.items():
            self.field_kind.addItem(label, name)
        self.field_kind.setToolTip("What the arrows show at t (all arrows share one scale)")
        show_layout.addWidget(self.field_kind)
        self.paths = QSpinBox()
        self.paths.setRange(1, 200)
        self.paths.setValue(PATHS)
        self.paths.setPrefix("particles: ")
        show_layout.addWidget(self.paths)

        self.view = pg.PlotWidget(background="w")
        self.plot = self.view.getPlotItem()
        self.plot.setAspectLocked(True)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.hideButtons()
        self.data_item = data_cloud()
        self.cloud_items = {kind: pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush(*COLOURS[kind], 170))
                            for kind in RUN_KINDS}
        self.path_items = {kind: pg.PlotDataItem(pen=pg.mkPen(color=(*COLOURS[kind], PATH_PENS[kind][0]),
                                                          width=PATH_PENS[kind][1]), connect="finite")
                           for kind in RUN_KINDS}  # the ODE's smooth paths drawn over the SDE's jagged ones
        self.arrow_items = {key: pg.PlotDataItem(pen=pg.mkPen(*COLOURS[key], width=1.2), connect="pairs")
                            for key in ("learned", "exact", "difference")}
        for item in (self.data_item, *self.arrow_items.values(), *self.cloud_items.values(), *self.path_items.values()):
            self.plot.addItem(item)
        self.drawing_area = DrawingArea()
        self.plot.addItem(self.drawing_area)

        self.marginal_plots = pg.GraphicsLayoutWidget()
        self.marginal_plots.setBackground("w")
        self.marginal_curves: dict[tuple[str, str], pg.PlotDataItem] = {}
        self.marginal_lines: list[pg.InfiniteLine] = []
        for row, (stat, title) in enumerate((("mean", "mean of x<sub>t</sub>"), ("std", "std of x<sub>t</sub>"))):
            plot = self.marginal_plots.addPlot(row=row, col=0, title=title)
            plot.setLabel("bottom", "t")
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.hideButtons()
            plot.setMouseEnabled(x=False, y=False)
            plot.invertX(True)  # x_T on the left, as the timeline runs
            for kind in ("q", *RUN_KINDS):
                dash = Qt.PenStyle.DashLine if kind == "q" else Qt.PenStyle.SolidLine
                self.marginal_curves[stat, kind] = plot.plot(pen=pg.mkPen(*COLOURS[kind], width=2, style=dash))
            line = pg.InfiniteLine(angle=90, pen=pg.mkPen(120, 120, 120))
            plot.addItem(line)
            self.marginal_lines.append(line)
        self.marginal_note = QLabel("Dashed: the forward process q(x<sub>t</sub>) on the data. "
                                    "Blue: DDPM. Orange: DDIM. Apart: the sampler's x<sub>t</sub> is not what the "
                                    "network was trained on.")
        self.marginal_note.setWordWrap(True)
        self.marginal_note.setTextFormat(Qt.TextFormat.RichText)
        marginals = QWidget()
        marginal_layout = QVBoxLayout(marginals)
        marginal_layout.setContentsMargins(0, 0, 0, 0)
        marginal_layout.addWidget(QLabel("<b>Marginals check</b>"))
        marginal_layout.addWidget(self.marginal_plots, 1)
        marginal_layout.addWidget(self.marginal_note)

        self.timeline = TimelineBar(self.session)
        self.timeline.bind_keys(self)
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.RichText)
        centre = QWidget()
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.addWidget(self.title)
        centre_layout.addWidget(self.view, 1)
        key = QLabel(KEY)
        key.setWordWrap(True)
        centre_layout.addWidget(key)
        views = QHBoxLayout()
        views.addWidget(centre, 3)
        views.addWidget(marginals, 1)
        right = QVBoxLayout()  # the timeline spans the plane and the marginals: room for its slider at 1024 px
        right.addLayout(views, 1)
        right.addWidget(self.timeline)

        layout = QHBoxLayout(self)
        layout.addWidget(settings_column((data_box, model_box, run_box, show_box)))
        layout.addLayout(right, 1)

        self.data_choice.activated.connect(self._on_data_choice)
        self.draw_mode.currentIndexChanged.connect(self._on_draw_mode)
        self.draw_std.valueChanged.connect(lambda std: setattr(self.session.drawing, "std", std))
        self.undo_button.clicked.connect(lambda: self._edit_drawing(self.session.drawing.undo))
        self.clear_button.clicked.connect(lambda: self._edit_drawing(self.session.drawing.clear))
        self.drawing_area.marked.connect(self.session.draw)
        self.train_button.clicked.connect(self.train)
        self.train_stop_button.clicked.connect(self.training.stop)
        self.open_button.clicked.connect(self._ask_model)
        self.exact.toggled.connect(self._on_exact)
        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(self.session.cancel)
        self.field_kind.currentIndexChanged.connect(self._on_field_kind)
        self.paths.valueChanged.connect(self._on_paths)
        self.runner.done.connect(self._set_idle)
        self.trainer.done.connect(self._set_idle)

    # ---- data and drawing ---------------------------------------------------------------------

    def _on_data_choice(self) -> None:
        name = self.data_choice.currentData()
        if name == "drawing":
            self.session.show_drawing()
        else:
            self.session.set_data(name)

    def _on_draw_mode(self) -> None:
        self.session.drawing.mode = self.draw_mode.currentData()
        self.draw_std.setEnabled(self.session.drawing.mode == "gaussians")
        self._edit_drawing(lambda: None)

    def _edit_drawing(self, edit) -> None:
        edit()
        self.session.show_drawing()

    def _on_data(self) -> None:
        """New data (or a new drawing): redraw it, fit the view when the bounds changed."""
        session = self.session
        drawing = session.data_name == "drawing"
        index = self.data_choice.findData("drawing" if drawing else session.data_name)
        if index >= 0:
            self.data_choice.setCurrentIndex(index)
        for row in self.draw_rows:
            self.data_form.setRowVisible(row, drawing)
        self.draw_std.setEnabled(session.drawing.mode == "gaussians")
        self.drawing_area.setVisible(drawing)
        x_min, x_max, y_min, y_max = session.bounds
        rect = QRectF(x_min, y_min, x_max - x_min, y_max - y_min)
        self.drawing_area.set_rect(rect)
        self.plot.setRange(rect, padding=0)
        data = session.data if drawing else reference_points(session.data)
        self.data_item.setData(pos=np.zeros((0, 2)) if data is None else data)
        if drawing:
            mode = DRAW_MODES[session.drawing.mode].lower()
            self.draw_hint.setText(f"{session.drawing.count} {mode} drawn: click or drag on the plot to add")
        for key in ("exact", "difference"):  # known for Gaussian mixtures only
            self.show_boxes[key].setEnabled(session.mixture is not None)
        if session.data_name != self._recipe_data:  # a new kind of data: its recipe's steps
            self._recipe_data = session.data_name
            self.train_steps.setValue(session.recipe().training.steps)
        self._show_frame()
        self._set_idle()

    # ---- the model ----------------------------------------------------------------------------

    def _on_state_model(self) -> None:
        """The app's model: a 2-D one comes here (unless the lab is busy), once the lab is shown."""
        model = self.state.model
        if (self.isVisible() and model is not None and not model.is_image and model is not self.session.model
                and not self.busy):
            self.session.set_model(model)

    @guarded
    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._on_state_model()

    def _ask_model(self) -> None:
        folder = ask_model_folder(self, self.preferences, "Open a 2-D model (checkpoint folder)")
        if folder:
            self.modelRequested.emit(folder)

    def _on_model(self) -> None:
        session = self.session
        with_exact = " (sampling with the exact denoiser)" if session.use_exact else ""
        if session.model is not None:
            self.model_label.setText(model_summary(session.model) + with_exact)
        elif session.use_exact:
            self.model_label.setText("The exact denoiser of the data's mixture")
        else:
            self.model_label.setText("No 2-D model yet: train one on this data (seconds), open one, or, for "
                                     "Gaussian mixtures, use the exact denoiser")
        self.exact.setChecked(session.use_exact)
        self._show_frame()
        self._set_idle()

    def _on_exact(self, use: bool) -> None:
        try:
            self.session.set_use_exact(use)
        except DiffusionStudioError as exc:
            self.exact.setChecked(False)
            self.failed.emit("2-D lab", str(exc))

    # ---- runs ---------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.runner.running or self.trainer.running

    def run(self) -> None:
        if self.busy:
            return
        config = SampleConfig(num=self.num.value(), steps=self.steps.value() or None, seed=self.seed.value())
        try:
            job = self.session.start(config)
        except DiffusionStudioError as exc:
            self.failed.emit("2-D lab", str(exc))
            return
        self.status.emit(f"Running DDPM and DDIM on {config.num:,} points from one x_T…")
        self.runner.start(job, UPDATE_INTERVAL_S, self.session.on_progress, self.session.on_finished, self.session.on_failed)
        self._set_idle()

    def stop(self) -> None:
        """Stop runs and training and wait for their threads (the window is closing)."""
        self.runner.stop_and_wait()
        self.trainer.stop_and_wait()

    def _on_runs(self) -> None:
        runs = self.session.runs
        self.timeline.set_stops()
        self.timeline.set_enabled(runs is not None)
        self._show_marginals()
        if runs is not None:
            self.status.emit(f"DDPM and DDIM: {len(runs.sde) - 1} and {len(runs.ode) - 1} steps from one x_T "
                             f"in {runs.seconds:.1f} s; scrub or play them")

    def _on_field_kind(self) -> None:
        self.session.field_kind = self.field_kind.currentData()
        self._show_frame()

    def _on_paths(self, count: int) -> None:
        self.session.paths = count
        self._show_frame()

    def _show_frame(self, *_args) -> None:
        """Everything at the playhead t: clouds, paths, the field, the marginals' marker."""
        session, shown = self.session, {key: box.isChecked() for key, box in self.show_boxes.items()}
        self.data_item.setVisible(shown["data"])
        for kind in RUN_KINDS:
            cloud, paths = session.cloud(kind), session.particle_paths(kind)
            self.cloud_items[kind].setData(pos=cloud if cloud is not None and shown[kind] else np.zeros((0, 2)))
            lines = path_lines(paths) if paths is not None and shown["paths"] and shown[kind] else np.zeros((0, 2))
            self.path_items[kind].setData(lines[:, 0], lines[:, 1])
        self._show_field(shown)
        for line in self.marginal_lines:
            line.setValue(session.t)
            line.setVisible(session.runs is not None)
        if session.runs is not None:
            self.timeline.label.setText(f"t = {session.t} of {int(session.times[0])}")
            self.title.setText(f"x<sub>t</sub> at t = {session.t}: {session.config.num:,} points from one x<sub>T</sub>")
        elif session.model is None and not session.use_exact:
            self.title.setText(f"{self.data_choice.currentText()}: {0 if session.data is None else len(session.data):,} points")

    def _show_field(self, shown: dict[str, bool]) -> None:
        try:
            field = self.session.field() if any(shown[k] for k in ("learned", "exact", "difference")) else None
        except (DiffusionStudioError, RuntimeError) as exc:  # a network that cannot take 2-D points
            self.status.emit(f"No drift field: {exc}")
            field = None
        vectors = {"learned": None, "exact": None, "difference": None}
        if field is not None:
            vectors = {"learned": field.learned, "exact": field.exact, "difference": field.difference}
        drawn = [v for key, v in vectors.items() if v is not None and shown[key]]
        spacing = (self.session.bounds[1] - self.session.bounds[0]) / 15
        longest = max((float(np.linalg.norm(v, axis=1).max()) for v in drawn), default=0.0)
        scale = 0.9 * spacing / longest if longest > 0 else 0.0
        for key, item in self.arrow_items.items():
            v = vectors[key]
            if v is None or not shown[key] or scale == 0:
                item.setData([], [])
                continue
            segments = arrow_segments(field.points, v, scale)
            item.setData(segments[:, 0], segments[:, 1])

    def _show_marginals(self) -> None:
        marginals = self.session.marginals()
        for (stat, kind), curve in self.marginal_curves.items():
            m = marginals.get(kind)
            curve.setData([] if m is None else m.t, [] if m is None else getattr(m, stat))

    # ---- training -----------------------------------------------------------------------------

    def runs_folder(self) -> Path:
        """The Training panel's runs folder (its saved settings), or the default."""
        return restore_settings(self.preferences.value(SETTINGS_KEY, "", str)).runs

    def train(self) -> None:
        if self.busy:
            return
        try:
            request = self.session.training_request(self.runs_folder(), self.train_steps.value())
        except DiffusionStudioError as exc:
            self.failed.emit("2-D lab training", str(exc))
            return
        job = self.training.start(request)
        self.train_progress.setRange(0, request.config.steps)
        self.train_progress.setValue(0)
        self.status.emit(f"Training on {self.data_choice.currentText()}: {request.config.steps:,} steps; the cloud forms live")
        self.trainer.start(job, UPDATE_INTERVAL_S, self.training.on_update, self.training.on_finished, self.training.on_failed)
        self._set_idle()

    def _on_training_progress(self, update) -> None:
        self.train_progress.setValue(update.step)
        if update.preview is not None:
            self.cloud_items["sde"].setData(pos=update.preview)
            self.title.setText(f"Training: EMA samples at step {update.preview_step:,} (loss {update.losses[-1]:.3f})")

    def _on_trained(self, step: int, stopped: bool) -> None:
        folder = self.training.checkpoint
        if folder is not None:
            self.status.emit(f"{'Stopped' if stopped else 'Trained'} at step {step:,}; opening the model")
            self.modelRequested.emit(str(folder))

    def _set_idle(self, *_args) -> None:
        busy = self.busy or self.session.running or self.training.state != "idle"
        can_run = self.session.model is not None or self.session.use_exact
        for widget in (self.data_choice, *self.draw_widgets, self.open_button, self.num, self.steps, self.seed,
                       self.train_steps):
            widget.setEnabled(not busy)
        self.exact.setEnabled(not busy and self.session.mixture is not None)
        self.draw_std.setEnabled(not busy and self.session.drawing.mode == "gaussians")
        self.drawing_area.setEnabled(not busy)
        self.run_button.setEnabled(not busy and can_run)
        self.stop_button.setEnabled(self.session.running)
        self.progress.setVisible(self.session.running)
        self.train_button.setEnabled(not busy)
        self.train_stop_button.setEnabled(self.training.state in ("running", "paused"))
        self.train_progress.setVisible(self.training.state != "idle" or self.train_progress.value() > 0)
