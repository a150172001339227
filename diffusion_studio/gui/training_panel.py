"""Training: pick data, a network and settings; watch the loss fall and the EMA model's samples form.

The panel binds to a TrainingSession (diffusion_studio.app.training), whose Job trains in a
GeneratorWorker on a QThread; the panel paints what the session reports and never waits for the
worker except when the window closes.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from diffusion_studio.core.data.datasets import TOY_SETS
from diffusion_studio.core.durations import clock
from diffusion_studio.core.errors import DiffusionStudioError, SettingError
from diffusion_studio.core.models.presets import PRESETS, NetworkSize, model_config_for, size_of
from diffusion_studio.core.recipes import IMAGE_RECIPE
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.gui.imaging import show_pixels
from diffusion_studio.gui.integer_axis import IntegerAxis
from diffusion_studio.gui.panel import Panel
from diffusion_studio.gui.point_style import data_cloud, sample_cloud
from diffusion_studio.gui.preferences import Preferences
from diffusion_studio.gui.schedule_form import ScheduleForm
from diffusion_studio.gui.settings_form import SettingsForm, align_labels
from diffusion_studio.app.state import StudioState
from diffusion_studio.app.training import (
    FOLDER, LOSS_BY_T_ROWS, RunInfo, TrainingRequest, TrainingSession, TrainingUpdate, smooth,
)
from diffusion_studio.gui.columns import settings_column
from diffusion_studio.gui.tasks import TaskRunner, WorkerThread, find_devices
from diffusion_studio.gui.guard import guarded

DATA_CHOICES = {
    "digits": "Digits (bundled: 1,797 handwritten digits)",
    "swiss_roll": "Swiss roll (2-D points)",
    "two_moons": "Two moons (2-D points)",
    "eight_gaussians": "Eight Gaussians (2-D points)",
    "checkerboard": "Checkerboard (2-D points)",
    FOLDER: "Image folder…",
}
UPDATE_INTERVAL_S = 0.25
"""At most this often a progress update crosses to the UI thread, whatever the step rate."""
SETTINGS_KEY = "training/settings"
FIRST_SETTINGS = {"training": IMAGE_RECIPE.settings(), "preview_every": 200, "save_every": 500}
"""On first launch: the image recipe (the bundled model's) on the digits, about 17 minutes on a 2-core CPU."""
UNET_SETTINGS = ("base_channels", "channel_mults", "num_res_blocks", "attention_resolutions", "dropout", "num_heads")
MLP_SETTINGS = ("hidden", "num_layers")
"""The NetworkSize settings that image data (a U-Net) and point data (an MLP) use."""


def default_runs_folder() -> Path:
    return Path.home() / "Diffusion Studio" / "runs"


def stored_settings(preferences: Preferences) -> dict:
    """The panel's settings as last saved (empty if none or damaged)."""
    try:
        stored = json.loads(preferences.value(SETTINGS_KEY, "{}", str))
    except ValueError:
        stored = {}
    return stored if isinstance(stored, dict) else {}


def log_ticks(low: float, high: float) -> list[tuple[float, str]]:
    """Ticks for an axis in log10 units from ``low`` to ``high``, labelled in plain units: the powers
    of ten inside if three fall inside, else 1, 2 and 5 times them if two do, else 1…9 times them if
    two do, else the two ends. (pyqtgraph's log axis labels 1…9× every power however close they
    come, and over a decade or two its labels overlap.)"""
    powers = np.arange(np.floor(low), np.ceil(high) + 1)
    for mantissas, enough in (((1,), 3), ((1, 2, 5), 2), (range(1, 10), 2)):
        values = (powers[:, None] + np.log10(mantissas)).ravel()
        values = values[(values >= low) & (values <= high)]
        if len(values) >= enough:
            break
    else:
        values = (low, high)
    return [(float(v), f"{10.0 ** v:.3g}") for v in values]


class TrainingPanel(Panel):
    """Settings on the left; on the right the loss and the loss by t over training, then the loss
    by t now and the EMA preview."""

    stepShown = Signal(int)  # a progress update is on screen: the step it reached

    def __init__(self, state: StudioState, tasks: TaskRunner, preferences: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(state, tasks, preferences, parent)
        self.session = TrainingSession()
        self.runner = WorkerThread(self)
        self.runner.done.connect(lambda: self._set_idle(True))
        self.update_interval = UPDATE_INTERVAL_S  # the worker's throttle (seconds between updates)
        self._devices_known = False
        self._saved_device = "auto"
        self._build()
        self.session.started.connect(self._on_ready)
        self.session.progressed.connect(self._on_progress)
        self.session.saved.connect(self._on_saved)
        self.session.finished.connect(self._on_finished)
        self.session.failed.connect(self._on_failed)
        self.session.stateChanged.connect(self._on_state)
        try:
            self.apply_settings(stored_settings(self.preferences) or FIRST_SETTINGS)
        except (TypeError, ValueError):  # settings written by hand or by another version: start afresh
            self.apply_settings(FIRST_SETTINGS)
        self._clear_plots()
        self._set_idle(True)

    # ---- layout -------------------------------------------------------------------------------

    @staticmethod
    def _spin(low: int, high: int, tip: str, step: int = 1) -> QSpinBox:
        box = QSpinBox()
        box.setRange(low, high)
        box.setSingleStep(step)
        box.setToolTip(tip)
        return box

    def _build(self) -> None:
        # data
        self.data = QComboBox()
        for key, text in DATA_CHOICES.items():
            self.data.addItem(text, key)
        self.data.setToolTip("What the model learns to make; drop an image folder on this panel to train on it")
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("a folder of images")
        self.browse_button = QPushButton("Browse…")
        self.image_size = self._spin(4, 256, "Images are resized and centre-cropped to this square; the U-Net halves it once per level after the first")
        self.channels = QComboBox()
        for text, value in (("As the images", 0), ("Gray", 1), ("RGB", 3)):
            self.channels.addItem(text, value)
        data_box = QGroupBox("Data")
        data_form = QFormLayout(data_box)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(self.browse_button)
        data_form.addRow(self.data)
        data_form.addRow(folder_row)
        data_form.addRow("Image size", self.image_size)
        data_form.addRow("Colour", self.channels)

        # network
        self.preset = QComboBox()
        for name in PRESETS:
            self.preset.addItem(name.capitalize(), name)
        self.preset.addItem("Custom", "custom")
        self.preset.setToolTip("Network sizes: a U-Net for images, an MLP for 2-D points. Large is Ho et al.'s CIFAR-10 network")
        self.parameters = QLabel()
        self.parameters.setToolTip("Trainable parameters of the network these settings build")
        self.prediction_form = SettingsForm(TrainConfig, ["prediction"])
        self.advanced = QCheckBox("Show all settings")
        self.size_form = SettingsForm(NetworkSize)
        self.tuning_form = SettingsForm(TrainConfig, ["warmup_steps", "weight_decay", "grad_clip", "mixed_precision", "compile"])
        self.prediction_form.add_row("Size", self.preset, at=0)
        self.prediction_form.add_row("", self.parameters, at=1)
        self.prediction_form.add_row("", self.advanced)
        self.advanced_box = QWidget()
        advanced_layout = QVBoxLayout(self.advanced_box)
        advanced_layout.setContentsMargins(0, 0, 0, 0)
        advanced_layout.addWidget(self.size_form)
        advanced_layout.addWidget(self.tuning_form)
        network_box = QGroupBox("Network")
        network_layout = QVBoxLayout(network_box)
        network_layout.addWidget(self.prediction_form)
        network_layout.addWidget(self.advanced_box)

        # training
        self.train_form = SettingsForm(TrainConfig, ["steps", "batch_size", "learning_rate", "ema_decay", "seed", "device"])
        self.train_form["device"].set_choices({"auto": "Best available"})  # until the devices on this machine are known
        self.preview_every = self._spin(0, 1_000_000, "Draw samples from the EMA model every N steps (20 DDIM steps); 0: never", 50)
        self.save_every = self._spin(1, 1_000_000, "Write the checkpoint every N steps (and always at the end or on Stop)", 100)
        self.runs_folder = QLineEdit()
        self.runs_folder.setToolTip("Each new run saves into a new folder here, named after the data and the time")
        self.runs_button = QPushButton("…")
        self.runs_button.setMaximumWidth(32)
        self.runs_button.setToolTip("Choose the folder for runs")
        train_box = QGroupBox("Training")
        train_layout = QVBoxLayout(train_box)
        train_layout.addWidget(self.train_form)
        runs_row = QHBoxLayout()
        runs_row.addWidget(self.runs_folder, 1)
        runs_row.addWidget(self.runs_button)
        self.train_form.add_row("Preview every", self.preview_every)
        self.train_form.add_row("Save every", self.save_every)
        self.train_form.add_row("Runs folder", runs_row)
        align_labels(self.prediction_form, self.size_form, self.tuning_form, self.train_form)

        scroll = settings_column((data_box, network_box, train_box))
        scroll.setMinimumWidth(330)
        scroll.setMaximumWidth(360)

        # controls
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Train a new network with these settings, in a new folder")
        self.continue_button = QPushButton("Continue")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after this step and save the checkpoint")
        self.open_button = QPushButton("Open checkpoint…")
        self.open_button.setToolTip("Pick a checkpoint to continue training (its model, data and settings)")
        self.sample_button = QPushButton("Sample from it")
        self.sample_button.setToolTip("Open the checkpoint in the Sampling panel")
        self.progress = QProgressBar()
        self.progress.setFormat("step %v of %m")
        self.rate = QLabel()
        self.run_label = QLabel("Pick the data and press Start")
        self.run_label.setWordWrap(True)
        controls = QHBoxLayout()
        for button in (self.start_button, self.continue_button, self.pause_button, self.stop_button):
            controls.addWidget(button)
        controls.addWidget(self.progress, 1)
        files = QHBoxLayout()  # the rate has a line of its own: beside the bar it was cut at 1024 px
        files.addWidget(self.rate, 1)
        files.addWidget(self.open_button)
        files.addWidget(self.sample_button)

        # plots
        self.schedule_form = ScheduleForm(self.state)
        self.schedule_warning = QLabel()
        self.schedule_warning.setWordWrap(True)
        self.schedule_warning.setStyleSheet("color: #c0392b")
        self.schedule_warning.setVisible(False)
        self.loss_plot = pg.PlotWidget(background="w", title="Training loss", axisItems={"bottom": IntegerAxis("bottom")})
        self.loss_plot.setLogMode(y=True)
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.setLabel("left", "loss (log scale)")
        self.loss_plot.addLegend(offset=(-10, 10))
        self.loss_plot.setClipToView(True)
        self.loss_plot.setDownsampling(auto=True, mode="peak")
        self.raw_curve = self.loss_plot.plot(pen=pg.mkPen((160, 190, 230), width=1), name="each report")
        self.smooth_curve = self.loss_plot.plot(pen=pg.mkPen((31, 94, 200), width=2), name="smoothed")
        self.loss_plot.setToolTip("The mean of ‖target − network(x_t, t)‖² over each report's steps, and its moving average")
        self.heatmap_plot = pg.PlotWidget(background="w", axisItems={"bottom": IntegerAxis("bottom")})
        self.heatmap_plot.setLabel("bottom", "training step")
        self.heatmap_plot.setLabel("left", "t")
        self.heatmap_plot.setMouseEnabled(x=False, y=False)
        self.heatmap_plot.setToolTip("The loss by timestep at each report, kept through the run (at most "
                                     f"{LOSS_BY_T_ROWS}, evenly spaced): one row per tenth of t. The colour is on a "
                                     "log scale, as the loss of different t differs by orders of magnitude")
        self.heatmap = pg.ImageItem(axisOrder="row-major")
        self.heatmap_plot.addItem(self.heatmap)
        self.heatmap_bar = pg.ColorBarItem(width=15, colorMap="viridis", label="loss (log scale)", interactive=False,
                                           colorMapMenu=False)
        self.heatmap_bar.setImageItem(self.heatmap, insert_in=self.heatmap_plot.getPlotItem())
        self.bucket_plot = pg.PlotWidget(background="w", title="Loss by timestep")
        self.bucket_plot.setLabel("bottom", "t")
        self.bucket_plot.setLabel("left", "mean loss")
        self.bucket_plot.getAxis("left").enableAutoSIPrefix(False)
        self.bucket_plot.setMouseEnabled(x=False, y=False)
        self.bucket_plot.setToolTip("Running mean loss for ten equal ranges of t: where the network struggles")
        self.buckets = pg.BarGraphItem(x=[], height=[], width=1, brush=(31, 94, 200, 180), pen=None)
        self.bucket_plot.addItem(self.buckets)
        self.preview_title = QLabel("Samples from the EMA model appear here while training")
        self.preview_title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview_images = pg.GraphicsLayoutWidget()
        self.preview_images.setBackground("w")
        view = self.preview_images.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.preview_item = pg.ImageItem()
        view.addItem(self.preview_item)
        self.preview_points = pg.PlotWidget(background="w")
        self.preview_points.setAspectLocked(True)
        self.reference_cloud = data_cloud()
        self.preview_cloud = sample_cloud()
        self.preview_points.addItem(self.reference_cloud)
        self.preview_points.addItem(self.preview_cloud)
        self.previews = QStackedWidget()
        self.previews.addWidget(self.preview_images)
        self.previews.addWidget(self.preview_points)
        preview_column = QVBoxLayout()
        preview_column.addWidget(self.preview_title)
        preview_column.addWidget(self.previews, 1)
        plots = QGridLayout()  # over training steps above, the run as it stands below
        plots.addWidget(self.loss_plot, 0, 0)
        plots.addWidget(self.heatmap_plot, 0, 1)
        plots.addWidget(self.bucket_plot, 1, 0)
        plots.addLayout(preview_column, 1, 1)
        for i in (0, 1):
            plots.setColumnStretch(i, 1)
            plots.setRowStretch(i, 1)

        right = QVBoxLayout()
        right.addWidget(self.schedule_form)
        right.addWidget(self.schedule_warning)
        right.addLayout(controls)
        right.addLayout(files)
        right.addWidget(self.run_label)
        right.addLayout(plots, 1)
        layout = QHBoxLayout(self)
        layout.addWidget(scroll)
        layout.addLayout(right, 1)

        self.data.currentIndexChanged.connect(self._on_data)
        self.data.activated.connect(self._on_data_picked)
        self.state.scheduleChanged.connect(self._show_schedule_warning)
        self.browse_button.clicked.connect(self._ask_folder)
        self.runs_button.clicked.connect(self._ask_runs_folder)
        self.preset.currentIndexChanged.connect(self._on_preset)
        self.advanced.toggled.connect(self.advanced_box.setVisible)
        self.size_form.edited.connect(self._on_size_edited)
        for widget in (self.image_size, self.channels):
            signal = widget.valueChanged if isinstance(widget, QSpinBox) else widget.currentIndexChanged
            signal.connect(self._show_parameters)
        self.start_button.clicked.connect(self.start)
        self.continue_button.clicked.connect(self.continue_training)
        self.train_form["steps"].widget.lineEdit().textChanged.connect(lambda: self._show_continue(not self.running))
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.request_stop)
        self.open_button.clicked.connect(self._ask_checkpoint)
        self.sample_button.clicked.connect(self._sample)

    # ---- settings -----------------------------------------------------------------------------

    def network_size(self) -> NetworkSize:
        """The network settings on screen (SettingError if a list cannot be read)."""
        return NetworkSize(**self.size_form.values())

    def _data_source(self) -> str:
        key = self.data.currentData()
        return self.folder.text().strip() if key == FOLDER else key

    def train_config(self) -> TrainConfig:
        return TrainConfig(data=self._data_source(), **self.prediction_form.values(), **self.tuning_form.values(),
                           **self.train_form.values())

    def settings(self) -> dict:
        """Everything on the form, as JSON-ready values (what the next launch restores)."""
        try:
            size = asdict(self.network_size())
        except SettingError:
            size = asdict(NetworkSize())
        return {
            "training": asdict(self.train_config()),
            "data": self.data.currentData(),
            "folder": self.folder.text(),
            "image_size": self.image_size.value(),
            "channels": self.channels.currentData(),
            "size": size,
            "advanced": self.advanced.isChecked(),
            "preview_every": self.preview_every.value(),
            "save_every": self.save_every.value(),
            "runs_folder": self.runs_folder.text(),
        }

    def save_settings(self) -> None:
        self.preferences.set_value(SETTINGS_KEY, json.dumps(self.settings()))

    def apply_settings(self, stored: dict) -> None:
        """Fill the form from settings(), keeping the defaults for anything missing or unreadable."""
        known = {f.name for f in fields(TrainConfig)}
        try:
            train = TrainConfig(**{k: v for k, v in stored.get("training", {}).items() if k in known})
        except TypeError:
            train = TrainConfig()
        try:
            size = NetworkSize(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.get("size", {}).items()})
        except TypeError:
            size = NetworkSize()
        data = stored.get("data", "digits")
        self.data.setCurrentIndex(max(self.data.findData(data), 0))
        self.folder.setText(str(stored.get("folder", "")))
        self.image_size.setValue(int(stored.get("image_size", 16)))
        self.channels.setCurrentIndex(max(self.channels.findData(stored.get("channels", 0)), 0))
        self._show_size(size)
        self.advanced.setChecked(bool(stored.get("advanced", False)))
        self.advanced_box.setVisible(self.advanced.isChecked())
        self._saved_device = train.device
        for form in (self.prediction_form, self.tuning_form, self.train_form):
            form.set_values(replace(train, device="auto"))
        self._select_device()
        self.preview_every.setValue(stored.get("preview_every", 200))
        self.save_every.setValue(stored.get("save_every", 500))
        self.runs_folder.setText(str(stored.get("runs_folder") or default_runs_folder()))
        self.session.keep_settings(self.data.currentData())
        self._on_data()

    def _show_size(self, size: NetworkSize) -> None:
        """Put a network size on the form, and name its preset if it is one."""
        self.size_form.set_values(size)
        self._show_preset(size)

    def _show_preset(self, size: NetworkSize) -> None:
        preset = next((name for name, preset in PRESETS.items() if preset == size), "custom")
        with QSignalBlocker(self.preset):
            self.preset.setCurrentIndex(self.preset.findData(preset))
        self._show_parameters()

    def _on_preset(self) -> None:
        name = self.preset.currentData()
        if name in PRESETS:
            self._show_size(PRESETS[name])

    def _on_size_edited(self) -> None:
        try:
            size = self.network_size()
        except SettingError as exc:
            self.parameters.setText(str(exc))
            return
        self._show_preset(size)

    def _on_data_picked(self) -> None:
        """The user picked the data: if its recipe is another than the last data's, the schedule (shared
        by every panel), the network and the training settings become the recipe's."""
        recipe = self.session.choose_data(self.data.currentData(), self.state)
        if recipe is None:
            return
        self._show_size(recipe.size)
        for form in (self.prediction_form, self.tuning_form, self.train_form):
            form.set_values(recipe.settings())
        self.status.emit(f"Applied the {recipe.summary()}")

    def _show_schedule_warning(self) -> None:
        """Say why the schedule in use fails on the data chosen, if it does (core.recipes.schedule_warning)."""
        warning = self.session.schedule_warning(self.data.currentData(), self.state.schedule.config)
        shown = not self.schedule_warning.isHidden()
        self.schedule_warning.setText(f"⚠ {warning}" if warning else "")
        self.schedule_warning.setVisible(warning is not None)
        if warning and not shown:
            self.status.emit(f"Warning: {warning}")

    def _on_data(self) -> None:
        key = self.data.currentData()
        images = key not in TOY_SETS
        self.folder.setVisible(key == FOLDER)
        self.browse_button.setVisible(key == FOLDER)
        self.image_size.setEnabled(images)
        self.channels.setEnabled(key == FOLDER)
        self.size_form.set_enabled(UNET_SETTINGS, images)
        self.size_form.set_enabled(MLP_SETTINGS, not images)
        self._show_parameters()
        self._show_schedule_warning()

    def _sample_shape(self) -> tuple[int, ...]:
        """What one training sample will look like, as far as the form knows before the data loads."""
        key = self.data.currentData()
        if key in TOY_SETS:
            return (2,)
        channels = 1 if key == "digits" else (self.channels.currentData() or 3)
        return (channels, self.image_size.value(), self.image_size.value())

    def _show_parameters(self) -> None:
        """The parameter count of the network on the form and of each preset (once torch is loaded)."""
        if "torch" not in sys.modules:
            self.parameters.setText("")
            return
        from diffusion_studio.core.models import parameter_count

        shape = self._sample_shape()
        for i, name in enumerate(PRESETS):
            try:
                count = parameter_count(model_config_for(PRESETS[name], shape))
                self.preset.setItemText(i, f"{name.capitalize()} · {count / 1e6:.2f}M parameters")
            except DiffusionStudioError:
                self.preset.setItemText(i, f"{name.capitalize()} · not for {shape[-1]}×{shape[-1]} images")
        try:
            count = parameter_count(model_config_for(self.network_size(), shape))
        except DiffusionStudioError as exc:
            self.parameters.setText(f"<span style='color:#c0392b'>{exc}</span>")
        else:
            self.parameters.setText(f"{count:,} parameters")

    @guarded
    def showEvent(self, event) -> None:
        """On first show, find the devices (this loads torch, off the UI thread)."""
        if not self._devices_known:
            self._devices_known = True
            self.tasks.start(find_devices, self._on_devices, lambda message: self.failed.emit("Devices", message))
        super().showEvent(event)

    def _on_devices(self, devices: list[tuple[str, str]]) -> None:
        self.train_form["device"].set_choices({"auto": f"Best available: {devices[0][1]}", **dict(devices)})
        self._select_device()
        self._show_parameters()

    def _select_device(self) -> None:
        """The device the settings asked for, if this machine has it; else the best available."""
        try:
            self.train_form["device"].set_value(self._saved_device)
        except SettingError:
            self.train_form["device"].set_value("auto")

    # ---- files --------------------------------------------------------------------------------

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Train on the images in", self.preferences.folder("training"))
        if folder:
            self.use_folder(Path(folder))

    def use_folder(self, folder: Path) -> None:
        """Train on the images in this folder (from the dialog or a drop on the panel)."""
        self.preferences.remember_folder("training", folder.parent)
        self.data.setCurrentIndex(self.data.findData(FOLDER))
        self.folder.setText(str(folder))
        self._on_data_picked()
        self.status.emit(f"Training data: the images in {folder}")

    def _ask_runs_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save runs in", self.runs_folder.text())
        if folder:
            self.runs_folder.setText(folder)

    def _ask_checkpoint(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Continue training a checkpoint", self.preferences.folder("model"))
        if folder:
            self.preferences.remember_folder("model", Path(folder).parent)
            self.open_checkpoint(Path(folder))

    def open_checkpoint(self, folder: Path) -> None:
        """Read a checkpoint (in the background), show its settings, and make it the one Continue trains."""
        self.status.emit(f"Reading {folder.name}…")

        def read():
            from diffusion_studio.core.runs import resumable_checkpoint

            return resumable_checkpoint(folder)

        self.tasks.start(read, self._on_checkpoint, lambda message: self.failed.emit("Open checkpoint", message))

    def _on_checkpoint(self, checkpoint) -> None:
        config = checkpoint.train_config
        source = config.data
        stored = {
            "training": asdict(replace(config, steps=max(config.steps, checkpoint.step + 1), device=self.train_form["device"].value())),
            "data": source if source in DATA_CHOICES else FOLDER,
            "folder": "" if source in DATA_CHOICES else source,
            "image_size": getattr(checkpoint.model_config, "image_size", self.image_size.value()),
            "channels": getattr(checkpoint.model_config, "in_channels", 0),
            "size": asdict(size_of(checkpoint.model_config)),
            "advanced": self.advanced.isChecked(),
            "preview_every": self.preview_every.value(),
            "save_every": self.save_every.value(),
            "runs_folder": self.runs_folder.text(),
        }
        self.apply_settings(stored)
        self.state.set_schedule_config(checkpoint.schedule_config)
        self._set_checkpoint(checkpoint.path, checkpoint.step)
        self.status.emit(f"{checkpoint.path.name}: step {checkpoint.step}; Continue trains it up to Steps")

    def _set_checkpoint(self, folder: Path, step: int) -> None:
        self.session.open_checkpoint(folder, step)
        self.run_label.setText(f"Checkpoint <b>{folder}</b> at step {step}")
        self._set_idle(not self.running)

    def _show_continue(self, idle: bool) -> None:
        """Continue is enabled while idle if it can train the checkpoint up to Steps as typed so far
        (the box commits only on Enter or leaving it); its tooltip says why not."""
        box = self.train_form["steps"].widget
        typed = box.cleanText()
        refusal = self.session.continue_refusal(int(typed) if typed.isdigit() else box.value())
        self.continue_button.setEnabled(idle and refusal is None)
        checkpoint, step = self.session.checkpoint, self.session.checkpoint_step
        self.continue_button.setToolTip(refusal or f"Train {checkpoint.name} on from step {step} up to Steps, with its own settings")

    def _sample(self) -> None:
        if self.session.checkpoint is not None:
            self.modelRequested.emit(str(self.session.checkpoint))

    def export(self) -> None:
        """File ▸ Export… on this panel: the loss curve as CSV."""
        if not len(self.session.loss_curve()[0]):
            self.status.emit("Nothing to export yet: train first")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export the loss curve", str(Path(self.preferences.folder("export")) / "loss.csv"), "CSV (*.csv)")
        if path:
            self.preferences.remember_folder("export", path)
            self.export_loss(Path(path))

    def export_loss(self, path: Path) -> None:
        try:
            self.session.export_loss(path)
        except DiffusionStudioError as exc:
            self.failed.emit("Export", str(exc))
        else:
            self.status.emit(f"Wrote {path}")

    # ---- running ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.runner.running

    def start(self) -> None:
        """A new run with the settings on screen, saved into a new folder under the runs folder."""
        try:
            config = self.train_config()
            if not config.data:
                raise SettingError("data", "choose a folder of images first")
            size = self.network_size()
        except SettingError as exc:
            self.failed.emit("Training", str(exc))
            return
        name = Path(config.data).name if self.data.currentData() == FOLDER else config.data
        output = Path(self.runs_folder.text().strip() or default_runs_folder()) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        channels = self.channels.currentData() or None
        self._launch(TrainingRequest(output, config, self.state.schedule.config, size, self.image_size.value(), channels,
                                     save_every=self.save_every.value(), preview_every=self.preview_every.value()))

    def continue_training(self) -> None:
        """Train the checkpoint on, up to Steps, with its own model, data and settings."""
        if self.session.checkpoint is None:
            return
        config = replace(TrainConfig(), steps=self.train_form["steps"].value(), device=self.train_form["device"].value())
        self._launch(TrainingRequest(self.session.checkpoint, config, self.state.schedule.config, NetworkSize(), resume=True,
                                     save_every=self.save_every.value(), preview_every=self.preview_every.value()))

    def _launch(self, request: TrainingRequest) -> None:
        if self.running:
            return
        self.save_settings()
        job = self.session.start(request)
        if not len(self.session.loss_curve()[0]):
            self._clear_plots()
        self.progress.setRange(0, 0)
        self.rate.setText("")
        self._set_idle(False)
        self.status.emit("Loading the data and building the network…")
        self.runner.start(job, self.update_interval, self.session.on_update, self.session.on_finished, self.session.on_failed)

    def toggle_pause(self) -> None:
        self.session.toggle_pause()

    def request_stop(self) -> None:
        """Stop after the current step; the job saves the checkpoint and reports back."""
        self.session.stop()

    def stop(self) -> None:
        """Stop and wait for the worker, which saves the checkpoint (the window is closing)."""
        self.runner.stop_and_wait()

    def _on_state(self, state: str) -> None:
        self.pause_button.setText("Resume" if state == "paused" else "Pause")
        message = {"paused": "Paused: Resume goes on from this step", "stopping": "Stopping after this step…"}
        if state in message:
            self.status.emit(message[state])
        elif state == "running" and self.running:
            self.status.emit("Training…")

    def _set_idle(self, idle: bool) -> None:
        for widget in (self.data, self.folder, self.browse_button, self.preset, self.prediction_form, self.advanced_box,
                       self.train_form, self.schedule_form,
                       self.image_size, self.channels, self.start_button, self.open_button):
            widget.setEnabled(idle)
        if idle:
            self._on_data()  # enables only what the data chosen uses
        self._show_continue(idle)
        self.sample_button.setEnabled(self.session.checkpoint is not None)
        self.pause_button.setEnabled(not idle)
        self.stop_button.setEnabled(not idle)
        self.pause_button.setText("Pause")

    def _clear_plots(self) -> None:
        """Empty plots say what will fill them: the plots over training steps hide their axes (and
        the colour bar) until the first losses (an empty auto-ranged axis reads 0…1), the loss by
        timestep is framed on t = 0…T."""
        self.raw_curve.setData([], [])
        self.smooth_curve.setData([], [])
        self.heatmap.clear()
        self.buckets.setOpts(x=[], height=[])
        self._show_loss_axes(False)
        self.bucket_plot.setRange(xRange=(0, self.state.schedule.timesteps), yRange=(0, 1), padding=0)

    def _show_loss_axes(self, shown: bool) -> None:
        # short titles: one wider than its plot would stretch the plot past its view (at 1024 px)
        titles = ((self.loss_plot, "Training loss", "Training loss: from the first steps"),
                  (self.heatmap_plot, "Loss by t over training", "Loss by t: from the first steps"))
        for plot, title, empty_title in titles:
            for axis in ("left", "bottom"):
                plot.showAxis(axis, shown)
            plot.setTitle(title if shown else empty_title)
        self.heatmap_bar.setVisible(shown)
        self.preview_item.clear()
        self.preview_cloud.setData(pos=np.zeros((0, 2)))
        self.preview_title.setText("Samples from the EMA model appear here while training")

    def _on_ready(self, info: RunInfo) -> None:
        self._show_loss_axes(True)
        self.bucket_plot.enableAutoRange()
        self.progress.setRange(0, info.total_steps)
        self.progress.setValue(info.start_step)
        self.run_label.setText(f"{info.description} → <b>{self.session.output}</b>")
        self.previews.setCurrentIndex(0 if info.reference is None else 1)
        self.reference_cloud.setData(pos=info.reference if info.reference is not None else np.zeros((0, 2)))
        skipped = f"; skipped {len(info.skipped)} unreadable file(s), first {info.skipped[0][0]}" if info.skipped else ""
        compiling = " (the first step waits for torch.compile)" if info.compiled else ""
        self.status.emit(f"Training from step {info.start_step} to {info.total_steps}{compiling}{skipped}")

    def _on_progress(self, update: TrainingUpdate) -> None:
        self.progress.setMaximum(update.total_steps)
        self.progress.setValue(update.step)
        self.rate.setText(f"loss {update.losses[-1]:.4f} · {update.images_per_second:,.0f} images/s · "
                          f"ETA {clock(update.eta_seconds)}")
        self.rate.setToolTip(f"learning rate {update.learning_rate:.2e}")
        steps, losses = self.session.loss_curve()
        self.raw_curve.setData(steps, losses)
        self.smooth_curve.setData(steps, smooth(losses))
        latest = update.loss_by_t[-1]
        width = self.session.info.timesteps / len(latest)
        self.buckets.setOpts(x=(np.arange(len(latest)) + 0.5) * width, height=np.nan_to_num(latest), width=0.9 * width)
        self._show_heatmap()
        if update.preview is not None:
            if update.preview.ndim == 3:
                show_pixels(self.preview_item, update.preview)
            else:
                self.preview_cloud.setData(pos=update.preview)
            self.preview_title.setText(f"EMA samples at step {update.preview_step} (DDIM, 20 steps)")
        self.stepShown.emit(update.step)

    def _show_heatmap(self) -> None:
        """The session's loss-by-t history as an image of log10 L: a column per report kept, spanning
        the steps since the one before (its running means are up to its step), and a row per range
        of t, spanning t = 0…T; the colour bar runs from the least to the greatest loss."""
        steps, rows = self.session.loss_by_t_history()
        image = np.log10(rows.T)
        spacing = (steps[-1] - steps[0]) / (len(steps) - 1) if len(steps) > 1 else 1.0
        left, timesteps = steps[0] - spacing, self.session.info.timesteps
        self.heatmap.setImage(image, autoLevels=False, rect=QRectF(left, 0, steps[-1] - left, timesteps))
        low = np.nanmin(image)
        high = max(np.nanmax(image), low + 1e-3)  # one value: still a range
        self.heatmap_bar.setLevels((low, high))
        self.heatmap_bar.axis.setTicks([log_ticks(low, high)])  # the image holds log10 L; the ticks read as L
        self.heatmap_plot.setRange(xRange=(left, steps[-1]), yRange=(0, timesteps), padding=0)

    def _on_saved(self, folder: str, step: int) -> None:
        self._set_checkpoint(Path(folder), step)
        self.preferences.add_recent("models", folder)

    def _on_finished(self, step: int, stopped: bool) -> None:
        how = "Stopped" if stopped else "Finished"
        self.status.emit(f"{how} at step {step}; saved {self.session.output}")

    def _on_failed(self, message: str) -> None:
        self.failed.emit("Training", message)
