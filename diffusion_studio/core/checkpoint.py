"""Checkpoints: a folder with config.json, model.safetensors and (to resume) training_state.pt.

- config.json: format version, model, schedule and training settings, step.
- model.safetensors: the EMA weights as "ema.<name>" and the raw weights as "model.<name>".
- training_state.pt: optimizer state, step and random state, read with
  torch.load(weights_only=True), which refuses anything but tensors and plain containers.

A save is atomic for the whole folder: it is written beside the target, then swapped in, so a
failure at any point leaves the last good checkpoint loadable. The folder's other files (a run's
logs and previews) move into the new copy. Loading never runs code from a file.
"""

from __future__ import annotations

import json
import pickle
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from diffusion_studio.core.atomic import PREVIOUS_SUFFIX, atomic_folder
from diffusion_studio.core.errors import CheckpointError, DiffusionStudioError, FileReadError, FileSaveError, SettingError
from diffusion_studio.core.files import check_regular, open_regular, read_json
from diffusion_studio.core.models import build_model
from diffusion_studio.core.models.config import ModelConfig, config_from_dict, config_to_dict
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.settings import check_settings
from diffusion_studio.core.train_config import TrainConfig

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "training_state.pt"
CHECKPOINT_FILES = (CONFIG_FILE, WEIGHTS_FILE, STATE_FILE)
"""What a save writes; anything else in the folder is the run's and is kept."""


@dataclass(frozen=True)
class Checkpoint:
    """A training run's state as a checkpoint holds it, its tensors on the CPU."""

    model_config: ModelConfig
    schedule_config: ScheduleConfig
    train_config: TrainConfig
    step: int
    ema_state: dict[str, torch.Tensor]
    model_state: dict[str, torch.Tensor]  # the raw weights (the EMA ones in an inference-only checkpoint)
    training_state: dict[str, Any] | None  # optimizer, step, random state; None in an inference-only checkpoint
    path: Path | None = None  # the folder it was read from; None for one not saved yet
    data_range: tuple[float, float] | None = None  # the training data's least and greatest value (None: not recorded)

    def network(self, device: torch.device | str = "cpu", use_ema: bool = True) -> torch.nn.Module:
        """The denoiser with these weights (the EMA ones by default), in eval mode."""
        model = build_model(self.model_config)
        model.load_state_dict(self.ema_state if use_ema else self.model_state)
        return model.to(device).eval()


def save_checkpoint(path: str | Path, checkpoint: Checkpoint, inference_only: bool = False) -> Path:
    """Write a checkpoint folder at ``path``, replacing any there atomically; the folder's files that
    are not the checkpoint's (CHECKPOINT_FILES) are kept, moved into the new copy before the swap.

    inference_only: keep only the EMA weights (no raw weights, no training state): half the size,
    enough to sample from, not to resume.
    """
    path = Path(path)
    config = {
        "format_version": FORMAT_VERSION,
        "model": config_to_dict(checkpoint.model_config),
        "schedule": asdict(checkpoint.schedule_config),
        "training": asdict(checkpoint.train_config),
        "step": checkpoint.step,
        "parameters": sum(v.numel() for v in checkpoint.ema_state.values()),
    }
    if checkpoint.data_range is not None:
        config["data_range"] = list(checkpoint.data_range)
    tensors = {f"ema.{k}": v.contiguous() for k, v in checkpoint.ema_state.items()}
    if not inference_only:
        tensors.update({f"model.{k}": v.contiguous() for k, v in checkpoint.model_state.items()})
    with atomic_folder(path, own=CHECKPOINT_FILES) as staging:
        try:
            save_file(tensors, str(staging / WEIGHTS_FILE), metadata={"step": str(checkpoint.step)})
            if not inference_only and checkpoint.training_state is not None:
                torch.save(checkpoint.training_state, staging / STATE_FILE)
        except (SafetensorError, RuntimeError) as exc:  # how they report a write that failed (a full disk)
            raise FileSaveError(path, str(exc).splitlines()[0]) from None
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return path


def _from_fields(cls: type, data: Any, what: str, folder: Path) -> Any:
    if not isinstance(data, dict):
        raise CheckpointError(f"'{folder.name}': {CONFIG_FILE} has no {what} settings")
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise CheckpointError(f"'{folder.name}': unknown {what} settings in {CONFIG_FILE}: {', '.join(sorted(unknown))}")
    made = cls(**data)
    check_settings(made)
    return made


def read_config(folder: Path) -> dict[str, Any]:
    """config.json of a checkpoint folder, checked for its format version."""
    file = folder / CONFIG_FILE
    if not file.exists():
        raise CheckpointError(f"'{folder.name}' is not a Diffusion Studio checkpoint: it has no {CONFIG_FILE}")
    try:
        config = read_json(file)
    except FileReadError as exc:
        raise CheckpointError(str(exc)) from None
    if not isinstance(config, dict) or "format_version" not in config:
        raise CheckpointError(f"'{folder.name}': {CONFIG_FILE} is not a Diffusion Studio checkpoint config")
    if config["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"'{folder.name}' has checkpoint format {config['format_version']}; this version reads format {FORMAT_VERSION}"
        )
    return config


def _load_training_state(file: Path, folder: Path) -> dict[str, Any] | None:
    if not file.exists():
        return None
    try:
        with open_regular(file) as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's warning on a pickle it refuses: the refusal says it
            state = torch.load(handle, map_location="cpu", weights_only=True)
    except FileReadError as exc:
        raise CheckpointError(str(exc)) from None
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"'{folder.name}': {STATE_FILE} was refused: it holds more than plain tensors and numbers "
            f"(possibly code), which is never run ({str(exc).splitlines()[0]})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"'{folder.name}': {STATE_FILE} is damaged ({str(exc).splitlines()[0]})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"'{folder.name}': {STATE_FILE} is damaged (it holds a {type(state).__name__}, not the training state)")
    return state


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint folder; any missing, damaged or mismatched part raises CheckpointError.

    If the folder is missing but a save was interrupted while swapping, the previous good copy
    (``<name>.previous``) is read instead.
    """
    folder = Path(path)
    if not folder.exists() and folder.with_name(folder.name + PREVIOUS_SUFFIX).is_dir():
        folder = folder.with_name(folder.name + PREVIOUS_SUFFIX)
    if not folder.is_dir():
        raise CheckpointError(f"'{Path(path).name}' is not a checkpoint folder (no such folder)")
    config = read_config(folder)
    try:
        model_config = config_from_dict(config.get("model") or {})
        schedule_config = _from_fields(ScheduleConfig, config.get("schedule"), "schedule", folder)
        train_config = _from_fields(TrainConfig, config.get("training", {}), "training", folder)
        data_range = _data_range(config.get("data_range"))
        step = _step(config.get("step", 0))
    except (TypeError, DiffusionStudioError) as exc:
        raise CheckpointError(f"'{folder.name}': {exc}") from None
    weights = folder / WEIGHTS_FILE
    if not weights.exists():
        raise CheckpointError(f"'{folder.name}' has no {WEIGHTS_FILE}")
    try:
        tensors = load_file(str(check_regular(weights)))
    except FileReadError as exc:
        raise CheckpointError(str(exc)) from None
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CheckpointError(f"'{folder.name}': {WEIGHTS_FILE} is damaged or truncated ({exc})") from None
    ema = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
    raw = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    _check_weights(folder, model_config, ema)
    _check_weights(folder, model_config, raw or ema)
    return Checkpoint(
        model_config=model_config,
        schedule_config=schedule_config,
        train_config=train_config,
        step=step,
        ema_state=ema,
        model_state=raw or ema,
        training_state=_load_training_state(folder / STATE_FILE, folder),
        path=folder,
        data_range=data_range,
    )


def _step(value: Any) -> int:
    """The step a checkpoint is at: a whole number from 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SettingError("step", f"must be a whole number from 0, got {value!r}")
    return value


def _data_range(value: Any) -> tuple[float, float] | None:
    """A stored [low, high] as two floats, low < high (absent in checkpoints made before it was kept)."""
    if value is None:
        return None
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise SettingError("data_range", f"must be [low, high], got {value!r}") from None
    if not low < high:
        raise SettingError("data_range", f"must be [low, high] with low < high, got {value!r}")
    return low, high


def _check_weights(folder: Path, model_config: ModelConfig, state: dict[str, torch.Tensor]) -> None:
    """The weights must be exactly those of the configured network, name for name, shape for shape."""
    with torch.device("meta"):  # shapes only, nothing allocated
        expected = {k: tuple(v.shape) for k, v in build_model(model_config).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    missing, unexpected = sorted(expected.keys() - got.keys()), sorted(got.keys() - expected.keys())
    wrong = sorted(k for k in expected.keys() & got.keys() if expected[k] != got[k])
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            parts.append(f"{len(wrong)} of the wrong shape (e.g. {wrong[0]}: {got[wrong[0]]} ≠ {expected[wrong[0]]})")
        raise CheckpointError(
            f"'{folder.name}': the weights do not match the model in {CONFIG_FILE}: {'; '.join(parts)}"
        )
