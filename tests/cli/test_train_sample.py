import json
from dataclasses import asdict

import numpy as np
import pytest
from PIL import Image

from diffusion_studio.cli import main
from diffusion_studio.core.recipes import IMAGE_RECIPE, recipe_for
from diffusion_studio.core.trajectory import load_trajectory

from tests.cli.test_cli import run_module
from tests.core.test_trajectory_export import drawn_box


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "roll"
    args = ["train", "--data", "swiss_roll", "--steps", "40", "--batch-size", "64", "--timesteps", "30",
            "--device", "cpu", "--save-every", "20", "--hidden", "32", "--output", str(out)]
    assert main(args) == 0
    return out


def test_train_writes_a_checkpoint_and_resume_continues(trained, capsys):
    config = json.loads((trained / "config.json").read_text())
    assert config["step"] == 40 and config["model"]["kind"] == "mlp" and config["schedule"]["timesteps"] == 30
    assert (trained / "samples.png").exists() and (trained / "training_state.pt").exists()
    assert main(["train", "--data", "swiss_roll", "--steps", "50", "--device", "cpu", "--resume", "--output", str(trained)]) == 0
    assert "from step 40 to 50" in capsys.readouterr().err
    assert json.loads((trained / "config.json").read_text())["step"] == 50


def test_sample_writes_png_npy_gif_and_trajectory(trained, tmp_path):
    npy, png, gif, traj = (tmp_path / n for n in ("s.npy", "s.png", "s.gif", "s.npz"))
    args = ["sample", "--model", str(trained), "--sampler", "ddim", "--steps", "10", "--num", "50", "--device", "cpu"]
    assert main([*args, "-o", str(npy), "--gif", str(gif), "--trajectory", str(traj), "--gif-frames", "4"]) == 0
    assert np.load(npy).shape == (50, 2)
    with Image.open(gif) as image:
        assert image.n_frames <= 5
    assert len(load_trajectory(traj)) == 11
    assert main([*args, "-o", str(png)]) == 0
    assert Image.open(png).size == (400, 400)


def test_a_2d_model_samples_a_thousand_points_and_its_gif_draws_them_over_the_data_fitted(trained, tmp_path):
    npy, gif = tmp_path / "s.npy", tmp_path / "s.gif"
    args = ["sample", "--model", str(trained), "--sampler", "ddim", "--steps", "10", "--device", "cpu"]
    assert main([*args, "-o", str(npy), "--gif", str(gif), "--gif-frames", "3"]) == 0
    assert np.load(npy).shape == (1000, 2)  # images keep their grid of 16
    with Image.open(gif) as image:
        image.seek(image.n_frames - 1)
        frame = np.asarray(image.convert("RGB"))[-400:]  # the 400² scatter under the label
    top, bottom, left, right = drawn_box(frame, (190, 190, 190))  # the Swiss roll in grey
    assert max(bottom - top, right - left) > 0.8 and min(top, left, 1 - bottom, 1 - right) > 0.05
    top, bottom, left, right = drawn_box(frame, (31, 94, 200))  # the samples in blue, on the same axes
    assert bottom - top > 0.3 and right - left > 0.3


@pytest.mark.parametrize("sampler, extra", [("euler", []), ("euler-a", ["--eta", "0.5"]), ("heun", []), ("dpmpp-2m", [])])
def test_every_sampler_runs_from_the_command_line(trained, tmp_path, sampler, extra):
    out = tmp_path / "s.npy"
    args = ["sample", "--model", str(trained), "--sampler", sampler, "--steps", "8", "--num", "30", "--device", "cpu"]
    assert main([*args, *extra, "-o", str(out)]) == 0
    samples = np.load(out)
    assert samples.shape == (30, 2) and np.isfinite(samples).all()


def test_compare_prints_each_run_and_writes_rows_in_step_by_t(trained, tmp_path, capsys):
    png, gif = tmp_path / "cmp.png", tmp_path / "cmp.gif"
    args = ["compare", "--model", str(trained), "--samplers", "ddpm;ddim:steps=10;heun:steps=5", "--num", "200",
            "--device", "cpu", "--format", "json", "-o", str(png), "--gif", str(gif), "--gif-frames", "8"]
    assert main(args) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [(r["sampler"], r["nfe"]) for r in runs] == [("ddpm", 30), ("ddim", 10), ("heun", 9)]
    assert all(r["seconds"] > 0 and r["distance"] > 0 for r in runs)
    with Image.open(png) as picture:
        assert picture.width == 400 and picture.height > 3 * 400  # a row of results per run
    with Image.open(gif) as animation:
        assert animation.n_frames == 8
    assert main([*args[:4], "ddim:eta=-1", "-o", str(png)]) == 1
    assert "eta" in capsys.readouterr().err


def test_compare_on_an_image_model_says_it_solves_the_reference_and_can_skip_it(capsys):
    args = ["compare", "--model", "default", "--samplers", "ddim:steps=2", "--num", "2", "--device", "cpu", "--format", "json"]
    assert main([*args, "--reference", "ode:3"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)[0]["distance"] > 0
    assert "solving the reference for the distances, the probability-flow ODE in 3 steps (DDIM, η = 0)" in err
    assert main([*args, "--reference", "none"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)[0]["distance"] is None and "reference" not in err
    assert main([*args, "--reference", "data"]) == 1
    assert "reference: 'data' does not measure this model" in capsys.readouterr().err


def test_same_seed_same_samples(trained, tmp_path):
    outs = []
    for seed, name in ((5, "a.npy"), (5, "b.npy"), (6, "c.npy")):
        main(["sample", "--model", str(trained), "--sampler", "ddpm", "--num", "20", "--seed", str(seed), "--device", "cpu",
              "-o", str(tmp_path / name)])
        outs.append(np.load(tmp_path / name))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])


def test_default_model_samples_digits(tmp_path):
    out, gif = tmp_path / "d.npy", tmp_path / "d.gif"
    args = ["sample", "--model", "default", "--sampler", "ddim", "--steps", "10", "--num", "4", "--device", "cpu"]
    assert main([*args, "-o", str(out), "--gif", str(gif)]) == 0
    samples = np.load(out)
    assert samples.shape == (4, 1, 16, 16) and samples.min() >= -1 and samples.max() <= 1
    with Image.open(gif) as image:  # a 2×2 grid of 16-pixel digits is enlarged to about 320 px
        assert 280 <= image.width <= 320 and image.n_frames == 11


def test_image_folder_training_reports_skipped_files_and_takes_every_setting(tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 20, 3), 60 * i, np.uint8)).save(folder / f"{i}.png")
    (folder / "bad.jpg").write_bytes(b"nope")
    args = ["train", "--data", str(folder), "--steps", "2", "--image-size", "8", "--size", "tiny", "--base-channels", "8",
            "--heads", "2", "--weight-decay", "0.01", "--grad-clip", "0.5", "--lr", "1e-3", "-T", "50",
            "--device", "cpu", "--output", str(tmp_path / "m")]
    assert main(args) == 0
    assert "skipped 1 unreadable file(s): bad.jpg" in capsys.readouterr().err
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    training, model = config["training"], config["model"]
    assert (training["weight_decay"], training["grad_clip"], training["learning_rate"]) == (0.01, 0.5, 1e-3)
    # the tiny preset's levels and blocks, with the width and heads given
    assert (model["channel_mults"], model["num_res_blocks"], model["base_channels"], model["num_heads"]) == ([1, 2], 1, 8, 2)
    assert config["schedule"]["timesteps"] == 50


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--data", "nowhere", "--steps", "5", "-o", "m"], "neither a folder"),
        (["train", "--data", "digits", "--steps", "0", "-o", "m"], "steps"),
        (["train", "--data", "digits", "--steps", "5", "--save-every", "0", "-o", "m"], "save_every"),
        (["train", "--data", "digits", "--steps", "5", "--image-size", "10", "-o", "m"], "image_size"),
        (["train", "--data", "digits", "--steps", "5", "--device", "cuda", "-o", "m"], "device"),
        (["train", "--data", "digits", "--steps", "5", "--heads", "0", "-o", "m"], "num_heads"),
        (["train", "--data", "digits", "--steps", "5", "--ema-decay", "1", "-o", "m"], "ema_decay"),
        (["train", "--data", "digits", "--steps", "5", "--resume", "-o", "m"], "not a checkpoint folder"),
        (["sample", "--model", "nowhere", "-o", "x.png"], "not a checkpoint folder"),
        (["sample", "--model", "default", "--steps", "5000", "-o", "x.png"], "steps"),
        (["sample", "--model", "default", "-o", "x.jpg"], "x.jpg"),
    ],
)
def test_train_and_sample_errors_are_one_line(tmp_path, args, needle):
    done = run_module(*args, cwd=tmp_path)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], done.stderr


def test_ctrl_c_stops_training_after_the_step_and_saves(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "roll"
    process = subprocess.Popen(
        [sys.executable, "-m", "diffusion_studio", "train", "--data", "swiss_roll", "--steps", "1000000", "--batch-size", "8",
         "--timesteps", "20", "--hidden", "16", "--device", "cpu", "--save-every", "1000000", "--output", str(out)],
        stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    line = process.stderr.readline()  # the recipe applied, then "training MLPDenoiser … from step 0 to 1000000"
    while line and not line.startswith("training"):
        line = process.stderr.readline()
    assert line.startswith("training")
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=max(deadline - time.monotonic(), 5))
    assert process.returncode == 130, err
    assert "stopped at step" in err
    step = json.loads((out / "config.json").read_text())["step"]
    assert 0 < step < 1000000 and (out / "samples.png").exists()


def test_train_takes_every_setting_not_given_from_the_datas_recipe(tmp_path, capsys):
    out = tmp_path / "moons"
    assert main(["train", "--data", "two_moons", "--steps", "5", "--lr", "0.001", "--device", "cpu", "-o", str(out)]) == 0
    recipe = recipe_for("two_moons")
    config = json.loads((out / "config.json").read_text())
    assert config["schedule"] == asdict(recipe.schedule)
    assert (config["model"]["hidden"], config["model"]["num_layers"]) == (recipe.size.hidden, recipe.size.num_layers)
    training = config["training"]
    assert training["steps"] == 5 and training["learning_rate"] == 0.001  # given …
    assert all(training[name] == value for name, value in recipe.settings().items() if name not in ("steps", "learning_rate"))
    err = capsys.readouterr().err
    assert f"{recipe.summary()}; given: --steps, --lr" in err and "warning" not in err


def test_train_warns_of_a_schedule_that_fails_on_points_and_help_lists_the_recipes(tmp_path, capsys):
    out = tmp_path / "roll"
    assert main(["train", "--data", "swiss_roll", "--schedule", "cosine", "--steps", "2", "--device", "cpu", "-o", str(out)]) == 0
    assert "warning: cosine T=100 on 2-D points" in capsys.readouterr().err
    assert main(["train", "--data", "swiss_roll", "--resume", "-o", str(out)]) == 1
    assert "give --steps" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    shown = capsys.readouterr().out
    assert recipe_for("checkerboard").summary() in shown and IMAGE_RECIPE.summary() in shown
