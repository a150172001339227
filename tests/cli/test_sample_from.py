"""Pictures the command line writes record their runs; ``sample --from`` samples them again; ``train``
logs its losses beside the checkpoint."""

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from diffusion_studio.cli import main
from diffusion_studio.core.devices import available_devices
from diffusion_studio.core.export import save_frame
from diffusion_studio.core.provenance import output_metadata, read_metadata, run_settings
from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.core.training_log import LOSS_BY_T_FILE, LOSS_COLUMNS, LOSS_FILE, loss_by_t_columns

DIGITS = ["--model", "default", "--sampler", "ddim", "--steps", "4", "--num", "4", "--seed", "3", "--eta", "0.5",
          "--device", "cpu"]


def pixels(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def error_line(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def roll(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "roll"
    assert main(["train", "--data", "swiss_roll", "--steps", "20", "--batch-size", "32", "--timesteps", "20",
                 "--hidden", "16", "--mlp-layers", "1", "--device", "cpu", "--save-every", "10", "--output", str(out)]) == 0
    return out


def test_sample_from_a_png_or_a_gif_draws_the_same_pixels(tmp_path, capsys):
    png, gif = tmp_path / "digits.png", tmp_path / "digits.gif"
    assert main(["sample", *DIGITS, "--output", str(png), "--gif", str(gif)]) == 0
    assert main(["sample", "--from", str(png)]) == 0
    assert "sampling again: DDIM 4 steps η=0.5, seed 3, 4 samples of default on cpu" in capsys.readouterr().err
    np.testing.assert_array_equal(pixels(tmp_path / "digits-again.png"), pixels(png))
    assert main(["sample", "--from", str(gif), "-o", str(tmp_path / "from-gif.png")]) == 0
    np.testing.assert_array_equal(pixels(tmp_path / "from-gif.png"), pixels(png))
    assert read_metadata(tmp_path / "digits-again.png") == read_metadata(png) == read_metadata(gif)


def test_flags_given_beside_from_override_what_the_picture_records(tmp_path):
    png = tmp_path / "digits.png"
    assert main(["sample", *DIGITS, "--output", str(png)]) == 0
    assert main(["sample", "--from", str(png), "--seed", "4", "--steps", "5", "-o", str(tmp_path / "other.png")]) == 0
    run = read_metadata(tmp_path / "other.png")["runs"][0]
    assert (run["seed"], run["steps"], run["options"], run["num"]) == (4, 5, {"eta": 0.5}, 4)
    assert main(["sample", "--from", str(png), "--sampler", "ddpm", "-o", str(tmp_path / "ddpm.npy")]) == 0
    assert np.load(tmp_path / "ddpm.npy").shape == (4, 1, 16, 16)  # DDPM takes none of DDIM's η
    assert not np.array_equal(pixels(tmp_path / "other.png"), pixels(png))


def test_a_training_preview_is_the_checkpoints_samples_again(roll, tmp_path):
    metadata = read_metadata(roll / "samples.png")
    assert metadata["checkpoint_step"] == 20 and metadata["runs"][0]["model"] == str(roll.resolve())
    assert main(["sample", "--from", str(roll / "samples.png"), "-o", str(tmp_path / "again.png")]) == 0
    np.testing.assert_array_equal(pixels(tmp_path / "again.png"), pixels(roll / "samples.png"))


def test_train_logs_each_report_beside_the_checkpoint_and_a_resumed_run_appends(tmp_path):
    out = tmp_path / "roll"
    args = ["train", "--data", "swiss_roll", "--batch-size", "16", "--timesteps", "20", "--hidden", "16",
            "--mlp-layers", "1", "--device", "cpu", "--save-every", "10", "--output", str(out)]
    assert main([*args, "--steps", "30"]) == 0
    with open(out / LOSS_FILE, newline="") as handle:
        loss = list(csv.reader(handle))
    assert tuple(loss[0]) == LOSS_COLUMNS and [int(row[0]) for row in loss[1:]] == list(range(1, 31))
    assert all(float(row[1]) > 0 and float(row[2]) > 0 for row in loss[1:])
    assert main([*args, "--steps", "35", "--resume"]) == 0
    with open(out / LOSS_BY_T_FILE, newline="") as handle:
        by_t = list(csv.reader(handle))
    assert tuple(by_t[0]) == loss_by_t_columns(20) and [int(row[0]) for row in by_t[1:]] == list(range(1, 36))
    assert [int(line.split(",")[0]) for line in (out / LOSS_FILE).read_text().splitlines()[1:]] == list(range(1, 36))


def test_compare_inpaint_and_invert_pictures_record_their_runs(roll, tmp_path):
    png, gif = tmp_path / "cmp.png", tmp_path / "cmp.gif"
    assert main(["compare", "--model", str(roll), "--samplers", "ddim:steps=5;dpmpp-2m:steps=4,spacing=linspace", "--num", "50",
                 "--seed", "2", "--device", "cpu", "-o", str(png), "--gif", str(gif), "--gif-frames", "3"]) == 0
    recorded = read_metadata(png)
    assert recorded == read_metadata(gif) and recorded["kind"] == "compare"
    assert [(r["sampler"], r["steps"], r["spacing"], r["seed"], r["nfe"]) for r in recorded["runs"]] == [
        ("ddim", 5, "auto", 2, 5), ("dpmpp-2m", 4, "linspace", 2, 4)]
    digit = tmp_path / "digit.png"
    Image.fromarray(np.tile(np.arange(16, dtype=np.uint8) * 16, (16, 1))).save(digit)
    mask = tmp_path / "mask.png"
    Image.fromarray(np.where(np.arange(16)[:, None] < 8, 255, 0).astype(np.uint8).repeat(16, 1)).save(mask)
    assert main(["inpaint", str(digit), "--mask", str(mask), *DIGITS, "-o", str(tmp_path / "fill.png")]) == 0
    filled = read_metadata(tmp_path / "fill.png")
    assert filled["kind"] == "inpaint" and filled["mask"] == str(mask.resolve()) and filled["runs"][0]["inpainted_pixels"] == 128
    assert main(["invert", str(digit), "--model", "default", "--steps", "3", "--device", "cpu", "-o", str(tmp_path / "inv.png")]) == 0
    inverted = read_metadata(tmp_path / "inv.png")
    assert inverted["kind"] == "invert" and inverted["runs"][0]["sampler"] == "ddim" and inverted["runs"][0]["num"] == 1


def test_sample_from_refuses_what_it_cannot_sample_again_in_one_line(roll, tmp_path, capsys):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "plain.png")
    assert main(["sample", "--from", str(tmp_path / "plain.png")]) == 1
    assert "'plain.png' holds no Diffusion Studio settings" in error_line(capsys)

    moved = tmp_path / "moved"
    shutil.copytree(roll, moved)
    assert main(["sample", "--model", str(moved), "--num", "20", "--device", "cpu", "-o", str(tmp_path / "m.png")]) == 0
    shutil.rmtree(moved)
    capsys.readouterr()
    assert main(["sample", "--from", str(tmp_path / "m.png")]) == 1
    assert f"was sampled from the model '{moved.resolve()}', which is not here; give --model" in error_line(capsys)
    assert main(["sample", "--from", str(tmp_path / "m.png"), "--model", str(roll), "-o", str(tmp_path / "n.png")]) == 0

    assert main(["compare", "--model", str(roll), "--samplers", "ddim:steps=2;ddpm", "--num", "10", "--device", "cpu",
                 "-o", str(tmp_path / "cmp.png")]) == 0
    capsys.readouterr()
    assert main(["sample", "--from", str(tmp_path / "cmp.png")]) == 1
    assert "records 2 runs, not one sampling run" in error_line(capsys)

    assert main(["sample", "--device", "cpu"]) == 1
    assert "give --output" in error_line(capsys)


@pytest.mark.skipif("cuda" in available_devices(), reason="this machine has a GPU")
def test_sample_from_a_gpu_run_asks_for_a_device_here(tmp_path, capsys):
    run = run_settings("default", SampleConfig(sampler="ddim", steps=2, num=1), "cuda", T=1000)
    save_frame(np.zeros((8, 8, 1), np.uint8), tmp_path / "gpu.png", output_metadata("sample", [run]))
    assert main(["sample", "--from", str(tmp_path / "gpu.png")]) == 1
    assert "was sampled on cuda, which this machine does not have; give --device" in error_line(capsys)
    assert main(["sample", "--from", str(tmp_path / "gpu.png"), "--device", "cpu", "-o", str(tmp_path / "cpu.png")]) == 0
    assert json.loads(Image.open(tmp_path / "cpu.png").text["diffusion-studio"])["runs"][0]["device"] == "cpu"
