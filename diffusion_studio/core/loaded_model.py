"""A model opened to sample from: ours, the bundled default, or a diffusers UNet2DModel or pipeline folder."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from diffusion_studio.core.checkpoint import Checkpoint, load_checkpoint
from diffusion_studio.core.data.datasets import TOY_SETS, is_points_file, load_digits, load_points_file, load_toy
from diffusion_studio.core.data.images import load_image
from diffusion_studio.core.denoiser import Denoiser, Guidance
from diffusion_studio.core.errors import DataError, SettingError
from diffusion_studio.core.models.config import is_image_model, sample_shape
from diffusion_studio.core.models.diffusers_unet import diffusers_unet_folder, load_diffusers_unet
from diffusion_studio.core.schedules import NoiseSchedule, ScheduleConfig
from diffusion_studio.resources import DEFAULT_MODEL


@dataclass(frozen=True)
class LoadedModel:
    """A trained network with what reading it needs to know. Every panel shares one; each asks for
    a ``denoiser`` on its own device, and gets its own copy of the weights there, so that two panels
    on two devices never move the network under each other."""

    network: torch.nn.Module  # eval mode, on the device it was opened on; never moved
    schedule_config: ScheduleConfig
    prediction: str  # "eps", "x0" or "v"
    sample_shape: tuple[int, ...]  # (C, H, W) or (D,)
    source: str  # the folder it came from
    data: str  # what it was trained on, when known ("" otherwise)
    data_range: tuple[float, float] | None = None  # where the data's values lie; None: unknown
    _copies: dict[torch.device, torch.nn.Module] = field(default_factory=dict, init=False, repr=False, compare=False)
    _copying: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def num_classes(self) -> int:
        """K, the classes a class-conditional network takes (labels 0…K−1, K the null label); 0 if none."""
        return getattr(self.network, "num_classes", 0)

    @property
    def device(self) -> torch.device:
        """Where ``network`` lives (the CPU for a network without weights)."""
        return next(self.network.parameters(), torch.zeros(0)).device

    def network_on(self, device: torch.device | str) -> torch.nn.Module:
        """The network on ``device``: itself where it lives, elsewhere a copy made once (thread-safe)."""
        device = torch.device(device)
        if _same_device(device, self.device):
            return self.network
        with self._copying:
            if device not in self._copies:
                self._copies[device] = copy.deepcopy(self.network).to(device)
            return self._copies[device]

    def denoiser(self, device: torch.device | str, x0_range: tuple[float, float] | None = None,
                 guidance: Guidance | None = None) -> Denoiser:
        """The seam that reads this network on ``device`` (core.denoiser): x̂_0 kept within
        ``x0_range`` (None: never), guided towards a class when ``guidance`` says so."""
        return Denoiser(self.network_on(device), NoiseSchedule(self.schedule_config), self.prediction, x0_range, guidance)

    @property
    def is_image(self) -> bool:
        return len(self.sample_shape) == 3

    def read_image(self, path: str | Path) -> np.ndarray:
        """A picture file as this model's input x_0: C×H×W in [−1, 1], its shorter side resized to
        the model's size and center-cropped, in the model's channels (gray ↔ RGB converted).
        ImageLoadError if the file cannot be read; SettingError for a model of points."""
        if not self.is_image:
            raise SettingError("model", "this model makes 2-D points, not images")
        channels, size, _ = self.sample_shape
        return np.ascontiguousarray(load_image(path, channels=channels, square=size).transpose(2, 0, 1))

    def training_points(self) -> np.ndarray | None:
        """The points a 2-D model learned, when it was trained on a built-in set (they are generated
        the same way every time) or on a points file that is still there; None for images and
        unknown data."""
        if self.is_image:
            return None
        if self.data in TOY_SETS:
            return load_toy(self.data).data
        if is_points_file(self.data) and Path(self.data).is_file():
            try:
                return load_points_file(self.data).data
            except DataError:
                return None
        return None

    def training_data(self) -> np.ndarray | None:
        """What the model learned, when it is at hand: a 2-D model's training_points, or for a model
        of the bundled digits the training digits at its size and channels (N×C×H×W); None else."""
        if not self.is_image:
            return self.training_points()
        if self.data != "digits":
            return None
        channels, size, _ = self.sample_shape
        digits = load_digits(size).data
        return digits if channels == 1 else np.repeat(digits, channels, axis=1)


def _same_device(a: torch.device, b: torch.device) -> bool:
    """Whether two devices are one ("cuda" and "cuda:0" are, on a one-GPU machine as ever)."""
    return a.type == b.type and (a.index or 0) == (b.index or 0)


IMAGE_RANGE = (-1.0, 1.0)
"""Every image model's data lies in [−1, 1]."""


def _data_range(checkpoint: Checkpoint) -> tuple[float, float] | None:
    """The range the checkpoint recorded; for point models saved before it was recorded, the range
    of the built-in set they were trained on (the sets are generated the same way every time)."""
    if is_image_model(checkpoint.model_config):
        return IMAGE_RANGE
    if checkpoint.data_range is not None:
        return checkpoint.data_range
    if checkpoint.train_config.data in TOY_SETS:
        return load_toy(checkpoint.train_config.data).value_range
    return None


def model_folder(source: str | Path) -> Path:
    """The folder a --model names: "default" is the bundled model."""
    return DEFAULT_MODEL if str(source) == "default" else Path(source)


def open_model(source: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """A checkpoint folder, "default" (the bundled model), a diffusers UNet2DModel folder or a
    diffusers pipeline folder holding one (``unet/``, with its ``scheduler/``)."""
    folder = model_folder(source)
    unet = diffusers_unet_folder(folder) if folder.is_dir() else None
    if unet is not None:
        network, schedule, prediction, shape = load_diffusers_unet(unet)
        return LoadedModel(network.to(device), schedule, prediction, shape, str(folder), "", IMAGE_RANGE)
    checkpoint = load_checkpoint(folder)
    return LoadedModel(
        network=checkpoint.network(device),
        schedule_config=checkpoint.schedule_config,
        prediction=checkpoint.train_config.prediction,
        sample_shape=sample_shape(checkpoint.model_config),
        source=str(checkpoint.path),
        data=checkpoint.train_config.data,
        data_range=_data_range(checkpoint),
    )
