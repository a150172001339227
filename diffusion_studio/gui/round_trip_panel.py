"""The "Your image" panel: an image through the model at any t, the network's guesses beside the
truth, their errors over t, SDEdit from x_t and DDIM inversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSlider, QSpinBox,
    QVBoxLayout, QWidget, )

from diffusion_studio.app.round_trip import JobProgress, RoundTripSession
from diffusion_studio.app.state import StudioState
from diffusion_studio.core.data.datasets import held_out_digit
from diffusion_studio.core.data.images import IMAGE_SUFFIXES, to_uint8
from diffusion_studio.core.errors import DiffusionStudioError
from diffusion_studio.core.sample_config import SampleConfig, deterministic
from diffusion_studio.gui.columns import settings_column
from diffusion_studio.gui.image_views import ImageViews
from diffusion_studio.gui.imaging import show_pixels
from diffusion_studio.gui.model_box import ModelBox
from diffusion_studio.gui.panel import Panel
from diffusion_studio.gui.preferences import Preferences
from diffusion_studio.gui.settings_form import SettingsForm, align_labels
from diffusion_studio.gui.tasks import DevicePicker, NewestOnly, TaskRunner, WorkerThread
from diffusion_studio.gui.guard import guarded

TRIP_TITLES = {"x0": "x<sub>0</sub>, your image", "noise": "true noise ε", "x_t": "x<sub>t</sub>",
               "pred_x0": "predicted x<sub>0</sub>", "pred_eps": "predicted noise"}
RESULT_TITLES = {"x0": "x<sub>0</sub>", "denoised": "SDEdit from x<sub>t</sub>",
                 "noise": "x<sub>T</sub> by inversion", "reconstruction": "sampled back"}
UPDATE_INTERVAL_S = 0.1
BLUE, ORANGE = (31, 119, 180), (230, 120, 20)


def pixels(array: np.ndarray) -> np.ndarray:
    """A C×H×W array in data units as H×W×C display bytes (values beyond [−1, 1] clipped)."""
    return to_uint8(array.transpose(1, 2, 0))


class RoundTripPanel(Panel):
    """Image, t and ε on the left with SDEdit and inversion; the round trip, the error curves and
    the results on the right."""

    def __init__(self, state: StudioState, tasks: TaskRunner, preferences: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(state, tasks, preferences, parent)
        self.session = RoundTripSession()
        self.runner = WorkerThread(self)
        self.source: Path | int = 1  # an image file, or the number of a held-out digit (1…179)
        self.trips, self.errors = NewestOnly(tasks), NewestOnly(tasks)  # a worker each, the newest request only
        self._stale = False  # the model changed while the panel was hidden: read the image on the next show
        self._build()
        self.session.imageChanged.connect(self._on_image)
        self.session.tChanged.connect(self._on_t)
        self.session.tripChanged.connect(self._show_trip)
        self.session.errorsChanged.connect(self._show_errors)
        self.session.resultChanged.connect(self._show_results)
        self.session.previewed.connect(self._on_progress)
        self.session.runningChanged.connect(self._on_running)
        self.session.finished.connect(self.status.emit)
        self.session.failed.connect(lambda message: self.failed.emit("Your image", message))
        self.runner.done.connect(lambda: self._on_running(self.session.running))
        state.modelChanged.connect(self._on_model)
        self._on_model()
        self._on_running(False)

    # ---- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        self.model_box = ModelBox(self.state, self.preferences)
        self.model_box.modelRequested.connect(self.modelRequested)
        self.open_button = QPushButton("Open image…")
        self.open_button.setToolTip("Any picture, resized and cropped to the model's size and colour; or drop one here")
        self.digit = QSpinBox()
        self.digit.setRange(1, 179)
        self.digit.setPrefix("held-out digit ")
        self.digit.setToolTip("One of the 179 bundled digits no model here was trained on")
        self.image_label = QLabel()
        self.image_label.setWordWrap(True)
        self.t_slider = QSlider(Qt.Orientation.Horizontal)
        self.t_spin = QSpinBox()
        self.t_slider.setToolTip("How far q(x_t | x_0) noises the image")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Seeds the true noise ε: x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε")
        self.device = DevicePicker(self.tasks, lambda message: self.failed.emit("Devices", message), "Where the network runs")
        self.denoise_form = SettingsForm(SampleConfig, ["sampler", "steps"])
        self.denoise_form.set_values(SampleConfig(sampler="ddim", steps=50))
        self.denoise_button = QPushButton("Denoise from x_t")
        self.denoise_button.setToolTip("Run the reverse process from this x_t back to 0 (SDEdit: strength t/T); "
                                       "the steps are spread over 1…t")
        self.invert_steps = QSpinBox()
        self.invert_steps.setRange(1, 1000)
        self.invert_steps.setValue(50)
        self.invert_button = QPushButton("Invert and sample back")
        self.invert_button.setToolTip("DDIM (η = 0) from x_0 up to x_T, then down again from that x_T")
        self.stop_button = QPushButton("Stop")
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m steps")
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)

        image_box = QGroupBox("Your image through the model")
        form = QFormLayout(image_box)
        form.addRow(self.model_box)
        source = QHBoxLayout()
        source.addWidget(self.open_button)
        source.addWidget(self.digit)
        form.addRow(source)
        form.addRow(self.image_label)
        t_row = QHBoxLayout()
        t_row.addWidget(self.t_slider, 1)
        t_row.addWidget(self.t_spin)
        form.addRow("t", t_row)
        form.addRow("Seed of ε", self.seed)
        form.addRow("Device", self.device)
        denoise_box = QGroupBox("Denoise from x_t (SDEdit)")
        denoise = QFormLayout(denoise_box)
        denoise.addRow(self.denoise_form)
        denoise.addRow(self.denoise_button)
        invert_box = QGroupBox("DDIM inversion")
        invert = QFormLayout(invert_box)
        invert.addRow("Steps", self.invert_steps)
        invert.addRow(self.invert_button)
        align_labels(self.denoise_form)
        self.left = settings_column((image_box, denoise_box, invert_box, self.stop_button, self.progress, self.result_label))

        self.trip_views = ImageViews(TRIP_TITLES)
        self.error_plot = pg.PlotWidget(background="w",
                                        title="Error of the predicted x<sub>0</sub> (blue) and of the predicted noise (orange), over t")
        self.error_plot.setLogMode(y=True)
        self.error_plot.setLabel("bottom", "t")
        self.error_plot.setLabel("left", "mean squared error")
        self.error_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.error_plot.setMouseEnabled(x=False, y=False)
        self.x0_curve = self.error_plot.plot(pen=pg.mkPen(BLUE, width=2))
        self.eps_curve = self.error_plot.plot(pen=pg.mkPen(ORANGE, width=2))
        self.t_marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("r", width=2))
        self.error_plot.addItem(self.t_marker, ignoreBounds=True)  # the axes fit the curves, not the marker
        self.result_views = ImageViews(RESULT_TITLES)
        self.histogram = pg.PlotWidget(background="w", title="x<sub>T</sub> vs N(0, 1)")
        self.histogram.setMinimumWidth(190)
        self.histogram.getAxis("left").enableAutoSIPrefix(False)
        self.histogram.setMouseEnabled(x=False, y=False)
        self.histogram.setLabel("left", "density")
        self.histogram_bars = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=(31, 119, 180, 120), pen=pg.mkPen(BLUE))
        self.histogram.addItem(self.histogram_bars)
        grid = np.linspace(-4, 4, 161)
        self.histogram.plot(grid, np.exp(-grid**2 / 2) / np.sqrt(2 * np.pi), pen=pg.mkPen((60, 60, 60), width=2))
        results = QHBoxLayout()
        results.addWidget(self.result_views, 4)
        results.addWidget(self.histogram, 1)
        right = QVBoxLayout()
        right.addWidget(self.trip_views, 3)
        right.addWidget(self.error_plot, 2)
        right.addLayout(results, 2)
        layout = QHBoxLayout(self)
        layout.addWidget(self.left)
        layout.addLayout(right, 1)

        self.open_button.clicked.connect(self.ask_open)
        self.digit.valueChanged.connect(self.use_digit)
        self.t_slider.valueChanged.connect(self.session.set_t)
        self.t_spin.valueChanged.connect(self.session.set_t)
        self.seed.valueChanged.connect(self.session.set_seed)
        self.denoise_button.clicked.connect(self.denoise)
        self.invert_button.clicked.connect(self.invert)
        self.stop_button.clicked.connect(self.session.cancel)

    # ---- the image, the model and t -----------------------------------------------------------

    def ask_open(self) -> None:
        patterns = " ".join(f"*{suffix}" for suffix in sorted(IMAGE_SUFFIXES))
        path, _ = QFileDialog.getOpenFileName(self, "Put an image through the model", self.preferences.folder("images"),
                                              f"Images ({patterns})")
        if path:
            self.preferences.remember_folder("images", path)
            self.open_image(Path(path))

    def open_image(self, path: Path) -> None:
        """Read ``path`` at the model's size (on a worker thread) and make it x_0."""
        model = self.state.model
        if model is None or not model.is_image:
            self.failed.emit("Your image", "Open an image model first (this panel puts images through it)")
            return
        self.tasks.start(lambda: model.read_image(path), lambda image: self._set_source(path, image, path.name),
                         lambda message: self.failed.emit("Open image", message))

    def use_digit(self, number: int) -> None:
        """Held-out digit ``number`` (1…179) becomes x_0."""
        model = self.state.model
        if model is not None and model.is_image:
            channels, size, _ = model.sample_shape
            self._set_source(int(number), held_out_digit(number, size, channels), f"held-out digit {number}")

    def _set_source(self, source: Path | int, image: np.ndarray, name: str) -> None:
        self.source = source
        self.session.set_image(image, name)

    @guarded
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self._on_model()

    def _on_model(self) -> None:
        """A new model: t runs over its 0…T, and the image is read again at its size (when the panel
        is on screen: a hidden panel puts nothing through the model)."""
        model = self.state.model
        self._on_running(self.session.running)
        self._stale = not self.isVisible()
        if self._stale:
            return
        if model is None or not model.is_image:
            self.image_label.setText("" if model is None else "This model makes 2-D points: open an image model")
            return
        T = model.schedule_config.timesteps
        for widget in (self.t_slider, self.t_spin):
            widget.setRange(0, T)
        self.denoise_form["steps"].set_maximum(T)
        self.invert_steps.setMaximum(T)
        if self.session.t == 0 or self.session.t > T:
            self.session.set_t(T // 4)
        if isinstance(self.source, Path):
            self.open_image(self.source)
        else:
            self.use_digit(self.source)

    def _on_image(self) -> None:
        self.image_label.setText(f"x<sub>0</sub>: {self.session.name}")
        self._show_results()
        self.x0_curve.setData([], [])
        self.eps_curve.setData([], [])
        model = self.state.model
        if model is None or self.session.image is None:
            return
        # until the curves come: t over 0…T, errors over 10⁻⁴…10 (log axis), rather than a span around the marker
        self.error_plot.setRange(xRange=(0, model.schedule_config.timesteps), yRange=(-4, 1), padding=0)
        self.errors.request(lambda: self.session.errors_of(model), self.session.on_errors, self._failed)
        self._request_trip()

    def _on_t(self, t: int) -> None:
        for widget in (self.t_slider, self.t_spin):
            widget.blockSignals(True)
            widget.setValue(t)
            widget.blockSignals(False)
        self.t_marker.setValue(t)
        self._request_trip()

    def _request_trip(self) -> None:
        """Compute the round trip at the current t on a worker (the newest request only)."""
        model = self.state.model
        if model is not None and self.session.image is not None:
            self.trips.request(lambda: self.session.trip_at(model, self.session.t), self.session.on_trip, self._failed)

    def _failed(self, message: str) -> None:
        self.failed.emit("Your image", message)

    # ---- views --------------------------------------------------------------------------------

    def _show_trip(self) -> None:
        trip = self.session.trip
        for key in TRIP_TITLES:
            show_pixels(self.trip_views.items[key], pixels(getattr(trip, key)))
        self.trip_views.titles["x_t"].setText(f"x<sub>t</sub>, t = {trip.t}")
        self.trip_views.fit()

    def _show_errors(self) -> None:
        errors = self.session.errors
        self.x0_curve.setData(errors.t, np.maximum(errors.x0, 1e-12))
        self.eps_curve.setData(errors.t, np.maximum(errors.eps, 1e-12))
        self.error_plot.enableAutoRange()

    def _show_results(self) -> None:
        session = self.session
        shown = {"x0": session.image, "denoised": session.denoised and session.denoised.result,
                 "noise": session.inverted and session.inverted.noise,
                 "reconstruction": session.inverted and session.inverted.reconstruction}
        for key, array in shown.items():
            item = self.result_views.items[key]
            if array is None:
                item.clear()
            else:
                show_pixels(item, pixels(array))
        self.result_views.titles["denoised"].setText(
            f"SDEdit from t = {session.denoised.t}" if session.denoised
            else RESULT_TITLES["denoised"])
        if session.inverted is not None:
            counts, edges = np.histogram(session.inverted.noise.ravel(), bins=40, range=(-4, 4), density=True)
            self.histogram_bars.setData(edges, counts)
            noise = session.inverted.noise
            self.result_label.setText(
                f"x<sub>T</sub>: mean {noise.mean():+.2f}, std {noise.std():.2f} (N(0, 1): 0, 1)<br>"
                f"sampled back: RMS error {session.inverted.rms_error:.4f} ({session.inverted.rms_error * 127.5:.1f} "
                f"of 255 levels)")
        else:
            self.histogram_bars.setData([], [])
            self.result_label.setText("")
        self.result_views.fit()

    # ---- SDEdit and inversion -----------------------------------------------------------------

    def denoise(self) -> None:
        self._run(lambda model: self.session.start_denoise(model, SampleConfig(**self.denoise_form.values()), self.device.device()),
                  "Denoising from x_t…")

    def invert(self) -> None:
        config = deterministic(steps=self.invert_steps.value())
        self._run(lambda model: self.session.start_inversion(model, config, self.device.device()), "Inverting with DDIM…")

    def _run(self, start, message: str) -> None:
        model = self.state.model
        if model is None or self.session.running:
            return
        try:
            job = start(model)
        except DiffusionStudioError as exc:
            self.failed.emit("Your image", str(exc))
            return
        self.progress.setValue(0)
        self.status.emit(message)
        self.runner.start(job, UPDATE_INTERVAL_S, self.session.on_update, self.session.on_finished, self.session.on_failed)

    def _on_progress(self, progress: JobProgress) -> None:
        self.progress.setMaximum(progress.total)
        self.progress.setValue(progress.index)
        self.progress.setFormat(f"{progress.what}: %v / %m steps")

    def _on_running(self, running: bool) -> None:
        model = self.state.model
        idle = not running and not self.runner.running and model is not None and model.is_image
        for widget in (self.denoise_button, self.invert_button, self.open_button, self.digit, self.device):
            widget.setEnabled(idle)
        self.stop_button.setEnabled(running)

    def stop(self) -> None:
        """Stop a job and wait for its thread (the window is closing)."""
        self.runner.stop_and_wait()
