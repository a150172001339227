"""Recipes: the schedule, network and training settings that work for a kind of data.

The app's Start button and ``diffusion-studio train`` with no flags train with the recipe of the
data chosen; any setting given by hand replaces the recipe's. No torch here.

    recipe_for("swiss_roll")   # a bundled 2-D set by name: swiss_roll, two_moons, eight_gaussians, checkerboard
    recipe_for("points")       # any other 2-D point set, e.g. a few hundred points drawn by hand
    recipe_for("digits")       # the bundled digits; "images" or a folder's path: any image folder
    recipe_for(dataset)        # a loaded Dataset: by its name if it is a bundled set, else images or points
    recipe_for("swiss_roll", FLOW_PATH)  # the same data's flow-matching recipe
    recipe_for("digits", conditional=True)   # class-conditional: the digits' own recipe (default-conditional's)

Every image source gets one recipe, today's defaults: the bundled model's (Ho et al.'s linear
schedule, T = 1000, the small U-Net). Points are expected at roughly unit scale, as the bundled
sets are (|x| ≲ 3): the point recipes' schedules leave √ᾱ_T·|x_0| small against the noise only
for data of that size.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from diffusion_studio.core.data.datasets import Dataset, is_points_file
from diffusion_studio.core.models.presets import PRESETS, NetworkSize
from diffusion_studio.core.schedules import FLOW_PATH, VP_PATH, NoiseSchedule, ScheduleConfig, schedule_label
from diffusion_studio.core.train_config import TrainConfig

RECIPE_SETTINGS: tuple[str, ...] = (
    "steps", "batch_size", "learning_rate", "warmup_steps", "weight_decay", "grad_clip", "ema_decay", "prediction",
    "time_sampling",
    "p_uncond",
)
"""The TrainConfig fields a recipe chooses; the data, whether it is class-conditional (which picks the
recipe), seed, device, precision and compilation stay the user's."""

POINTS = "points"
IMAGES = "images"
"""recipe_for's names for any 2-D point set and any image folder."""


@dataclass(frozen=True)
class Recipe:
    """Settings that train a good model of one kind of data from one button."""

    label: str  # the data in words: "Swiss roll", "Images"
    kind: str  # IMAGES (a U-Net) or POINTS (an MLP)
    schedule: ScheduleConfig  # β schedule and T
    size: NetworkSize  # the U-Net's settings are used for images, the MLP's for points
    training: TrainConfig  # its RECIPE_SETTINGS are the recipe's; seed, device and precision TrainConfig's defaults

    def settings(self) -> dict[str, Any]:
        """The training settings the recipe chooses (RECIPE_SETTINGS → value)."""
        return {name: getattr(self.training, name) for name in RECIPE_SETTINGS}

    def train_config(self, **given: Any) -> TrainConfig:
        """The recipe's TrainConfig with the settings ``given`` (data, seed, any recipe setting …) in place."""
        return replace(self.training, **given)

    def network_label(self) -> str:
        """'MLP 128×3' for points; 'U-Net 32·(1, 2, 2)' for images."""
        if self.kind == POINTS:
            return f"MLP {self.size.hidden}×{self.size.num_layers}"
        return f"U-Net {self.size.base_channels}·({', '.join(map(str, self.size.channel_mults))})"

    def summary(self) -> str:
        """One line: 'Swiss roll recipe: linear T=100 β 0.001…0.1, MLP 128×3, 4,000 steps, batch 256, lr 0.002, EMA 0.995'
        (and ', label dropout 0.1' for a class-conditional recipe)."""
        t = self.training
        return (f"{self.label} recipe: {schedule_label(self.schedule)}, {self.network_label()}, {t.steps:,} steps, "
                f"batch {t.batch_size}, lr {t.learning_rate:g}, EMA {t.ema_decay:g}"
                + (f", label dropout {t.p_uncond:g}" if t.conditional else ""))


IMAGE_RECIPE = Recipe(
    "Images", IMAGES, ScheduleConfig(), PRESETS["small"],
    TrainConfig(steps=5000, batch_size=64, learning_rate=5e-4, warmup_steps=500),
)
"""The bundled model's recipe (README): Ho et al.'s schedule, the small U-Net, 5,000 steps at 5·10⁻⁴."""

CONDITIONAL_DIGITS_RECIPE = Recipe(
    "Digits by class", IMAGES, ScheduleConfig(), PRESETS["small"],
    TrainConfig(data="digits", steps=5000, batch_size=128, learning_rate=5e-4, warmup_steps=500, conditional=True,
                p_uncond=0.1),
)
"""The bundled class-conditional model's recipe (README, ``default-conditional``): the bundled model's
command (batch 128) on the digits' labels 0–9, each dropped to ∅ with probability 0.1, as Ho & Salimans."""

_POINT_SCHEDULE = ScheduleConfig("linear", 100, 1e-3, 0.1)
"""T = 100 from β_1 = 10⁻³ (σ_1 ≈ 0.03, below the sets' finest detail) to β_T = 0.1: ᾱ_T ≈ 6·10⁻³, so
x_T keeps √ᾱ_T ≈ 0.08 of unit-scale data, and a full DDPM chain is 100 network calls."""


def _points(label: str, data: str, steps: int) -> Recipe:
    """The 2-D recipe: the small preset's MLP (128 wide, 3 residual layers), batch 256, lr 2·10⁻³
    after 200 warm-up steps, EMA 0.999 (Trainer's warm-up keeps it to the last ~10 % of a short run)."""
    return Recipe(label, POINTS, _POINT_SCHEDULE, PRESETS["small"], TrainConfig(
        data=data, steps=steps, batch_size=256, learning_rate=2e-3, warmup_steps=200, ema_decay=0.999))


POINT_RECIPES: dict[str, Recipe] = {
    "swiss_roll": _points("Swiss roll", "swiss_roll", 4000),
    "two_moons": _points("Two moons", "two_moons", 3000),
    "eight_gaussians": _points("Eight Gaussians", "eight_gaussians", 6000),
    "checkerboard": _points("Checkerboard", "checkerboard", 4000),
    POINTS: _points("2-D points", POINTS, 4000),
}
"""A recipe for each bundled 2-D set, and one (POINTS) for any other point set."""


def flow_recipe(recipe: Recipe) -> Recipe:
    """A data's flow-matching recipe: its network and training settings on a rectified-flow path with
    the same T (the grid samplers step on; training draws s continuously), predicting the velocity."""
    return replace(recipe, label=f"{recipe.label} (flow)",
                   schedule=ScheduleConfig(path=FLOW_PATH, timesteps=recipe.schedule.timesteps),
                   training=replace(recipe.training, prediction="velocity"))


def recipe_for(data: str | Path | Dataset, path: str = VP_PATH, conditional: bool = False) -> Recipe:
    """The recipe for ``data``: a bundled 2-D set's name or "points" (POINT_RECIPES), a CSV of
    points (POINTS's), "digits", "images" or an image folder's path (IMAGE_RECIPE), or a loaded
    Dataset (by its name when it is a bundled set, else by whether it holds images or points).
    ``conditional``: to train class-conditionally; the digits then have CONDITIONAL_DIGITS_RECIPE,
    other data its own recipe with TrainConfig.conditional set (label dropout p_uncond = 0.1).
    On a flow ``path``, that recipe's flow_recipe."""
    if isinstance(data, Dataset):
        name = data.name if data.name in POINT_RECIPES else (IMAGES if data.is_image else POINTS)
    else:
        name = POINTS if is_points_file(str(data)) else str(data)
    recipe = POINT_RECIPES.get(name, IMAGE_RECIPE)
    if conditional:
        recipe = (CONDITIONAL_DIGITS_RECIPE if name == "digits"
                  else replace(recipe, training=replace(recipe.training, conditional=True)))
    return flow_recipe(recipe) if path == FLOW_PATH else recipe


def recipe_table() -> str:
    """Every recipe on a line of its own, after the names recipe_for takes for it (for the CLI's help)."""
    rows = [(name, recipe) for name, recipe in POINT_RECIPES.items()]
    rows.append((f"digits, {IMAGES} or a folder", IMAGE_RECIPE))
    rows.append((f"images, --path {FLOW_PATH}", flow_recipe(IMAGE_RECIPE)))  # every set: its recipe on the flow
    rows.append(("digits --conditional", CONDITIONAL_DIGITS_RECIPE))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name.ljust(width)}  {recipe.summary()}" for name, recipe in rows)


MAX_X0_GAIN = 1000.0
"""Point schedules whose 1/√ᾱ_T passes this are warned about (cosine's is about 10⁴ at any T)."""
MAX_ALPHA_BAR_T = 0.01
"""Schedules whose ᾱ_T passes this are warned about, on any data: x_T keeps more than √ᾱ_T = 0.1 of x_0
(an SNR above −20 dB). Ho et al.'s linear schedule passes it at T ≤ 455 (sigmoid's ᾱ_T = 0.60 at T = 50)."""


def signal_left_warning(schedule: ScheduleConfig) -> str | None:
    """Why ``schedule`` ends too far from noise, or None.

    Sampling starts from x_T ~ N(0, I), but q(x_T | x_0) = N(√ᾱ_T x_0, (1 − ᾱ_T) I). When ᾱ_T is not
    small, x_T still shows x_0: the network learns its first steps on inputs unlike the pure noise
    that sampling feeds it, and the prior term L_T of the bound is large.
    """
    alpha_bar = float(NoiseSchedule(schedule).alpha_bars[-1])
    if alpha_bar <= MAX_ALPHA_BAR_T:
        return None
    what = "mostly signal" if alpha_bar > 0.5 else "far from noise"
    return (f"{schedule_label(schedule)} ends at ᾱ_T = {alpha_bar:.2f}: x_T = {alpha_bar ** 0.5:.2f} x_0 + "
            f"{(1 - alpha_bar) ** 0.5:.2f} ε is {what}, not the N(0, I) that sampling starts from; a larger T "
            f"or β_end brings ᾱ_T near 0")


def schedule_warning(schedule: ScheduleConfig, recipe: Recipe) -> str | None:
    """Why ``schedule`` is a poor choice for the data of ``recipe``, or None.

    On any data, a schedule that ends far from noise (signal_left_warning). On 2-D points, also
    x̂_0 = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t (Ho et al. eq. 15) multiplies the network's error in ε̂ by
    1/√ᾱ_t. Near cosine's T, where β is clipped at 0.999 and ᾱ_T ≈ 10⁻⁸, that is about 10⁴: on 2-D
    points, whose network errs by more than an image U-Net does, samples stay on the data only while
    x̂_0 is kept within the data's range (DDIM in 20 steps without it threw a Swiss-roll model's
    points to ±2,000), and its previews come out farther from the data than a linear schedule's.
    Images are not warned about that: they always keep x̂_0 within [−1, 1].
    """
    left = signal_left_warning(schedule)
    if left or recipe.kind != POINTS or schedule.path == FLOW_PATH:  # a velocity is read without dividing by √ᾱ_t
        return left
    gain = 1.0 / float(NoiseSchedule(schedule).sqrt_alpha_bars[-1])
    if gain <= MAX_X0_GAIN:
        return None
    return (f"{schedule_label(schedule)} on 2-D points: ᾱ_T = {gain ** -2:.1e}, so x̂_0 multiplies the network's error "
            f"by {gain:,.0f} near t = T and samples hold only while x̂_0 is kept in the data's range; "
            f"the recipe's {schedule_label(recipe.schedule)} suits points better")
