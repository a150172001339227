"""Training: pick data, a network and settings; watch the loss fall and the EMA model's samples form.

The panel binds to a TrainingSession (diffusion_studio.app.training), whose Job trains in a
GeneratorWorker on a QThread; the panel paints what the session reports and never waits for the
worker except when the window closes.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from diffusion_studio.core.data.datasets import TOY_SETS
from diffusion_studio.core.durations import clock
from diffusion_studio.core.errors import DiffusionStudioError, SettingError
from diffusion_studio.core.models.presets import PRESETS, NetworkSize
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.gui.panel import Panel
from diffusion_studio.gui.preferences import Preferences
from diffusion_studio.gui.schedule_form import ScheduleForm
from diffusion_studio.gui.settings_form import SettingsForm, align_labels
from diffusion_studio.app.state import StudioState
from diffusion_studio.app.training import (
    DATA_CHOICES, FOLDER, RunInfo, TrainingRequest, TrainingSession, TrainingSettings, TrainingUpdate, network_parameters,
    preset_parameters, restore_settings,
)
from diffusion_studio.gui.columns import settings_column
from diffusion_studio.gui.tasks import TaskRunner, WorkerThread, find_devices
from diffusion_studio.gui.training_plots import TrainingPlots
from diffusion_studio.gui.guard import guarded

UPDATE_INTERVAL_S = 0.25
"""At most this often a progress update crosses to the UI thread, whatever the step rate."""
SETTINGS_KEY = "training/settings"
"""Where the preferences keep the form's TrainingSettings (as JSON)."""
UNET_SETTINGS = ("base_channels", "channel_mults", "num_res_blocks", "attention_resolutions", "dropout", "num_heads")
MLP_SETTINGS = ("hidden", "num_layers")
"""The NetworkSize settings that image data (a U-Net) and point data (an MLP) use."""


class TrainingPanel(Panel):
    """Settings on the left; on the right the loss and the loss by t over training, then the loss
    by t now and the EMA preview."""

    stepShown = Signal(int)  # a progress update is on screen: the step it reached

    def __init__(self, state: StudioState, tasks: TaskRunner, preferences: Preferences, session: TrainingSession,
                 parent: QWidget | None = None) -> None:
        super().__init__(state, tasks, preferences, parent)
        self.session = session
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
        self.apply_settings(restore_settings(self.preferences.value(SETTINGS_KEY, "", str)))
        self.plots.clear(self.state.schedule.timesteps)
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
        self.image_size = self._spin(4, 256, "Images are resized and centre-cropped to this square; "
                                             "the U-Net halves it once per level after the first")
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
        self.plots = TrainingPlots(self.session)

        right = QVBoxLayout()
        right.addWidget(self.schedule_form)
        right.addWidget(self.schedule_warning)
        right.addLayout(controls)
        right.addLayout(files)
        right.addWidget(self.run_label)
        right.addWidget(self.plots, 1)
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

    def settings(self) -> TrainingSettings:
        """Everything on the form (with the default network size while its lists cannot be read)."""
        try:
            size = self.network_size()
        except SettingError:
            size = NetworkSize()
        return TrainingSettings(self.train_config(), self.data.currentData(), self.folder.text(), self.image_size.value(),
                                self.channels.currentData(), size, self.advanced.isChecked(), self.preview_every.value(),
                                self.save_every.value(), self.runs_folder.text())

    def save_settings(self) -> None:
        self.preferences.set_value(SETTINGS_KEY, self.settings().to_json())

    def apply_settings(self, settings: TrainingSettings) -> None:
        """Fill the form with these settings (the device, if this machine has it)."""
        self.data.setCurrentIndex(max(self.data.findData(settings.data), 0))
        self.folder.setText(settings.folder)
        self.image_size.setValue(settings.image_size)
        self.channels.setCurrentIndex(max(self.channels.findData(settings.channels), 0))
        self._show_size(settings.size)
        self.advanced.setChecked(settings.advanced)
        self.advanced_box.setVisible(settings.advanced)
        self._saved_device = settings.training.device
        for form in (self.prediction_form, self.tuning_form, self.train_form):
            form.set_values(replace(settings.training, device="auto"))
        self._select_device()
        self.preview_every.setValue(settings.preview_every)
        self.save_every.setValue(settings.save_every)
        self.runs_folder.setText(str(settings.runs))
        self.session.keep_settings(settings.data)
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

    def _show_parameters(self) -> None:
        """The parameter count of the network on the form and of each preset (once torch is loaded)."""
        if "torch" not in sys.modules:
            self.parameters.setText("")
            return
        shape = self.settings().sample_shape()
        for i, (name, count) in enumerate(preset_parameters(shape).items()):
            self.preset.setItemText(i, f"{name.capitalize()} · " + (f"not for {shape[-1]}×{shape[-1]} images" if count is None
                                                                     else f"{count / 1e6:.2f}M parameters"))
        try:
            count = network_parameters(self.network_size(), shape)
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
        self.apply_settings(self.settings().from_checkpoint(checkpoint))
        self.session.adopt_checkpoint(checkpoint, self.state)
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
        path, _ = QFileDialog.getSaveFileName(self, "Export the loss curve", str(Path(self.preferences.folder("export")) / "loss.csv"),
                                              "CSV (*.csv)")
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
            request = replace(self.settings(), size=self.network_size()).request(self.state.schedule.config)
        except SettingError as exc:
            self.failed.emit("Training", str(exc))
            return
        self._launch(request)

    def continue_training(self) -> None:
        """Train the checkpoint on, up to Steps, with its own model, data and settings."""
        if self.session.checkpoint is not None:
            self._launch(self.session.continue_request(self.settings(), self.state.schedule.config))

    def _launch(self, request: TrainingRequest) -> None:
        if self.running:
            return
        self.save_settings()
        try:
            job = self.session.start(request)
        except DiffusionStudioError as exc:  # the run's folder cannot be made
            self.failed.emit("Training", str(exc))
            return
        if not len(self.session.loss_curve()[0]):
            self.plots.clear(self.state.schedule.timesteps)
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

    def _on_ready(self, info: RunInfo) -> None:
        self.plots.start(info)
        self.progress.setRange(0, info.total_steps)
        self.progress.setValue(info.start_step)
        self.run_label.setText(f"{info.description} → <b>{self.session.output}</b>")
        skipped = f"; skipped {len(info.skipped)} unreadable file(s), first {info.skipped[0][0]}" if info.skipped else ""
        compiling = " (the first step waits for torch.compile)" if info.compiled else ""
        self.status.emit(f"Training from step {info.start_step} to {info.total_steps}{compiling}{skipped}")

    def _on_progress(self, update: TrainingUpdate) -> None:
        self.progress.setMaximum(update.total_steps)
        self.progress.setValue(update.step)
        self.rate.setText(f"loss {update.losses[-1]:.4f} · {update.images_per_second:,.0f} images/s · "
                          f"ETA {clock(update.eta_seconds)}")
        self.rate.setToolTip(f"learning rate {update.learning_rate:.2e}")
        self.plots.show_progress(update)
        self.stepShown.emit(update.step)

    def _on_saved(self, folder: str, step: int) -> None:
        self._set_checkpoint(Path(folder), step)
        self.preferences.add_recent("models", folder)

    def _on_finished(self, step: int, stopped: bool) -> None:
        how = "Stopped" if stopped else "Finished"
        self.status.emit(f"{how} at step {step}; saved {self.session.output}")

    def _on_failed(self, message: str) -> None:
        self.failed.emit("Training", message)
