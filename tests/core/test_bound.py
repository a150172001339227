"""The bound measured term by term: L_T's closed form, the quantised data, the summary's sums."""

import math

import numpy as np
import pytest
import torch

from diffusion_studio.core.bound import BoundSummary, measure_bound
from diffusion_studio.core.control import drain
from diffusion_studio.core.denoiser import Denoiser
from diffusion_studio.core.errors import DataError, SettingError
from diffusion_studio.core.schedules import make_schedule
from diffusion_studio.core.vlb import bound_steps, bound_weights, prior_bpd, quantize

from tests.core.exact import OnePoint, loaded

SCHEDULE = make_schedule("linear", 40, 1e-3, 0.2)


def test_L_T_is_the_closed_form_kl_to_the_standard_normal():
    x0 = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    a = float(SCHEDULE.alpha_bars[-1])
    # KL(N(√ā x, 1 − ā) ‖ N(0, 1)) = ½ (ā x² + (1 − ā) − 1 − log(1 − ā)), per dimension
    nats = 0.5 * (a * x0**2 - a - math.log(1 - a))
    torch.testing.assert_close(prior_bpd(SCHEDULE, x0), nats.flatten(1).mean(1) / math.log(2))


def test_quantize_puts_values_on_the_256_levels_of_an_8_bit_image():
    x = torch.linspace(-1.3, 1.3, 1001)
    q = quantize(x)
    levels = (q + 1) * 127.5
    torch.testing.assert_close(levels, levels.round(), atol=1e-4, rtol=0)
    assert q.min() == -1 and q.max() == 1 and (q - x.clamp(-1, 1)).abs().max() <= 1 / 255 + 1e-6


def test_the_progressive_terms_are_those_of_the_whole_and_sum_to_the_total():
    point = quantize(torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(2)) * 2 - 1)
    x0 = point + quantize(0.1 * torch.randn(6, 1, 4, 4, generator=torch.Generator().manual_seed(3)))
    network = Denoiser(OnePoint(SCHEDULE, point), SCHEDULE)  # wrong for every image but the point: the terms are not all zero
    steps = bound_steps(network, x0, generator=torch.Generator().manual_seed(1), batch_size=4)
    seen = []
    terms = drain(steps, seen.append)
    assert [s.t for s in seen] == list(range(1, 41)) and terms.terms.shape == (6, 40)
    whole = drain(bound_steps(network, x0, generator=torch.Generator().manual_seed(1)))  # one batch
    assert whole.terms.shape == terms.terms.shape
    torch.testing.assert_close(whole.prior, terms.prior)  # L_T has no noise in it: batches change nothing
    summary = BoundSummary.of(terms)
    rows = summary.rows()
    assert [r[0] for r in rows[:2]] == ["L_T", "L_39"] and rows[-2][:2] == ("L_0", 1) and rows[-1][0] == "total"
    assert sum(bits for _, _, bits in rows[:-1]) == pytest.approx(rows[-1][2], rel=1e-12)
    assert summary.total == pytest.approx(float(terms.total.double().mean()), rel=1e-9)
    assert summary.cumulative()[-1] == pytest.approx(summary.total - summary.prior, rel=1e-12)
    assert summary.middle > 0.1 and summary.decoder > 0


def test_stopping_ends_the_terms_early_and_returns_nothing():
    x0 = torch.zeros(2, 1, 4, 4)
    asked = iter(range(100))
    steps = bound_steps(Denoiser(OnePoint(SCHEDULE, x0[:1]), SCHEDULE), x0, should_stop=lambda: next(asked) >= 5)
    seen = []
    assert drain(steps, seen.append) is None and len(seen) == 5


def test_the_bound_weighs_t_unlike_l_simple():
    """λ_t = β_t²/(2σ_t² α_t (1 − ᾱ_t)): with σ_t² = β_t, β_t/(2 α_t (1 − ᾱ_t)), far larger at small t."""
    weights = bound_weights(SCHEDULE, "beta")
    t = np.arange(1, 41)
    expected = SCHEDULE.betas[t] / (2 * SCHEDULE.alphas[t] * SCHEDULE.one_minus_alpha_bars[t])
    np.testing.assert_allclose(weights, expected, rtol=1e-12)
    ho = bound_weights(make_schedule(), "beta")  # β from 1e−4 to 0.02: λ_1 ≈ ½, λ_T ≈ 0.01
    assert ho[0] == pytest.approx(0.5, rel=1e-3) and ho[0] > 40 * ho[-1]
    with pytest.raises(SettingError, match="variance"):
        bound_weights(SCHEDULE, "sigma")


def test_measure_bound_takes_the_held_out_digits_quantised_at_the_model_size():
    model = loaded(OnePoint(SCHEDULE, torch.zeros(1, 1, 8, 8)), SCHEDULE, (1, 8, 8))
    measurement = measure_bound(model, "digits", num=7)
    assert measurement.data_name == "digits (held-out)" and measurement.x0.shape == (7, 1, 8, 8)
    torch.testing.assert_close(measurement.x0, quantize(measurement.x0))
    rgb = loaded(OnePoint(SCHEDULE, torch.zeros(1, 3, 8, 8)), SCHEDULE, (3, 8, 8))
    assert measure_bound(rgb, "digits", num=2).x0.shape == (2, 3, 8, 8)


@pytest.mark.parametrize(("data", "num", "variance", "error", "match"), [
    ("swiss_roll", 4, "beta", DataError, "2-D points"),
    ("nowhere", 4, "beta", DataError, "neither a folder"),
    (None, 4, "beta", SettingError, "does not record"),
    ("digits", 0, "beta", SettingError, "at least 1"),
    ("digits", 4, "sigma", SettingError, "variance"),
])
def test_impossible_measurements_are_refused_before_any_work(data, num, variance, error, match):
    model = loaded(OnePoint(SCHEDULE, torch.zeros(1, 1, 8, 8)), SCHEDULE, (1, 8, 8))
    with pytest.raises(error, match=match):
        measure_bound(model, data, num=num, variance=variance)


def test_point_models_have_no_bits_per_dimension():
    model = loaded(OnePoint(SCHEDULE, torch.zeros(1, 2)), SCHEDULE, (2,))
    with pytest.raises(SettingError, match="2-D points"):
        measure_bound(model, "digits")
