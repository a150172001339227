"""What pictures record about the runs that made them (core.provenance), written and read back."""

import json

import numpy as np
import pytest
from PIL import Image

from diffusion_studio import __version__
from diffusion_studio.core.errors import ImageLoadError, MetadataError
from diffusion_studio.core.export import save_frame, save_gif
from diffusion_studio.core.provenance import (
    KEY, SOFTWARE, model_name, output_metadata, read_metadata, recorded_run, run_settings,
)
from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.resources import DEFAULT_MODEL

CONFIG = SampleConfig(sampler="ddim", steps=7, num=3, seed=11, options={"eta": 0.25})
FRAMES = [np.random.default_rng(i).integers(0, 256, (12, 18, 3), dtype=np.uint8) for i in range(3)]


def sample_metadata(model="default", config=CONFIG, device="cpu"):
    return output_metadata("sample", [run_settings(model, config, device, data="digits", T=50)])


def test_a_run_records_every_sample_setting_its_model_and_its_kind_of_device(tmp_path):
    run = run_settings(tmp_path, CONFIG, "cuda:1", T=50)
    assert run == {"model": str(tmp_path.resolve()), "device": "cuda", "sampler": "ddim", "steps": 7, "spacing": "auto",
                   "clip": None, "num": 3, "seed": 11, "class_label": None, "guidance": 0.0, "guidance_from": 0.0,
                   "guidance_to": 1.0, "record_every": 1, "options": {"eta": 0.25}, "T": 50}
    assert model_name("default") == model_name(DEFAULT_MODEL) == "default"
    metadata = output_metadata("compare", [run, run], note="x")
    assert metadata["software"] == f"Diffusion Studio {__version__}" and metadata["kind"] == "compare"
    assert metadata["runs"] == [run, run] and metadata["note"] == "x"
    with pytest.raises(ValueError, match="unknown kind"):
        output_metadata("painting", [run])


@pytest.mark.parametrize("writer, name", [(lambda p, m: save_frame(FRAMES[0], p, m), "x.png"),
                                          (lambda p, m: save_gif(FRAMES, p, metadata=m), "x.gif")])
def test_png_and_gif_metadata_round_trip(tmp_path, writer, name):
    metadata = sample_metadata()
    writer(tmp_path / name, metadata)
    assert read_metadata(tmp_path / name) == metadata
    recorded = recorded_run(tmp_path / name)
    assert (recorded.model, recorded.config, recorded.device) == ("default", CONFIG, "cpu")


def test_a_png_says_it_in_words_too_and_a_gif_comment_is_the_same_json(tmp_path):
    metadata = sample_metadata()
    save_frame(FRAMES[0], tmp_path / "x.png", metadata)
    save_gif(FRAMES, tmp_path / "x.gif", metadata=metadata)
    with Image.open(tmp_path / "x.png") as png, Image.open(tmp_path / "x.gif") as gif:
        assert png.text["Software"] == SOFTWARE
        assert "DDIM 7 steps η=0.25, seed 11" in png.text["Description"] and "3 samples" in png.text["Description"]
        assert json.loads(gif.info["comment"]) == json.loads(png.text[KEY]) == metadata
        assert gif.n_frames == 3


def test_pictures_without_settings_are_refused_by_name(tmp_path):
    Image.fromarray(FRAMES[0]).save(tmp_path / "plain.png")
    Image.fromarray(FRAMES[0]).save(tmp_path / "other.gif", comment=b"made with something else")
    Image.fromarray(FRAMES[0]).save(tmp_path / "photo.jpg")
    for name in ("plain.png", "other.gif", "photo.jpg"):
        with pytest.raises(MetadataError, match=f"'{name}' holds no Diffusion Studio settings"):
            recorded_run(tmp_path / name)
    (tmp_path / "notes.png").write_text("not a picture")
    with pytest.raises(ImageLoadError, match="notes.png"):
        read_metadata(tmp_path / "notes.png")
    with pytest.raises(ImageLoadError, match="no such file"):
        read_metadata(tmp_path / "missing.png")


def _png_with(tmp_path, text):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(KEY, text)
    Image.fromarray(FRAMES[0]).save(tmp_path / "x.png", pnginfo=info)
    return tmp_path / "x.png"


@pytest.mark.parametrize("change, needle", [
    (lambda m: "{not json", "damaged"),
    (lambda m: json.dumps([1, 2]), "damaged"),
    (lambda m: json.dumps({**m, "format": 99}), "format 99"),
    (lambda m: json.dumps({**m, "runs": []}), "no runs"),
    (lambda m: json.dumps({**m, "runs": [{k: v for k, v in m["runs"][0].items() if k != "seed"}]}), "no seed"),
    (lambda m: json.dumps({**m, "runs": [{**m["runs"][0], "steps": -3}]}), "steps"),
    (lambda m: json.dumps({**m, "runs": [{**m["runs"][0], "options": {"eta": "high"}}]}), "eta"),
    (lambda m: json.dumps({**m, "runs": [{**m["runs"][0], "sampler": "magic"}]}), "magic"),
])
def test_damaged_settings_are_refused_with_what_is_wrong(tmp_path, change, needle):
    path = _png_with(tmp_path, change(sample_metadata()))
    with pytest.raises(MetadataError, match=needle) as caught:
        recorded_run(path)
    assert "'x.png'" in str(caught.value)


def test_pictures_of_something_else_than_one_sampling_run_say_what_they_record(tmp_path):
    run = sample_metadata()["runs"][0]
    save_frame(FRAMES[0], tmp_path / "cmp.png", output_metadata("compare", [run, run, run]))
    with pytest.raises(MetadataError, match="'cmp.png' records 3 runs, not one sampling run"):
        recorded_run(tmp_path / "cmp.png")
    save_frame(FRAMES[0], tmp_path / "fill.png", output_metadata("inpaint", [run]))
    with pytest.raises(MetadataError, match="records inpainting"):
        recorded_run(tmp_path / "fill.png")
