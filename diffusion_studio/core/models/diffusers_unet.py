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

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from diffusion_studio.core.errors import CheckpointError, FileReadError, SettingError
from diffusion_studio.core.files import read_json
from diffusion_studio.core.limits import MAX_BLOCKS, MAX_CHANNELS, MAX_IMAGE_SIZE
from diffusion_studio.core.models.config import null_label
from diffusion_studio.core.schedules import ScheduleConfig, config_from_betas
from diffusion_studio.core.settings import check_settings

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
_SIZES = {"sample_size": MAX_IMAGE_SIZE, "in_channels": MAX_CHANNELS, "out_channels": MAX_CHANNELS,
          "block_out_channels": MAX_CHANNELS, "layers_per_block": MAX_BLOCKS, "norm_num_groups": MAX_CHANNELS,
          "attention_head_dim": MAX_CHANNELS}
"""The sizes of a UNet2DModel config (a number, or a list of one per level) and their limits."""
MAX_LEVELS = 16
"""The most levels (entries of a per-level list) a diffusers U-Net may have here."""
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
        config = read_json(folder / UNET_CONFIG)
    except FileReadError:
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
    """network(x_t, index, label) → unet(x_t, index, class_labels=label).sample.

    A UNet2DModel with ``num_class_embeds`` = K + 1 is read as ours are (models.classes): classes
    0…K−1 and the null label K, which a label of None stands for."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet
        embeds = unet.config.num_class_embeds
        self.num_classes = embeds - 1 if embeds else 0  # K: labels 0…K−1 and the null label K (0: unconditional)

    def forward(self, x: torch.Tensor, index: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        if label is None and self.num_classes:
            label = torch.full((x.shape[0],), null_label(self.num_classes), dtype=torch.long, device=x.device)
        return self.unet(x, index, class_labels=label).sample


def import_diffusers(purpose: str) -> Any:
    """The diffusers package, or CheckpointError saying how to install it (``purpose``: what needs it)."""
    try:
        import diffusers
    except ImportError:
        raise CheckpointError(f"{purpose}; install the optional extra for it: pip install -e '.[diffusers]'") from None
    return diffusers


@contextmanager
def _quiet(diffusers: Any) -> Iterator[None]:
    """diffusers' log messages and library warnings held back while it loads: a model that cannot be
    loaded is told in our one line, with nothing printed before it."""
    logging = diffusers.utils.logging
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.set_verbosity(verbosity)


def _check_sizes(folder: Path) -> None:
    """Every size in a UNet2DModel's config.json is a whole number within core.limits, checked
    before diffusers builds the network (a width of 10⁹ would be allocated, not refused)."""
    try:
        config = read_json(folder / UNET_CONFIG)
    except FileReadError as exc:
        raise CheckpointError(str(exc)) from None
    for key, limit in _SIZES.items():
        value = config.get(key)
        values = value if isinstance(value, list) and len(value) <= MAX_LEVELS else [value]
        if value is not None and not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= limit for v in values):
            raise CheckpointError(f"'{folder.name}/{UNET_CONFIG}': {key} = {value!r}: each must be a whole number "
                                  f"from 1 to {limit:,}" + (f", at most {MAX_LEVELS} of them" if isinstance(value, list) else ""))


def _check_pipeline(folder: Path) -> None:
    """A U-Net inside a pipeline whose other parts (a VAE, a text encoder) we would not run is refused."""
    index_file = folder.parent / MODEL_INDEX
    if not index_file.is_file():
        return
    try:
        index = read_json(index_file)
    except FileReadError as exc:
        raise CheckpointError(str(exc)) from None
    if not isinstance(index, dict):
        raise CheckpointError(f"'{folder.parent.name}': {MODEL_INDEX} is damaged (not a JSON object)")
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
        config = read_json(file)
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
        schedule, prediction = schedule_from_scheduler_config(config)
        check_settings(schedule)  # T and β within their limits before anything is computed from them
        return schedule, prediction
    except SettingError as exc:
        raise CheckpointError(f"{where}: {exc}") from None
    except FileReadError as exc:
        raise CheckpointError(str(exc)) from None
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        raise CheckpointError(f"{where} is damaged ({exc})") from None


def load_diffusers_unet(folder: Path) -> tuple[DiffusersDenoiser, ScheduleConfig, str, tuple[int, int, int]]:
    """(network, schedule, prediction, sample shape C×H×W) of a UNet2DModel folder; weights only."""
    if not (folder / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"'{folder.name}' is a diffusers UNet2DModel without {WEIGHTS_FILE} (only safetensors are read)")
    _check_pipeline(folder)
    _check_sizes(folder)
    schedule, prediction = ScheduleConfig(), "eps"
    scheduler_file = folder.parent / SCHEDULER_CONFIG
    if scheduler_file.is_file():
        schedule, prediction = _read_scheduler(scheduler_file)
    diffusers = import_diffusers(f"'{folder.name}' is a diffusers model")
    try:
        with _quiet(diffusers):
            unet = diffusers.UNet2DModel.from_pretrained(
                str(folder), use_safetensors=True, local_files_only=True,
                low_cpu_mem_usage=diffusers.utils.is_accelerate_available(),  # without accelerate, no advice printed
            )
    except (OSError, ValueError, RuntimeError, TypeError, KeyError, AttributeError) as exc:  # the config's other values
        raise CheckpointError(f"'{folder.name}': the diffusers model cannot be loaded ({exc})") from None
    c = unet.config
    if c.class_embed_type is not None or c.num_class_embeds == 1:
        raise CheckpointError(f"'{folder.name}': a class embedding of type {c.class_embed_type!r} with "
                              f"{c.num_class_embeds} rows is not one we read (we read num_class_embeds = K + 1: "
                              "K classes and the null label)")
    if c.out_channels != c.in_channels:
        raise CheckpointError(f"'{folder.name}': out_channels = {c.out_channels} ≠ in_channels = {c.in_channels}: a network "
                              "that also predicts its variance is not one we sample")
    size = c.sample_size if isinstance(c.sample_size, int) else c.sample_size[0]
    return DiffusersDenoiser(unet).eval(), schedule, prediction, (c.in_channels, size, size)
