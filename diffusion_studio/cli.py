"""The ``diffusion-studio`` command: no arguments open the app; subcommands run headless on the core."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import NoReturn, Sequence

import numpy as np

from diffusion_studio import __version__
from diffusion_studio.core.atomic import atomic_write
from diffusion_studio.core.errors import DiffusionStudioError, FileSaveError, SettingError
from diffusion_studio.core.schedules import SCHEDULE_NAMES, NoiseSchedule, ScheduleConfig, make_schedule

PROG = "diffusion-studio"
SCHEDULE_COLUMNS = (
    "beta",
    "alpha",
    "alpha_bar",
    "sqrt_alpha_bar",
    "sqrt_one_minus_alpha_bar",
    "snr",
    "log_snr",
    "posterior_variance",
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got '{text}'") from None


def _add_schedule_options(parser: argparse.ArgumentParser) -> None:
    defaults = ScheduleConfig()
    parser.add_argument("--schedule", default=defaults.name, choices=SCHEDULE_NAMES, help="β schedule (default: %(default)s)")
    parser.add_argument("--timesteps", "-T", type=int, default=defaults.timesteps, help="T, the number of steps (default: %(default)s)")
    parser.add_argument("--beta-start", type=float, default=defaults.beta_start, help="β_1 (default: %(default)s; not used by cosine)")
    parser.add_argument("--beta-end", type=float, default=defaults.beta_end, help="β_T (default: %(default)s; not used by cosine)")


def _schedule_from(args: argparse.Namespace) -> NoiseSchedule:
    return make_schedule(args.schedule, args.timesteps, args.beta_start, args.beta_end)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="See how denoising diffusion models work. With no command, opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    schedule = commands.add_parser(
        "schedule", help="print a noise schedule's β, α, ᾱ, SNR … for t = 1…T", description="One row per t = 1…T."
    )
    _add_schedule_options(schedule)
    schedule.add_argument("--format", choices=("csv", "json"), default="csv", help="output format (default: %(default)s)")
    schedule.add_argument("--output", "-o", type=Path, help="write to this file instead of standard output")
    schedule.set_defaults(run=run_schedule)

    noise = commands.add_parser(
        "noise",
        help="noise an image to x_t by the closed form q(x_t | x_0)",
        description="x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, one ε for every t. Several t give a strip, x_0 first.",
    )
    noise.add_argument("image", type=Path, help="the image x_0")
    noise.add_argument("--t", dest="t", type=_int_list, required=True, metavar="T1[,T2,...]", help="timesteps, 0…T")
    _add_schedule_options(noise)
    noise.add_argument("--seed", type=int, default=0, help="seed of ε (default: %(default)s)")
    noise.add_argument("--max-side", type=int, help="shrink the image so no side exceeds this many pixels")
    noise.add_argument("--output", "-o", type=Path, required=True, help="PNG file to write")
    noise.set_defaults(run=run_noise)
    return parser


def schedule_table(schedule: NoiseSchedule) -> dict[str, np.ndarray]:
    """The schedule's columns for t = 1…T, by the names the CLI writes."""
    s = schedule
    columns = (s.betas, s.alphas, s.alpha_bars, s.sqrt_alpha_bars, s.sqrt_one_minus_alpha_bars, s.snr, s.log_snr, s.posterior_variances)
    return {"t": s.t, **{name: values[1:] for name, values in zip(SCHEDULE_COLUMNS, columns)}}


def _write_text(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        with atomic_write(output) as handle:
            handle.write(text.encode("utf-8"))
    except OSError as exc:
        raise FileSaveError(output, exc.strerror or str(exc)) from None


def run_schedule(args: argparse.Namespace) -> None:
    schedule = _schedule_from(args)
    table = schedule_table(schedule)
    if args.format == "json":
        document = {"schedule": schedule.config.name, "timesteps": schedule.timesteps}
        document.update({name: values.tolist() for name, values in table.items()})
        text = json.dumps(document) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(table)
        for row in zip(*table.values()):
            writer.writerow([row[0], *(f"{v:.17g}" for v in row[1:])])
        text = buffer.getvalue()
    _write_text(text, args.output)


def run_noise(args: argparse.Namespace) -> None:
    from diffusion_studio.core.data.images import image_grid, load_image, save_image
    from diffusion_studio.core.process import q_sample

    schedule = _schedule_from(args)
    bad = [t for t in args.t if not 0 <= t <= schedule.timesteps]
    if not args.t or bad:
        raise SettingError("t", f"each t must lie in 0…T = {schedule.timesteps}, got {bad or 'none'}")
    x0 = load_image(args.image, max_side=args.max_side)
    eps = np.random.default_rng(args.seed).standard_normal(x0.shape).astype(np.float32)
    frames = [q_sample(schedule, x0, t, eps) for t in args.t]
    if len(frames) > 1:
        frames.insert(0, x0)
    save_image(image_grid(frames), args.output)
    print(f"wrote {args.output} (t = {', '.join(map(str, args.t))})")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``diffusion-studio`` and ``python -m diffusion_studio``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        print(
            "The Diffusion Studio window is not part of this version yet. "
            f"Headless commands: {PROG} schedule, {PROG} noise (see {PROG} --help)."
        )
        return 0
    try:
        args.run(args)
    except DiffusionStudioError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{PROG} {args.command}: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0
