"""Every size a user or a file can set has an upper limit (core.limits), refused before anything
is allocated: by the settings' check, the model configs' loader and the diffusers loader."""

import json
import shutil

import pytest

from diffusion_studio.core import checkpoint as ck
from diffusion_studio.core.data.datasets import load_toy
from diffusion_studio.core.errors import CheckpointError, SettingError
from diffusion_studio.core.models.config import MLPConfig, config_from_dict
from diffusion_studio.core.models.presets import NetworkSize
from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.core.samplers import SAMPLERS
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.settings import check_settings, setting_fields
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.core.training import Trainer

CONFIGS = [ScheduleConfig, TrainConfig, NetworkSize, SampleConfig, *(cls.Options for cls in SAMPLERS.values())]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.__qualname__)
def test_every_whole_number_setting_has_an_upper_limit(config):
    unlimited = [f.name for f in setting_fields(config) if f.kind is int and f.setting.le is None and f.setting.lt is None]
    assert unlimited == []


@pytest.mark.parametrize("config, name, value", [
    (ScheduleConfig(), "timesteps", 10**10), (TrainConfig(), "batch_size", 10**9), (TrainConfig(), "seed", 10**23),
    (NetworkSize(), "base_channels", 10**9), (NetworkSize(), "hidden", 10**9), (SampleConfig(), "num", 10**7),
    (SampleConfig(), "seed", -1),
])
def test_a_size_nobody_can_mean_is_refused_by_name(config, name, value):
    from dataclasses import replace

    with pytest.raises(SettingError, match=f"^{name}: must be"):
        check_settings(replace(config, **{name: value}))


@pytest.mark.parametrize("model, name", [
    ({"kind": "mlp", "hidden": 10**9}, "hidden"), ({"kind": "mlp", "num_layers": 2.5}, "num_layers"),
    ({"kind": "mlp", "hidden": "64"}, "hidden"), ({"kind": "unet", "image_size": 2**20}, "image_size"),
    ({"kind": "unet", "base_channels": 10**9}, "base_channels"), ({"kind": "unet", "dropout": float("nan")}, "dropout"),
    ({"kind": "unet", "channel_mults": [1, "2"]}, "channel_mults"), ({"kind": ["mlp"]}, "model"),
])
def test_model_configs_from_a_file_are_checked_for_type_and_size(model, name):
    with pytest.raises(SettingError, match=f"^{name}: "):
        config_from_dict(model)


@pytest.fixture(scope="module")
def checkpoint_folder(tmp_path_factory):
    config = TrainConfig(data="two_moons", steps=1, batch_size=8, device="cpu", compile="off")
    trainer = Trainer(MLPConfig(hidden=8, num_layers=1), ScheduleConfig("linear", 10), config, load_toy("two_moons", 100))
    return ck.save_checkpoint(tmp_path_factory.mktemp("ck") / "run", trainer.checkpoint())


@pytest.mark.parametrize("part, key, value, message", [
    ("schedule", "timesteps", 10**10, "timesteps: must be"), ("model", "hidden", 10**9, "hidden: "),
    ("training", "batch_size", "64", "batch_size: must be a whole number"), ("training", "data", ["x"], "data: must be text"),
    (None, "step", "abc", "step: must be"), (None, "step", None, "step: must be"), ("schedule", "name", [1], "name: must be text"),
])
def test_a_checkpoint_config_with_a_wrong_type_or_size_is_one_line(checkpoint_folder, tmp_path, part, key, value, message):
    folder = shutil.copytree(checkpoint_folder, tmp_path / "run")
    config = json.loads((folder / ck.CONFIG_FILE).read_text())
    (config[part] if part else config)[key] = value
    (folder / ck.CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=f"^'run': {message}"):
        ck.load_checkpoint(folder)


def test_a_network_over_the_parameter_limit_is_refused_before_its_weights_exist():
    from diffusion_studio.core.models import build_model

    big = MLPConfig(hidden=4096, num_layers=64)  # every width and depth within its own limit: 1.09·10⁹ parameters
    with pytest.raises(SettingError, match="^model: 1,091,465,218 parameters is over the limit of 1,000,000,000"):
        build_model(big)
