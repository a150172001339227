"""A diffusers UNet2DModel folder samples through our engine, offline (a tiny random model)."""

import json

import numpy as np
import pytest
import torch

from diffusion_studio.cli import main
from diffusion_studio.core.loaded_model import open_model
from diffusion_studio.core.errors import CheckpointError

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
    (root / "scheduler" / "scheduler_config.json").write_text(
        json.dumps({"_class_name": "DDPMScheduler", "beta_schedule": "squaredcos_cap_v2", "num_train_timesteps": 40,
                    "prediction_type": "v_prediction"})
    )
    return root, unet


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
    assert main(["sample", "--model", str(root / "unet"), "--sampler", "ddim", "--steps", "5", "--num", "3", "--device", "cpu", "-o", str(out)]) == 0
    samples = np.load(out)
    assert samples.shape == (3, 1, 8, 8) and np.all(np.isfinite(samples))


def test_a_pickled_diffusers_model_is_not_read(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    (tmp_path / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(CheckpointError, match="only safetensors"):
        open_model(tmp_path)
