"""The settings metadata of the core's configs: complete, consistent with the engine, and checked."""

from dataclasses import fields

import pytest

from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.models.presets import PRESETS, NetworkSize
from diffusion_studio.core.process import PREDICTIONS
from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.core.samplers import SAMPLERS
from diffusion_studio.core.schedules import FLOW_PATH, SCHEDULE_NAMES, VP_PATH, ScheduleConfig
from diffusion_studio.core.settings import check_settings, setting_fields
from diffusion_studio.core.train_config import COMPILES, DEVICES, TrainConfig

CONFIGS = (TrainConfig, NetworkSize, ScheduleConfig, SampleConfig, *(cls.Options for cls in SAMPLERS.values()))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.__name__)
def test_every_setting_is_described_and_its_default_allowed(config):
    described = {f.name for f in setting_fields(config)}
    assert described == {f.name for f in fields(config)} - {"options"}  # SampleConfig.options: the sampler's own
    assert all(f.setting.label and f.setting.help for f in setting_fields(config))
    check_settings(config())


def test_choices_are_the_engines_names():
    choices = {f.name: tuple(f.setting.choices) for f in setting_fields(TrainConfig) if f.setting.choices}
    assert choices == {"prediction": PREDICTIONS, "device": DEVICES, "compile": COMPILES,
                       "time_sampling": ("uniform", "logit-normal")}
    name, path = [f for f in setting_fields(ScheduleConfig) if f.setting.choices]
    assert tuple(name.setting.choices) == SCHEDULE_NAMES and set(name.setting.choice_help) == set(SCHEDULE_NAMES)
    assert tuple(path.setting.choices) == (VP_PATH, FLOW_PATH) and set(path.setting.choice_help) == {VP_PATH, FLOW_PATH}
    for preset in PRESETS.values():
        check_settings(preset)


@pytest.mark.parametrize(
    ("config", "setting"),
    [
        (TrainConfig(steps=0), "steps"),
        (TrainConfig(learning_rate=0.0), "learning_rate"),
        (TrainConfig(learning_rate=float("nan")), "learning_rate"),
        (TrainConfig(ema_decay=1.0), "ema_decay"),
        (TrainConfig(grad_clip=0.0), "grad_clip"),
        (TrainConfig(prediction="noise"), "prediction"),
        (TrainConfig(batch_size=2.5), "batch_size"),
        (TrainConfig(mixed_precision="yes"), "mixed_precision"),
        (TrainConfig(compile=True), "compile"),
        (NetworkSize(num_heads=0), "num_heads"),
        (NetworkSize(dropout=1.0), "dropout"),
        (ScheduleConfig(timesteps=0), "timesteps"),
    ],
)
def test_a_value_its_setting_does_not_allow_is_refused_by_name(config, setting):
    with pytest.raises(SettingError) as info:
        check_settings(config)
    assert info.value.setting == setting
