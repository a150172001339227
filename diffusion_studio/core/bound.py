"""Measuring the variational bound of an image model on data it was not trained on, term by term.

The CLI's ``bpd`` and the Bound panel both go through here: the data chosen and 8-bit quantised
as the bound's decoder assumes, the terms of ``core.vlb.bound_steps`` as they come, and a
summary of them (per t, cumulative, total).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from diffusion_studio.core.data.datasets import evaluation_set
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.limits import MAX_BATCH, MAX_SAMPLES
from diffusion_studio.core.samplers import DDPM_VARIANCES
from diffusion_studio.core.vlb import BoundStep, BoundTerms, bound_steps, quantize

if TYPE_CHECKING:
    from diffusion_studio.core.loaded_model import LoadedModel


@dataclass(frozen=True)
class BoundMeasurement:
    """A model, the quantised images it is measured on, and how: ready to run ``steps()``."""

    model: LoadedModel
    x0: torch.Tensor  # N×C×H×W on the 256 levels of [−1, 1], on the network's device
    data_name: str
    variance: str  # "beta" or "beta_tilde": σ_t² of p_θ(x_{t−1} | x_t)
    seed: int = 0
    batch_size: int = 256

    @property
    def num(self) -> int:
        return self.x0.shape[0]

    @property
    def timesteps(self) -> int:
        return self.model.schedule_config.timesteps

    def steps(self, should_stop: Callable[[], bool] = lambda: False) -> Generator[BoundStep, None, BoundTerms | None]:
        """L_0, L_1, …, L_{T−1} as they are computed (``core.vlb.bound_steps``); returns every term."""
        generator = torch.Generator(self.x0.device).manual_seed(self.seed)
        return bound_steps(self.model.denoiser(self.x0.device), self.x0, self.variance, generator, self.batch_size, should_stop)


def measure_bound(
    model: LoadedModel, data: str | None = None, num: int = 64, variance: str = "beta", seed: int = 0, batch_size: int = 256,
    device: torch.device | str | None = None,
) -> BoundMeasurement:
    """The bound of ``model`` on the first ``num`` images of ``data`` ("digits": its held-out digits;
    a folder; None: what the model was trained on, held out), at the model's size and channels, on
    ``device`` (default: where the model was opened).
    SettingError or DataError, before any work, if it cannot be measured."""
    if not model.is_image:
        raise SettingError("model", "bits per dimension are measured on 8-bit images; this model makes 2-D points")
    if num < 1 or batch_size < 1:
        raise SettingError("num", f"the number of images and the batch size must be at least 1, got {num} and {batch_size}")
    if num > MAX_SAMPLES or batch_size > MAX_BATCH:
        raise SettingError("num", f"the number of images and the batch size must be at most {MAX_SAMPLES:,} and "
                           f"{MAX_BATCH:,}, got {num:,} and {batch_size:,}")
    if variance not in DDPM_VARIANCES:
        raise SettingError("variance", f"unknown variance '{variance}' (choose from {', '.join(DDPM_VARIANCES)})")
    source = data or model.data
    if not source:
        raise SettingError("data", "this model does not record what it was trained on: name the images to measure on")
    channels, size, _ = model.sample_shape
    images = evaluation_set(source, size, channels)
    x0 = quantize(torch.from_numpy(images.data[:num])).to(model.device if device is None else device)
    return BoundMeasurement(model, x0, images.name, variance, seed, batch_size)


@dataclass(frozen=True)
class BoundSummary:
    """The bound's terms averaged over the images, bits/dim."""

    terms: np.ndarray  # (T,): index t − 1 holds L_{t−1} (L_0 first)
    prior: float  # L_T

    @classmethod
    def of(cls, terms: BoundTerms) -> BoundSummary:
        return cls(terms.terms.double().mean(0).numpy(), float(terms.prior.double().mean()))

    @property
    def decoder(self) -> float:
        """L_0 = −log p_θ(x_0 | x_1)."""
        return float(self.terms[0])

    @property
    def middle(self) -> float:
        """Σ_{t=2}^T L_{t−1}, the denoising matching terms."""
        return float(self.terms[1:].sum())

    @property
    def total(self) -> float:
        """L = L_T + Σ L_{t−1} + L_0 (eq. 5), an upper bound on −log₂ p_θ(x_0) per dimension."""
        return self.prior + float(self.terms.sum())

    def cumulative(self) -> np.ndarray:
        """(T,): L_0 + … + L_{t−1} at index t − 1, how the total builds up from t = 1 to T."""
        return np.cumsum(self.terms)

    def rows(self) -> list[tuple[str, int, float]]:
        """(term, t, bits/dim) for L_T, every L_{t−1} from t = T down, L_0 and the total."""
        T = len(self.terms)
        return ([("L_T", T, self.prior)] + [(f"L_{t - 1}", t, float(self.terms[t - 1])) for t in range(T, 0, -1)]
                + [("total", 0, self.total)])

    def csv(self) -> str:
        """``rows()`` as CSV text with a header: term,t,bits_per_dim."""
        return "term,t,bits_per_dim\n" + "".join(f"{term},{t},{bits:.8g}\n" for term, t, bits in self.rows())
