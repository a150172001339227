"""What a reverse-process run is set up with, as forms: the sampler, its own options, the run's
settings and the device (SamplerSettings). The Sampling and Inpainting panels both read their
SampleConfig from here (and their model from a gui.model_box.ModelBox)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from diffusion_studio.core.sample_config import SampleConfig, validate_sample_config
from diffusion_studio.core.samplers import SAMPLERS, sampler_class
from diffusion_studio.gui.settings_form import SettingsForm, align_labels
from diffusion_studio.gui.tasks import DevicePicker, TaskRunner

if TYPE_CHECKING:
    from diffusion_studio.core.loaded_model import LoadedModel

RUN_SETTINGS = ("steps", "spacing", "num", "seed", "clip", "record_every")
"""The SampleConfig fields under the sampler's own options, in this order."""


class SamplerSettings(QWidget):
    """The sampler (a menu of the registry's), the chosen one's options (the others hidden), the
    run's settings and the device, each form made from the settings metadata. Choosing a sampler
    sets the steps it is usually run with; ``set_model`` fits the forms to a model. The devices of
    this machine are found, off the UI thread, when the device menu is first shown."""

    edited = Signal()  # the user committed a value (the sampler, an option or a setting)
    failed = Signal(str, str)  # title, message: the devices could not be found

    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model: LoadedModel | None = None
        self.sampler_form = SettingsForm(SampleConfig, ["sampler"])
        self.option_forms = {name: SettingsForm(cls.Options) for name, cls in SAMPLERS.items()}
        self.run_form = SettingsForm(SampleConfig, RUN_SETTINGS)
        self.run_form.set_values(SampleConfig(clip=True))
        self.device = DevicePicker(tasks, lambda message: self.failed.emit("Devices", message),
                                   "Where the network runs; the same seed gives the same samples as "
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
