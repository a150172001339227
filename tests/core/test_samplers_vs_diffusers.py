"""Euler, Euler ancestral, Heun and DPM-Solver++(2M) step for step against diffusers' schedulers.

Both sides get the same β schedule (linear, T = 1000), the same x_T and the same network, a fixed
smooth function of (x, t): the exact output for Gaussian data plus a perturbation, so that the
outputs stay of order one. Every full step is compared in VP space.

Conventions, ours against diffusers':

- Timesteps. We count t = 1…T (x_0 the data at t = 0); diffusers' timesteps are t − 1, the index
  the network is told in both. The final step goes to σ = 0 (ᾱ_0 = 1) in both
  (final_sigmas_type="zero").
- Spacing. "trailing" is the same on all four schedulers. "leading" is the same on Euler, Euler
  ancestral and Heun (steps_offset = 0). diffusers' "linspace" on those three keeps fractional
  timesteps, linspace(0, T − 1, K), and interpolates σ between integer steps where we round to
  integer t; the two agree only when (T − 1)/(K − 1) is a whole number (K = 2, 4, 10, 28, 38, 112,
  334, 1000 for T = 1000). DPMSolverMultistepScheduler's "linspace" and "leading" take K + 1
  points and drop the last; they agree with ours only for K = 1 ("linspace") or never ("leading").
  "logsnr" is DPMSolverMultistepScheduler's use_lu_lambdas on schedules whose σ_T is at most 80
  (ours starts no noisier than σ = 80, as "karras" does); diffusers then steps on the unrounded σ
  while telling the network the rounded t, so whole runs are compared on the same integer t.
- Sample space. diffusers' Euler, Euler ancestral and Heun keep the sample in σ-space,
  x̃ = x_VP √(σ² + 1) (scale_model_input divides that out before the network); DPMSolver++ keeps
  VP samples, as we do everywhere. We convert x_T in and each step's sample out explicitly.
- Initial noise. For "linspace" and "trailing", diffusers' Euler-type schedulers start from
  x̃_T = σ_max z (init_noise_sigma), an approximation of x̃_T = √(σ_max² + 1) z, which is our
  x_T = z. These tests hand both the same x_T, so this does not enter.
- Heun. diffusers spends two scheduler.step() calls on a step (2K − 1 calls in all: the last step
  is Euler) and returns the x̂_0 of the corrector; we make both network calls inside advance()
  and record x̂_0, ε̂ of the first (at t, the x_t the loop records).
- DPM-Solver++(2M). diffusers always takes the last step, to σ = 0, first order (with
  final_sigmas_type="zero" the lower_order_final rule applies whatever the step count), and the
  first-order step to σ = 0 is x_s = x̂_0. So do we. (lower_order_final's "fewer than 15 steps"
  only matters for solver_order = 3.)
- Ancestral noise. diffusers draws z in step() with randn_tensor(shape, generator, dtype), on
  the CPU exactly torch.randn(shape, generator=generator, dtype=float32), which is what our
  sampler does with the loop's generator. Handing both the same seeded generator gives the same
  z every step (x_T is passed in, so the loop draws nothing else); a single step takes the same z
  through our ``noise=`` argument. diffusers also draws a z on the last step and multiplies it by
  σ_up = 0; we draw none.
- Precision. diffusers builds β, ᾱ and σ in float32 (torch.cumprod); our schedule is float64 and
  the step coefficients are Python floats. Differences stay at float32 rounding (about 1e-6).
"""

import warnings

import numpy as np
import pytest
import torch

from diffusion_studio.core.samplers import build_sampler, spaced_timesteps
from diffusion_studio.core.samplers.euler import sigma_of
from diffusion_studio.core.sampling import sample_loop
from diffusion_studio.core.schedules import make_schedule

diffusers = pytest.importorskip("diffusers")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # diffusers' np.array(tensor) under numpy 2

T = 1000
SCHEDULE = make_schedule("linear", T, 1e-4, 0.02)
SHAPE = (16, 2, 2, 2)
TOLERANCE = dict(atol=1e-4, rtol=1e-4)  # float32 rounding is ~1e-6 here; a wrong coefficient is ≳1e-2

DIFFUSERS = {
    "euler": (diffusers.EulerDiscreteScheduler, {"use_karras_sigmas": False, "final_sigmas_type": "zero"}),
    "euler-a": (diffusers.EulerAncestralDiscreteScheduler, {}),  # no Karras σ option; its last σ is 0
    "heun": (diffusers.HeunDiscreteScheduler, {"use_karras_sigmas": False}),  # its last σ is 0
    "dpmpp-2m": (diffusers.DPMSolverMultistepScheduler,
                 {"algorithm_type": "dpmsolver++", "solver_order": 2, "solver_type": "midpoint", "final_sigmas_type": "zero",
                  "use_karras_sigmas": False}),
}
OURS = {"eps": "epsilon", "v": "v_prediction"}


def make_scheduler(name, prediction="eps", spacing="trailing"):
    cls, options = DIFFUSERS[name]
    return cls(num_train_timesteps=T, beta_schedule="linear", beta_start=1e-4, beta_end=0.02, timestep_spacing=spacing,
               prediction_type=OURS[prediction], **options)


def network(prediction):
    """The exact output for data ~ N(0.5, 0.3²) (ε̂ = √(1 − ᾱ)(x − √ᾱ μ)/(ᾱ s² + 1 − ᾱ)), then
    perturbed by a smooth function of (x, t). ``index`` is the 0-based timestep, per sample."""

    def net(x, index):
        a = torch.as_tensor(SCHEDULE.alpha_bars[index.round().long().numpy() + 1], dtype=x.dtype)
        a = a.reshape(-1, *[1] * (x.ndim - 1))
        eps = (1 - a).sqrt() * (x - a.sqrt() * 0.5) / (a * 0.09 + 1 - a) + 0.2 * torch.sin(3 * x) * (1 - a)
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        return eps if prediction == "eps" else a.sqrt() * eps - (1 - a).sqrt() * x0

    return net


def sigma_space(scheduler):
    return not isinstance(scheduler, diffusers.DPMSolverMultistepScheduler)


def diffusers_run(scheduler, net, x_T, generator=None):
    """The VP sample after every full step of a diffusers scheduler driven as its pipelines do."""
    sample = x_T * (scheduler.sigmas[0] ** 2 + 1) ** 0.5 if sigma_space(scheduler) else x_T.clone()
    out = []
    for i, t in enumerate(scheduler.timesteps):
        model_input = scheduler.scale_model_input(sample, t)
        kwargs = {"generator": generator} if isinstance(scheduler, diffusers.EulerAncestralDiscreteScheduler) else {}
        sample = scheduler.step(net(model_input, t.expand(len(sample))), t, sample, **kwargs).prev_sample
        if getattr(scheduler, "state_in_first_order", True) or i == len(scheduler.timesteps) - 1:  # Heun: after the corrector
            sigma = scheduler.sigmas[scheduler.step_index] if sigma_space(scheduler) else 0.0
            out.append(sample / (sigma**2 + 1) ** 0.5)
    return out


def our_run(name, prediction, spacing, num_steps, x_T, generator=None):
    sampler = build_sampler(name, SCHEDULE, prediction)
    sampler.set_timesteps(num_steps, spacing)
    return list(sample_loop(network(prediction), sampler, x_T.shape, x_T=x_T, generator=generator))


def x_T(seed=0):
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", DIFFUSERS)
@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
def test_timesteps_are_diffusers_plus_one_where_the_spacings_agree(name, spacing):
    for num_steps in (1, 2, 7, 10, 20, 28, 50, 333, 1000):
        scheduler = make_scheduler(name, spacing=spacing)
        scheduler.set_timesteps(num_steps)
        theirs = scheduler.timesteps.numpy().astype(np.float64)
        if name == "heun":
            theirs = np.concatenate([theirs[:1], theirs[1::2]])  # diffusers lists each later timestep twice
        ours = spaced_timesteps(SCHEDULE, num_steps, spacing) - 1
        same = len(theirs) == len(ours) and np.array_equal(theirs, ours)
        if spacing == "trailing" or (spacing == "leading" and name != "dpmpp-2m"):
            assert same, (num_steps, theirs, ours)
        elif spacing == "linspace" and name != "dpmpp-2m":
            assert same == (num_steps > 1 and (T - 1) % (num_steps - 1) == 0), num_steps
        elif spacing == "linspace":  # DPMSolver: K + 1 points from 0 to T − 1, the last dropped
            assert same == (num_steps == 1), num_steps
        else:  # DPMSolver "leading": k·⌊T/(K + 1)⌋ for k = K … 1
            assert not same, num_steps


def test_sigma_is_diffusers_sigma():
    scheduler = make_scheduler("euler")
    scheduler.set_timesteps(T)
    theirs = scheduler.sigmas.numpy().astype(np.float64)  # σ at t − 1 = 999 … 0, then the final 0
    ours = np.array([sigma_of(SCHEDULE, t) for t in range(T, -1, -1)])
    np.testing.assert_allclose(ours, theirs, rtol=2e-4)  # float32 1 − ᾱ near t = 1
    assert ours[-1] == 0 and 150 < ours[0] < 160


@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("name", DIFFUSERS)
def test_one_step_matches_diffusers(name, prediction):
    """The first step from T, taken alone with ``advance()`` (Heun: both calls)."""
    scheduler = make_scheduler(name, prediction)
    scheduler.set_timesteps(10)
    x = x_T(1)
    z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(5))
    theirs = diffusers_run(scheduler, network(prediction), x, generator=torch.Generator().manual_seed(5))[0]
    sampler = build_sampler(name, SCHEDULE, prediction)
    sampler.set_timesteps(10, "trailing")  # as the diffusers schedulers here space them
    calls = []
    net = network(prediction)

    def denoise(sample, t):
        calls.append(t)
        return net(sample, torch.full((len(sample),), t - 1))

    ours = sampler.advance(denoise, T, x, noise=z)
    torch.testing.assert_close(ours.prev_sample, theirs, **TOLERANCE)
    assert calls == ([1000, 900] if name == "heun" else [1000])


@pytest.mark.parametrize(
    "name, prediction, spacing, num_steps",
    [
        ("euler", "eps", "trailing", 25), ("euler", "eps", "leading", 25), ("euler", "eps", "linspace", 10),
        ("euler", "v", "trailing", 25),
        ("euler-a", "eps", "trailing", 25), ("euler-a", "eps", "leading", 25), ("euler-a", "v", "trailing", 25),
        ("heun", "eps", "trailing", 15), ("heun", "eps", "leading", 15), ("heun", "v", "trailing", 15),
        ("dpmpp-2m", "eps", "trailing", 20), ("dpmpp-2m", "eps", "trailing", 5), ("dpmpp-2m", "eps", "trailing", 1),
        ("dpmpp-2m", "v", "trailing", 20),
    ],
)
def test_whole_run_matches_diffusers_step_for_step(name, prediction, spacing, num_steps):
    x = x_T(2)
    scheduler = make_scheduler(name, prediction, spacing)
    scheduler.set_timesteps(num_steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = diffusers_run(scheduler, network(prediction), x, generator=torch.Generator().manual_seed(3))
    ours = our_run(name, prediction, spacing, num_steps, x, generator=torch.Generator().manual_seed(3))
    assert len(ours) == len(theirs) == num_steps
    for mine, their in zip(ours, theirs):
        torch.testing.assert_close(mine.x_prev, their, **TOLERANCE)
    assert ours[-1].prev_t == 0 and ours[-1].nfe == (2 * num_steps - 1 if name == "heun" else num_steps)
    assert float(ours[-1].x_prev.std()) > 0.1  # a real run, not a collapse to a constant


def test_ancestral_noise_is_what_moves_the_result():
    """Another seed on our side only: the runs part, so the equality above rests on the same z."""
    x = x_T(2)
    scheduler = make_scheduler("euler-a")
    scheduler.set_timesteps(25)
    theirs = diffusers_run(scheduler, network("eps"), x, generator=torch.Generator().manual_seed(3))
    ours = our_run("euler-a", "eps", "trailing", 25, x, generator=torch.Generator().manual_seed(4))
    assert float((ours[-1].x_prev - theirs[-1]).abs().max()) > 0.1


def test_dpm_solver_second_order_steps_are_what_diffusers_takes():
    """Without the previous x̂_0 (history dropped every step) the run is first order and parts
    from diffusers': the match above depends on the multistep update."""
    x = x_T(2)
    scheduler = make_scheduler("dpmpp-2m")
    scheduler.set_timesteps(20)
    theirs = diffusers_run(scheduler, network("eps"), x)
    sampler = build_sampler("dpmpp-2m", SCHEDULE)
    sampler.set_timesteps(20, "trailing")
    net, sample = network("eps"), x
    for t in sampler.timesteps.tolist():
        sampler.reset()
        sample = sampler.advance(lambda v, k: net(v, torch.full((len(v),), k - 1)), t, sample).prev_sample
    assert float((sample - theirs[-1]).abs().max()) > 1e-2
    first_order = [st.x_prev for st in our_run("ddim", "eps", "trailing", 20, x)]
    torch.testing.assert_close(sample, first_order[-1], atol=1e-5, rtol=1e-5)  # first order is DDIM


@pytest.mark.parametrize(
    "ours, theirs, T, beta_start, beta_end",
    [("quadratic", "scaled_linear", 1000, 0.00085, 0.012), ("linear", "linear", 100, 1e-3, 0.1)],  # σ_T ≈ 15 and 14
)
def test_logsnr_spacing_is_diffusers_lu_lambdas(ours, theirs, T, beta_start, beta_end):
    """use_lu_lambdas: log σ evenly from σ_T to σ_1, each at the nearest t, where σ_T ≤ 80 (above it we
    start at σ = 80). Where diffusers would visit a t twice (many steps, few T), we keep K distinct."""
    schedule = make_schedule(ours, T, beta_start, beta_end)
    for num_steps in (1, 2, 3, 5, 10, 20, 50):
        scheduler = diffusers.DPMSolverMultistepScheduler(num_train_timesteps=T, beta_schedule=theirs, beta_start=beta_start,
                                                          beta_end=beta_end, use_lu_lambdas=True)
        scheduler.set_timesteps(num_steps)
        spaced = spaced_timesteps(schedule, num_steps, "logsnr") - 1
        if len(np.unique(scheduler.timesteps.numpy())) == num_steps:
            np.testing.assert_array_equal(spaced, scheduler.timesteps.numpy())
        else:
            assert num_steps >= 20 and len(np.unique(spaced)) == num_steps


def test_dpm_solver_on_logsnr_steps_matches_diffusers_on_the_same_timesteps():
    """Uneven steps in λ (the first one from σ = 80, not σ_T ≈ 157) and the multistep ratio r ≠ 1 they bring."""
    x = x_T(2)
    sampler = build_sampler("dpmpp-2m", SCHEDULE)
    sampler.set_timesteps(20, "logsnr")
    assert sampler.timesteps[0] < T
    scheduler = make_scheduler("dpmpp-2m")
    scheduler.set_timesteps(timesteps=(sampler.timesteps - 1).tolist())
    theirs = diffusers_run(scheduler, network("eps"), x)
    ours = list(sample_loop(network("eps"), sampler, x.shape, x_T=x))
    assert len(ours) == len(theirs) == 20
    for mine, their in zip(ours, theirs):
        torch.testing.assert_close(mine.x_prev, their, **TOLERANCE)
