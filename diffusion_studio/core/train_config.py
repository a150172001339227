"""Training settings: a frozen dataclass saved in config.json. No torch here."""

from __future__ import annotations

from dataclasses import dataclass

from diffusion_studio.core.limits import MAX_BATCH, MAX_SEED, MAX_TRAIN_STEPS
from diffusion_studio.core.settings import setting

DEVICE_LABELS = {"auto": "Best available", "cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple GPU (MPS)"}
DEVICES: tuple[str, ...] = tuple(DEVICE_LABELS)
PREDICTION_LABELS = {"eps": "Noise ε", "x0": "Clean data x₀", "v": "Velocity v", "velocity": "Flow velocity u"}
PREDICTION_HELP = {
    "eps": "ε: the network predicts the noise; L_simple = ‖ε − ε_θ(x_t, t)‖² (Ho et al. eq. 14)",
    "x0": "x₀: the network predicts the clean data; loss ‖x₀ − x̂_θ(x_t, t)‖²",
    "v": "v = √ᾱ_t ε − √(1 − ᾱ_t) x₀ (Salimans & Ho); loss ‖v − v_θ(x_t, t)‖²",
    "velocity": "u = dx_s/ds = ε − x₀ on a rectified-flow path (flow matching, Lipman et al. 2022); "
                "loss ‖u − u_θ(x_s, s)‖²",
}
TIME_SAMPLING_LABELS = {"uniform": "Uniform", "logit-normal": "Logit-normal"}
TIME_SAMPLING_HELP = {
    "uniform": "VP: t ~ U{1…T}; flow: s ~ U(0, 1)",
    "logit-normal": "s = sigmoid(n), n ~ N(0, 1): more training near s = ½, fewer at the ends (Esser et al. 2024, "
                    "Stable Diffusion 3); a VP path takes t = ⌈T s⌉",
}
COMPILE_LABELS = {"auto": "Where it pays", "on": "Always", "off": "Never"}
COMPILE_HELP = {
    "auto": "On a CUDA GPU with Triton; not on the CPU (measured slower there) or MPS",
    "on": "Compile on any device (the CPU needs a C++ compiler)",
    "off": "Run the network eagerly, op by op",
}
COMPILES: tuple[str, ...] = tuple(COMPILE_LABELS)


@dataclass(frozen=True)
class TrainConfig:
    """How to train; saved in config.json so a run can be resumed and repeated."""

    data: str = setting("digits", "Data", "A built-in set (digits, swiss_roll, two_moons, eight_gaussians, "
                        "checkerboard) or a folder of images")
    steps: int = setting(10_000, "Steps", "Total optimizer steps; a resumed run continues towards this", ge=1,
                       le=MAX_TRAIN_STEPS, step=500)
    batch_size: int = setting(64, "Batch size", "Samples per step", ge=1, le=MAX_BATCH, step=8)
    learning_rate: float = setting(2e-4, "Learning rate", "Peak AdamW learning rate (Ho et al.: 2·10⁻⁴)",
                                   gt=0, le=1, step=1e-4, decimals=6, flag="--lr")
    warmup_steps: int = setting(200, "Warm-up steps", "The learning rate rises linearly over these first steps",
                                ge=0, le=MAX_TRAIN_STEPS, step=50, flag="--warmup")
    weight_decay: float = setting(0.0, "Weight decay", "AdamW weight decay", ge=0, le=1, step=0.001, decimals=4)
    grad_clip: float = setting(1.0, "Gradient clip", "Clip the gradient's global norm to this (Ho et al.: 1)",
                               gt=0, step=0.1, decimals=2)
    ema_decay: float = setting(0.999, "EMA decay", "EMA of the weights: θ̄ ← d θ̄ + (1 − d) θ; previews and samples "
                               "use θ̄ (Ho et al.: 0.9999)", ge=0, lt=1, step=0.0005, decimals=5)
    prediction: str = setting("eps", "Predicts", "What the network predicts from x_t and t; all three give the same "
                              "samplers", choices=PREDICTION_LABELS, choice_help=PREDICTION_HELP)
    time_sampling: str = setting("uniform", "Time sampling", "How training draws t", choices=TIME_SAMPLING_LABELS,
                                 choice_help=TIME_SAMPLING_HELP)
    conditional: bool = setting(False, "Class-conditional", "Condition the network on the data's class labels (the "
                                "digits 0–9, a toy set's components or parts, a points file's label column), with label "
                                "dropout, so one network learns both p(x | c) and p(x) for classifier-free guidance")
    p_uncond: float = setting(0.1, "Label dropout", "p_uncond: the chance that a training sample's label is replaced by the "
                              "null label ∅, which teaches the unconditional model p(x) (Ho & Salimans 2022: 0.1 or 0.2); "
                              "class-conditional training only", ge=0, le=1, step=0.05, decimals=2)
    seed: int = setting(0, "Seed", "Seeds the network's initial weights, the batches, t and ε", ge=0,
                     le=MAX_SEED)
    device: str = setting("auto", "Device", "Where to train: auto takes CUDA, then MPS, then the CPU",
                          choices=DEVICE_LABELS)
    mixed_precision: bool = setting(True, "bfloat16 on CUDA", "Autocast the network to bfloat16 on a GPU; the CPU "
                                    "always uses float32")
    compile: str = setting("auto", "Compile", "Compile the network and loss with torch.compile (fused kernels, fewer "
                           "launches; the first steps wait for the compiler): auto does on a CUDA GPU with Triton, not "
                           "on the CPU, where it is slower. Training matches uncompiled training to float rounding "
                           "(dropout's masks aside)", choices=COMPILE_LABELS, choice_help=COMPILE_HELP)
