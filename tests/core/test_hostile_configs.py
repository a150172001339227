"""Property test: random JSON values anywhere in the files a user can hand us (a checkpoint's
config.json, a model config, a picture's recorded settings, a trajectory's metadata, a mixture)
give a result or one of the project's clean errors, never another exception."""

import json
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from diffusion_studio.core import checkpoint as ck
from diffusion_studio.core.data.datasets import load_toy, save_points
from diffusion_studio.core.errors import DiffusionStudioError
from diffusion_studio.core.mixture import known_mixture
from diffusion_studio.core.models.config import MLPConfig, config_from_dict
from diffusion_studio.core.provenance import KEY, recorded_run
from diffusion_studio.core.schedules import ScheduleConfig
from diffusion_studio.core.train_config import TrainConfig
from diffusion_studio.core.training import Trainer
from diffusion_studio.core.trajectory import Trajectory, load_trajectory, save_trajectory

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.sampled_from([0, -1, 2**31, 10**23, 2.5, "64", "abc", float("nan"), float("inf")]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
QUICK = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
THOROUGH = settings(QUICK, max_examples=300)


def paths(value, prefix=()):
    """Every place in a JSON value: the path to each key and list entry (the whole value first)."""
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from paths(inner, (*prefix, index))


def replaced(value, path, new):
    if not path:
        return new
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[path[0]] = replaced(value[path[0]], path[1:], new)
    return copy


def clean(call):
    """call() either works or raises one of our one-line errors."""
    try:
        call()
    except DiffusionStudioError as exc:
        assert "\n" not in str(exc)


@pytest.fixture(scope="module")
def checkpoint_folder(tmp_path_factory):
    config = TrainConfig(data="two_moons", steps=1, batch_size=8, device="cpu", compile="off")
    trainer = Trainer(MLPConfig(hidden=8, num_layers=1), ScheduleConfig("linear", 10), config, load_toy("two_moons", 100))
    return ck.save_checkpoint(tmp_path_factory.mktemp("ck") / "run", trainer.checkpoint())


@THOROUGH
@given(data=st.data(), value=JSON)
def test_any_value_anywhere_in_a_checkpoint_config(checkpoint_folder, tmp_path_factory, data, value):
    folder = shutil.copytree(checkpoint_folder, tmp_path_factory.mktemp("run") / "run")
    config = json.loads((folder / ck.CONFIG_FILE).read_text())
    where = data.draw(st.sampled_from(list(paths(config))))
    (folder / ck.CONFIG_FILE).write_text(json.dumps(replaced(config, where, value)))
    clean(lambda: ck.load_checkpoint(folder))


@QUICK
@given(model=st.dictionaries(st.sampled_from(["kind", "image_size", "in_channels", "base_channels", "channel_mults",
                                               "dropout", "num_heads", "hidden", "num_layers", "dim", "time_dim"]),
                             JSON, max_size=5),
       kind=st.sampled_from(["unet", "mlp", None]))
def test_any_model_config(model, kind):
    if kind is not None:
        model = {**model, "kind": kind}
    clean(lambda: config_from_dict(model))


RUN = {"model": "default", "sampler": "ddim", "steps": 5, "spacing": "auto", "clip": None, "num": 4, "seed": 0,
       "record_every": 1, "options": {"eta": 0.0}, "device": "cpu"}
PICTURE = {"software": "Diffusion Studio 1", "format": 1, "kind": "sample", "runs": [RUN]}


@THOROUGH
@given(data=st.data(), value=JSON)
def test_any_value_anywhere_in_a_pictures_recorded_settings(tmp_path_factory, data, value):
    from diffusion_studio.core.provenance import FORMAT_VERSION

    metadata = {**PICTURE, "format": FORMAT_VERSION}
    where = data.draw(st.sampled_from(list(paths(metadata))))
    info = PngInfo()
    info.add_text(KEY, json.dumps(replaced(metadata, where, value)))
    path = tmp_path_factory.mktemp("png") / "p.png"
    Image.new("L", (2, 2)).save(path, pnginfo=info)
    clean(lambda: recorded_run(path))


@QUICK
@given(value=JSON)
def test_any_trajectory_metadata_and_any_mixture(tmp_path_factory, value):
    folder = tmp_path_factory.mktemp("t")
    frames = np.zeros((2, 1, 2), np.float32)
    save_trajectory(Trajectory(np.array([3, 0]), frames, frames, {"x": value}), folder / "t.npz")
    clean(lambda: load_trajectory(folder / "t.npz"))
    points = save_points(np.zeros((3, 2), np.float32), folder / "p.csv")
    (folder / "p.mixture.json").write_text(json.dumps(value))
    clean(lambda: known_mixture(str(points)))
