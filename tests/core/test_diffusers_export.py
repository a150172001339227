"""Our checkpoints exported as diffusers DDPMPipeline folders: diffusers loads them offline and samples
what our DDPM sampler samples from the same seed; our loader reads them back to the same samples."""

import json

import numpy as np
import pytest
import torch

from diffusion_studio.cli import main
from diffusion_studio.core.checkpoint import Checkpoint, save_checkpoint
from diffusion_studio.core.diffusers_export import export_diffusers
from diffusion_studio.core.errors import FileSaveError, SettingError
from diffusion_studio.core.loaded_model import open_model
from diffusion_studio.core.models import build_model
from diffusion_studio.core.models.config import MLPConfig, UNetConfig
from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.core.sampling import SamplingRun
from diffusion_studio.core.schedules import NoiseSchedule, ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig

diffusers = pytest.importorskip("diffusers")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TINY = UNetConfig(image_size=8, in_channels=1, out_channels=1, base_channels=32, channel_mults=(1, 2), num_res_blocks=1,
                  attention_resolutions=(4,), dropout=0.0, num_heads=1)
T = 10


def make_checkpoint(folder, model_config=TINY, schedule=ScheduleConfig("linear", T), prediction="eps", seed=0):
    """A checkpoint with random weights (the layers that start at zero too, so that every layer counts)."""
    torch.manual_seed(seed)
    network = build_model(model_config)
    with torch.no_grad():
        for p in network.parameters():
            p.add_(0.05 * torch.randn_like(p))
    state = {k: v.clone() for k, v in network.state_dict().items()}
    data = "digits" if isinstance(model_config, UNetConfig) else "two_moons"
    checkpoint = Checkpoint(model_config, schedule, TrainConfig(data=data, prediction=prediction), 1, state, state, None)
    return save_checkpoint(folder, checkpoint, inference_only=True)


def our_samples(source, num=3, seed=4, steps=None):
    """Our DDPM sampler's x_0 (its defaults: σ_t² = β_t, x̂_0 kept in [−1, 1]; K < T steps spaced "leading", as
    the exported scheduler spaces them) as diffusers' pixels in [0, 1], N×H×W×C."""
    config = SampleConfig(sampler="ddpm", num=num, seed=seed, steps=steps, spacing="leading")
    run = SamplingRun(open_model(source), config)
    x0 = list(run.steps())[-1].x_prev.numpy()
    return np.clip(x0 / 2 + 0.5, 0, 1).transpose(0, 2, 3, 1)


@pytest.mark.parametrize("config", [
    TINY,
    UNetConfig(image_size=8, in_channels=3, out_channels=3, base_channels=32, channel_mults=(1, 2, 2), num_res_blocks=2,
               attention_resolutions=(8, 4), dropout=0.1, num_heads=1),  # one head in layers of widths 32 and 64
    UNetConfig(image_size=8, in_channels=1, out_channels=1, base_channels=32, channel_mults=(1, 2), num_res_blocks=1,
               attention_resolutions=(4,), dropout=0.0, num_heads=4),  # four heads of width 16
    UNetConfig(image_size=4, in_channels=1, out_channels=1, base_channels=32, channel_mults=(1,), num_res_blocks=1,
               attention_resolutions=(), dropout=0.0, num_heads=2),  # one level: no down- or upsampling
], ids=["tiny", "rgb-3-levels", "4-heads", "1-level"])
def test_the_exported_unet_gives_our_networks_output(tmp_path, config):
    folder = export_diffusers(make_checkpoint(tmp_path / "run", config), tmp_path / "pipe")
    unet = diffusers.UNet2DModel.from_pretrained(folder / "unet", local_files_only=True).eval()
    ours = open_model(tmp_path / "run").network
    x = torch.randn(5, config.in_channels, config.image_size, config.image_size, generator=torch.Generator().manual_seed(1))
    index = torch.tensor([0, 3, 5, 8, 9])
    with torch.no_grad():
        expected = ours(x, index)
        assert expected.abs().max() > 0.1  # the random weights reach the output
        torch.testing.assert_close(unet(x, index).sample, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("schedule, prediction", [
    (ScheduleConfig("linear", T, 1e-3, 0.2), "eps"),
    (ScheduleConfig("cosine", T), "v"),
    (ScheduleConfig("quadratic", T, 1e-3, 0.2), "x0"),
    (ScheduleConfig("sigmoid", T, 1e-3, 0.2), "eps"),
    (ScheduleConfig("scaled_linear", T, 1e-4, 0.005), "v"),  # diffusers has no name for it: written as trained_betas
])
def test_diffusers_ddpm_pipeline_samples_what_we_sample(tmp_path, schedule, prediction):
    run = make_checkpoint(tmp_path / "run", schedule=schedule, prediction=prediction)
    folder = export_diffusers(run, tmp_path / "pipe")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "model_index.json", "scheduler/scheduler_config.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors"]
    pipeline = diffusers.DDPMPipeline.from_pretrained(folder, local_files_only=True)
    pipeline.set_progress_bar_config(disable=True)
    for steps in (T, 4):  # the whole chain, and 4 steps
        theirs = pipeline(batch_size=3, generator=torch.Generator().manual_seed(4), num_inference_steps=steps,
                          output_type="np").images
        ours = our_samples(run, steps=steps)
        assert 0.05 < ours.std()  # not a blank image
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-4)
        np.testing.assert_allclose(our_samples(folder, steps=steps), ours, rtol=0, atol=1e-4)  # read back by our loader
    model = open_model(folder)
    name = "linear" if schedule.name == "scaled_linear" else schedule.name  # its β are a linear schedule's
    assert (model.schedule_config.name, model.prediction, model.sample_shape) == (name, prediction, (1, 8, 8))
    np.testing.assert_allclose(NoiseSchedule(model.schedule_config).betas, NoiseSchedule(schedule).betas, rtol=1e-12)


def test_a_model_of_points_is_refused(tmp_path):
    run = make_checkpoint(tmp_path / "run", MLPConfig(hidden=16, num_layers=1))
    with pytest.raises(SettingError, match="2-D points.*no pipeline for points"):
        export_diffusers(run, tmp_path / "pipe")
    assert not (tmp_path / "pipe").exists()


@pytest.mark.parametrize("config, setting", [
    (UNetConfig(image_size=8, in_channels=1, out_channels=1, base_channels=16, channel_mults=(1, 2), num_res_blocks=1,
                attention_resolutions=(4,), dropout=0.0), "norm groups: .*16 at width 16.*32 at width 32"),
    (UNetConfig(image_size=8, in_channels=1, out_channels=1, base_channels=32, channel_mults=(1, 2), num_res_blocks=1,
                attention_resolutions=(8,), dropout=0.0, num_heads=2), "num_heads: 2 heads .* widths 32, 64"),
], ids=["norm-groups", "heads"])
def test_what_diffusers_cannot_represent_is_refused_by_name(tmp_path, config, setting):
    run = make_checkpoint(tmp_path / "run", config)
    with pytest.raises(SettingError, match=setting):
        export_diffusers(run, tmp_path / "pipe")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_an_export_replaces_an_earlier_export_but_never_other_files(tmp_path):
    first = export_diffusers(make_checkpoint(tmp_path / "a", seed=0), tmp_path / "pipe")
    before = (first / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    export_diffusers(make_checkpoint(tmp_path / "b", seed=1), tmp_path / "pipe")  # an earlier export: replaced
    assert (first / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "pipe"]  # no temporary or previous folder left
    (tmp_path / "pipe" / "notes.txt").write_text("mine")
    with pytest.raises(FileSaveError, match="other than an earlier export"):
        export_diffusers(tmp_path / "a", tmp_path / "pipe")
    assert (tmp_path / "pipe" / "notes.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileSaveError, match="is a file"):
        export_diffusers(tmp_path / "a", tmp_path / "file")
    (tmp_path / "new.previous").mkdir()  # where a replaced folder is kept during the swap
    (tmp_path / "new.previous" / "notes.txt").write_text("mine")
    with pytest.raises(FileSaveError, match="new.previous"):
        export_diffusers(tmp_path / "a", tmp_path / "new")
    assert (tmp_path / "new.previous" / "notes.txt").read_text() == "mine" and not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    assert open_model(export_diffusers(tmp_path / "a", tmp_path / "empty")).sample_shape == (1, 8, 8)


def test_cli_exports_a_checkpoint_and_refuses_points(tmp_path, capsys):
    run = make_checkpoint(tmp_path / "run")
    assert main(["export-diffusers", "--model", str(run), "--output", str(tmp_path / "pipe")]) == 0
    assert "pipe" in capsys.readouterr().err
    config = json.loads((tmp_path / "pipe" / "scheduler" / "scheduler_config.json").read_text())
    assert (config["num_train_timesteps"], config["beta_schedule"], config["variance_type"]) == (T, "linear", "fixed_large")
    assert diffusers.DDPMPipeline.from_pretrained(tmp_path / "pipe", local_files_only=True).unet.config.sample_size == 8
    points = make_checkpoint(tmp_path / "points", MLPConfig(hidden=16, num_layers=1))
    assert main(["export-diffusers", "--model", str(points), "--output", str(tmp_path / "p2")]) == 1
    assert "no pipeline for points" in capsys.readouterr().err
    assert not (tmp_path / "p2").exists()
