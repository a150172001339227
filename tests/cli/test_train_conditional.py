"""`train --conditional`: the flags come from TrainConfig's settings, the digits get their conditional recipe."""

import json

import numpy as np
from PIL import Image

from diffusion_studio.cli import main
from diffusion_studio.core.recipes import CONDITIONAL_DIGITS_RECIPE, recipe_for


def test_train_conditional_records_the_classes_and_label_dropout(tmp_path, capsys):
    out = tmp_path / "moons"
    assert main(["train", "--data", "two_moons", "--conditional", "--p-uncond", "0.2", "--steps", "3", "--hidden", "16",
                 "--device", "cpu", "-o", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["num_classes"] == 2
    assert config["training"]["conditional"] and config["training"]["p_uncond"] == 0.2
    err = capsys.readouterr().err
    first = err.splitlines()[0]  # the recipe (label dropout 0.1), then the flags that replace its settings
    assert first.startswith(f"{recipe_for('two_moons', conditional=True).summary()}; given: ")
    assert "label dropout 0.1" in first and "--p-uncond" in first.split("given: ")[1]


def test_train_conditional_on_the_digits_takes_their_conditional_recipe(tmp_path, capsys):
    out = tmp_path / "digits"
    assert main(["train", "--data", "digits", "--conditional", "--steps", "1", "--batch-size", "8", "--image-size", "8",
                 "--size", "tiny", "--device", "cpu", "-o", str(out)]) == 0
    assert CONDITIONAL_DIGITS_RECIPE.summary().split(",")[0] in capsys.readouterr().err
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["num_classes"] == 10 and config["training"]["p_uncond"] == CONDITIONAL_DIGITS_RECIPE.training.p_uncond
    grid = np.asarray(Image.open(out / "samples.png"))
    assert grid.shape[0] == grid.shape[1]  # ten rows of ten: a row per class
