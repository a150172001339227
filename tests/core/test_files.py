"""Only regular files are read (core.files): a FIFO or a device anywhere a file is read is refused
at once, with one line naming it; a JSON file is read no further than its limit."""

import io
import json
import os
import shutil
import threading
import zipfile

import numpy as np
import pytest

from diffusion_studio.core import checkpoint as ck
from diffusion_studio.core.data.datasets import load_points_file, load_toy
from diffusion_studio.core.data.images import load_image, save_image
from diffusion_studio.core.errors import DiffusionStudioError, FileReadError
from diffusion_studio.core.files import read_json
from diffusion_studio.core.loaded_model import open_model
from diffusion_studio.core.models.config import MLPConfig
from diffusion_studio.core.provenance import read_metadata
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.core.training import Trainer
from diffusion_studio.core.training_log import TrainingLog
from diffusion_studio.core.trajectory import Trajectory, load_trajectory, save_trajectory


def refused(call):
    """The error ``call`` raises; the thread's timeout is a safety net, not a wait: a refusal is immediate."""
    raised = []

    def target():
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            raised.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "blocked reading a file that is not a regular one"
    assert len(raised) == 1 and isinstance(raised[0], DiffusionStudioError), raised
    assert "\n" not in str(raised[0])
    return str(raised[0])


def fifo_at(path):
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


@pytest.fixture(scope="module")
def checkpoint_folder(tmp_path_factory):
    config = TrainConfig(data="two_moons", steps=1, batch_size=8, device="cpu", compile="off")
    trainer = Trainer(MLPConfig(hidden=8, num_layers=1), ScheduleConfig("linear", 10), config, load_toy("two_moons", 100))
    return ck.save_checkpoint(tmp_path_factory.mktemp("ck") / "run", trainer.checkpoint())


@pytest.mark.parametrize("name", [ck.CONFIG_FILE, ck.STATE_FILE, ck.WEIGHTS_FILE])
def test_a_fifo_in_a_checkpoint_is_refused(checkpoint_folder, tmp_path, name):
    folder = shutil.copytree(checkpoint_folder, tmp_path / "run")
    fifo_at(folder / name)
    assert f"'run/{name}': it is a pipe (FIFO)" in refused(lambda: open_model(folder))


def test_a_config_linked_to_a_device_is_refused_and_a_huge_one_is_not_read_past_its_limit(checkpoint_folder, tmp_path):
    folder = shutil.copytree(checkpoint_folder, tmp_path / "run")
    (folder / ck.CONFIG_FILE).unlink()
    (folder / ck.CONFIG_FILE).symlink_to("/dev/zero")
    assert "a character device" in refused(lambda: ck.load_checkpoint(folder))
    (tmp_path / "big.json").write_bytes(b" " * 101)
    with pytest.raises(FileReadError, match="larger than the 100 bytes"):
        read_json(tmp_path / "big.json", limit=100)
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(FileReadError, match="nested too deeply"):
        read_json(tmp_path / "deep.json")


def test_a_fifo_as_a_diffusers_config_is_refused(tmp_path):
    folder = tmp_path / "unet"
    folder.mkdir()
    fifo_at(folder / "config.json")
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    assert "it is a pipe" in refused(lambda: open_model(folder))
    (tmp_path / "model_index.json").write_text("{}")
    assert "config.json" in refused(lambda: open_model(tmp_path))  # as the unet/ of a pipeline


def test_a_fifo_as_a_trajectory_image_picture_points_or_log_is_refused(tmp_path):
    assert "it is a pipe" in refused(lambda: load_trajectory(fifo_at(tmp_path / "t.npz")))
    assert "it is a pipe" in refused(lambda: load_image(fifo_at(tmp_path / "x.png")))
    assert "it is a pipe" in refused(lambda: read_metadata(fifo_at(tmp_path / "y.png")))
    assert "it is a pipe" in refused(lambda: load_points_file(fifo_at(tmp_path / "p.csv")))
    fifo_at(tmp_path / "loss.csv")
    assert "it is a pipe" in refused(lambda: TrainingLog(tmp_path, 0, 10))
    assert "a folder" in refused(lambda: load_image(tmp_path))


def test_a_trajectory_whose_header_claims_more_than_the_file_holds_is_refused_before_allocating(tmp_path):
    frames = np.zeros((2, 1, 4, 4, 1), np.uint8)
    path = tmp_path / "t.npz"
    save_trajectory(Trajectory(np.array([5, 0]), frames, frames), path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    header = io.BytesIO()  # 10¹² bytes claimed, 32 there
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (10**6, 10**6, 1, 1, 1)})
    members["x_t.npy"] = header.getvalue() + frames.tobytes()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    assert "more than the file holds" in refused(lambda: load_trajectory(path))
    np.save(tmp_path / "lone.npy", frames)
    os.replace(tmp_path / "lone.npy", tmp_path / "lone.npz")
    assert "cannot be read as a trajectory" in refused(lambda: load_trajectory(tmp_path / "lone.npz"))


def test_pictures_and_points_still_read(tmp_path):
    save_image(np.zeros((4, 4, 1), np.float32), tmp_path / "a.png")
    assert load_image(tmp_path / "a.png").shape == (4, 4, 1)
    (tmp_path / "p.csv").write_text("x,y\n0,0\n1,1\n")
    assert load_points_file(tmp_path / "p.csv").data.shape == (2, 2)
    (tmp_path / "c.json").write_text(json.dumps({"a": 1}))
    assert read_json(tmp_path / "c.json") == {"a": 1}
