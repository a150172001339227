"""Several samplers from one x_T: reading the runs, running them, measuring them."""

import numpy as np
import pytest

from diffusion_studio.core.checkpoint import save_checkpoint
from diffusion_studio.core.compare import Reference, compare_items, measure, parse_reference, parse_runs, sliced_wasserstein
from diffusion_studio.core.data.datasets import load_toy
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.export import comparison_frame, comparison_times
from diffusion_studio.core.loaded_model import open_model
from diffusion_studio.core.models.config import MLPConfig
from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.core.training import Trainer


@pytest.fixture(scope="module")
def moons(tmp_path_factory):
    data = load_toy("two_moons", 2000)
    config = TrainConfig(data="two_moons", steps=300, batch_size=128, learning_rate=2e-3, warmup_steps=20, device="cpu")
    trainer = Trainer(MLPConfig(hidden=64, num_layers=2), ScheduleConfig("linear", 100), config, data)
    for _ in trainer.train(report_every=300):
        pass
    return open_model(save_checkpoint(tmp_path_factory.mktemp("moons") / "moons", trainer.checkpoint()))


def test_runs_are_read_with_their_own_settings_and_share_the_rest():
    ddpm, ddim, heun = parse_runs("ddpm; ddim:steps=50,eta=0.5 ;heun:steps=10,spacing=trailing", SampleConfig(seed=7, num=3))
    assert (ddpm.sampler, ddpm.steps, ddpm.options) == ("ddpm", None, {})
    assert (ddim.steps, ddim.options, ddim.seed, ddim.num) == (50, {"eta": 0.5}, 7, 3)
    assert (heun.steps, heun.spacing) == (10, "trailing")


@pytest.mark.parametrize("text, needle", [
    ("lms", "unknown sampler"), ("ddim:steps", "not key=value"), ("ddim:variance=beta", "not a setting of DDIM"),
    ("ddim:steps=many", "cannot read 'many'"), ("ddim:eta=-1", "eta"), ("", "1 to 8 runs"), (";".join(["ddim"] * 9), "1 to 8 runs"),
])
def test_runs_that_cannot_be_read_say_why(text, needle):
    with pytest.raises(SettingError, match=needle):
        parse_runs(text)


def test_sliced_wasserstein_is_zero_for_one_sample_and_half_a_shift_squared_for_a_shifted_one():
    """For a shift v, each direction θ moves the projection by θ·v; the mean of (θ·v)² over the circle is |v|²/2."""
    points = np.random.default_rng(0).standard_normal((4000, 2))
    assert sliced_wasserstein(points, points) == pytest.approx(0.0, abs=1e-12)
    shifted = points + np.array([3.0, 4.0])
    assert sliced_wasserstein(points, shifted, projections=2000) == pytest.approx(5.0 / np.sqrt(2.0), rel=0.03)


def test_every_run_starts_from_the_same_noise_and_counts_its_network_calls(moons):
    configs = parse_runs("ddpm;ddim:steps=10;heun:steps=5;dpmpp-2m:steps=8", SampleConfig(num=500, seed=3))
    items = compare_items(moons, configs)
    seen = []
    while True:
        try:
            seen.append(next(items))
        except StopIteration as end:
            runs = end.value
            break
    assert [r.nfe for r in runs] == [100, 10, 9, 8]  # Heun: 2 calls a step but 1 on the last
    assert len({index for index, _ in seen}) == 4 and all(r.seconds > 0 for r in runs)
    first_x = [r.trajectory.x_t[0] for r in runs]
    assert all(np.array_equal(first_x[0], x) for x in first_x[1:])  # one x_T for all
    data = load_toy("two_moons").data[:2000]
    measured = measure(runs, data)
    noise = sliced_wasserstein(np.random.default_rng(0).standard_normal((500, 2)), data)
    assert all(r.distance < noise / 2 for r in measured), [r.distance for r in measured]

    times = comparison_times([r.trajectory for r in runs], 12)
    assert times[0] == 100 and times[-1] == 0 and len(times) == 12
    frame = comparison_frame([r.trajectory for r in runs], [r.label for r in runs], 50)
    single = comparison_frame([runs[0].trajectory], [runs[0].label], 50)
    assert frame.shape[1] == single.shape[1] and frame.shape[0] > 3.5 * single.shape[0]  # a row per run


def test_runs_must_share_seed_and_count(moons):
    with pytest.raises(SettingError, match="share the seed"):
        next(compare_items(moons, [SampleConfig(seed=1), SampleConfig(seed=2)]))


def test_a_fork_shares_its_parents_frames_above_t_and_goes_on_from_the_same_x_t(moons):
    from diffusion_studio.core.compare import fork_items
    from diffusion_studio.core.control import drain

    ddpm, = drain(compare_items(moons, parse_runs("ddpm:steps=20", SampleConfig(num=300, seed=4))))
    t = int(ddpm.trajectory.timesteps[5])  # 75: five steps down
    child = parse_runs("ddim:steps=5", SampleConfig(num=300, seed=9))[0]
    fork = drain(fork_items(moons, ddpm, t, child))
    above = ddpm.trajectory.timesteps > t
    assert np.array_equal(fork.trajectory.timesteps[: above.sum()], ddpm.trajectory.timesteps[above])
    assert np.array_equal(fork.trajectory.x_t[: above.sum()], ddpm.trajectory.x_t[above])  # the prefix is the parent's
    k = above.sum()
    assert fork.trajectory.timesteps[k] == t and np.allclose(fork.trajectory.x_t[k], ddpm.trajectory.x_t[5], atol=1e-6)
    assert fork.trajectory.timesteps.tolist()[k:] == [75, 60, 45, 30, 15, 0]  # five DDIM steps spaced over 1…75
    assert fork.nfe == 5 + 5 and "from t = 75" in fork.label
    assert not np.allclose(fork.final, ddpm.final)  # it went its own way after t
    with pytest.raises(SettingError, match="recorded frame"):
        drain(fork_items(moons, ddpm, 74, child))


def test_a_run_is_labelled_by_what_differs_from_its_samplers_defaults():
    from diffusion_studio.core.sample_config import run_label

    plain, changed = parse_runs("ddim:steps=20,eta=0.0;ddim:steps=20,eta=0.5,spacing=karras,clip=false")
    assert run_label(plain, 1000) == "DDIM 20 steps"
    assert run_label(changed, 1000) == "DDIM 20 steps η=0.5 karras spacing x̂₀ unclamped"
    assert run_label(parse_runs("ddpm")[0], 1000) == "DDPM (ancestral) 1000 steps"


@pytest.mark.parametrize("text, is_image, expected", [
    (None, True, Reference("ode")), (None, False, Reference("data")), ("ode:25", True, Reference("ode", 25)),
    ("none", True, Reference("none")), ("none", False, Reference("none")), ("data", False, Reference("data")),
])
def test_a_reference_is_the_models_own_unless_named(text, is_image, expected):
    assert parse_reference(text, is_image, 1000) == expected


def test_the_default_image_reference_says_it_solves_all_t_steps():
    assert parse_reference(None, True, 1000).describe(1000) == "the probability-flow ODE in 1000 steps (DDIM, η = 0)"


@pytest.mark.parametrize("text, is_image, needle", [
    ("data", True, "'data' does not measure this model: use ode"), ("ode", False, "'ode' does not measure this model: use data"),
    ("ode:0", True, "from 1 to T = 1000"), ("ode:1001", True, "from 1 to T = 1000"), ("ode:x", True, "K in ode:K"),
    ("data:3", False, "not one of"), ("fine", True, "not one of data, ode, ode:K, none"),
])
def test_a_reference_that_cannot_measure_the_model_says_why(text, is_image, needle):
    with pytest.raises(SettingError, match=f"reference: .*{needle}"):
        parse_reference(text, is_image, 1000)
