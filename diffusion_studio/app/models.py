"""Opening models for every panel, without widgets: which dropped paths are models, reading one
(off the UI thread: torch loads there), saying what it is, and making it the shared state's model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from psygnal import Signal

from diffusion_studio.app.state import StudioState
from diffusion_studio.resources import DEFAULT_MODEL

if TYPE_CHECKING:
    from diffusion_studio.core.loaded_model import LoadedModel

MODEL_MARKERS = ("config.json", "model.safetensors", "model_index.json")
"""A dropped folder holding one of these is a model (ours, a diffusers UNet2DModel or DDPMPipeline folder), not images."""


def split_drop(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """Dropped paths → (model folders, everything else). A model's own file stands for its folder."""
    models, others = [], []
    for path in paths:
        if path.is_file() and path.name in MODEL_MARKERS:
            models.append(path.parent)
        elif path.is_dir() and any((path / marker).is_file() for marker in MODEL_MARKERS):
            models.append(path)
        else:
            others.append(path)
    return models, others


def describe_model(model: LoadedModel) -> str:
    """One line about a LoadedModel: what it makes, from what, how big."""
    shape = model.sample_shape
    parameters = sum(p.numel() for p in model.network.parameters())
    made = f"{shape[1]}×{shape[2]} {'gray' if shape[0] == 1 else 'RGB'} images" if model.is_image else f"{shape[0]}-D points"
    trained = f", trained on {model.data}" if model.data else ""
    return (
        f"{Path(model.source).name}: {made}, {parameters / 1e6:.1f}M parameters, "
        f"{model.prediction}-prediction, {model.schedule_config.name} schedule, T = {model.schedule_config.timesteps}{trained}"
    )


@dataclass(frozen=True)
class OpenedModel:
    """A model read from its folder, ready to become the state's."""

    folder: Path  # where it was read from
    model: LoadedModel
    description: str  # describe_model's line


def model_folder(source: str | Path) -> Path:
    """The folder a request names: "default" is the bundled model."""
    return DEFAULT_MODEL if str(source) == "default" else Path(source)


def read_model(folder: Path) -> OpenedModel:
    """Read the model in ``folder`` (DiffusionStudioError, saying why, if it cannot be); run it
    off the UI thread, as it loads torch and the weights."""
    from diffusion_studio.core.loaded_model import open_model

    model = open_model(folder)
    return OpenedModel(folder, model, describe_model(model))


class ModelSession:
    """Opens models into the shared state: ``read_model`` on a worker thread, then ``on_read`` on
    the UI thread, where the state gets the model (every panel sees ``modelChanged``)."""

    opened = Signal(object)  # OpenedModel: it is the state's model now

    def __init__(self, state: StudioState) -> None:
        self.state = state

    def on_read(self, opened: OpenedModel) -> None:
        """A model read by ``read_model`` becomes the state's."""
        self.state.set_model(opened.model)
        self.opened.emit(opened)
