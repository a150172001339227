"""bpd and invert from the command line, on a tiny digits model trained here."""

import json

import numpy as np
import pytest
from PIL import Image

from diffusion_studio.cli import main
from diffusion_studio.core.data.datasets import load_digits
from diffusion_studio.core.data.images import save_image


@pytest.fixture(scope="module")
def tiny_digits(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "digits"
    args = ["train", "--data", "digits", "--image-size", "8", "--steps", "30", "--batch-size", "32", "--timesteps", "20",
            "--device", "cpu", "--save-every", "30", "--base-channels", "8", "--channel-mults", "1,2", "--res-blocks", "1",
            "--attention", "4", "--dropout", "0", "--output", str(out)]
    assert main(args) == 0
    return out


def test_bpd_prints_every_term_and_a_total_that_is_their_sum(tiny_digits, tmp_path, capsys):
    csv = tmp_path / "terms.csv"
    assert main(["bpd", "--model", str(tiny_digits), "--num", "5", "--device", "cpu", "-o", str(csv)]) == 0
    lines = csv.read_text().splitlines()
    assert lines[0] == "term,t,bits_per_dim" and len(lines) == 1 + 1 + 20 + 1
    rows = [line.split(",") for line in lines[1:]]
    assert [r[0] for r in rows[:2]] == ["L_T", "L_19"] and rows[-2][:2] == ["L_0", "1"] and rows[-1][0] == "total"
    assert sum(float(r[2]) for r in rows[:-1]) == pytest.approx(float(rows[-1][2]), rel=1e-6)
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert summary.startswith(f"{float(rows[-1][2]):.4f} bits/dim on 5 images of digits (held-out)")

    assert main(["bpd", "--model", str(tiny_digits), "--num", "3", "--device", "cpu", "--variance", "beta_tilde",
                 "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["num"] == 3 and document["variance"] == "beta_tilde" and len(document["terms"]) == 20
    assert document["total"] == pytest.approx(document["L_T"] + sum(document["terms"]), rel=1e-9)


def test_bpd_measures_a_folder_and_refuses_what_it_cannot_measure(tiny_digits, tmp_path, capsys):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i, digit in enumerate(load_digits(8, "held_out").data[:2]):
        save_image(digit.transpose(1, 2, 0), folder / f"{i}.png")
    assert main(["bpd", "--model", str(tiny_digits), "--data", str(folder), "--device", "cpu", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["num"] == 2
    for args, message in ((["--data", "swiss_roll"], "2-D points"), (["--num", "0"], "at least 1"),
                          (["--data", str(tmp_path / "none")], "neither a folder")):
        assert main(["bpd", "--model", str(tiny_digits), "--device", "cpu", *args]) == 1
        assert message in capsys.readouterr().err


def test_invert_writes_the_reconstruction_and_the_noise(tiny_digits, tmp_path, capsys):
    image, recon, noise = tmp_path / "digit.png", tmp_path / "recon.png", tmp_path / "xT.npy"
    Image.fromarray(np.kron(np.eye(4, dtype=np.uint8) * 255, np.ones((8, 8), np.uint8))).save(image)  # 32×32, resized to 8
    assert main(["invert", str(image), "--model", str(tiny_digits), "--steps", "10", "--device", "cpu",
                 "-o", str(recon), "--noise-output", str(noise)]) == 0
    assert Image.open(recon).size == (8, 8) and np.load(noise).shape == (1, 8, 8)
    out = capsys.readouterr().out
    assert "x_T: mean" in out and "reconstruction RMS error" in out
    assert main(["invert", str(image), "--model", str(tiny_digits), "--device", "cpu", "-o", str(tmp_path / "r.jpg")]) == 1
    assert "use a .png file" in capsys.readouterr().err
    assert main(["invert", str(tmp_path / "missing.png"), "--model", str(tiny_digits), "--device", "cpu", "-o", str(recon)]) == 1
    assert "missing.png" in capsys.readouterr().err
