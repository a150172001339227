import pytest

from diffusion_studio.core import checkpoint as ck
from diffusion_studio.core.errors import CheckpointError, DataError, SettingError
from diffusion_studio.core.models import build_model, count_parameters, parameter_count
from diffusion_studio.core.models.config import MLPConfig, UNetConfig
from diffusion_studio.core.models.presets import PRESETS, NetworkSize, model_config_for, size_of
from diffusion_studio.core.runs import continue_run, new_run
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig

SCHEDULE = ScheduleConfig("linear", 20)
TINY = NetworkSize(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, hidden=16, num_layers=1)


def test_new_run_builds_the_network_for_the_data():
    images = new_run(TrainConfig(data="digits", steps=2, batch_size=4, device="cpu"), SCHEDULE, TINY, image_size=8)
    assert images.model_config == UNetConfig(8, 1, 1, 8, (1, 2), 1, (4,), 0.1)
    points = new_run(TrainConfig(data="two_moons", steps=2, device="cpu"), SCHEDULE, TINY)
    assert points.model_config == MLPConfig(dim=2, hidden=16, num_layers=1)
    with pytest.raises(DataError, match="neither a folder, a CSV of points nor a built-in"):
        new_run(TrainConfig(data="no/such/folder"), SCHEDULE, TINY)


def test_continue_run_picks_up_the_step_and_refuses_what_it_cannot_continue(tmp_path):
    trainer = new_run(TrainConfig(data="swiss_roll", steps=5, batch_size=16, device="cpu", compile="off"), SCHEDULE, TINY)
    list(trainer.train())
    ck.save_checkpoint(tmp_path / "run", trainer.checkpoint())
    more = continue_run(tmp_path / "run", steps=8, device="cpu")
    assert more.step == 5 and more.config.steps == 8 and more.model_config == trainer.model_config
    assert more.config.compile == "auto"  # compiling, like the device, is asked anew
    assert continue_run(tmp_path / "run", steps=8, device="cpu", compile="on").compiled
    assert [r.step for r in more.train()] == [6, 7, 8]
    with pytest.raises(SettingError, match="at step 5"):
        continue_run(tmp_path / "run", steps=5)
    ck.save_checkpoint(tmp_path / "small", trainer.checkpoint(), inference_only=True)
    with pytest.raises(CheckpointError, match="not continued"):
        continue_run(tmp_path / "small", steps=10)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_count_their_parameters_as_the_built_network_has_them(name):
    for shape in ((1, 16, 16), (3, 32, 32), (2,)):
        config = model_config_for(PRESETS[name], shape)
        assert parameter_count(config) == count_parameters(build_model(config))
        assert model_config_for(size_of(config), shape) == config


def test_the_large_preset_is_ho_et_al_cifar_network():
    assert parameter_count(model_config_for(PRESETS["large"], (3, 32, 32))) == pytest.approx(35.7e6, rel=0.01)

