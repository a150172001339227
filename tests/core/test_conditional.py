"""Class-conditional models: networks that take a label or the null label ∅, data that keeps its labels,
training with label dropout, previews by class, checkpoints and resume (issue 26, the model half)."""

import json

import numpy as np
import pytest
import torch

from diffusion_studio.core.checkpoint import load_checkpoint
from diffusion_studio.core.data.datasets import Dataset
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.denoiser import Denoiser, Guidance
from diffusion_studio.core.models import build_model
from diffusion_studio.core.models.config import MLPConfig, UNetConfig, config_from_dict, config_to_dict, null_label
from diffusion_studio.core.models.presets import PRESETS
from diffusion_studio.core.runs import continue_run, new_run, run_training
from diffusion_studio.core.samplers import DDIMSampler, build_sampler
from diffusion_studio.core.sampling import sample_loop
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.core.training import Trainer, preview_labels
from diffusion_studio.resources import DEFAULT_MODEL

TOY_SCHEDULE = ScheduleConfig("linear", 100, 1e-3, 0.1)
TINY_UNET = UNetConfig(8, 1, 1, 64, (1, 2), 1, (4,), dropout=0.0, num_classes=3)
"""Widths 64 and 128: GroupNorm's 32 groups then hold 2 and 4 channels each. (At widths up to 32 each
group is one channel, whose normalisation removes the per-channel shift that the time and class
embeddings add, so such a network's output hardly depends on either.)"""
CENTRES = np.array([[-1.5, 0.0], [1.5, 0.0]], np.float32)


def two_blobs(n: int = 4000, seed: int = 0) -> Dataset:
    """A 2-component Gaussian mixture (std 0.2, centres ∓1.5 on the x axis), each point labelled by its component."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    points = CENTRES[labels] + 0.2 * rng.standard_normal((n, 2)).astype(np.float32)
    return Dataset("two blobs", points.astype(np.float32), labels=labels.astype(np.int64), num_classes=2)


def perturbed(config):
    """The network with every weight moved off its initial value (the U-Net's output layer starts at zero)."""
    torch.manual_seed(0)
    network = build_model(config).eval()
    with torch.no_grad():
        for p in network.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return network


@pytest.mark.parametrize("config", [TINY_UNET, MLPConfig(hidden=16, num_classes=3)], ids=["unet", "mlp"])
def test_a_conditional_network_answers_each_label_and_none_is_the_null_label(config):
    network = perturbed(config)
    x = torch.randn(4, *((1, 8, 8) if isinstance(config, UNetConfig) else (2,)))
    index = torch.full((4,), 5)
    outputs = [network(x, index, torch.full((4,), c)) for c in range(4)]
    assert null_label(3) == 3 and network.num_classes == 3
    assert network.class_embedding.weight.shape[0] == 4  # three classes and ∅
    for a in range(4):
        for b in range(a + 1, 4):
            assert not torch.allclose(outputs[a], outputs[b])
    torch.testing.assert_close(network(x, index), outputs[null_label(3)])
    mixed = network(x, index, torch.tensor([0, 1, 2, 3]))
    torch.testing.assert_close(mixed, torch.stack([outputs[i][i] for i in range(4)]))


def test_an_unconditional_network_is_as_before_and_refuses_a_label():
    for config in (UNetConfig(8, 1, 1, 16, (1, 2), 1, (4,)), MLPConfig(hidden=16)):
        network = build_model(config)
        assert network.num_classes == 0 and not any("class" in name for name in network.state_dict())
        x = torch.randn(2, *((1, 8, 8) if isinstance(config, UNetConfig) else (2,)))
        with pytest.raises(ValueError, match="unconditional"):
            network(x, torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))


def test_configs_without_num_classes_load_unconditional_and_bad_counts_are_refused():
    old = {k: v for k, v in config_to_dict(MLPConfig(hidden=16)).items() if k != "num_classes"}
    assert config_from_dict(old).num_classes == 0
    assert config_from_dict(config_to_dict(TINY_UNET)) == TINY_UNET
    bundled = load_checkpoint(DEFAULT_MODEL)  # saved before num_classes, conditional and p_uncond existed
    assert "num_classes" not in json.loads((DEFAULT_MODEL / "config.json").read_text())["model"]
    assert bundled.model_config.num_classes == 0 and not bundled.train_config.conditional
    for bad in (-1, 2.5):
        with pytest.raises(SettingError) as info:
            build_model(MLPConfig(num_classes=bad))
        assert info.value.setting == "num_classes"


def captured_labels(trainer: Trainer, steps: int) -> list[torch.Tensor | None]:
    """The labels the network was given in each of ``steps`` training steps."""
    seen, loss = [], trainer.per_sample_loss

    def spy(x_t, index, target, label):
        seen.append(label)
        return loss(x_t, index, target, label)

    trainer.per_sample_loss = spy
    for _ in trainer.train():
        if trainer.step == steps:
            break
    return seen


@pytest.mark.parametrize("p_uncond", [0.0, 0.3, 1.0])
def test_label_dropout_gives_the_null_label_at_rate_p_uncond(p_uncond):
    data = two_blobs()
    config = TrainConfig(data="two blobs", steps=20, batch_size=500, conditional=True, p_uncond=p_uncond, device="cpu")
    trainer = Trainer(MLPConfig(hidden=16, num_classes=2), TOY_SCHEDULE, config, data)
    labels = torch.cat(captured_labels(trainer, 20)).numpy()
    dropped = labels == null_label(2)
    n = len(labels)  # 10,000: the rate lies within 4 standard deviations of p_uncond
    assert abs(dropped.mean() - p_uncond) <= 4 * np.sqrt(p_uncond * (1 - p_uncond) / n)
    kept = labels[~dropped]
    assert set(np.unique(kept)) <= {0, 1}
    if len(kept):
        assert abs((kept == 1).mean() - (data.labels == 1).mean()) < 0.05


def test_an_unconditional_run_passes_no_label_and_conditional_runs_need_labels_and_a_matching_network():
    data = two_blobs(500)
    trainer = Trainer(MLPConfig(hidden=16), TOY_SCHEDULE, TrainConfig(steps=3, batch_size=8, device="cpu"), data)
    assert captured_labels(trainer, 3) == [None] * 3
    unlabelled = Dataset("drawing", data.data)
    cases = [
        (MLPConfig(hidden=16, num_classes=2), TrainConfig(conditional=True, device="cpu"), unlabelled, "conditional"),
        (MLPConfig(hidden=16, num_classes=3), TrainConfig(conditional=True, device="cpu"), data, "num_classes"),
        (MLPConfig(hidden=16, num_classes=2), TrainConfig(device="cpu"), data, "num_classes"),
    ]
    for model, config, dataset, setting in cases:
        with pytest.raises(SettingError) as info:
            Trainer(model, TOY_SCHEDULE, config, dataset)
        assert info.value.setting == setting


def draw(network, schedule, label, n=500, seed=1):
    """DDIM (η = 0) in 20 steps through the sampling loop, the network given ``label`` for every sample."""
    sampler = DDIMSampler(schedule, eta=0.0)
    sampler.set_timesteps(20)
    labelled = Denoiser(network, schedule, guidance=Guidance(label, null_label(network.num_classes)))
    steps = list(sample_loop(labelled, sampler, (n, 2), generator=torch.Generator().manual_seed(seed)))
    return steps[-1].x_prev.numpy()


def nearest_centre(points: np.ndarray) -> np.ndarray:
    return np.argmin(((points[:, None, :] - CENTRES[None]) ** 2).sum(-1), axis=1)


def test_a_conditional_mlp_learns_each_class_and_the_null_label_learns_both():
    data = two_blobs()
    config = TrainConfig(data="two blobs", steps=200, batch_size=256, learning_rate=2e-3, warmup_steps=50,
                         conditional=True, p_uncond=0.2, device="cpu")
    trainer = Trainer(MLPConfig(hidden=64, num_layers=2, num_classes=2), TOY_SCHEDULE, config, data)
    for _ in trainer.train(report_every=100):
        pass
    for label in (0, 1):
        assert (nearest_centre(draw(trainer.ema, trainer.schedule, label)) == label).mean() > 0.9
    unconditional = nearest_centre(draw(trainer.ema, trainer.schedule, null_label(2)))
    assert 0.2 < unconditional.mean() < 0.8  # both components, from one network


def test_previews_of_a_conditional_model_are_one_class_after_the_other():
    assert preview_labels(10, 16, image=True).tolist() == [c for c in range(10) for _ in range(10)]
    assert preview_labels(2, 6, image=False).tolist() == [0, 0, 0, 1, 1, 1]
    config = TrainConfig(steps=2, batch_size=8, conditional=True, device="cpu")
    labelled = Dataset("three", np.random.default_rng(0).uniform(-1, 1, (30, 1, 8, 8)).astype(np.float32),
                       labels=np.arange(30) % 3, num_classes=3)
    trainer = Trainer(TINY_UNET, ScheduleConfig("linear", 10), config, labelled)
    with torch.no_grad():
        for p in trainer.ema.parameters():  # an EMA whose classes differ
            p.add_(0.05 * torch.randn_like(p))
    preview = trainer.preview(count=16, steps=3)
    assert preview.shape == (9, 1, 8, 8) and trainer.preview_config(16).num == 9

    def ddim(labels):  # the preview's sampler and x_T, the network given ``labels``
        sampler = build_sampler("ddim", trainer.schedule, "eps", labelled.value_range, eta=0.0)
        sampler.set_timesteps(3)
        conditioned = Denoiser(trainer.ema, trainer.schedule, guidance=Guidance(labels, null_label(3)))
        run = sample_loop(conditioned, sampler, (9, 1, 8, 8), generator=torch.Generator().manual_seed(0))
        return list(run)[-1].x_prev.numpy()

    np.testing.assert_allclose(preview, ddim(torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])), rtol=0, atol=1e-6)
    assert not np.allclose(preview, ddim(torch.full((9,), null_label(3))), atol=1e-3)


def test_a_conditional_run_saves_its_classes_and_resumes_exactly(tmp_path):
    config = TrainConfig(data="two_moons", steps=6, batch_size=32, conditional=True, p_uncond=0.25, device="cpu")
    size = PRESETS["tiny"]
    straight = new_run(config, TOY_SCHEDULE, size)
    list(straight.train())
    first = new_run(TrainConfig(**{**config.__dict__, "steps": 3}), TOY_SCHEDULE, size)
    list(run_training(first, tmp_path / "run", save_every=100))
    saved = load_checkpoint(tmp_path / "run")
    assert saved.model_config.num_classes == 2 and saved.model_config == straight.model_config
    assert saved.train_config.conditional and saved.train_config.p_uncond == 0.25
    resumed = continue_run(tmp_path / "run", 6, device="cpu")
    assert resumed.labels is not None
    list(resumed.train())
    for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_conditional_unet_exports_to_diffusers_with_its_class_embedding_and_loads_back(tmp_path):
    pytest.importorskip("diffusers")
    from tests.core.test_diffusers_export import make_checkpoint

    from diffusion_studio.core.diffusers_export import export_diffusers
    from diffusion_studio.core.loaded_model import open_model

    ours = open_model(make_checkpoint(tmp_path / "ours", TINY_UNET)).network
    export_diffusers(tmp_path / "ours", tmp_path / "exported")
    unet_config = json.loads((tmp_path / "exported" / "unet" / "config.json").read_text())
    assert unet_config["num_class_embeds"] == 4
    theirs = open_model(tmp_path / "exported").network
    assert theirs.num_classes == 3
    x, index = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 3, 6, 9])
    with torch.no_grad():
        for label in (torch.tensor([0, 1, 2, 3]), torch.tensor([2, 2, 0, 1]), None):
            torch.testing.assert_close(theirs(x, index, label), ours(x, index, label), rtol=1e-4, atol=1e-5)
