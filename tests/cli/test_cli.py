import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from diffusion_studio import __version__
from diffusion_studio.cli import main
from diffusion_studio.launcher import main as launcher_main
from diffusion_studio.core.data.images import load_image
from diffusion_studio.core.samplers import SAMPLERS
from diffusion_studio.core.schedules import make_schedule


def run_module(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "diffusion_studio", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_version():
    done = run_module("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"diffusion-studio {__version__}"


def test_no_arguments_open_the_app(monkeypatch):
    import diffusion_studio.gui.app as app

    opened = []
    monkeypatch.setattr(app, "main", lambda: opened.append(True) or 7)
    assert launcher_main([]) == 7 and opened == [True]
    assert launcher_main(["schedule", "-T", "3"]) == 0 and opened == [True]


@pytest.mark.parametrize("command", [[], ["compare"]])
def test_the_help_names_every_registered_sampler(monkeypatch, capsys, command):
    monkeypatch.setitem(SAMPLERS, "newcomer", SAMPLERS["ddim"])  # as registering one more would
    monkeypatch.setenv("COLUMNS", "1000")  # no name broken at its hyphen
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    help_text = capsys.readouterr().out
    assert all(name in help_text for name in SAMPLERS)


def test_schedule_json_has_the_engine_arrays(capsys):
    assert main(["schedule", "--schedule", "cosine", "--timesteps", "50", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    expected_keys = {"schedule", "timesteps", "t", "beta", "alpha", "alpha_bar", "sqrt_alpha_bar",
                     "sqrt_one_minus_alpha_bar", "snr", "posterior_variance"}
    assert expected_keys <= doc.keys()
    s = make_schedule("cosine", 50)
    assert doc["schedule"] == "cosine" and doc["timesteps"] == 50 and doc["t"] == list(range(1, 51))
    np.testing.assert_array_equal(doc["alpha_bar"], s.alpha_bars[1:])
    np.testing.assert_array_equal(doc["posterior_variance"], s.posterior_variances[1:])


def test_schedule_csv_to_file_round_trips(tmp_path):
    out = tmp_path / "s.csv"
    assert main(["schedule", "-T", "20", "--beta-start", "0.001", "--beta-end", "0.05", "--output", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 20 and rows[0]["t"] == "1" and rows[-1]["t"] == "20"
    s = make_schedule("linear", 20, 0.001, 0.05)
    np.testing.assert_array_equal([float(r["sqrt_one_minus_alpha_bar"]) for r in rows], s.sqrt_one_minus_alpha_bars[1:])


def test_noise_writes_a_strip_with_x0_first(tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(np.full((16, 20, 3), 200, np.uint8)).save(src)
    out = tmp_path / "strip.png"
    assert main(["noise", str(src), "--t", "0,100,1000", "--seed", "3", "--output", str(out)]) == 0
    strip = load_image(out)
    assert strip.shape == (16, 4 * 20 + 3 * 2, 3)
    x0 = strip[:, :20]
    assert np.allclose(x0, 200 / 127.5 - 1, atol=1 / 127.5)
    last = strip[:, -20:]
    assert abs(last.mean()) < 0.3 and last.std() > 0.5  # x_T is (clipped) noise
    single = tmp_path / "one.png"
    assert main(["noise", str(src), "--t", "500", "-o", str(single)]) == 0
    assert load_image(single).shape == (16, 20, 3)


def test_noise_is_reproducible_by_seed(tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(np.full((8, 8), 90, np.uint8)).save(src)
    outs = []
    for seed, name in ((1, "a.png"), (1, "b.png"), (2, "c.png")):
        main(["noise", str(src), "--t", "300", "--seed", str(seed), "-o", str(tmp_path / name)])
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1] != outs[2]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["schedule", "--timesteps", "0"], "timesteps"),
        (["schedule", "--beta-start", "0.5", "--beta-end", "0.1"], "beta_start"),
        (["schedule", "--schedule", "nonsense"], "invalid choice"),
        (["noise", "missing.png", "--t", "10", "-o", "x.png"], "missing.png"),
        (["noise", "notes.png", "--t", "10", "-o", "x.png"], "notes.png"),
        (["noise", "ok.png", "--t", "5000", "-o", "x.png"], "0…T"),
        (["noise", "ok.png", "--t", "ten", "-o", "x.png"], "whole numbers"),
        (["noise", "ok.png", "--t", "10", "-o", "no/such/dir/x.png"], "x.png"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_errors_are_one_line_on_stderr_and_a_nonzero_exit(tmp_path, args, needle):
    (tmp_path / "notes.png").write_text("not an image")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "ok.png")
    done = run_module(*args, cwd=tmp_path)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_an_output_whose_folder_is_missing_is_refused_before_any_work(tmp_path, capsys):
    assert main(["sample", "--model", "default", "--steps", "2", "--num", "1", "--device", "cpu",
                 "-o", str(tmp_path / "absent" / "s.png")]) == 1
    assert capsys.readouterr().err == "diffusion-studio sample: error: cannot save 's.png': its folder " \
                                      f"'{tmp_path / 'absent'}' does not exist\n"  # no sampling step before it
