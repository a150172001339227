"""Flags made from settings metadata parse back into the same configs."""

import argparse
from dataclasses import replace

import pytest

from diffusion_studio.core.models.presets import NetworkSize
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.flags import add_option_flags, add_setting_flags, setting_values


def parse(config, argv, **options):
    parser = argparse.ArgumentParser(exit_on_error=False)
    fields = add_setting_flags(parser, config, **options)
    return setting_values(parser.parse_args(argv), fields)


@pytest.mark.parametrize("config", (TrainConfig, NetworkSize, ScheduleConfig), ids=lambda c: c.__name__)
def test_no_flags_give_the_defaults(config):
    assert config(**parse(config, [])) == config()


def test_flags_set_each_kind_of_setting():
    values = parse(TrainConfig, ["--lr", "1e-3", "--steps", "7", "--no-mixed-precision", "--prediction", "v"])
    assert TrainConfig(**values) == replace(TrainConfig(), learning_rate=1e-3, steps=7, mixed_precision=False, prediction="v")
    size = NetworkSize(**parse(NetworkSize, ["--channel-mults", "1,2,4", "--attention", "8", "--heads", "2"]))
    assert (size.channel_mults, size.attention_resolutions, size.num_heads) == ((1, 2, 4), (8,), 2)
    assert parse(ScheduleConfig, ["-T", "50", "--schedule", "cosine"]) == {
        "name": "cosine", "timesteps": 50, "beta_start": 1e-4, "beta_end": 0.02, "path": "vp"}


def test_suppressed_flags_report_only_what_was_given_and_required_ones_are_required():
    assert parse(NetworkSize, ["--hidden", "64"], suppress=True) == {"hidden": 64}
    with pytest.raises(SystemExit):  # argparse reports the missing flag and exits
        parse(TrainConfig, [], required=("data",))
    with pytest.raises(argparse.ArgumentError):
        parse(TrainConfig, ["--prediction", "noise"])


def test_an_option_shared_by_samplers_is_one_flag_whose_help_names_each_default():
    from diffusion_studio.core.samplers import SAMPLERS

    parser = argparse.ArgumentParser(exit_on_error=False)
    add_option_flags(parser, {cls.label: cls.Options for cls in SAMPLERS.values()})
    eta = next(a for a in parser._actions if a.dest == "eta")
    assert "DDIM: default 0.0" in eta.help and "Euler ancestral: default 1.0" in eta.help
    assert vars(parser.parse_args([])) == {}
    assert vars(parser.parse_args(["--eta", "0.5", "--variance", "beta_tilde"])) == {"eta": 0.5, "variance": "beta_tilde"}
