"""An image through the model: the truth beside the network's guesses."""

import numpy as np
import pytest
import torch

from diffusion_studio.core.control import drain
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.process import q_sample
from diffusion_studio.core.round_trip import ERROR_BATCH, errors_by_t, round_trip
from diffusion_studio.core.schedules import make_schedule

from tests.core.exact import GaussianEps, OnePoint, loaded

SCHEDULE = make_schedule("linear", 250)
POINT = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
NOISE = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(1))


def test_at_t_0_nothing_is_noised_and_x0_is_known():
    trip = round_trip(loaded(OnePoint(SCHEDULE, POINT), SCHEDULE, (1, 4, 4)), POINT, 0, NOISE)
    assert torch.equal(trip.x_t, POINT) and torch.equal(trip.pred_x0, POINT) and torch.equal(trip.pred_eps, NOISE)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_an_exact_network_recovers_x0_and_the_noise_at_every_t(prediction):
    model = loaded(OnePoint(SCHEDULE, POINT, prediction), SCHEDULE, (1, 4, 4), prediction)
    for t in (1, 100, 250):
        trip = round_trip(model, POINT, t, NOISE)
        torch.testing.assert_close(trip.x_t, q_sample(SCHEDULE, POINT, t, NOISE))
        torch.testing.assert_close(trip.pred_x0, POINT, atol=2e-4, rtol=0)
        torch.testing.assert_close(trip.pred_eps, NOISE, atol=2e-4, rtol=0)
    with pytest.raises(SettingError, match="between 0 and T = 250"):
        round_trip(model, POINT, 251, NOISE)


def test_errors_by_t_cover_every_t_in_batches_and_grow_with_the_noise_for_a_wrong_guess():
    """A network that knows only the data's distribution (N(0, ½²)), not this image: its x̂_0 error
    grows with t towards the image's whole energy, its ε̂ error falls towards 0."""
    model = loaded(GaussianEps(SCHEDULE, torch.zeros(1, 4, 4), 0.5), SCHEDULE, (1, 4, 4))
    image = 0.5 * torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    partial = []
    errors = drain(errors_by_t(model, image, NOISE), partial.append)
    assert len(partial) == -(-250 // ERROR_BATCH) and np.array_equal(errors.t, np.arange(1, 251))
    assert errors.x0[-1] > 10 * errors.x0[0] and errors.eps[0] > 10 * errors.eps[-1]
    assert errors.x0[-1] == pytest.approx(float(image.square().mean()), rel=0.2)  # x̂_0 ≈ μ = 0 at T
    exact = loaded(OnePoint(SCHEDULE, image), SCHEDULE, (1, 4, 4))
    assert drain(errors_by_t(exact, image, NOISE)).x0.max() < 1e-6
