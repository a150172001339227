"""The Training form's settings, with no widget: kept between launches, filled from a checkpoint,
turned into a run's request, and the parameter counts the form shows."""

import json
from dataclasses import replace

import pytest

from diffusion_studio.app.jobs import drive
from diffusion_studio.app.state import StudioState
from diffusion_studio.app.training import (
    FIRST_SETTINGS, FOLDER, TrainingSession, TrainingSettings, default_runs_folder, network_parameters,
    preset_parameters, restore_settings,
)
from diffusion_studio.core.checkpoint import load_checkpoint
from diffusion_studio.core.errors import SettingError
from diffusion_studio.core.models import parameter_count
from diffusion_studio.core.models.presets import PRESETS, NetworkSize, model_config_for
from diffusion_studio.core.recipes import IMAGE_RECIPE
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig

TINY = NetworkSize(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, hidden=32, num_layers=1)
POINTS = TrainingSettings(
    training=TrainConfig(data="two_moons", steps=12, batch_size=16, learning_rate=1e-3, warmup_steps=0, device="cpu"),
    data="two_moons", size=TINY, image_size=8, channels=0, advanced=True, preview_every=0, save_every=1000,
)


def test_the_first_launch_trains_the_image_recipe_on_the_digits():
    assert restore_settings("") == FIRST_SETTINGS
    assert FIRST_SETTINGS.training == TrainConfig(**IMAGE_RECIPE.settings()) and FIRST_SETTINGS.size == IMAGE_RECIPE.size
    assert (FIRST_SETTINGS.data, FIRST_SETTINGS.preview_every, FIRST_SETTINGS.save_every) == ("digits", 200, 500)
    assert FIRST_SETTINGS.runs == default_runs_folder()


def test_settings_survive_a_relaunch(tmp_path):
    settings = replace(POINTS, size=NetworkSize(8, (1, 2, 4), 1, (4,), 0.1, 1, 32, 1), runs_folder=str(tmp_path))
    assert restore_settings(settings.to_json()) == settings
    assert restore_settings(settings.to_json()).runs == tmp_path


def test_what_is_missing_takes_its_default():
    restored = restore_settings(json.dumps({"runs_folder": "/runs", "data": "checkerboard", "training": {"steps": 7}}))
    assert restored == TrainingSettings(training=TrainConfig(steps=7), data="checkerboard", runs_folder="/runs")


@pytest.mark.parametrize("saved", [
    "{ not json", "[1, 2]", "{}",
    json.dumps({"image_size": "big", "training": {"steps": "many"}}),  # values of the wrong kind …
    json.dumps({"training": {"steps": 0}}),  # … or that the engine refuses
    json.dumps({"size": {"dropout": 2.0}}),
    json.dumps({"training": ["steps"]}),
])
def test_settings_that_cannot_be_read_give_the_first_launch_ones(saved):
    assert restore_settings(saved) == FIRST_SETTINGS


def test_unknown_data_and_colours_fall_back_and_the_saved_device_is_kept_whatever_the_machine():
    restored = restore_settings(json.dumps({"data": "mnist", "channels": 2, "training": {"device": "mps"}}))
    assert (restored.data, restored.channels, restored.training.device) == ("digits", 0, "mps")


def test_a_new_runs_request_is_named_after_the_data_and_refuses_a_missing_folder(tmp_path):
    schedule = ScheduleConfig("linear", 50)
    request = replace(POINTS, runs_folder=str(tmp_path)).request(schedule)
    assert request.output.parent == tmp_path and request.output.name.startswith("two_moons-")
    assert (request.config, request.schedule, request.size) == (POINTS.training, schedule, TINY)
    assert (request.image_size, request.channels, request.save_every, request.preview_every, request.resume) == (8, None, 1000, 0, False)
    folder = replace(POINTS, data=FOLDER, folder="/photos/cats", channels=1,
                     training=replace(POINTS.training, data="/photos/cats")).request(schedule)
    assert folder.output.name.startswith("cats-") and folder.channels == 1
    with pytest.raises(SettingError, match="choose a folder of images"):
        replace(POINTS, data=FOLDER, training=replace(POINTS.training, data="")).request(schedule)


def test_the_sample_shape_is_what_the_data_will_load_as():
    assert POINTS.sample_shape() == (2,)
    assert replace(POINTS, data="digits", image_size=12).sample_shape() == (1, 12, 12)
    assert replace(POINTS, data=FOLDER, image_size=12).sample_shape() == (3, 12, 12)  # "as the images": RGB until loaded
    assert replace(POINTS, data=FOLDER, image_size=12, channels=1).sample_shape() == (1, 12, 12)


def test_parameter_counts_are_the_networks_the_settings_build():
    counts = preset_parameters((1, 16, 16))
    assert list(counts) == list(PRESETS)
    assert counts["small"] == 1_623_169  # the bundled model's size
    assert counts == {name: parameter_count(model_config_for(size, (1, 16, 16))) for name, size in PRESETS.items()}
    assert preset_parameters((1, 4, 4))["large"] is None  # four levels cannot halve 4×4 three times
    assert network_parameters(TINY, (2,)) == parameter_count(model_config_for(TINY, (2,)))
    with pytest.raises(SettingError):
        network_parameters(replace(TINY, num_heads=3), (1, 8, 8))


def test_a_checkpoint_fills_the_settings_and_becomes_the_one_continue_trains(tmp_path):
    session = TrainingSession()
    request = POINTS.request(ScheduleConfig("linear", 50))
    session.on_finished(drive(session.start(request), session.on_update, 0.0))
    checkpoint = load_checkpoint(session.checkpoint)

    form = replace(FIRST_SETTINGS, runs_folder=str(tmp_path), preview_every=7, training=replace(FIRST_SETTINGS.training, device="cpu"))
    filled = form.from_checkpoint(checkpoint)
    assert filled.training == replace(checkpoint.train_config, steps=13, device="cpu")  # one step more than it holds
    assert (filled.data, filled.folder, filled.size) == ("two_moons", "", NetworkSize(hidden=32, num_layers=1))
    assert (filled.image_size, filled.channels, filled.preview_every, filled.runs_folder) == (16, 0, 7, str(tmp_path))

    other, state = TrainingSession(), StudioState()
    other.adopt_checkpoint(checkpoint, state)
    assert other.checkpoint == session.checkpoint and other.checkpoint_step == 12
    assert state.schedule.config == ScheduleConfig("linear", 50)
    resumed = other.continue_request(replace(filled, training=replace(filled.training, steps=20), save_every=5), state.schedule.config)
    assert (resumed.output, resumed.resume, resumed.config.steps, resumed.config.device, resumed.save_every) == (
        session.checkpoint, True, 20, "cpu", 5)
    other.on_finished(drive(other.start(resumed), other.on_update, 0.0))
    assert load_checkpoint(session.checkpoint).step == 20
    assert other.loss_curve()[0].tolist() == list(range(13, 21))


def test_an_image_folders_checkpoint_names_the_folder():
    class Fake:  # what from_checkpoint reads of a Checkpoint
        train_config = TrainConfig(data="/photos/cats", steps=100)
        model_config = model_config_for(TINY, (3, 8, 8))
        step = 100

    filled = FIRST_SETTINGS.from_checkpoint(Fake())
    assert (filled.data, filled.folder, filled.image_size, filled.channels) == (FOLDER, "/photos/cats", 8, 3)
    assert filled.size == replace(TINY, hidden=NetworkSize().hidden, num_layers=NetworkSize().num_layers, attention_resolutions=(4,))
    assert filled.training.steps == 101 and filled.training.data == "/photos/cats"


def test_continue_needs_a_checkpoint():
    with pytest.raises(RuntimeError):
        TrainingSession().continue_request(FIRST_SETTINGS, ScheduleConfig())
