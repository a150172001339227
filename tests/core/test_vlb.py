import math

import pytest
import torch

from diffusion_studio.core.schedules import make_schedule
from diffusion_studio.core.control import drain
from diffusion_studio.core.denoiser import Denoiser
from diffusion_studio.core.vlb import bound_steps, discretized_gaussian_log_likelihood, normal_kl, prior_bpd

from tests.core.exact import OnePoint


def test_prior_term_is_about_1e_minus_5_bits_per_dim_for_ho_et_al():
    x0 = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    L_T = prior_bpd(make_schedule(), x0)
    assert torch.all((L_T > 3e-6) & (L_T < 3e-5))
    assert L_T.mean().item() == pytest.approx(1e-5, rel=0.1)


def test_normal_kl_is_zero_for_equal_gaussians_and_matches_the_formula():
    assert normal_kl(0.3, math.log(2.0), 0.3, math.log(2.0)).item() == pytest.approx(0.0, abs=1e-15)
    mu1, s1, mu2, s2 = 0.5, 0.7, -0.2, 1.3
    expected = math.log(s2 / s1) + (s1**2 + (mu1 - mu2) ** 2) / (2 * s2**2) - 0.5
    assert normal_kl(mu1, 2 * math.log(s1), mu2, 2 * math.log(s2)).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("mean", "scale"), [(0.0, 0.01), (0.37, 0.2), (-0.95, 1.0), (0.999, 0.003)])
def test_discretized_decoder_is_a_distribution_over_the_256_levels(mean, scale):
    levels = torch.arange(256, dtype=torch.float64) / 127.5 - 1.0
    log_p = discretized_gaussian_log_likelihood(levels, torch.full_like(levels, mean), math.log(scale))
    assert torch.exp(log_p).sum().item() == pytest.approx(1.0, abs=1e-6)
    if scale < 0.5:
        assert levels[log_p.argmax()].item() == pytest.approx(mean, abs=1 / 127.5)


def test_exact_network_makes_every_kl_term_vanish():
    s = make_schedule("linear", 50, 1e-3, 0.2)
    levels = torch.randint(0, 256, (1, 3, 4, 4), generator=torch.Generator().manual_seed(1))
    point = (levels / 127.5 - 1).to(torch.float64)
    exact = drain(bound_steps(Denoiser(OnePoint(s, point), s), point.expand(4, -1, -1, -1), variance="beta_tilde"))
    assert exact.terms.shape == (4, 50)
    assert torch.all(exact.terms[:, 1:].abs() < 1e-9)  # L_1 … L_{T−1}
    # L_0: the decoder N(x_0, σ_1²) with σ_1² = β̃_2 puts Φ(δ/σ) − Φ(−δ/σ) in x_0's bin
    # (Φ(δ/σ) at the edges ±1), δ = 1/255
    sigma = math.sqrt(s.posterior_variances[2])
    phi = 0.5 * (1 + math.erf(1 / 255 / sigma / math.sqrt(2)))
    edge = (point.abs() == 1).to(torch.float64)
    expected_L0 = (-(edge * math.log2(phi) + (1 - edge) * math.log2(2 * phi - 1))).mean()
    torch.testing.assert_close(exact.terms[:, 0], expected_L0.expand(4), rtol=1e-6, atol=0)
    wrong = drain(bound_steps(Denoiser(lambda x, i: torch.zeros_like(x), s), point.expand(4, -1, -1, -1), variance="beta_tilde"))
    assert torch.all(wrong.total > exact.total + 0.1)
    assert torch.all(wrong.terms >= -1e-12)
