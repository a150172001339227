"""Training a denoiser on L_simple (Ho et al. Algorithm 1), or a flow on the flow-matching loss,
as a generator of progress records.

Each step: x_0 from the data, t ~ U{1…T}, ε ~ N(0, I), x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, and a
gradient step on ‖target − network(x_t, t − 1)‖², the target being ε, x_0 or v. On a
rectified-flow path: s ∈ (0, 1) (uniform or logit-normal), x_s = (1 − s) x_0 + s ε and
‖(ε − x_0) − network(x_s, T s)‖² (conditional flow matching, Lipman et al. 2022; Liu et al. 2022).
A class-conditional
run (TrainConfig.conditional) gives the network x_0's label c as well, replaced by the null label ∅
with probability p_uncond (label dropout; Ho & Salimans 2022, Algorithm 1): ‖target − network(x_t, t − 1, c)‖².
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from diffusion_studio.core.checkpoint import Checkpoint
from diffusion_studio.core.data.datasets import Dataset
from diffusion_studio.core.devices import resolve_device
from diffusion_studio.core.distributed import SINGLE, World
from diffusion_studio.core.errors import SettingError, TrainingError
from diffusion_studio.core.models import build_model, count_parameters
from diffusion_studio.core.denoiser import Denoiser, Guidance
from diffusion_studio.core.models.config import ModelConfig, UNetConfig, null_label, sample_shape
from diffusion_studio.core.process import check_target, q_sample, training_target
from diffusion_studio.core.sample_config import SampleConfig, deterministic
from diffusion_studio.core.samplers import build_sampler
from diffusion_studio.core.sampling import sample_loop
from diffusion_studio.core.schedules import NoiseSchedule, ScheduleConfig, flow_alpha_sigma
from diffusion_studio.core.settings import check_settings
from diffusion_studio.core.train_config import TrainConfig

LOSS_BUCKETS = 10
"""The loss by timestep is reported for this many equal ranges of t."""
PREVIEW_STEPS = 20
"""DDIM steps of a preview."""


def compiles(choice: str, device: torch.device) -> bool:
    """Whether training on ``device`` compiles the network and loss (TrainConfig.compile): "on" and
    "off" as told; "auto" on a CUDA GPU with Triton (the compiler's GPU code generator), not on the
    CPU (measured slower there: benchmarks/bench_training.py) or MPS."""
    if choice == "auto":
        from torch.utils._triton import has_triton

        return device.type == "cuda" and has_triton()
    return choice == "on"


def memory_format(model_config: ModelConfig, device: torch.device) -> torch.memory_format:
    """How a U-Net's weights and inputs are laid out: channels last (N×H×W×C) on CUDA, which cuDNN's
    and Tensor Cores' convolutions prefer; channels first elsewhere (on the CPU channels last was
    measured slower)."""
    if device.type == "cuda" and isinstance(model_config, UNetConfig):
        return torch.channels_last
    return torch.contiguous_format


def optimizer_kernels(device: torch.device) -> dict[str, bool]:
    """AdamW's implementation: one fused kernel per step on CUDA; elsewhere the multi-tensor (foreach)
    one, whose weights equal the one-tensor-at-a-time loop's bit for bit (the CPU's fused kernel
    changes their last bit)."""
    return {"fused": True, "foreach": False} if device.type == "cuda" else {"fused": False, "foreach": True}


def _on_cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in state.items()}


def preview_labels(num_classes: int, count: int, image: bool) -> torch.Tensor:
    """The class of each preview sample of a conditional model, one class after the other: for images
    K·K samples, so that the square grid they are shown in (export.grid_columns) has one row per
    class; for points ``count``, in K equal blocks (c_i = ⌊i·K/count⌋)."""
    if image:
        return torch.arange(num_classes).repeat_interleave(num_classes)
    return torch.arange(count) * num_classes // count


@dataclass(frozen=True)
class TrainProgress:
    """A report on the last few training steps, all on the CPU."""

    step: int  # optimizer steps done so far
    total_steps: int
    loss: float  # mean L_simple over the steps since the last report
    loss_by_t: np.ndarray  # LOSS_BUCKETS running means of the loss for t in equal ranges of 1…T (NaN: none yet)
    learning_rate: float
    images_per_second: float  # samples (images or points) per second over the last steps
    eta_seconds: float  # time left at that rate
    preview: np.ndarray | None = None  # samples from the EMA network: N×C×H×W or N×D, in data space


class Trainer:
    """Owns the network, its EMA copy, the optimizer and the random state of one training run.

    In a world of several processes (core.distributed), each trains on its slice of every global
    batch and their gradients are averaged, so the run takes the steps one process would take.
    """

    def __init__(
        self,
        model_config: ModelConfig,
        schedule_config: ScheduleConfig,
        config: TrainConfig,
        dataset: Dataset,
        world: World = SINGLE,
    ) -> None:
        check_settings(config)
        _check_classes(model_config, config, dataset)
        self.model_config, self.config, self.dataset, self.world = model_config, config, dataset, world
        self.shard = world.shard(config.batch_size)  # this process's samples of each global batch
        self.schedule = NoiseSchedule(schedule_config)
        check_target(self.schedule, config.prediction)
        expected = sample_shape(model_config)
        if tuple(dataset.data.shape[1:]) != expected:
            raise SettingError(
                "data", f"'{dataset.name}' has samples of shape {tuple(dataset.data.shape[1:])}, the model takes {expected}"
            )
        self.device = world.device(resolve_device(config.device))
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest convolutions
        self.memory_format = memory_format(model_config, self.device)
        torch.manual_seed(config.seed)
        self.model = build_model(model_config).to(self.device, memory_format=self.memory_format)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self._weights, self._ema_weights = list(self.model.parameters()), list(self.ema.parameters())
        self.optimizer = torch.optim.AdamW(
            self._weights, lr=config.learning_rate, weight_decay=config.weight_decay, **optimizer_kernels(self.device)
        )
        self.network = world.wrap(self.model)  # what a step calls: its backward pass averages over the processes
        self.compiled = compiles(config.compile, self.device)
        # The shapes never change within a run; dynamic=False keeps each run's own static graph when
        # one process trains several runs of other shapes (an app session, a benchmark). With several
        # processes the compiled loss calls DDP, whose forward dynamo runs as it is while compiling
        # the model inside it, its graph split at the gradient buckets (PyTorch's DDPOptimizer).
        self.per_sample_loss = (
            torch.compile(self._per_sample_loss, dynamic=False) if self.compiled else self._per_sample_loss
        )
        if world.rank:  # dropout masks of its own in every process but the first (which draws as one process would)
            torch.manual_seed(world.seed(config.seed))
        self.generator = torch.Generator(self.device).manual_seed(config.seed)
        self.data = torch.from_numpy(dataset.data).to(self.device)
        self.labels = torch.from_numpy(dataset.labels).to(self.device) if config.conditional else None
        self.step = 0
        self.loss_by_t = np.full(LOSS_BUCKETS, np.nan)
        self.autocast = (
            config.mixed_precision and self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        )

    @property
    def parameters(self) -> int:
        return count_parameters(self.model)

    # -- one step ------------------------------------------------------------------------------

    def _learning_rate(self) -> float:
        """Linear warm-up to the peak rate: lr = peak · min(1, (step + 1) / warmup)."""
        warmup = max(self.config.warmup_steps, 1)
        return self.config.learning_rate * min(1.0, (self.step + 1) / warmup)

    def _ema_decay(self) -> float:
        """d_eff = min(d, (1 + step)/(10 + step)): early on the average follows the weights."""
        return min(self.config.ema_decay, (1 + self.step) / (10 + self.step))

    def _train_step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of Algorithm 1; returns this process's per-sample losses and their t (on the device).

        Every process draws the whole global batch from the run's generator and keeps its slice: the
        samples, t, ε and, for a conditional run, which labels are dropped (after ε, so an
        unconditional run draws as it always did).
        """
        n, T, part = self.config.batch_size, self.schedule.timesteps, self.shard
        index = torch.randint(len(self.data), (n,), generator=self.generator, device=self.device)[part]
        x0 = self.data[index]
        t = self._draw_t(n)[part]
        eps = torch.randn((n, *x0.shape[1:]), generator=self.generator, device=self.device)[part]
        label = None if self.labels is None else self._dropped_labels(self.labels[index], n)
        if self.schedule.is_flow:  # the path's own x_s at s = t/T, and the time T·s
            alpha, sigma = (c.reshape(-1, *(1,) * (x0.ndim - 1)) for c in flow_alpha_sigma(t / T))
            x_t, time = alpha * x0 + sigma * eps, t
        else:
            x_t, time = q_sample(self.schedule, x0, t, eps), t - 1
        x_t = x_t.float().contiguous(memory_format=self.memory_format)
        target = training_target(self.schedule, x0, t, eps, self.config.prediction).float()
        per_sample = self.per_sample_loss(x_t, time, target, label)
        for group in self.optimizer.param_groups:
            group["lr"] = self._learning_rate()
        self.optimizer.zero_grad(set_to_none=True)
        per_sample.mean().backward()
        torch.nn.utils.clip_grad_norm_(self._weights, self.config.grad_clip, foreach=True)
        self.optimizer.step()
        torch._foreach_lerp_(self._ema_weights, self._weights, 1.0 - self._ema_decay())
        self.step += 1
        return per_sample.detach(), t

    def _draw_t(self, n: int) -> torch.Tensor:
        """t for a global batch (TrainConfig.time_sampling): VP integers 1…T (uniform: U{1…T}); a flow
        path times t = T·s in [0, T) (uniform: s ~ U[0, 1); logit-normal: s = sigmoid(n), n ~ N(0, 1))."""
        T, logit_normal = self.schedule.timesteps, self.config.time_sampling == "logit-normal"
        if not logit_normal and not self.schedule.is_flow:
            return torch.randint(1, T + 1, (n,), generator=self.generator, device=self.device)
        s = (torch.sigmoid(torch.randn(n, generator=self.generator, device=self.device, dtype=torch.float64))
             if logit_normal else torch.rand(n, generator=self.generator, device=self.device, dtype=torch.float64))
        return T * s if self.schedule.is_flow else torch.ceil(T * s).long().clamp(1, T)

    def _dropped_labels(self, labels: torch.Tensor, n: int) -> torch.Tensor:
        """Label dropout: each label of this process's slice replaced by ∅ with probability p_uncond,
        drawn (u ~ U[0, 1), dropped when u < p_uncond) for the whole global batch of ``n``."""
        dropped = (torch.rand(n, generator=self.generator, device=self.device) < self.config.p_uncond)[self.shard]
        return torch.where(dropped, null_label(self.model_config.num_classes), labels)

    def _per_sample_loss(
        self, x_t: torch.Tensor, index: torch.Tensor, target: torch.Tensor, label: torch.Tensor | None
    ) -> torch.Tensor:
        """‖target − network(x_t, t − 1, c)‖² averaged over each sample's elements (the network in
        bfloat16 under autocast on CUDA); what ``compile`` hands torch.compile."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            output = self.network(x_t, index, label)
        return (output.float() - target).pow(2).flatten(1).mean(1)

    def _update_loss_by_t(self, losses: torch.Tensor, ts: torch.Tensor) -> None:
        """Running mean per bucket of t: m_b ← 0.9 m_b + 0.1 (mean of the new losses in b); bucket b
        holds t in (b T/B, (b + 1) T/B] (a flow's t = T·s in [b T/B, (b + 1) T/B))."""
        T = self.schedule.timesteps
        bucket = ((ts * LOSS_BUCKETS // T).clamp(max=LOSS_BUCKETS - 1) if self.schedule.is_flow
                  else (ts - 1) * LOSS_BUCKETS // T).long().cpu().numpy()
        values = losses.cpu().numpy()
        sums = np.bincount(bucket, weights=values, minlength=LOSS_BUCKETS)
        counts = np.bincount(bucket, minlength=LOSS_BUCKETS)
        seen = counts > 0
        fresh = sums[seen] / counts[seen]
        old = self.loss_by_t[seen]
        self.loss_by_t[seen] = np.where(np.isnan(old), fresh, 0.9 * old + 0.1 * fresh)

    # -- the loop ------------------------------------------------------------------------------

    def train(
        self,
        should_stop: Callable[[], bool] = lambda: False,
        report_every: int = 1,
        preview_every: int = 0,
        preview_count: int = 16,
    ) -> Iterator[TrainProgress]:
        """Train until config.steps, yielding a TrainProgress every ``report_every`` steps.

        ``should_stop`` is asked before every step (with several processes, all stop when one is
        asked to; the losses reported are the global batches', gathered). A preview (a quick DDIM run of the EMA
        network) rides on the report after every ``preview_every`` steps (0: never).
        Raises TrainingError on a non-finite loss, when the GPU runs out of memory or when
        torch.compile fails.
        """
        self.model.train()
        started, losses, ts = time.perf_counter(), [], []
        while self.step < self.config.steps and not self.world.any(should_stop()):
            try:
                loss, t = self._train_step()
            except torch.cuda.OutOfMemoryError:
                raise TrainingError(
                    f"out of {self.device.type.upper()} memory at batch size {self.config.batch_size}; "
                    "try a smaller batch or model"
                ) from None
            except torch._dynamo.exc.BackendCompilerFailed as exc:
                first_line = str(exc.inner_exception).strip().split("\n")[0]
                reason = f"{type(exc.inner_exception).__name__}: {first_line}"
                raise TrainingError(
                    f"torch.compile could not compile the network for {self.device.type.upper()} ({reason}); "
                    "train with compile off (--compile off)"
                ) from None
            losses.append(loss)
            ts.append(t)
            if self.step % report_every and self.step != self.config.steps:
                continue
            batch_losses, batch_ts = (self.world.gather(torch.stack(values)).flatten() for values in (losses, ts))
            mean_loss = float(batch_losses.mean())  # the one device sync per report
            if not math.isfinite(mean_loss):
                raise TrainingError(
                    f"the loss became {mean_loss} at step {self.step}; training stopped and the last "
                    "checkpoint is kept (try a lower learning rate)"
                )
            self._update_loss_by_t(batch_losses, batch_ts)
            elapsed = max(time.perf_counter() - started, 1e-9)
            rate = len(losses) / elapsed
            want_preview = preview_every > 0 and self.step % preview_every == 0
            yield TrainProgress(
                step=self.step,
                total_steps=self.config.steps,
                loss=mean_loss,
                loss_by_t=self.loss_by_t.copy(),
                learning_rate=self._learning_rate(),
                images_per_second=rate * self.config.batch_size,
                eta_seconds=(self.config.steps - self.step) / rate,
                preview=self.preview(preview_count) if want_preview else None,
            )
            started, losses, ts = time.perf_counter(), [], []

    def _preview_labels(self, count: int) -> torch.Tensor | None:
        """The classes of a conditional model's previews (preview_labels); None for an unconditional model."""
        if not self.model_config.num_classes:
            return None
        return preview_labels(self.model_config.num_classes, count, self.dataset.is_image)

    def preview_config(self, count: int = 16, steps: int = PREVIEW_STEPS) -> SampleConfig:
        """How previews sample: the DETERMINISTIC sampler in ``steps`` steps (at most T) from seed 0,
        x̂_0 kept within the data's range; a checkpoint sampled with these settings gives the same samples
        (an unconditional one: sampling takes no class yet). A conditional model's previews are
        one class after the other (preview_labels: K·K images, a row per class)."""
        labels = self._preview_labels(count)
        num = count if labels is None else len(labels)
        return deterministic(steps=min(steps, self.schedule.timesteps), num=num, seed=0)

    def preview(self, count: int = 16, steps: int = PREVIEW_STEPS) -> np.ndarray:
        """Samples from the EMA network as ``preview_config`` says, on the CPU."""
        c = self.preview_config(count, steps)
        labels = self._preview_labels(count)
        condition = None if labels is None else Guidance(labels, null_label(self.model_config.num_classes))
        denoiser = Denoiser(self.ema, self.schedule, self.config.prediction, self.dataset.value_range, condition)
        sampler = build_sampler(c.sampler, self.schedule, denoiser.prediction, denoiser.x0_range, **c.options)
        sampler.set_timesteps(c.steps)
        generator = torch.Generator(self.device).manual_seed(c.seed)
        shape = (c.num, *sample_shape(self.model_config))
        last = None
        for last in sample_loop(denoiser, sampler, shape, generator=generator, device=self.device):  # noqa: B007 (kept: the last step)
            pass
        return last.x_prev.numpy()

    # -- state for checkpoints -----------------------------------------------------------------

    def _global_rng(self) -> dict[str, torch.Tensor]:
        """This process's global random state (dropout draws from it)."""
        rng = {"torch_cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["torch_cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def _set_global_rng(self, rng: dict[str, torch.Tensor]) -> None:
        torch.set_rng_state(rng["torch_cpu"])
        if self.device.type == "cuda" and "torch_cuda" in rng:
            torch.cuda.set_rng_state(rng["torch_cuda"], self.device)

    def checkpoint(self) -> Checkpoint:
        """The run as it stands, its tensors copied to the CPU, ready for save_checkpoint.

        With several processes every one must call it: it gathers their random states.
        """
        rng = {"generator": self.generator.get_state(), **self._global_rng()}
        if self.world.distributed:
            rng["ranks"] = self.world.gather_objects(self._global_rng())
        return Checkpoint(
            model_config=self.model_config,
            schedule_config=self.schedule.config,
            train_config=self.config,
            step=self.step,
            ema_state=_on_cpu(self.ema.state_dict()),
            model_state=_on_cpu(self.model.state_dict()),
            data_range=self.dataset.value_range,
            training_state={
                "step": self.step,
                "optimizer": self.optimizer.state_dict(),
                "rng": rng,
                "loss_by_t": torch.from_numpy(self.loss_by_t.copy()),
            },
        )

    def restore(self, checkpoint: Checkpoint) -> None:
        """Continue a run: weights, EMA, optimizer, step count and random state from its checkpoint."""
        state = checkpoint.training_state
        self.model.load_state_dict(checkpoint.model_state)
        self.ema.load_state_dict(checkpoint.ema_state)
        saved = state["optimizer"]  # its kernels (fused, foreach) are this device's, whatever device saved it
        kernels = optimizer_kernels(self.device)
        self.optimizer.load_state_dict({**saved, "param_groups": [{**g, **kernels} for g in saved["param_groups"]]})
        self.step = int(state["step"])
        rng = state["rng"]
        self.generator.set_state(rng["generator"])
        ranks = rng.get("ranks", [rng])  # each process's global random state, when saved by several
        if len(ranks) == self.world.size:
            self._set_global_rng(ranks[self.world.rank])
        elif self.world.is_main:
            self._set_global_rng(rng)
        else:  # a run continued by more or fewer processes than saved it: a fresh stream of this process's own
            torch.manual_seed(self.world.seed(self.config.seed, self.step))
        self.loss_by_t = state["loss_by_t"].numpy().copy()


def _check_classes(model_config: ModelConfig, config: TrainConfig, dataset: Dataset) -> None:
    """SettingError unless the run, the network and the data agree on the classes: a conditional run
    needs labelled data and a network of as many classes; an unconditional one an unconditional network."""
    if config.conditional and not dataset.num_classes:
        raise SettingError("conditional", f"'{dataset.name}' has no class labels to condition on")
    wanted = dataset.num_classes if config.conditional else 0
    if model_config.num_classes != wanted:
        raise SettingError("num_classes", f"the network is conditioned on {model_config.num_classes} classes, "
                           f"the {'conditional' if config.conditional else 'unconditional'} run on '{dataset.name}' "
                           f"needs {wanted}")
