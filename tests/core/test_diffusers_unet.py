"""A diffusers UNet2DModel folder samples through our engine, offline (a tiny random model)."""

import json
import shutil

import numpy as np
import pytest
import torch

from diffusion_studio.cli import main
from diffusion_studio.core.loaded_model import open_model
from diffusion_studio.core.errors import CheckpointError
from diffusion_studio.core.models.diffusers_unet import SCHEDULER_DEFAULTS, schedule_from_scheduler_config
from diffusion_studio.core.schedules import NoiseSchedule, ScheduleConfig

diffusers = pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def pipeline_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(
        sample_size=8, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )
    unet.save_pretrained(root / "unet", safe_serialization=True)
    (root / "scheduler").mkdir()
    (root / "scheduler" / "scheduler_config.json").write_text(json.dumps(SCHEDULER))
    (root / "model_index.json").write_text(json.dumps({"_class_name": "DDPMPipeline", "unet": ["diffusers", "UNet2DModel"],
                                                       "scheduler": ["diffusers", "DDPMScheduler"]}))
    return root, unet


SCHEDULER = {"_class_name": "DDPMScheduler", "beta_schedule": "squaredcos_cap_v2", "num_train_timesteps": 40,
             "prediction_type": "v_prediction", "trained_betas": None, "variance_type": "fixed_small",
             "timestep_spacing": "leading", "clip_sample": False, "thresholding": False, "rescale_betas_zero_snr": False}


def with_scheduler(pipeline_folder, tmp_path, changes):
    """A copy of the pipeline whose scheduler config has these changes (None: the setting left out)."""
    root = tmp_path / "pipe"
    shutil.copytree(pipeline_folder[0], root)
    config = {k: v for k, v in {**SCHEDULER, **changes}.items() if v is not None}
    (root / "scheduler" / "scheduler_config.json").write_text(json.dumps(config))
    return root


def test_diffusers_unet_is_our_network_with_its_schedule(pipeline_folder):
    root, unet = pipeline_folder
    model = open_model(root / "unet")
    assert model.sample_shape == (1, 8, 8) and model.prediction == "v"
    assert (model.schedule_config.name, model.schedule_config.timesteps) == ("cosine", 40)
    x, index = torch.randn(2, 1, 8, 8), torch.tensor([0, 39])
    with torch.no_grad():
        torch.testing.assert_close(model.network(x, index), unet.eval()(x, index).sample)


def test_cli_samples_from_a_diffusers_folder(pipeline_folder, tmp_path):
    root, _ = pipeline_folder
    out = tmp_path / "s.npy"
    assert main(["sample", "--model", str(root / "unet"), "--sampler", "ddim", "--steps", "5", "--num", "3", "--device", "cpu",
                 "-o", str(out)]) == 0
    samples = np.load(out)
    assert samples.shape == (3, 1, 8, 8) and np.all(np.isfinite(samples))


def test_a_pickled_diffusers_model_is_not_read(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    (tmp_path / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(CheckpointError, match="only safetensors"):
        open_model(tmp_path)


@pytest.mark.parametrize("changes, message", [
    ({"beta_schedule": "exp"}, "beta_schedule: 'exp' is not implemented here"),
    ({"_class_name": "FlowMatchEulerDiscreteScheduler"}, "_class_name: 'FlowMatchEulerDiscreteScheduler' is a flow-matching"),
    ({"_class_name": "ScoreSdeVeScheduler"}, "_class_name: 'ScoreSdeVeScheduler' is a variance-exploding"),
    ({"_class_name": "MyScheduler"}, "_class_name: 'MyScheduler' is not a scheduler we read"),
    ({"trained_betas": [1e-3] * 20 + [0.3] * 20}, "trained_betas: these β are none of our named schedules"),
    ({"rescale_betas_zero_snr": True}, "rescale_betas_zero_snr: True: .*ᾱ_T = 0"),
    ({"thresholding": True}, "thresholding: True: dynamic thresholding"),
    ({"prediction_type": "flow_prediction"}, "prediction_type: 'flow_prediction' is not implemented here"),
    ({"variance_type": "learned_range"}, "variance_type: 'learned_range': learned variances"),
])
def test_scheduler_settings_we_do_not_implement_are_refused_by_name(pipeline_folder, tmp_path, changes, message):
    root = with_scheduler(pipeline_folder, tmp_path, changes)
    for folder in (root, root / "unet"):  # the pipeline folder or its U-Net
        with pytest.raises(CheckpointError, match=f"scheduler_config.json': {message}"):
            open_model(folder)


@pytest.mark.parametrize("kind", sorted(SCHEDULER_DEFAULTS))
def test_settings_left_out_take_the_scheduler_class_defaults(kind):
    """A config as diffusers saves one that changed only T: each class's own defaults fill the rest, and our β
    are those of diffusers' scheduler of that class (DDPMScheduler: linear, Heun: 0.00085 → 0.012, LCM: scaled)."""
    config = {"_class_name": kind, "num_train_timesteps": 40}
    schedule, prediction = schedule_from_scheduler_config(config)
    try:
        theirs = getattr(diffusers, kind).from_config(config)
    except ImportError as exc:  # DPMSolverSDEScheduler needs torchsde
        pytest.skip(str(exc).strip())
    assert prediction == "eps" and schedule.timesteps == 40
    np.testing.assert_allclose(NoiseSchedule(schedule).betas[1:], theirs.betas.double().numpy(), rtol=1e-5)


def test_a_ddpm_scheduler_without_beta_schedule_is_ho_et_al(pipeline_folder, tmp_path):
    model = open_model(with_scheduler(pipeline_folder, tmp_path, {"beta_schedule": None, "prediction_type": None}))
    assert model.schedule_config == ScheduleConfig("linear", 40, 1e-4, 0.02) and model.prediction == "eps"


@pytest.mark.parametrize("schedule", [ScheduleConfig("cosine", 40), ScheduleConfig("quadratic", 40, 1e-3, 0.05)])
def test_trained_betas_of_one_of_our_schedules_are_that_schedule(pipeline_folder, tmp_path, schedule):
    betas = NoiseSchedule(schedule).betas[1:].astype(np.float32).tolist()  # as diffusers keeps them
    model = open_model(with_scheduler(pipeline_folder, tmp_path, {"trained_betas": betas, "beta_schedule": "linear"}))
    assert model.schedule_config.name == schedule.name
    np.testing.assert_allclose(NoiseSchedule(model.schedule_config).betas, NoiseSchedule(schedule).betas, rtol=1e-6)


def test_sampling_settings_are_left_to_our_sampler(pipeline_folder, tmp_path):
    changes = {"timestep_spacing": "trailing", "variance_type": "fixed_large", "clip_sample": True, "steps_offset": 1}
    model = open_model(with_scheduler(pipeline_folder, tmp_path, changes))
    assert (model.schedule_config.name, model.schedule_config.timesteps, model.prediction) == ("cosine", 40, "v")


def test_a_latent_pipeline_is_refused(pipeline_folder, tmp_path):
    root = with_scheduler(pipeline_folder, tmp_path, {})
    (root / "model_index.json").write_text(json.dumps({"_class_name": "LDMPipeline", "unet": ["diffusers", "UNet2DModel"],
                                                       "vqvae": ["diffusers", "VQModel"], "scheduler": ["diffusers", "DDIMScheduler"]}))
    with pytest.raises(CheckpointError, match="LDMPipeline with vqvae besides its U-Net"):
        open_model(root / "unet")


@pytest.mark.parametrize("key, value", [("block_out_channels", [10**9, 10**9]), ("sample_size", 2**20),
                                        ("layers_per_block", "2"), ("norm_num_groups", 0)])
def test_sizes_nobody_can_mean_are_refused_before_the_network_is_built(pipeline_folder, tmp_path, key, value):
    root = shutil.copytree(pipeline_folder[0], tmp_path / "pipe")
    config = json.loads((root / "unet" / "config.json").read_text())
    config[key] = value
    (root / "unet" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=f"unet/config.json': {key} = "):
        open_model(root)


def test_a_scheduler_with_a_huge_t_is_refused_by_name(pipeline_folder, tmp_path):
    for value in (10**10, 1e400):
        with pytest.raises(CheckpointError, match="scheduler_config.json.*(timesteps: must be|infinity)"):
            open_model(with_scheduler(pipeline_folder, tmp_path / str(value)[:4], {"num_train_timesteps": value}))


def test_a_damaged_diffusers_model_is_one_line_with_nothing_printed_before_it(pipeline_folder, tmp_path, capfd):
    root = shutil.copytree(pipeline_folder[0], tmp_path / "pipe")
    weights = root / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        open_model(root)
    assert capfd.readouterr().err == ""
