"""The seam around the network: time index, conversions, clamp, guidance, NFE, and one copy of the
weights per device."""

import threading

import pytest
import torch

from diffusion_studio.core.denoiser import Denoiser, Guidance
from diffusion_studio.core.loaded_model import LoadedModel
from diffusion_studio.core.models import build_model
from diffusion_studio.core.models.config import MLPConfig
from diffusion_studio.core.process import split_prediction
from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.core.sampling import SamplingRun
from diffusion_studio.core.schedules import make_schedule

SCHEDULE = make_schedule("linear", 50)


class Recording(torch.nn.Module):
    """Returns 0.1·x + the index, and keeps every index and label it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def forward(self, x, index, labels=None):
        self.calls.append((index.clone(), None if labels is None else labels.clone()))
        shift = index.to(x.dtype).reshape(-1, *(1,) * (x.ndim - 1))
        if labels is not None:
            shift = shift + 10 * labels.to(x.dtype).reshape(-1, *(1,) * (x.ndim - 1))
        return 0.1 * x + 0.001 * shift


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_the_network_is_told_t_minus_1_and_read_as_its_target(prediction):
    network = Recording()
    denoiser = Denoiser(network, SCHEDULE, prediction)
    x = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    guess = denoiser.predict(x, 7)
    assert network.calls[0][0].tolist() == [6, 6, 6] and network.calls[0][1] is None
    expected_x0, expected_eps = split_prediction(SCHEDULE, network(x, torch.full((3,), 6)), x, 7, prediction)
    torch.testing.assert_close(guess.pred_x0, expected_x0)
    torch.testing.assert_close(guess.pred_eps, expected_eps)
    per_sample = denoiser.predict(x, torch.tensor([7, 7, 7]))  # one t per sample: the same answer
    torch.testing.assert_close(per_sample.pred_x0, guess.pred_x0)
    assert denoiser.nfe == 2


def test_the_clamp_keeps_x0_in_range_and_eps_consistent_with_it():
    denoiser = Denoiser(lambda x, i: torch.full_like(x, -3.0), SCHEDULE, "eps", x0_range=(-1.0, 1.0))
    x = torch.full((2, 2), 0.5)
    clamped = denoiser.predict(x, 40)
    assert clamped.pred_x0.abs().max() <= 1.0
    a = SCHEDULE.alpha_bars[40]
    torch.testing.assert_close(clamped.pred_eps, (x - a**0.5 * clamped.pred_x0) / (1 - a) ** 0.5)
    assert denoiser.predict(x, 40, clamp=False).pred_x0.abs().max() > 1.0


def test_guidance_combines_the_conditional_and_the_null_output_in_one_batched_call():
    network = Recording()
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(1))
    w = 2.5
    guided = Denoiser(network, SCHEDULE, guidance=Guidance(label=3, null=10, scale=w))
    out = guided(x, 20)
    (index, labels), = network.calls
    assert index.tolist() == [19] * 8 and labels.tolist() == [3] * 4 + [10] * 4  # one forward pass, two evaluations
    assert guided.nfe == 2
    index = torch.full((4,), 19)
    conditional, unconditional = network(x, index, torch.full((4,), 3)), network(x, index, torch.full((4,), 10))
    torch.testing.assert_close(out, (1 + w) * conditional - w * unconditional)
    unguided = Denoiser(network, SCHEDULE, guidance=Guidance(label=3, null=10, scale=0.0))(x, 20)
    torch.testing.assert_close(unguided, conditional)  # w = 0: the conditional model


def test_guidance_applies_only_inside_its_interval_of_t():
    network = Recording()
    guidance = Guidance(label=1, null=4, scale=3.0, interval=(0.2, 0.6))
    denoiser = Denoiser(network, SCHEDULE, guidance=guidance)
    x = torch.randn(2, 2, generator=torch.Generator().manual_seed(2))
    for t, inside in ((5, False), (20, True), (45, False)):
        index = torch.full((2,), t - 1)
        conditional = network(x, index, torch.full((2,), 1))
        unconditional = network(x, index, torch.full((2,), 4))
        expected = 4.0 * conditional - 3.0 * unconditional if inside else conditional
        torch.testing.assert_close(denoiser(x, t), expected)
    ts = torch.tensor([5, 20])  # one t per sample: each gets its own w
    per_sample = denoiser(x, ts)
    torch.testing.assert_close(per_sample[0], denoiser(x[:1], 5)[0])
    torch.testing.assert_close(per_sample[1], denoiser(x[1:], 20)[0])


def _tiny_model() -> LoadedModel:
    torch.manual_seed(0)
    network = build_model(MLPConfig(dim=2, hidden=16, num_layers=1)).eval()
    return LoadedModel(network, SCHEDULE.config, "eps", (2,), "tiny", "")


def test_a_denoiser_elsewhere_reads_a_copy_and_never_moves_the_shared_network():
    model = _tiny_model()
    on_meta = model.denoiser("meta")
    assert on_meta.network is not model.network and model.network_on("meta") is on_meta.network  # made once
    assert model.denoiser("cpu").network is model.network  # where it lives: itself
    assert next(on_meta.network.parameters()).device.type == "meta"
    assert {p.device.type for p in model.network.parameters()} == {"cpu"}


def test_two_sessions_on_two_devices_at_once_never_disturb_each_other():
    model = _tiny_model()
    config = SampleConfig(sampler="ddim", steps=25, num=64, seed=3)
    reference = list(SamplingRun(model, config, "cpu").steps())[-1].x_prev
    started, results, devices_seen = threading.Barrier(2), {}, []

    def sample_on_cpu():
        started.wait()
        run = SamplingRun(model, config, "cpu")
        for step in run.steps():  # noqa: B007 (kept: the last step)
            devices_seen.append({p.device.type for p in model.network.parameters()})
        results["cpu"] = step.x_prev

    def read_on_meta():
        started.wait()
        denoiser = model.denoiser("meta")
        x = torch.zeros(64, 2, device="meta")
        for t in range(50, 0, -1):
            results["meta"] = denoiser.predict(x, t).pred_x0
            devices_seen.append({p.device.type for p in model.network.parameters()})

    threads = [threading.Thread(target=sample_on_cpu), threading.Thread(target=read_on_meta)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(seen == {"cpu"} for seen in devices_seen) and len(devices_seen) == 75
    assert results["meta"].device.type == "meta" and results["meta"].shape == (64, 2)
    torch.testing.assert_close(results["cpu"], reference, rtol=0, atol=0)  # the same samples as alone
