"""Property test: a random value for any flag of any command gives a clean refusal (one line on
stderr, exit 1 or 2) or a run that starts; never a traceback or a library's warning. The network's first call stops a
run that starts (every check comes before it), so no example trains or samples for long."""

import argparse
import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffusion_studio.cli import build_parser, main
from diffusion_studio.core.data.images import save_image


class Started(Exception):
    """The run got past its checks to the network's first call."""


def _started(*args, **kwargs):
    raise Started


PATH_FLAGS = {"data", "model", "source", "image"}  # names of data and models: other tests cover them
HOSTILE = (st.sampled_from(["-1", "0", "-3", "0.0001", "1e23", "100000000000000000000000", "nan", "inf", "-inf", "",
                            "abc", "2.5", "1e400", "0x10", "1,2,x", "9" * 40, "/dev/zero", "3"])
           | st.integers().map(str) | st.floats().map(str) | st.text(max_size=6))


def commands():
    """Each command's name and its flags that take a value (paths and switches left out)."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        flags = [a.option_strings[-1] for a in sub._actions
                 if a.option_strings and a.nargs != 0 and a.type is not Path and a.dest not in PATH_FLAGS
                 and not isinstance(a, (argparse._HelpAction, argparse.BooleanOptionalAction))]
        yield name, flags


COMMANDS = dict(commands())


def base_args(command, folder):
    """A cheap run of each command, which the flag under test then changes."""
    image, mask, out = folder / "x.png", folder / "m.png", folder / "out"
    if not image.exists():
        save_image(np.zeros((16, 16, 1), np.float32), image)
        save_image(np.ones((16, 16, 1), np.float32), mask)
    model = ["--model", "default", "--device", "cpu"]
    return {
        "schedule": ["schedule", "-o", str(out)],
        "noise": ["noise", str(image), "--t", "1", "-o", f"{out}.png"],
        "train": ["train", "--data", "swiss_roll", "--steps", "1", "--device", "cpu", "-o", str(out)],
        "sample": ["sample", *model, "--steps", "2", "--num", "1", "-o", f"{out}.png"],
        "inpaint": ["inpaint", str(image), "--mask", str(mask), *model, "--steps", "2", "-o", f"{out}.png"],
        "compare": ["compare", *model, "--samplers", "ddim:steps=2", "--num", "1"],
        "bpd": ["bpd", *model, "--num", "1"],
        "invert": ["invert", str(image), *model, "--steps", "2", "-o", f"{out}.png"],
    }[command]


@pytest.mark.parametrize("command", sorted(name for name, flags in COMMANDS.items() if flags))
def test_a_random_value_for_any_flag_is_a_clean_refusal_or_a_run(command, tmp_path_factory, monkeypatch):
    monkeypatch.setattr(torch.nn.Module, "__call__", _started)
    folder = tmp_path_factory.mktemp(command)
    flags = COMMANDS[command]

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(flag=st.sampled_from(flags), value=HOSTILE)
    def check(flag, value):
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main([*base_args(command, folder), f"{flag}={value}"])
            except SystemExit as exit:
                code = exit.code
            except Started:
                return
        assert code in (0, 1, 2), code
        said = stderr.getvalue()
        assert "Traceback" not in said and "Warning" not in said, said  # nor a library's noise
        if code:  # the refusal is the last line, one line (our own progress may come before it)
            assert said.strip().splitlines()[-1].startswith(f"diffusion-studio {command}: error: "), said

    check()
