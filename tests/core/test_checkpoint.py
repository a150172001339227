import json
import os
import pickle
import shutil

import pytest
import torch

from diffusion_studio.core import checkpoint as ck
from diffusion_studio.core.data.datasets import load_toy
from diffusion_studio.core.errors import CheckpointError, FileSaveError
from diffusion_studio.core.loaded_model import open_model
from diffusion_studio.core.models.config import MLPConfig
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.core.training import Trainer

SCHEDULE = ScheduleConfig("cosine", 50)


def make_trainer(steps=20, seed=0):
    config = TrainConfig(data="two_moons", steps=steps, batch_size=64, seed=seed, device="cpu", warmup_steps=5)
    return Trainer(MLPConfig(hidden=32, num_layers=2), SCHEDULE, config, load_toy("two_moons", 1000))


def test_round_trip_gives_identical_outputs(tmp_path):
    trainer = make_trainer()
    list(trainer.train())
    ck.save_checkpoint(tmp_path / "run", trainer.checkpoint())
    loaded = ck.load_checkpoint(tmp_path / "run")
    assert loaded.step == 20 and loaded.schedule_config == SCHEDULE and loaded.model_config == trainer.model_config
    x, index = torch.randn(8, 2), torch.arange(8)
    torch.testing.assert_close(loaded.network(use_ema=True)(x, index), trainer.ema(x, index), rtol=0, atol=0)
    torch.testing.assert_close(loaded.network(use_ema=False).eval()(x, index), trainer.model.eval()(x, index), rtol=0, atol=0)
    model = open_model(tmp_path / "run")
    assert model.sample_shape == (2,) and model.prediction == "eps" and model.data == "two_moons"
    assert model.data_range == trainer.dataset.value_range and model.data_range[0] < -1 < 1 < model.data_range[1]
    assert (model.training_points() == load_toy("two_moons").data).all()  # the built-in set, drawn again


def test_a_point_checkpoint_from_before_ranges_were_kept_takes_its_built_in_sets_range(tmp_path):
    trainer = make_trainer(steps=2)
    list(trainer.train())
    folder = ck.save_checkpoint(tmp_path / "run", trainer.checkpoint())
    config = json.loads((folder / ck.CONFIG_FILE).read_text())
    del config["data_range"]
    (folder / ck.CONFIG_FILE).write_text(json.dumps(config))
    assert open_model(folder).data_range == load_toy("two_moons").value_range


def test_the_compile_setting_round_trips_and_a_config_from_before_it_loads_with_auto(tmp_path):
    trainer = Trainer(MLPConfig(hidden=8, num_layers=1), SCHEDULE, TrainConfig(steps=1, device="cpu", compile="off"),
                      load_toy("two_moons", 100))
    folder = ck.save_checkpoint(tmp_path / "run", trainer.checkpoint())
    assert ck.load_checkpoint(folder).train_config == trainer.config
    config = json.loads((folder / ck.CONFIG_FILE).read_text())
    del config["training"]["compile"]
    (folder / ck.CONFIG_FILE).write_text(json.dumps(config))
    assert ck.load_checkpoint(folder).train_config.compile == "auto"


def test_resume_continues_the_step_count_and_the_loss_curve(tmp_path):
    straight = make_trainer(steps=20)
    expected = [r.loss for r in straight.train()]
    first = make_trainer(steps=10)
    head = [r.loss for r in first.train()]
    ck.save_checkpoint(tmp_path / "run", first.checkpoint())
    loaded = ck.load_checkpoint(tmp_path / "run")
    second = make_trainer(steps=20)
    second.restore(loaded)
    assert second.step == 10
    tail = [(r.step, r.loss) for r in second.train()]
    assert [s for s, _ in tail] == list(range(11, 21))
    assert head + [loss for _, loss in tail] == pytest.approx(expected, rel=1e-6)


def test_a_failure_mid_save_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    trainer = make_trainer()
    list(trainer.train())
    target = tmp_path / "run"
    ck.save_checkpoint(target, trainer.checkpoint())
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def disk_full(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck.torch, "save", disk_full)
    trainer.step = 999
    with pytest.raises(FileSaveError, match="No space left"):
        ck.save_checkpoint(target, trainer.checkpoint())
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert ck.load_checkpoint(target).step == 20


@pytest.mark.parametrize("writer", ["torch", "safetensors"])
def test_a_disk_that_fills_in_a_library_writer_is_one_line_and_keeps_the_checkpoint(tmp_path, monkeypatch, writer):
    trainer = make_trainer(steps=2)
    list(trainer.train())
    target = ck.save_checkpoint(tmp_path / "run", trainer.checkpoint())

    def full(*args, **kwargs):  # what torch.save and safetensors raise when a write fails
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 128 vs 64\nmore")

    monkeypatch.setattr(ck.torch, "save", full) if writer == "torch" else monkeypatch.setattr(ck, "save_file", full)
    with pytest.raises(FileSaveError, match="^cannot save 'run': \\[enforce fail.*64$"):
        ck.save_checkpoint(target, trainer.checkpoint())
    assert ck.load_checkpoint(target).step == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_an_interrupted_swap_still_finds_the_previous_copy(tmp_path):
    trainer = make_trainer()
    list(trainer.train())
    ck.save_checkpoint(tmp_path / "run", trainer.checkpoint())
    os.replace(tmp_path / "run", tmp_path / "run.previous")  # crashed between the two renames
    assert ck.load_checkpoint(tmp_path / "run").step == 20


def test_a_save_keeps_the_runs_other_files_and_a_failed_one_loses_none(tmp_path, monkeypatch):
    trainer = make_trainer()
    list(trainer.train())
    target = tmp_path / "run"
    ck.save_checkpoint(target, trainer.checkpoint())
    (target / "loss.csv").write_text("step,loss\n1,0.5\n")
    (target / "tensorboard").mkdir()
    (target / "tensorboard" / "events").write_bytes(b"e")
    ck.save_checkpoint(target, trainer.checkpoint(), inference_only=True)
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "loss.csv", "model.safetensors", "tensorboard"]
    assert (target / "tensorboard" / "events").read_bytes() == b"e"  # and the old training state is not carried over

    def fail_to_swap(source, destination):
        if str(source).endswith(".partial"):
            raise OSError(28, "No space left on device")
        os.rename(source, destination)

    monkeypatch.setattr(os, "replace", fail_to_swap)
    with pytest.raises(FileSaveError, match="No space left"):
        ck.save_checkpoint(target, trainer.checkpoint())
    assert (target / "loss.csv").read_text() == "step,loss\n1,0.5\n"  # the old copy is back, with the run's files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert ck.load_checkpoint(target).step == 20


class Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_pickle_with_a_code_payload_is_refused_and_never_run(tmp_path, monkeypatch):
    trainer = make_trainer()
    list(trainer.train())
    ck.save_checkpoint(tmp_path / "run", trainer.checkpoint())
    with open(tmp_path / "run" / ck.STATE_FILE, "wb") as handle:
        pickle.dump({"step": 1, "optimizer": Payload()}, handle)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match="refused"):
        ck.load_checkpoint(tmp_path / "run")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("damage", ["no_config", "bad_json", "future_format", "truncated_weights", "no_weights",
                                    "wrong_shape", "unknown_field", "not_a_folder", "bad_range"])
def test_broken_checkpoints_name_what_is_wrong(tmp_path, damage):
    trainer = make_trainer(steps=2)
    list(trainer.train())
    folder = tmp_path / "run"
    ck.save_checkpoint(folder, trainer.checkpoint())
    config_file, weights = folder / ck.CONFIG_FILE, folder / ck.WEIGHTS_FILE
    config = json.loads(config_file.read_text())
    expected = {
        "no_config": "no config.json", "bad_json": "run/config.json.: it is not valid JSON", "future_format": "format 99",
        "truncated_weights": "damaged or truncated", "no_weights": "no model.safetensors",
        "wrong_shape": "do not match", "unknown_field": "unknown mlp settings", "not_a_folder": "not a checkpoint folder",
        "bad_range": "data_range",
    }[damage]
    if damage == "no_config":
        config_file.unlink()
    elif damage == "bad_json":
        config_file.write_text("{not json")
    elif damage == "future_format":
        config_file.write_text(json.dumps({**config, "format_version": 99}))
    elif damage == "truncated_weights":
        weights.write_bytes(weights.read_bytes()[:300])
    elif damage == "no_weights":
        weights.unlink()
    elif damage == "wrong_shape":
        config["model"]["hidden"] = 48
        config_file.write_text(json.dumps(config))
    elif damage == "unknown_field":
        config["model"]["depth"] = 3
        config_file.write_text(json.dumps(config))
    elif damage == "bad_range":
        config["data_range"] = [2.0, -2.0]
        config_file.write_text(json.dumps(config))
    else:
        shutil.rmtree(folder)
        folder.write_text("a file")
    with pytest.raises(CheckpointError, match=expected):
        ck.load_checkpoint(folder)


def test_the_bundled_default_model_loads_and_denoises():
    model = open_model("default")
    assert model.is_image and model.sample_shape == (1, 16, 16)
    assert model.data == "digits" and model.data_range == (-1.0, 1.0) and model.training_points() is None
    x = torch.randn(2, 1, 16, 16)
    assert model.network(x, torch.tensor([999, 999])).shape == x.shape
