"""Gaussian mixtures, the drift field and the marginals check: the exact answers the 2-D lab shows
beside what a model learned."""

import math

import numpy as np
import pytest

from diffusion_studio.core import process as P
from diffusion_studio.core.data.datasets import load_points_file, load_toy, save_points
from diffusion_studio.core.drift import MixtureDenoiser, drift_field, from_eps, grid
from diffusion_studio.core.errors import DataError
from diffusion_studio.core.loaded_model import LoadedModel
from diffusion_studio.core.marginals import forward_marginals, moments, path_marginals
from diffusion_studio.core.mixture import EIGHT_GAUSSIANS, GaussianMixture, known_mixture, save_mixture
from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.core.sampling import SamplingRun
from diffusion_studio.core.schedules import NoiseSchedule, ScheduleConfig

SCHEDULE = NoiseSchedule(ScheduleConfig("linear", 100, beta_start=1e-3, beta_end=0.1))
MIXTURE = GaussianMixture(np.array([[-1.0, 0.5], [1.2, -0.3], [0.0, 1.5]]), np.array([0.2, 0.4, 0.1]), np.array([1, 2, 1]))


def exact_model(mixture: GaussianMixture = MIXTURE, schedule: NoiseSchedule = SCHEDULE) -> LoadedModel:
    network = MixtureDenoiser(mixture, schedule)
    return LoadedModel(network, schedule.config, "eps", (2,), "exact", "", (-3.0, 3.0))


@pytest.mark.parametrize("alpha_bar", [1.0, 0.6, 0.05])
@pytest.mark.parametrize("mixture", [MIXTURE, EIGHT_GAUSSIANS], ids=["three", "eight"])
def test_score_is_the_gradient_of_the_log_density(mixture, alpha_bar):
    q = mixture.diffused(alpha_bar)
    x = np.random.default_rng(0).uniform(-2.5, 2.5, (50, 2))
    h = 1e-5
    numeric = np.stack([(q.log_prob(x + h * e) - q.log_prob(x - h * e)) / (2 * h) for e in np.eye(2)], axis=1)
    np.testing.assert_allclose(q.score(x), numeric, rtol=1e-5, atol=1e-6)


def test_the_diffused_mixture_is_the_forward_process_of_its_samples():
    rng = np.random.default_rng(1)
    x0 = MIXTURE.sample(200_000, rng).astype(np.float64)
    x_t = P.q_sample(SCHEDULE, x0, 30, rng.standard_normal(x0.shape))
    q = MIXTURE.diffused(float(SCHEDULE.alpha_bars[30]))
    # the same density: the Monte Carlo log-likelihood of x_t equals the mixture's cross-entropy with itself
    own = q.log_prob(q.sample(200_000, rng)).mean()
    assert q.log_prob(x_t).mean() == pytest.approx(own, abs=0.02)


def test_a_point_mixture_gives_the_one_point_denoiser():
    point = np.array([[0.7, -0.2]])
    x_t = np.random.default_rng(2).standard_normal((10, 2))
    alpha_bar = float(SCHEDULE.alpha_bars[40])
    expected = (x_t - math.sqrt(alpha_bar) * point) / math.sqrt(1 - alpha_bar)
    np.testing.assert_allclose(GaussianMixture.of_points(point).exact_eps(x_t, alpha_bar), expected, rtol=1e-10)


def test_a_point_has_no_density_before_noise():
    with pytest.raises(DataError, match="no density"):
        GaussianMixture.of_points(np.zeros((2, 2))).score(np.zeros((1, 2)))


def test_bad_mixtures_are_refused():
    with pytest.raises(DataError, match="σ ≥ 0"):
        GaussianMixture(np.zeros((2, 2)), np.array([0.1, -0.1]), np.ones(2))


def test_the_bundled_eight_gaussians_come_from_the_mixture():
    data = load_toy("eight_gaussians", 20_000).data
    own = EIGHT_GAUSSIANS.log_prob(EIGHT_GAUSSIANS.sample(20_000, np.random.default_rng(0))).mean()
    assert EIGHT_GAUSSIANS.log_prob(data).mean() == pytest.approx(own, abs=0.05)
    assert known_mixture("eight_gaussians") is EIGHT_GAUSSIANS
    assert known_mixture("swiss_roll") is None


def test_a_drawn_mixture_is_kept_beside_its_points(tmp_path):
    points = tmp_path / "drawing.csv"
    save_points(MIXTURE.sample(100, np.random.default_rng(0)), points)
    save_mixture(MIXTURE, points)
    again = known_mixture(str(points))
    np.testing.assert_allclose(again.means, MIXTURE.means)
    np.testing.assert_allclose(again.weights, MIXTURE.weights)
    (tmp_path / "drawing.mixture.json").write_text("{not json")
    with pytest.raises(DataError, match="does not hold a Gaussian mixture"):
        known_mixture(str(points))


@pytest.mark.parametrize("kind", ["score", "mean_step"])
def test_a_perfect_denoiser_draws_the_exact_field(kind):
    field = drift_field(exact_model(), grid((-3, 3, -2, 2), 9), 25, kind, MIXTURE)
    assert field.points.shape == (81, 2)
    np.testing.assert_allclose(field.learned, field.exact, rtol=1e-4, atol=1e-5)
    assert np.abs(field.difference).max() < 1e-4


def test_a_wrong_model_differs_from_the_exact_field():
    field = drift_field(exact_model(EIGHT_GAUSSIANS), grid((-3, 3, -3, 3), 9), 25, "score", MIXTURE)
    assert np.abs(field.difference).mean() > 0.1


def test_the_mean_step_is_the_posterior_mean_of_the_predicted_x0():
    x_t = np.random.default_rng(3).standard_normal((20, 2))
    eps = np.random.default_rng(4).standard_normal((20, 2))
    mean, _ = P.q_posterior_mean_variance(SCHEDULE, P.predict_x0_from_eps(SCHEDULE, x_t, 60, eps), x_t, 60)
    np.testing.assert_allclose(x_t + from_eps(SCHEDULE, x_t, eps, 60, "mean_step"), mean, rtol=1e-10)


def test_forward_marginals_match_the_forward_process():
    rng = np.random.default_rng(5)
    data = load_toy("swiss_roll", 50_000).data.astype(np.float64)
    marginals = forward_marginals(SCHEDULE, data)
    assert len(marginals.t) == 101 and marginals.std[-1] == pytest.approx(1.0, abs=0.01)
    for t in (1, 20, 70):
        mean, std = moments(P.q_sample(SCHEDULE, data, t, rng.standard_normal(data.shape)))
        assert mean == pytest.approx(marginals.mean[t], abs=0.01)
        assert std == pytest.approx(marginals.std[t], rel=0.01)


def test_a_perfect_model_follows_the_forward_marginals():
    """With ᾱ_T ≈ e^−10, q(x_T) is N(0, I) as the sampler's start is, and the whole path stays on
    the forward marginals (on SCHEDULE, ᾱ_T ≈ 0.006 and x_T's mean starts 0.03 off)."""
    schedule = NoiseSchedule(ScheduleConfig("linear", 100, beta_start=1e-3, beta_end=0.2))
    model = exact_model(schedule=schedule)
    steps = list(SamplingRun(model, SampleConfig(sampler="ddpm", num=2000, seed=0)).steps())
    frames = np.stack([s.x_t.numpy() for s in steps] + [steps[-1].x_prev.numpy()])
    t = np.array([s.t for s in steps] + [0])
    sampled = path_marginals(t, frames)
    expected = forward_marginals(schedule, MIXTURE.sample(100_000, np.random.default_rng(6)), t)
    np.testing.assert_allclose(sampled.std, expected.std, atol=0.05)
    np.testing.assert_allclose(sampled.mean, expected.mean, atol=0.05)


def test_the_probability_flow_of_one_gaussian_is_its_closed_form():
    """For data N(μ, s² I) the flow is linear: x_0 = μ + s (x_T − √ᾱ_T μ)/√(ᾱ_T s² + 1 − ᾱ_T)."""
    mean, std = np.array([0.5, -0.3]), 0.5
    x_T = np.random.default_rng(4).standard_normal((200, 2))
    a = float(SCHEDULE.alpha_bars[-1])
    exact = mean + std * (x_T - math.sqrt(a) * mean) / math.sqrt(a * std**2 + 1 - a)
    flow = GaussianMixture(mean[None], np.array([std]), np.ones(1)).probability_flow(x_T, a)
    np.testing.assert_allclose(flow, exact, atol=1e-5)
    assert np.abs(flow - x_T).mean() > 0.1  # it moved


def test_ode_samplers_with_the_perfect_denoiser_converge_to_the_probability_flow():
    """DDIM is first order: doubling its steps about halves its distance from the flow; DPM-Solver++
    over all T steps lands within a few thousandths of it."""
    model = LoadedModel(MixtureDenoiser(MIXTURE, SCHEDULE), SCHEDULE.config, "eps", (2,), "exact", "")  # x̂_0 unclamped

    def distance(**settings):
        steps = list(SamplingRun(model, SampleConfig(num=500, seed=3, **settings)).steps())
        x_T, x_0 = steps[0].x_t.double().numpy(), steps[-1].x_prev.double().numpy()
        return float(np.sqrt(((x_0 - MIXTURE.probability_flow(x_T, float(SCHEDULE.alpha_bars[-1]))) ** 2).sum(1).mean()))

    ddim_25, ddim_50 = distance(sampler="ddim", steps=25), distance(sampler="ddim", steps=50)
    assert 1.5 < ddim_25 / ddim_50 < 2.5
    assert distance(sampler="dpmpp-2m") < 0.01 < ddim_50


def test_points_files_round_trip_and_bad_ones_are_refused(tmp_path):
    points = np.random.default_rng(7).standard_normal((30, 2)).astype(np.float32)
    loaded = load_points_file(save_points(points, tmp_path / "mine.csv"))
    np.testing.assert_allclose(loaded.data, points, rtol=1e-5)
    assert not loaded.is_image
    (tmp_path / "bare.csv").write_text("0.5,1\n-1e-3,2\n")
    assert load_points_file(tmp_path / "bare.csv").data.shape == (2, 2)
    for name, text, message in [("one.csv", "x,y\n1,2\n", "at least 2 points"),
                                ("four.csv", "1,2,3,4\n5,6,7,8\n", "of 2 coordinates"),
                                ("words.csv", "x,y\na,b\nc,d\n", "not a CSV of points"),
                                ("inf.csv", "1,2\ninf,3\n", "not finite")]:
        (tmp_path / name).write_text(text)
        with pytest.raises(DataError, match=message):
            load_points_file(tmp_path / name)
    with pytest.raises(DataError, match="not a CSV of points"):
        load_points_file(tmp_path / "missing.csv")
