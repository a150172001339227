"""Sampling from a diffusers ``UNet2DModel`` folder (config.json + diffusion_pytorch_model.safetensors),
alone or as the ``unet/`` of a pipeline folder (model_index.json, unet/, scheduler/).

Needs the optional ``diffusers`` package. diffusers counts timesteps 0…T−1, as our networks'
index does, so the model plugs into our samplers unchanged. The schedule and the prediction come
from the pipeline's ``scheduler/scheduler_config.json`` when there is one, else Ho et al.'s
(linear β 1e-4 → 0.02, T = 1000, ε). A scheduler setting that would change the samples and that
we do not implement is refused by name, never ignored; the settings of how to sample (timestep
spacing, variance type β_t or β̃_t, clipping x̂_0) are left to our sampler's own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from diffusion_studio.core.errors import CheckpointError, SettingError
from diffusion_studio.core.schedules import ScheduleConfig, config_from_betas

MODEL_INDEX = "model_index.json"
UNET_FOLDER = "unet"
UNET_CONFIG = "config.json"
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
SCHEDULER_CONFIG = Path("scheduler") / "scheduler_config.json"
DIFFUSERS_SCHEDULES = {"linear": "linear", "scaled_linear": "quadratic", "squaredcos_cap_v2": "cosine", "sigmoid": "sigmoid"}
"""diffusers' beta_schedule → ours (diffusers' "scaled_linear" interpolates √β: our "quadratic")."""
DIFFUSERS_PREDICTIONS = {"epsilon": "eps", "sample": "x0", "v_prediction": "v"}
"""diffusers' prediction_type → ours."""
PIPELINE_COMPONENTS = {"unet", "scheduler"}
"""What a pixel-space pipeline (DDPMPipeline, DDIMPipeline) holds; a VAE or text encoder beside them
means the U-Net works in another space than pixels."""
_HO = {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02, "beta_schedule": "linear", "prediction_type": "epsilon"}
_KARRAS = {**_HO, "beta_start": 0.00085, "beta_end": 0.012}
_LATENT = {**_KARRAS, "beta_schedule": "scaled_linear"}
SCHEDULER_DEFAULTS = {
    **dict.fromkeys(("DDPMScheduler", "DDPMParallelScheduler", "DDIMScheduler", "DDIMParallelScheduler",
                     "DDIMInverseScheduler", "PNDMScheduler", "LMSDiscreteScheduler", "EulerDiscreteScheduler",
                     "EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler",
                     "DPMSolverMultistepInverseScheduler", "DPMSolverSinglestepScheduler", "DEISMultistepScheduler",
                     "UniPCMultistepScheduler", "SASolverScheduler", "RePaintScheduler"), _HO),
    **dict.fromkeys(("HeunDiscreteScheduler", "KDPM2DiscreteScheduler", "KDPM2AncestralDiscreteScheduler",
                     "DPMSolverSDEScheduler"), _KARRAS),
    **dict.fromkeys(("LCMScheduler", "TCDScheduler"), _LATENT),
}
"""The β-schedule (VP) scheduler classes we read, each with the defaults its diffusers ``__init__`` gives the
settings we read: a saved config leaves out what it did not change (diffusers 0.42)."""
_REFUSED_CLASSES = {
    **dict.fromkeys(("ScoreSdeVeScheduler", "KarrasVeScheduler", "EDMEulerScheduler", "EDMDPMSolverMultistepScheduler",
                     "CMStochasticIterativeScheduler"), "a variance-exploding (σ) scheduler"),
    **dict.fromkeys(("FlowMatchEulerDiscreteScheduler", "FlowMatchHeunDiscreteScheduler", "FlowMatchLCMScheduler"),
                    "a flow-matching scheduler"),
}
"""Scheduler classes refused by kind: their path is not a β schedule."""
_REFUSED = {
    "rescale_betas_zero_snr": "rescaling β so that ᾱ_T = 0 (Lin et al. 2024) is not implemented here",
    "thresholding": "dynamic thresholding of x̂_0 (Saharia et al. 2022) is not implemented here "
                    "(our samplers keep x̂_0 in [−1, 1] instead)",
}
"""Scheduler settings that change the samples, refused when true."""


def is_diffusers_unet(folder: Path) -> bool:
    """True if the folder holds a diffusers UNet2DModel in safetensors."""
    try:
        config = json.loads((folder / UNET_CONFIG).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("_class_name") == "UNet2DModel"


def diffusers_unet_folder(folder: Path) -> Path | None:
    """The UNet2DModel folder a folder names: itself, or the ``unet/`` of a pipeline folder; None otherwise."""
    if is_diffusers_unet(folder):
        return folder
    if (folder / MODEL_INDEX).is_file() and is_diffusers_unet(folder / UNET_FOLDER):
        return folder / UNET_FOLDER
    return None


class DiffusersDenoiser(nn.Module):
    """network(x_t, index) → unet(x_t, index).sample."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return self.unet(x, index).sample


def import_diffusers(purpose: str) -> Any:
    """The diffusers package, or CheckpointError saying how to install it (``purpose``: what needs it)."""
    try:
        import diffusers
    except ImportError:
        raise CheckpointError(f"{purpose}; install the optional extra for it: pip install -e '.[diffusers]'") from None
    return diffusers


def _check_pipeline(folder: Path) -> None:
    """A U-Net inside a pipeline whose other parts (a VAE, a text encoder) we would not run is refused."""
    index_file = folder.parent / MODEL_INDEX
    if not index_file.is_file():
        return
    try:
        index = json.loads(index_file.read_text())
        if not isinstance(index, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"'{folder.parent.name}': {MODEL_INDEX} is damaged ({exc})") from None
    others = sorted(k for k, v in index.items()  # components are [library, class]; [null, null] is one left out
                    if isinstance(v, list) and len(v) == 2 and v[1] is not None and k not in PIPELINE_COMPONENTS)
    if others:
        raise CheckpointError(
            f"'{folder.parent.name}' is a {index.get('_class_name', 'diffusers')} with {', '.join(others)} besides its "
            f"U-Net: only pixel-space pipelines (unet and scheduler alone, as DDPMPipeline) are sampled here"
        )


def schedule_from_scheduler_config(config: dict[str, Any]) -> tuple[ScheduleConfig, str]:
    """(schedule, prediction) of a diffusers scheduler config; SettingError naming any setting that
    would change the samples and that we do not implement.

    The class (``_class_name``; DDPMPipeline's ``DDPMScheduler`` when there is none) decides: its diffusers
    defaults fill the settings the config leaves out; variance-exploding and flow-matching classes and
    classes we do not know are refused by name."""
    kind = config.get("_class_name", "DDPMScheduler")
    if kind in _REFUSED_CLASSES:
        raise SettingError("_class_name", f"{kind!r} is {_REFUSED_CLASSES[kind]}, not one we sample (we read "
                           "β-schedule schedulers such as DDPMScheduler and DDIMScheduler)")
    if kind not in SCHEDULER_DEFAULTS:
        raise SettingError("_class_name", f"{kind!r} is not a scheduler we read (we read {', '.join(SCHEDULER_DEFAULTS)})")
    config = {**SCHEDULER_DEFAULTS[kind], **config}
    for key, reason in _REFUSED.items():
        if config.get(key):
            raise SettingError(key, f"{config[key]!r}: {reason}")
    variance = config.get("variance_type")
    if variance in ("learned", "learned_range"):
        raise SettingError("variance_type", f"'{variance}': learned variances (Nichol & Dhariwal) are not implemented here; "
                           "our samplers use a fixed σ_t²")
    prediction = config["prediction_type"]
    if prediction not in DIFFUSERS_PREDICTIONS:
        raise SettingError("prediction_type", f"{prediction!r} is not implemented here (we read {', '.join(DIFFUSERS_PREDICTIONS)})")
    timesteps = int(config["num_train_timesteps"])
    if config.get("trained_betas") is not None:
        schedule = config_from_betas(config["trained_betas"])
        if schedule is None:
            raise SettingError("trained_betas", "these β are none of our named schedules (linear, quadratic, "
                               "cosine), and a schedule of arbitrary β is not implemented here")
        if schedule.timesteps != timesteps:
            raise SettingError("trained_betas", f"{schedule.timesteps} values for num_train_timesteps = {timesteps}")
        return schedule, DIFFUSERS_PREDICTIONS[prediction]
    name = config["beta_schedule"]
    if name not in DIFFUSERS_SCHEDULES:
        raise SettingError("beta_schedule", f"{name!r} is not implemented here (we read {', '.join(DIFFUSERS_SCHEDULES)}, "
                           "or trained_betas)")
    schedule = ScheduleConfig(
        name=DIFFUSERS_SCHEDULES[name],
        timesteps=timesteps,
        beta_start=float(config["beta_start"]),
        beta_end=float(config["beta_end"]),
    )
    return schedule, DIFFUSERS_PREDICTIONS[prediction]


def _read_scheduler(file: Path) -> tuple[ScheduleConfig, str]:
    where = f"'{file.parent.parent.name}/{SCHEDULER_CONFIG.as_posix()}'"
    try:
        config = json.loads(file.read_text())
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
        return schedule_from_scheduler_config(config)
    except SettingError as exc:
        raise CheckpointError(f"{where}: {exc}") from None
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{where} is damaged ({exc})") from None


def load_diffusers_unet(folder: Path) -> tuple[DiffusersDenoiser, ScheduleConfig, str, tuple[int, int, int]]:
    """(network, schedule, prediction, sample shape C×H×W) of a UNet2DModel folder; weights only."""
    if not (folder / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"'{folder.name}' is a diffusers UNet2DModel without {WEIGHTS_FILE} (only safetensors are read)")
    _check_pipeline(folder)
    schedule, prediction = ScheduleConfig(), "eps"
    scheduler_file = folder.parent / SCHEDULER_CONFIG
    if scheduler_file.is_file():
        schedule, prediction = _read_scheduler(scheduler_file)
    diffusers = import_diffusers(f"'{folder.name}' is a diffusers model")
    try:
        unet = diffusers.UNet2DModel.from_pretrained(str(folder), use_safetensors=True, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"'{folder.name}': the diffusers model cannot be loaded ({exc})") from None
    c = unet.config
    if c.out_channels != c.in_channels:
        raise CheckpointError(f"'{folder.name}': out_channels = {c.out_channels} ≠ in_channels = {c.in_channels}: a network "
                              "that also predicts its variance is not one we sample")
    size = c.sample_size if isinstance(c.sample_size, int) else c.sample_size[0]
    return DiffusersDenoiser(unet).eval(), schedule, prediction, (c.in_channels, size, size)
