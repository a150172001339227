"""Learning for real, but small: a 2-D MLP on the Swiss roll and a tiny U-Net on the digits, on CPU."""

import math
import shutil

import numpy as np
import pytest
import torch

from diffusion_studio.core.checkpoint import load_checkpoint, save_checkpoint
from diffusion_studio.core.data.datasets import Dataset, load_digits, load_toy
from diffusion_studio.core.errors import SettingError, TrainingError
from diffusion_studio.core.models.config import MLPConfig, UNetConfig
from diffusion_studio.core.samplers import DDIMSampler, DDPMSampler
from diffusion_studio.core.sampling import sample_loop
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.core.devices import resolve_device
from diffusion_studio.core.training import LOSS_BUCKETS, Trainer, compiles, memory_format, optimizer_kernels

TOY_SCHEDULE = ScheduleConfig("linear", 100, 1e-3, 0.1)
TINY_UNET = UNetConfig(8, 1, 1, 16, (1, 2), 1, (4,), dropout=0.0)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, projections: int = 64, seed: int = 0) -> float:
    """Mean over random directions of the 1-D Wasserstein-1 distance between projections."""
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((projections, a.shape[1]))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    n = min(len(a), len(b))
    pa, pb = np.sort(a[:n] @ directions.T, axis=0), np.sort(b[:n] @ directions.T, axis=0)
    return float(np.abs(pa - pb).mean())


def draw(network, sampler, n=1000, seed=0):
    steps = list(sample_loop(network, sampler, (n, 2), generator=torch.Generator().manual_seed(seed)))
    return steps[-1].x_prev.numpy()


@pytest.fixture(scope="module")
def swiss_roll_run():
    data = load_toy("swiss_roll", 5000)
    config = TrainConfig(data="swiss_roll", steps=1500, batch_size=256, learning_rate=2e-3, warmup_steps=50, device="cpu")
    trainer = Trainer(MLPConfig(), TOY_SCHEDULE, config, data)
    untrained = Trainer(MLPConfig(), TOY_SCHEDULE, config, data).ema
    records = list(trainer.train(report_every=100))
    return data, trainer, untrained, records


def test_loss_falls_and_records_are_complete(swiss_roll_run):
    _, trainer, _, records = swiss_roll_run
    assert [r.step for r in records] == list(range(100, 1501, 100))
    assert records[-1].loss < 0.8 * records[0].loss
    last = records[-1]
    assert last.loss_by_t.shape == (LOSS_BUCKETS,) and np.all(np.isfinite(last.loss_by_t))
    assert last.loss_by_t[0] > last.loss_by_t[-1]  # ε is hardest to predict at small t
    assert last.eta_seconds == 0 and last.images_per_second > 0


@pytest.mark.parametrize("make", [lambda s: DDPMSampler(s), lambda s: DDIMSampler(s, eta=0.0)], ids=["ddpm", "ddim"])
def test_trained_mlp_samples_are_closer_to_the_swiss_roll(swiss_roll_run, make):
    data, trainer, untrained, _ = swiss_roll_run
    sampler = make(trainer.schedule)
    if isinstance(sampler, DDIMSampler):
        sampler.set_timesteps(25)
    reference = data.data[:1000]
    trained_distance = sliced_wasserstein(draw(trainer.ema, sampler), reference)
    untrained_distance = sliced_wasserstein(draw(untrained, sampler), reference)
    noise_distance = sliced_wasserstein(np.random.default_rng(5).standard_normal((1000, 2)), reference)
    assert trained_distance < 0.5 * untrained_distance
    assert trained_distance < 0.5 * noise_distance


def test_tiny_unet_loss_falls_on_the_digits():
    config = TrainConfig(steps=80, batch_size=32, learning_rate=2e-3, warmup_steps=10, device="cpu")
    trainer = Trainer(TINY_UNET, ScheduleConfig("linear", 200), config, load_digits(8))
    losses = [r.loss for r in trainer.train()]
    assert len(losses) == 80
    assert np.mean(losses[-15:]) < 0.7 * np.mean(losses[:5])
    preview = trainer.preview(count=4, steps=5)
    assert preview.shape == (4, 1, 8, 8) and np.all(np.abs(preview) <= 1.0)


def test_should_stop_is_honoured_within_a_step():
    trainer = Trainer(MLPConfig(hidden=16), TOY_SCHEDULE, TrainConfig(steps=1000, device="cpu"), load_toy("two_moons", 500))
    seen = []
    for record in trainer.train(should_stop=lambda: len(seen) >= 7):
        seen.append(record.step)
    assert trainer.step == 7


def test_non_finite_loss_stops_with_a_clear_error():
    bad = np.full((64, 2), np.nan, dtype=np.float32)
    trainer = Trainer(MLPConfig(hidden=16), TOY_SCHEDULE, TrainConfig(steps=20, device="cpu"), Dataset("nan", bad))
    with pytest.raises(TrainingError, match="loss became nan at step 1"):
        list(trainer.train())


def test_impossible_settings_and_mismatched_data_are_refused():
    data = load_toy("two_moons", 100)
    for changes, setting in [({"steps": 0}, "steps"), ({"learning_rate": -1.0}, "learning_rate"),
                             ({"ema_decay": 1.0}, "ema_decay"), ({"prediction": "mu"}, "prediction")]:
        with pytest.raises(SettingError) as info:
            Trainer(MLPConfig(), TOY_SCHEDULE, TrainConfig(device="cpu", **changes), data)
        assert info.value.setting == setting
    with pytest.raises(SettingError, match="data"):
        Trainer(TINY_UNET, TOY_SCHEDULE, TrainConfig(device="cpu"), data)


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(SettingError, match="not available"):
            resolve_device("cuda")


def test_same_seed_same_training():
    def run(seed):
        trainer = Trainer(MLPConfig(hidden=32), TOY_SCHEDULE, TrainConfig(steps=30, seed=seed, device="cpu"), load_toy("checkerboard", 500))
        return [r.loss for r in trainer.train()]

    assert run(3) == run(3) != run(4)
    assert all(math.isfinite(v) for v in run(3))


def test_out_of_gpu_memory_is_a_clear_message(monkeypatch):
    trainer = Trainer(MLPConfig(hidden=16), TOY_SCHEDULE, TrainConfig(steps=5, batch_size=512, device="cpu"), load_toy("two_moons", 100))

    def oom():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(trainer, "_train_step", oom)
    with pytest.raises(TrainingError, match="out of CPU memory at batch size 512; try a smaller batch"):
        list(trainer.train())


def test_compilation_layout_and_optimizer_kernels_by_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert [compiles(choice, cpu) for choice in ("auto", "on", "off")] == [False, True, False]
    assert not compiles("off", cuda)
    assert memory_format(TINY_UNET, cuda) == torch.channels_last
    assert memory_format(TINY_UNET, cpu) == memory_format(MLPConfig(), cuda) == torch.contiguous_format
    assert optimizer_kernels(cuda) == {"fused": True, "foreach": False}
    assert optimizer_kernels(cpu) == {"fused": False, "foreach": True}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_training_step_on_a_gpu_never_waits_for_it():
    config = TrainConfig(steps=10, batch_size=32, device="cuda", compile="off")
    trainer = Trainer(TINY_UNET, ScheduleConfig("linear", 200), config, load_digits(8))
    assert trainer.memory_format == torch.channels_last and trainer.optimizer.param_groups[0]["fused"]
    trainer._train_step()  # the first step copies the schedule to the GPU and lets cuDNN choose
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any call that waits for the GPU raises
    try:
        for _ in range(3):
            trainer._train_step()
    finally:
        torch.cuda.set_sync_debug_mode("default")


def _tiny_point_trainer(steps, compile="off"):
    config = TrainConfig(steps=steps, batch_size=32, learning_rate=1e-2, warmup_steps=1, device="cpu", compile=compile)
    return Trainer(MLPConfig(hidden=16, num_layers=1, time_dim=16), ScheduleConfig("linear", 10), config, load_toy("two_moons", 200))


def _weights(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


@pytest.mark.skipif(not torch._dynamo.is_dynamo_supported(), reason="torch.compile is not supported on this Python")
@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="torch.compile on the CPU needs a C++ compiler")
def test_a_compiled_trainer_trains_as_an_eager_one_and_its_checkpoint_resumes_eagerly(tmp_path):
    eager, compiled = _tiny_point_trainer(8), _tiny_point_trainer(5, compile="on")
    assert compiled.compiled and not eager.compiled
    eager_losses = [r.loss for r in eager.train()]
    compiled_losses = [r.loss for r in compiled.train()]
    np.testing.assert_allclose(compiled_losses, eager_losses[:5], rtol=1e-5)
    saved = load_checkpoint(save_checkpoint(tmp_path / "run", compiled.checkpoint()))
    assert set(saved.model_state) == set(saved.ema_state) == set(eager.model.state_dict())  # no "_orig_mod." prefix
    resumed = _tiny_point_trainer(8)
    resumed.restore(saved)
    np.testing.assert_allclose([r.loss for r in resumed.train()], eager_losses[5:], rtol=1e-5)
    torch.testing.assert_close(_weights(resumed.model), _weights(eager.model), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(_weights(resumed.ema), _weights(eager.ema), rtol=1e-5, atol=1e-6)


def test_a_checkpoint_from_another_devices_optimizer_resumes_with_this_devices_kernels(tmp_path):
    first = _tiny_point_trainer(3)
    list(first.train())
    checkpoint = first.checkpoint()
    for group in checkpoint.training_state["optimizer"]["param_groups"]:
        group.update(optimizer_kernels(torch.device("cuda")))  # as a CUDA run saves it
    resumed = _tiny_point_trainer(5)
    resumed.restore(checkpoint)
    assert all(g["foreach"] and not g["fused"] for g in resumed.optimizer.param_groups)
    straight = _tiny_point_trainer(5)
    assert [r.loss for r in resumed.train()] == [r.loss for r in straight.train()][3:]


def test_a_compiler_failure_is_a_clear_message(monkeypatch):
    from torch._dynamo.exc import BackendCompilerFailed

    trainer = _tiny_point_trainer(3, compile="on")

    def fail(*args):
        raise BackendCompilerFailed(fail, RuntimeError("no C++ compiler found\nmore detail"), None)

    monkeypatch.setattr(trainer, "per_sample_loss", fail)
    with pytest.raises(TrainingError, match=r"could not compile the network for CPU \(RuntimeError: no C\+\+ compiler "
                                            r"found\); train with compile off"):
        list(trainer.train())
