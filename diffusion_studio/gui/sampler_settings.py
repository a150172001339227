"""What a reverse-process run is set up with: the model (ModelChooser) and, as forms, the sampler,
its own options, the run's settings and the device (SamplerSettings). The Sampling and Inpainting
panels both read their model and their SampleConfig from here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from diffusion_studio.app.state import StudioState
from diffusion_studio.core.sample_config import SampleConfig, validate_sample_config
from diffusion_studio.core.samplers import SAMPLERS, sampler_class
from diffusion_studio.gui.preferences import Preferences
from diffusion_studio.gui.settings_form import SettingsForm, align_labels
from diffusion_studio.gui.tasks import TaskRunner, find_devices

if TYPE_CHECKING:
    from diffusion_studio.core.loaded_model import LoadedModel

def model_line(model: LoadedModel) -> str:
    """The model in a few words (rich text): its folder, what it makes, its target and schedule."""
    shape = model.sample_shape
    kind = f"{shape[1]}×{shape[2]} {'gray' if shape[0] == 1 else 'RGB'}" if model.is_image else f"{shape[0]}-D points"
    return (f"<b>{Path(model.source).name}</b>: {kind}, {model.prediction}-prediction, "
            f"{model.schedule_config.name} T = {model.schedule_config.timesteps}")


class ModelChooser(QWidget):
    """The studio's model in a line, and buttons that ask for another: the bundled one, or a folder.
    The window opens what is asked for (``requested``) into the state. On first show, with no
    model yet, it asks for the bundled one, so a panel works on first launch."""

    requested = Signal(str)  # "default" or a folder

    def __init__(self, state: StudioState, preferences: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.preferences = preferences
        self._shown_before = False
        self.label = QLabel("No model yet")
        self.label.setWordWrap(True)
        self.default_button = QPushButton("Bundled model")
        self.default_button.setToolTip("The bundled digits U-Net (16×16 gray)")
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("A checkpoint folder (ours or a diffusers UNet2DModel); or drop it on the window")
        buttons = QHBoxLayout()
        buttons.addWidget(self.default_button)
        buttons.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addLayout(buttons)
        self.default_button.clicked.connect(lambda: self.requested.emit("default"))
        self.open_button.clicked.connect(self._ask)
        state.modelChanged.connect(self._on_model)
        self._on_model()

    def _ask(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a model (checkpoint folder)", self.preferences.folder("model"))
        if folder:
            self.preferences.remember_folder("model", Path(folder).parent)
            self.requested.emit(folder)

    def _on_model(self) -> None:
        if self.state.model is not None:
            self.label.setText(model_line(self.state.model))

    def showEvent(self, event) -> None:
        if not self._shown_before:
            self._shown_before = True
            if self.state.model is None:
                self.label.setText("Opening the bundled model…")
                self.requested.emit("default")
        super().showEvent(event)


RUN_SETTINGS = ("steps", "spacing", "num", "seed", "clip", "record_every")
"""The SampleConfig fields under the sampler's own options, in this order."""


class SamplerSettings(QWidget):
    """The sampler (a menu of the registry's), the chosen one's options (the others hidden), the
    run's settings and the device, each form made from the settings metadata. Choosing a sampler
    sets the steps it is usually run with; ``set_model`` fits the forms to a model. The devices of
    this machine are found, off the UI thread, when the forms are first shown."""

    edited = Signal()  # the user committed a value (the sampler, an option or a setting)
    failed = Signal(str, str)  # title, message: the devices could not be found

    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tasks = tasks
        self.model: LoadedModel | None = None
        self._shown_before = False
        self.sampler_form = SettingsForm(SampleConfig, ["sampler"])
        self.option_forms = {name: SettingsForm(cls.Options) for name, cls in SAMPLERS.items()}
        self.run_form = SettingsForm(SampleConfig, RUN_SETTINGS)
        self.run_form.set_values(SampleConfig(clip=True))
        self.device = QComboBox()
        self.device.addItem("Best available", "auto")
        self.device.setToolTip("Where the network runs; the same seed gives the same samples as "
                               "the command line's --device on that device")
        self.run_form.add_row("Device", self.device)
        align_labels(self.sampler_form, self.run_form, *self.option_forms.values())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for form in (self.sampler_form, *self.option_forms.values(), self.run_form):
            layout.addWidget(form)
        self.sampler_form.edited.connect(self._on_sampler)
        for form in (*self.option_forms.values(), self.run_form):
            form.edited.connect(lambda _name: self.edited.emit())
        self._show_options()

    @property
    def sampler(self) -> str:
        return self.sampler_form["sampler"].value()

    def config(self) -> SampleConfig:
        """The settings on screen (SettingError if they cannot be used)."""
        config = SampleConfig(sampler=self.sampler, **self.run_form.values(), options=self.option_forms[self.sampler].values())
        validate_sample_config(config)
        return config

    def set_model(self, model: LoadedModel) -> None:
        """Steps up to the model's T (the sampler's usual number of them), and x̂_0 kept within the
        data's range when the model records it."""
        self.model = model
        self.run_form["steps"].set_maximum(model.schedule_config.timesteps)
        self.run_form.set_values({"clip": model.data_range is not None})
        self.run_form.set_enabled(["clip"], model.data_range is not None)
        self._show_options()

    def _on_sampler(self, _name: str) -> None:
        self._show_options()
        self.edited.emit()

    def _show_options(self) -> None:
        """Show the chosen sampler's own settings, and the steps it is usually run with."""
        for name, options in self.option_forms.items():
            options.setVisible(name == self.sampler)
        if self.model is not None:
            steps = self.run_form["steps"]
            steps.set_value(sampler_class(self.sampler).default_steps or steps.widget.maximum())

    def showEvent(self, event) -> None:
        if not self._shown_before:
            self._shown_before = True
            self.tasks.start(find_devices, self._on_devices, lambda message: self.failed.emit("Devices", message))
        super().showEvent(event)

    def _on_devices(self, devices: Sequence[tuple[str, str]]) -> None:
        self.device.setItemText(0, f"Best available: {devices[0][1]}")
        for name, label in devices:
            self.device.addItem(label, name)
