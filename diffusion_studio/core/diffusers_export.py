"""Our U-Net checkpoints as diffusers pipeline folders, which ``DDPMPipeline.from_pretrained`` loads.

The folder is what ``DDPMPipeline.save_pretrained`` writes: model_index.json, unet/ (config.json,
diffusion_pytorch_model.safetensors) and scheduler/scheduler_config.json. diffusers'
``UNet2DModel`` is Ho et al.'s network, as ours is (models/unet.py), once configured so:

- time embedding: [sin(i·ω_k), cos(i·ω_k)], ω_k = 10000^(−k/(d/2)), d = base width:
  ``flip_sin_to_cos = False`` (diffusers would put cos first), ``freq_shift = 0``; then
  Linear(d, 4d), SiLU, Linear(4d, 4d) (``time_embedding.linear_1``/``linear_2``);
- residual blocks: GN, SiLU, conv 3×3, + Linear(SiLU(emb)), GN, SiLU, dropout, conv 3×3, a 1×1
  conv on the skip where widths differ (``ResnetBlock2D``, ``resnet_time_scale_shift = "default"``);
- attention: one GN, q, k, v and the output projection as Linear layers (our 1×1 convs), heads
  split along the channels, softmax(QKᵀ/√d_head), a residual (``Attention``);
- down: a 3×3 conv of stride 2, padding 1 (``downsample_padding = 1``); up: nearest ×2, then a
  3×3 conv; skips as ours; the middle: resnet, attention, resnet;
- a class-conditional network's class embedding of K + 1 rows (the classes, then the null label):
  ``num_class_embeds = K + 1``, ``class_embedding``, added to the time embedding as ours is. Such a
  ``UNet2DModel`` needs ``class_labels`` in every call, which ``DDPMPipeline`` does not pass: it
  loads and runs in diffusers, but that pipeline cannot sample it.

Two settings of ours have no equal there, and refuse to export: diffusers has one
``norm_num_groups`` where ours is gcd(32, width) per layer, and one ``attention_head_dim`` where
ours has a fixed number of heads per attention layer. The schedule goes to a ``DDPMScheduler``
(our DDPM sampler's defaults: σ_t² = β_t as ``fixed_large``, x̂_0 clipped to [−1, 1]; K < T
steps ``leading``, as our ``--spacing leading``); a schedule diffusers has no name for is written
as its β (``trained_betas``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from diffusion_studio.core.atomic import PREVIOUS_SUFFIX, atomic_folder
from diffusion_studio.core.checkpoint import load_checkpoint
from diffusion_studio.core.denoiser import Denoiser, Guidance
from diffusion_studio.core.errors import FileSaveError, SettingError
from diffusion_studio.core.loaded_model import model_folder
from diffusion_studio.core.models.config import UNetConfig, is_image_model, null_label
from diffusion_studio.core.models.diffusers_unet import (
    DIFFUSERS_PREDICTIONS, DIFFUSERS_SCHEDULES, MODEL_INDEX, SCHEDULER_CONFIG, UNET_CONFIG, UNET_FOLDER, WEIGHTS_FILE,
    import_diffusers,
)
from diffusion_studio.core.models.unet import AttentionBlock, ResBlock, UNet
from diffusion_studio.core.schedules import NoiseSchedule, ScheduleConfig

EXPORT_FILES = frozenset({MODEL_INDEX, f"{UNET_FOLDER}/{UNET_CONFIG}", f"{UNET_FOLDER}/{WEIGHTS_FILE}", SCHEDULER_CONFIG.as_posix()})
"""Every file an export writes: a folder holding these and nothing else may be replaced by a new export."""
TOLERANCE = 1e-4
"""The exported network's output may differ from ours by this, relative to the output's largest value (float32)."""


def _norm_groups(network: UNet) -> int:
    """The one GroupNorm group count of the network; SettingError if its layers differ (ours: gcd(32, width))."""
    groups = {(m.num_channels, m.num_groups) for m in network.modules() if isinstance(m, nn.GroupNorm)}
    counts = {g for _, g in groups}
    if len(counts) > 1:
        found = ", ".join(f"{g} at width {c}" for c, g in sorted(groups))
        raise SettingError(
            "norm groups", f"this network's GroupNorm layers have different group counts ({found}; ours take "
            f"gcd(32, width)), but diffusers' UNet2DModel has one norm_num_groups for all: widths that are all "
            f"multiples of 32 export")
    return counts.pop()


def _attention_head_dim(config: UNetConfig) -> int | None:
    """diffusers' attention_head_dim for our heads: the one head width of every attention layer (the
    middle one at the last level's width), or None (one head per layer) for a single head; SettingError if neither."""
    widths = {config.base_channels * mult for mult, res in zip(config.channel_mults, config.resolutions)
              if res in config.attention_resolutions}
    widths.add(config.base_channels * config.channel_mults[-1])
    if len(widths) == 1:
        return widths.pop() // config.num_heads
    if config.num_heads == 1:
        return None
    raise SettingError(
        "num_heads", f"{config.num_heads} heads in attention layers of widths {', '.join(map(str, sorted(widths)))} "
        f"have different head widths, but diffusers' UNet2DModel has one attention_head_dim for all: use one head, "
        f"or attention only where the width is the last level's")


def unet2d_config(config: UNetConfig, norm_groups: int) -> dict[str, Any]:
    """The keyword arguments of a diffusers ``UNet2DModel`` that is our network (see the module's docstring)."""
    attention = [res in config.attention_resolutions for res in config.resolutions]
    return {
        "sample_size": config.image_size,
        "in_channels": config.in_channels,
        "out_channels": config.out_channels,
        "block_out_channels": [config.base_channels * mult for mult in config.channel_mults],
        "layers_per_block": config.num_res_blocks,
        "down_block_types": ["AttnDownBlock2D" if a else "DownBlock2D" for a in attention],
        "up_block_types": ["AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)],
        "mid_block_type": "UNetMidBlock2D",
        "add_attention": True,
        "attention_head_dim": _attention_head_dim(config),
        "norm_num_groups": norm_groups,
        "norm_eps": 1e-5,
        "act_fn": "silu",
        "dropout": config.dropout,
        "time_embedding_type": "positional",
        "flip_sin_to_cos": False,
        "freq_shift": 0,
        "downsample_padding": 1,
        "downsample_type": "conv",
        "upsample_type": "conv",
        "resnet_time_scale_shift": "default",
        "mid_block_scale_factor": 1,
        "center_input_sample": False,
        "num_class_embeds": config.num_classes + 1 if config.num_classes else None,
    }


def diffusers_state_dict(network: UNet) -> dict[str, torch.Tensor]:
    """Our U-Net's weights under UNet2DModel's names (q, k, v and the projection: 1×1 convs → Linear)."""
    state: dict[str, torch.Tensor] = {}

    def copy(module: nn.Module, prefix: str) -> None:  # a conv, Linear or GroupNorm: the same weight and bias
        state.update({f"{prefix}.{name}": value for name, value in module.state_dict().items()})

    def resnet(block: ResBlock, prefix: str) -> None:
        for ours, theirs in (("norm1", "norm1"), ("conv1", "conv1"), ("emb", "time_emb_proj"), ("norm2", "norm2"),
                             ("conv2", "conv2"), ("skip", "conv_shortcut")):
            copy(getattr(block, ours), f"{prefix}.{theirs}")  # an Identity skip has no weights

    def attention(block: AttentionBlock, prefix: str) -> None:
        copy(block.norm, f"{prefix}.group_norm")
        for name, weight, bias in zip(("to_q", "to_k", "to_v"), block.qkv.weight[:, :, 0, 0].chunk(3), block.qkv.bias.chunk(3)):
            state[f"{prefix}.{name}.weight"], state[f"{prefix}.{name}.bias"] = weight, bias
        state[f"{prefix}.to_out.0.weight"], state[f"{prefix}.to_out.0.bias"] = block.proj.weight[:, :, 0, 0], block.proj.bias

    def level(block: nn.Module, prefix: str, j: int) -> None:  # a residual block, perhaps with attention
        resnet(block.res, f"{prefix}.resnets.{j}")
        if isinstance(block.attn, AttentionBlock):
            attention(block.attn, f"{prefix}.attentions.{j}")

    copy(network.time_mlp[0], "time_embedding.linear_1")
    copy(network.time_mlp[2], "time_embedding.linear_2")
    if network.class_embedding is not None:
        copy(network.class_embedding, "class_embedding")
    copy(network.stem, "conv_in")
    for i, (blocks, downsample) in enumerate(zip(network.down, network.downsample)):
        for j, block in enumerate(blocks):
            level(block, f"down_blocks.{i}", j)
        copy(downsample, f"down_blocks.{i}.downsamplers.0.conv")
    level(network.mid[0], "mid_block", 0)
    resnet(network.mid[1].res, "mid_block.resnets.1")
    for i, (blocks, upsample) in enumerate(zip(network.up, network.upsample)):
        for j, block in enumerate(blocks):
            level(block, f"up_blocks.{i}", j)
        copy(upsample, f"up_blocks.{i}.upsamplers.0.conv")
    copy(network.head[0], "conv_norm_out")
    copy(network.head[2], "conv_out")
    return state


def scheduler_config(schedule: ScheduleConfig, prediction: str) -> dict[str, Any]:
    """A ``DDPMScheduler``'s settings for our schedule, prediction target and DDPM sampler's defaults."""
    names = {ours: theirs for theirs, ours in DIFFUSERS_SCHEDULES.items()}
    predictions = {ours: theirs for theirs, ours in DIFFUSERS_PREDICTIONS.items()}
    config: dict[str, Any] = {
        "num_train_timesteps": schedule.timesteps,
        "beta_start": schedule.beta_start,
        "beta_end": schedule.beta_end,
        "beta_schedule": names.get(schedule.name, "linear"),
        "trained_betas": None,
        "prediction_type": predictions[prediction],
        "variance_type": "fixed_large",  # σ_t² = β_t, our DDPM sampler's default
        "clip_sample": True,  # x̂_0 kept in the images' range [−1, 1], as our sampling does by default
        "clip_sample_range": 1.0,
        # K < T steps at 1 + k·⌊T/K⌋, our "leading": they end at t = 1, and diffusers' DDPM adds noise on its
        # last step unless that step starts from t = 1 (ours adds none on the step to 0)
        "timestep_spacing": "leading",
    }
    if schedule.name not in names:  # no diffusers name for it (our scaled_linear): its β themselves
        config["trained_betas"] = NoiseSchedule(schedule).betas[1:].tolist()
    return config


def _max_difference(network: UNet, unet: nn.Module, config: UNetConfig, schedule: NoiseSchedule) -> float:
    """max |theirs − ours| / max(|ours|, 1e-12) on random x_t at t = 1 and t = T (diffusers' index t − 1;
    for a conditional network, with the first class and the null label)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, config.in_channels, config.image_size, config.image_size, generator=generator)
    t = torch.tensor([1, schedule.timesteps])
    null = null_label(config.num_classes)
    label = torch.tensor([0, null]) if config.num_classes else None
    guidance = None if label is None else Guidance(label, null)
    with torch.no_grad():
        ours, theirs = Denoiser(network, schedule, guidance=guidance)(x, t), unet(x, t - 1, class_labels=label).sample
    return float((theirs - ours).abs().max() / ours.abs().max().clamp_min(1e-12))


def _check_output(output: Path) -> None:
    """Refuse a file, or a folder holding anything but what an earlier export wrote: at ``output``, or
    where atomic_folder keeps the folder it replaces (``<name>.previous``, removed after the swap)."""
    for folder in (output, output.with_name(output.name + PREVIOUS_SUFFIX)):
        if not folder.exists():
            continue
        if not folder.is_dir():
            raise FileSaveError(folder, "it is a file; name a new folder")
        files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()}
        if files and (MODEL_INDEX not in files or not files <= EXPORT_FILES):
            raise FileSaveError(folder, "the folder holds files other than an earlier export's; name a new or an empty folder")


def export_diffusers(model: str | Path, output: str | Path) -> Path:
    """Write checkpoint ``model`` ("default": the bundled model) as a diffusers DDPMPipeline folder at
    ``output``, its EMA weights checked to give our network's output; atomic. Returns the folder.

    SettingError for a model diffusers cannot represent (points, or the settings the module's
    docstring names); FileSaveError for an output that is a file or holds other files.
    """
    output = Path(output)
    _check_output(output)
    checkpoint = load_checkpoint(model_folder(model))
    config = checkpoint.model_config
    if not is_image_model(config):
        raise SettingError("model", "this is a model of 2-D points (an MLP); diffusers has no pipeline for points, "
                           "only image models export")
    diffusers = import_diffusers("exporting to diffusers needs the diffusers package")
    network = checkpoint.network()
    unet = diffusers.UNet2DModel(**unet2d_config(config, _norm_groups(network)))
    unet.load_state_dict(diffusers_state_dict(network), strict=True)
    unet.eval()
    difference = _max_difference(network, unet, config, NoiseSchedule(checkpoint.schedule_config))
    if not difference <= TOLERANCE:
        raise SettingError("model", f"diffusers {diffusers.__version__}'s UNet2DModel gives other outputs than ours "
                           f"with these weights (relative difference {difference:.2g}); nothing was written")
    scheduler = diffusers.DDPMScheduler.from_config(
        scheduler_config(checkpoint.schedule_config, checkpoint.train_config.prediction))
    with atomic_folder(output) as staging:
        diffusers.DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(staging, safe_serialization=True)
    return output
