"""Gaussian mixtures in D dimensions: data whose every noisy marginal q(x_t) is known exactly.

If x_0 ~ Σ_k w_k N(μ_k, σ_k² I), then x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε (Ho et al. eq. 4) is again a
mixture, Σ_k w_k N(√ᾱ_t μ_k, (ᾱ_t σ_k² + 1 − ᾱ_t) I), so its score ∇ log q(x_t) and the ε a perfect
denoiser predicts, ε*(x_t) = −√(1 − ᾱ_t) ∇ log q(x_t) (seed 002: ε-prediction is a scaled score),
have closed forms. A component may have σ_k = 0: a set of points is the mixture of its points.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diffusion_studio.core.atomic import atomic_write
from diffusion_studio.core.data.datasets import EIGHT_GAUSSIANS_RADIUS, EIGHT_GAUSSIANS_STD, is_points_file
from diffusion_studio.core.errors import DataError, FileReadError
from diffusion_studio.core.files import read_json

MIXTURE_SUFFIX = ".mixture.json"
"""A drawn mixture is saved beside its points file (points.csv → points.mixture.json)."""
FLOW_STEPS = 200
"""RK4 steps of probability_flow, evenly in log σ: its answer moves by < 10⁻⁴ on doubling them (eight Gaussians, T = 1000)."""
FLOW_SIGMA_MIN = 1e-4
"""Where probability_flow stops integrating and takes x̂_0: far below any σ_k of a drawn mixture."""


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """p(x) = Σ_k w_k N(x; μ_k, σ_k² I)."""

    means: np.ndarray  # K×D component means μ_k
    stds: np.ndarray  # K standard deviations σ_k ≥ 0 (0: a point)
    weights: np.ndarray  # K weights w_k, summing to 1

    def __post_init__(self) -> None:
        means = np.atleast_2d(np.asarray(self.means, dtype=np.float64))
        stds = np.broadcast_to(np.asarray(self.stds, dtype=np.float64), (len(means),)).copy()
        weights = np.broadcast_to(np.asarray(self.weights, dtype=np.float64), (len(means),)).copy()
        if not len(means) or np.any(stds < 0) or np.any(weights < 0) or weights.sum() <= 0:
            raise DataError("a Gaussian mixture needs at least one component, σ ≥ 0 and weights ≥ 0 that are not all 0")
        for name, value in (("means", means), ("stds", stds), ("weights", weights / weights.sum())):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @classmethod
    def of_points(cls, points: np.ndarray, std: float = 0.0) -> GaussianMixture:
        """The points as equally weighted components of std ``std`` (0: the empirical distribution)."""
        return cls(points, np.full(len(points), std), np.ones(len(points)))

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws: a component k ~ w, then μ_k + σ_k z with z ~ N(0, I); float32 n×D."""
        return self.sample_labelled(n, rng)[0]

    def sample_labelled(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The n draws of ``sample`` and the component k of each (int64), the class it belongs to."""
        k = rng.choice(len(self.weights), size=n, p=self.weights)
        return (self.means[k] + self.stds[k, None] * rng.standard_normal((n, self.dim))).astype(np.float32), k.astype(np.int64)

    def diffused(self, alpha_bar: float) -> GaussianMixture:
        """q(x_t) for this q(x_0): means √ᾱ_t μ_k, variances ᾱ_t σ_k² + 1 − ᾱ_t, the same weights."""
        return GaussianMixture(math.sqrt(alpha_bar) * self.means,
                               np.sqrt(alpha_bar * self.stds**2 + (1.0 - alpha_bar)), self.weights)

    def _log_responsibilities(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log w_k N(x; μ_k, σ_k² I) for every x and k (N×K), the components' variances (K))."""
        variances = self.stds**2
        if np.any(variances == 0):
            raise DataError("a point component has no density; diffuse the mixture to some t ≥ 1 first")
        x = np.asarray(x, dtype=np.float64)
        squared = ((x[:, None, :] - self.means[None]) ** 2).sum(-1)
        log_normal = -0.5 * squared / variances - 0.5 * self.dim * np.log(2 * math.pi * variances)
        return np.log(np.maximum(self.weights, 1e-300)) + log_normal, variances

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """log p(x) = log Σ_k w_k N(x; μ_k, σ_k² I), one value per row of x (N×D)."""
        log_joint, _ = self._log_responsibilities(x)
        top = log_joint.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(log_joint - top).sum(axis=1, keepdims=True)))[:, 0]

    def score(self, x: np.ndarray) -> np.ndarray:
        """∇_x log p(x) = Σ_k r_k(x) (μ_k − x)/σ_k², with r_k(x) ∝ w_k N(x; μ_k, σ_k² I) the
        responsibilities (the posterior that x came from component k). N×D."""
        log_joint, variances = self._log_responsibilities(x)
        r = np.exp(log_joint - log_joint.max(axis=1, keepdims=True))
        r /= r.sum(axis=1, keepdims=True)
        x = np.asarray(x, dtype=np.float64)
        return (r / variances) @ self.means - (r / variances).sum(axis=1, keepdims=True) * x

    def exact_eps(self, x_t: np.ndarray, alpha_bar: float) -> np.ndarray:
        """The ε a perfect denoiser predicts at x_t: E[ε | x_t] = −√(1 − ᾱ_t) ∇ log q(x_t)."""
        return -math.sqrt(1.0 - alpha_bar) * self.diffused(alpha_bar).score(x_t)

    def probability_flow(self, x_T: np.ndarray, alpha_bar_T: float, steps: int = FLOW_STEPS) -> np.ndarray:
        """Where the probability-flow ODE carries x_T, a sample at ᾱ_T, to t = 0: what an ODE sampler
        with the perfect ε-network lands on in the limit of small steps (its error is the distance).

        With σ = √((1 − ᾱ)/ᾱ) and x̃ = x/√ᾱ (Karras et al. 2022's variables), the ODE is
        dx̃/d log σ = x̃ − x̂_0 = σ ε*(√ᾱ x̃, ᾱ), ᾱ = 1/(1 + σ²). Classical Runge–Kutta (RK4) in
        ``steps`` equal steps of log σ from σ_T down to ``FLOW_SIGMA_MIN``, then x_0 = x̂_0 there.
        N×D float64.
        """
        def velocity(x: np.ndarray, log_sigma: float) -> np.ndarray:
            sigma = math.exp(log_sigma)
            alpha_bar = 1.0 / (1.0 + sigma * sigma)
            return sigma * self.exact_eps(math.sqrt(alpha_bar) * x, alpha_bar)

        x = np.asarray(x_T, dtype=np.float64) / math.sqrt(alpha_bar_T)
        levels = np.linspace(0.5 * math.log((1.0 - alpha_bar_T) / alpha_bar_T), math.log(FLOW_SIGMA_MIN), steps + 1)
        for s, h in zip(levels[:-1], np.diff(levels)):
            k1 = velocity(x, s)
            k2 = velocity(x + 0.5 * h * k1, s + 0.5 * h)
            k3 = velocity(x + 0.5 * h * k2, s + 0.5 * h)
            k4 = velocity(x + h * k3, s + h)
            x = x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return x - velocity(x, levels[-1])

    def to_json(self) -> str:
        return json.dumps({"means": self.means.tolist(), "stds": self.stds.tolist(), "weights": self.weights.tolist()})


EIGHT_GAUSSIANS = GaussianMixture(
    EIGHT_GAUSSIANS_RADIUS * np.stack([np.cos(np.arange(8) * math.pi / 4), np.sin(np.arange(8) * math.pi / 4)], axis=1),
    np.full(8, EIGHT_GAUSSIANS_STD),
    np.ones(8),
)
"""The bundled "eight_gaussians" set's distribution (core.data.datasets.eight_gaussians draws from it)."""


def mixture_file(points_file: Path) -> Path:
    """Where a points file's mixture is kept: points.csv → points.mixture.json."""
    return points_file.with_name(points_file.stem + MIXTURE_SUFFIX)


def save_mixture(mixture: GaussianMixture, points_file: Path) -> Path:
    """Keep a drawn mixture beside its points file (atomically), so that its exact score is known later."""
    path = mixture_file(points_file)
    with atomic_write(path) as handle:
        handle.write(mixture.to_json().encode())
    return path


def known_mixture(data: str) -> GaussianMixture | None:
    """The exact distribution of a data source when it is a Gaussian mixture: the bundled eight
    Gaussians, or a points file drawn as a mixture (its .mixture.json beside it); None otherwise."""
    if data == "eight_gaussians":
        return EIGHT_GAUSSIANS
    path = mixture_file(Path(data)) if is_points_file(data) else None
    if path is None or not path.is_file():
        return None
    try:
        fields = read_json(path)
        return GaussianMixture(np.array(fields["means"]), np.array(fields["stds"]), np.array(fields["weights"]))
    except FileReadError as exc:
        raise DataError(f"'{path.name}' does not hold a Gaussian mixture ({exc.reason})") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"'{path.name}' does not hold a Gaussian mixture ({exc})") from None
