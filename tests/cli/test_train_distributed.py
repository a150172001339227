"""`torchrun -m diffusion_studio train`: two CPU processes (gloo) take the steps one process takes."""

import json

import torch

from diffusion_studio.cli import main
from diffusion_studio.core.checkpoint import load_checkpoint

from tests.core.test_distributed import torchrun

TRAIN = ["train", "--data", "swiss_roll", "--steps", "30", "--batch-size", "32", "--timesteps", "20", "--hidden", "32",
         "--mlp-layers", "2", "--lr", "1e-2", "--warmup", "5", "--device", "cpu", "--save-every", "30"]


def test_two_processes_train_as_one_with_the_same_global_batch(tmp_path, capsys):
    (tmp_path / "one").mkdir(), (tmp_path / "two").mkdir()
    assert main([*TRAIN, "--output", str(tmp_path / "one" / "run")]) == 0
    alone = capsys.readouterr().err
    done = torchrun("-m", "diffusion_studio", *TRAIN, "--output", str(tmp_path / "two" / "run"))
    assert done.returncode == 0, done.stderr[-3000:]
    # rank 0 alone reports and saves: one start line, one final line, one run folder
    assert done.stderr.count("training MLPDenoiser") == 1 and "(rank 0 of 2 processes)" in done.stderr
    assert done.stderr.count("saved ") == 1 and [p.name for p in (tmp_path / "two").iterdir()] == ["run"]
    last = [line for line in alone.splitlines() if line.startswith("step 30/30")][0].split("  ")[1]  # "loss 0.1234"
    assert f"step 30/30  {last}" in done.stderr
    one, two = load_checkpoint(tmp_path / "one" / "run"), load_checkpoint(tmp_path / "two" / "run")
    assert json.loads((tmp_path / "two" / "run" / "config.json").read_text())["training"]["batch_size"] == 32
    for state in ("model_state", "ema_state"):  # 30 AdamW steps on the same samples, t and ε: float rounding apart
        torch.testing.assert_close(getattr(two, state), getattr(one, state), rtol=0, atol=2e-6)
    moments = [(a["exp_avg"], b["exp_avg"]) for a, b in zip(one.training_state["optimizer"]["state"].values(),
                                                            two.training_state["optimizer"]["state"].values())]
    torch.testing.assert_close([b for _, b in moments], [a for a, _ in moments], rtol=1e-4, atol=1e-7)
    # the loss by t gathers both processes' samples; the shared generator ends where one process's does
    torch.testing.assert_close(two.training_state["loss_by_t"], one.training_state["loss_by_t"], rtol=1e-5, atol=0)
    assert torch.equal(two.training_state["rng"]["generator"], one.training_state["rng"]["generator"])
