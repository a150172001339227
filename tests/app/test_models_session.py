"""Opening models, with no widget: dropped paths told apart, a model read and described, and the
shared state given it."""

import pytest

from diffusion_studio.app.models import ModelSession, model_folder, read_model, split_drop
from diffusion_studio.app.state import StudioState
from diffusion_studio.core.errors import DiffusionStudioError
from diffusion_studio.resources import DEFAULT_MODEL
from tests.app.events import Recorder


def test_split_drop_tells_models_from_images(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"")
    model, pipeline = tmp_path / "run", tmp_path / "pipeline"
    model.mkdir()
    pipeline.mkdir()
    (model / "config.json").write_text("{}")
    (pipeline / "model_index.json").write_text("{}")
    assert split_drop([image, model, model / "config.json", tmp_path, pipeline]) == ([model, model, pipeline], [image, tmp_path])


def test_the_bundled_model_opens_into_the_state_and_is_described():
    state = StudioState()
    session = ModelSession(state)
    seen, changes = Recorder(session), []
    state.modelChanged.connect(lambda: changes.append(state.model))
    assert model_folder("default") == DEFAULT_MODEL
    opened = read_model(model_folder("default"))
    assert state.model is None  # reading leaves the state alone: it may run on another thread
    session.on_read(opened)
    assert state.model is opened.model and changes == [opened.model] and seen.values("opened") == [opened]
    assert opened.folder == DEFAULT_MODEL
    assert opened.description == ("default: 16×16 gray images, 1.6M parameters, eps-prediction, linear schedule, "
                                  "T = 1000, trained on digits")


def test_a_broken_model_says_why(tmp_path):
    (tmp_path / "config.json").write_text("{ not json")
    with pytest.raises(DiffusionStudioError, match="config.json': it is not valid JSON"):
        read_model(tmp_path)
