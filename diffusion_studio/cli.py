"""The headless commands of ``diffusion-studio`` (schedule, noise, train, sample, inpaint, compare), on the core only."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from diffusion_studio import __version__
from diffusion_studio.core.atomic import atomic_write
from diffusion_studio.core.control import RunControl, drain
from diffusion_studio.core.durations import clock
from diffusion_studio.core.errors import DiffusionStudioError, FileSaveError, SettingError
from diffusion_studio.core.limits import (
    GIF_FPS, MAX_GIF_FRAMES, MAX_GIF_SCALE, MAX_IMAGE_SIZE, MAX_SEED,
)
from diffusion_studio.core.models.presets import PRESETS, NetworkSize
from diffusion_studio.core.recipes import RECIPE_SETTINGS, recipe_for, recipe_table, schedule_warning
from diffusion_studio.core.sample_config import (
    DETERMINISTIC, POINT_SAMPLES, SampleConfig, default_num, run_label, validate_sample_config,
)
from diffusion_studio.core.samplers import DDPM_VARIANCES, SAMPLERS, sampler_class
from diffusion_studio.core.settings import setting_fields
from diffusion_studio.core.schedules import VP_PATH, NoiseSchedule, ScheduleConfig, schedule_csv, schedule_table
from diffusion_studio.core.train_config import DEVICES, TrainConfig
from diffusion_studio.flags import add_option_flags, add_setting_flags, int_list, limited, setting_values

if TYPE_CHECKING:
    from diffusion_studio.core.distributed import World
    from diffusion_studio.core.provenance import RecordedRun
    from diffusion_studio.core.trajectory import Recorder

PROG = "diffusion-studio"
SEED = limited(int, ge=0, le=MAX_SEED)
FPS = limited(float, ge=GIF_FPS[0], le=GIF_FPS[1])
GIF_FRAMES = limited(int, ge=1, le=MAX_GIF_FRAMES)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_schedule_options(parser: argparse.ArgumentParser) -> None:
    add_setting_flags(parser.add_argument_group("schedule"), ScheduleConfig)


def _schedule_from(args: argparse.Namespace) -> NoiseSchedule:
    return NoiseSchedule(ScheduleConfig(**setting_values(args, setting_fields(ScheduleConfig))))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="See how denoising diffusion models work. With no command, diffusion-studio opens the desktop app.",
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
    noise.add_argument("--t", dest="t", type=int_list, required=True, metavar="T1[,T2,...]", help="timesteps, 0…T")
    _add_schedule_options(noise)
    noise.add_argument("--seed", type=SEED, default=0, help="seed of ε (default: %(default)s)")
    noise.add_argument("--max-side", type=limited(int, ge=1), help="shrink the image so no side exceeds this many pixels")
    noise.add_argument("--output", "-o", type=Path, required=True, help="PNG file to write")
    noise.set_defaults(run=run_noise)
    _add_train_parser(commands)
    _add_sample_parser(commands)
    _add_inpaint_parser(commands)
    _add_compare_parser(commands)
    _add_bpd_parser(commands)
    _add_invert_parser(commands)
    _add_export_diffusers_parser(commands)
    return parser


def _add_train_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train a DDPM on images or 2-D points",
        description="Train on L_simple (Ho et al. Algorithm 1) and save a checkpoint folder; "
        "image data trains a U-Net, 2-D toy sets an MLP. Ctrl+C saves and stops.",
        epilog="Each setting whose default is the recipe's comes from the data's recipe unless given:\n" + recipe_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--output", "-o", type=Path, required=True, help="checkpoint folder to write")
    train.add_argument("--resume", action="store_true", help="continue the checkpoint in --output (its model and schedule)")
    others = [f.name for f in setting_fields(TrainConfig) if f.name not in RECIPE_SETTINGS]
    add_setting_flags(train, TrainConfig, skip=RECIPE_SETTINGS, required=("data",))
    _add_recipe_flags(train.add_argument_group("training"), TrainConfig, skip=others)
    train.add_argument("--image-size", type=limited(int, ge=1, le=MAX_IMAGE_SIZE), default=16,
                       help="images are resized and cropped to this square (default: %(default)s)")
    train.add_argument("--channels", type=int, choices=(1, 3), help="1 gray or 3 RGB (default: as the data)")
    train.add_argument("--save-every", type=int, default=1000, help="checkpoint every N steps (default: %(default)s)")
    train.add_argument("--inference-only", action="store_true", help="save only the EMA weights (smaller; cannot be resumed)")
    _add_recipe_flags(train.add_argument_group("schedule"), ScheduleConfig)
    network = train.add_argument_group("network", "A preset size (default: the recipe's network), then any of its settings changed")
    network.add_argument("--size", choices=tuple(PRESETS), help="network size preset")
    _add_recipe_flags(network, NetworkSize)
    train.set_defaults(run=run_train)


def _add_recipe_flags(parser: argparse._ActionsContainer, config: type, skip: Sequence[str] = ()) -> None:
    """Flags for settings a recipe fills in: one not given leaves no attribute (its help says so)."""
    add_setting_flags(parser, config, skip=skip, suppress=True, defaults=dict.fromkeys(
        (f.name for f in setting_fields(config)), "the recipe's"))


def _recipe_settings(args: argparse.Namespace) -> tuple[TrainConfig, ScheduleConfig, NetworkSize, list[str]]:
    """The data's recipe with every setting given as a flag in its place, and the lines for stderr:
    which recipe it was, and a warning for a schedule that fails on the data
    (core.recipes.schedule_warning)."""
    recipe = recipe_for(args.data, getattr(args, "path", VP_PATH), args.conditional)
    config = recipe.train_config(**setting_values(args, setting_fields(TrainConfig)))
    schedule = replace(recipe.schedule, **setting_values(args, setting_fields(ScheduleConfig)))
    size = replace(recipe.size if args.size is None else PRESETS[args.size], **setting_values(args, setting_fields(NetworkSize)))
    given = [f.flags[0] for config in (TrainConfig, ScheduleConfig, NetworkSize) for f in setting_fields(config)
             if hasattr(args, f.name) and (config is not TrainConfig or f.name in RECIPE_SETTINGS)]
    given += ["--size"] if args.size else []
    notes = [recipe.summary() + (f"; given: {', '.join(given)}" if given else "")]
    warning = schedule_warning(schedule, recipe)
    if warning:
        notes.append(f"warning: {warning}")
    return config, schedule, size, notes


def _add_run_flags(parser: argparse.ArgumentParser, defaults: dict[str, object] | None = None, suppress: bool = False) -> None:
    """The flags of a recorded reverse-process run, which ``sample`` and ``inpaint`` share: the model,
    the sampler and its settings (SampleConfig, with ``defaults`` changed), the device, and the
    recording's GIF and trajectory file. With ``suppress``, the model, the settings and the device
    leave no attribute when not given (so that ``sample --from`` can tell what was given)."""
    parser.add_argument("--model", default=argparse.SUPPRESS if suppress else "default",
                        help="a checkpoint folder, a diffusers UNet2DModel folder, or 'default' (default: default)")
    add_setting_flags(parser, SampleConfig, defaults=defaults, suppress=suppress)
    add_option_flags(parser.add_argument_group("sampler options", "Each is taken by the samplers its help names"),
                     {cls.label: cls.Options for cls in SAMPLERS.values()})
    parser.add_argument("--device", default=argparse.SUPPRESS if suppress else "auto", choices=DEVICES,
                        help="where to sample (default: auto, the best here)")
    parser.add_argument("--gif", type=Path, help="also write the denoising as an animated GIF")
    parser.add_argument("--fps", type=FPS, default=12.0, help="GIF frames per second (default: %(default)s)")
    parser.add_argument("--gif-frames", type=GIF_FRAMES, default=100,
                        help="at most this many GIF frames, evenly spread (default: %(default)s)")
    parser.add_argument("--gif-scale", type=limited(int, ge=1, le=MAX_GIF_SCALE),
                        help="enlarge images this many times in the GIF (default: to about 320 px wide)")
    parser.add_argument("--trajectory", type=Path, help="also save every recorded step (.npz) for the app")


def _add_sample_parser(commands: argparse._SubParsersAction) -> None:
    sample = commands.add_parser(
        "sample",
        help=f"sample from a trained model with any of the samplers ({', '.join(SAMPLERS)})",
        description="Run the reverse process. --output by suffix: .png a grid (a scatter plot for 2-D "
        "models), .npy the raw samples in data space. PNGs and GIFs record the model, the settings and the seed; "
        "--from IMAGE runs them again, and any flag given beside it overrides what IMAGE records. Unless "
        f"--num is given: {SampleConfig().num} images, or {POINT_SAMPLES:,} points of a 2-D model.",
    )
    sample.add_argument("--from", dest="source", type=Path, metavar="IMAGE",
                        help="sample again as a PNG or GIF written here records: the same model, sampler, steps, options, "
                        "seed and count (and device); flags given beside it override those")
    _add_run_flags(sample, suppress=True)
    sample.add_argument("--output", "-o", type=Path, help=".png or .npy (with --from: IMAGE's name ending -again.png)")
    sample.set_defaults(run=run_sample)


INPAINT_SAMPLES = 4
"""Results an inpainting run draws unless told: a few candidates side by side."""


def _add_inpaint_parser(commands: argparse._SubParsersAction) -> None:
    inpaint = commands.add_parser(
        "inpaint",
        help="fill in the masked part of an image with a model, keeping the rest (any sampler)",
        description="Run the reverse process with the known pixels put back at q(x_s | x_0) after every step "
        "(Sohl-Dickstein et al. 2015). The mask is an image of the same aspect: white is filled in, black kept "
        "(as diffusers and AUTOMATIC1111 take it). Image and mask are fitted to the model's size. --output is a "
        "PNG in one row: the image, the masked image, then each result.",
    )
    inpaint.add_argument("image", type=Path, help="the image x_0 (any size: resized and centre-cropped to the model's)")
    inpaint.add_argument("--mask", type=Path, required=True, help="white where the model fills in, black where it keeps the image")
    _add_run_flags(inpaint, defaults={"num": INPAINT_SAMPLES})
    inpaint.add_argument("--output", "-o", type=Path, required=True, help=".png: image | masked | result …")
    inpaint.set_defaults(run=run_inpaint)


def _write_text(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    with atomic_write(output) as handle:
        handle.write(text.encode("utf-8"))


def run_schedule(args: argparse.Namespace) -> None:
    schedule = _schedule_from(args)
    if args.format == "json":
        document = {"schedule": schedule.config.name, "timesteps": schedule.timesteps}
        document.update({name: values.tolist() for name, values in schedule_table(schedule).items()})
        text = json.dumps(document) + "\n"
    else:
        text = schedule_csv([schedule])
    _write_text(text, args.output)


def run_noise(args: argparse.Namespace) -> None:
    from diffusion_studio.core.data.images import load_image, save_image
    from diffusion_studio.core.export import forward_strip

    schedule = _schedule_from(args)
    x0 = load_image(args.image, max_side=args.max_side)
    eps = np.random.default_rng(args.seed).standard_normal(x0.shape).astype(np.float32)
    save_image(forward_strip(schedule, x0, eps, args.t), args.output)
    print(f"wrote {args.output} (t = {', '.join(map(str, args.t))})")


class _Progress:
    """One status line on stderr, redrawn at most a few times a second (a new line when not a TTY)."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval if sys.stderr.isatty() else 5.0
        self.last = 0.0

    def show(self, text: str, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < self.interval:
            return
        self.last = now
        if sys.stderr.isatty():
            sys.stderr.write("\r" + text.ljust(78) + ("\n" if final else ""))
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _write_samples(samples: np.ndarray, path: Path, reference: np.ndarray | None = None,
                   metadata: dict[str, object] | None = None) -> None:
    """.npy: raw samples; .png: a grid of images or a scatter plot of points, with the ``metadata``."""
    from diffusion_studio.core.export import batch_grid, save_frame, scatter_frame
    from diffusion_studio.core.data.images import to_uint8

    suffix = path.suffix.lower()
    if suffix == ".npy":
        with atomic_write(path) as handle:
            np.save(handle, samples)
    elif suffix == ".png":
        picture = batch_grid(to_uint8(samples.transpose(0, 2, 3, 1))) if samples.ndim == 4 else scatter_frame(samples, reference=reference)
        save_frame(picture, path, metadata)
    else:
        raise SettingError("output", f"'{path.name}': use a .png or .npy file")


def run_train(args: argparse.Namespace) -> None:
    """Train in this process alone, or as one of the processes torchrun started (data-parallel)."""
    from diffusion_studio.core.devices import resolve_device
    from diffusion_studio.core.distributed import joined

    if args.save_every < 1:
        raise SettingError("save_every", f"must be at least 1 step, got {args.save_every}")
    with joined(resolve_device(args.device)) as world, _silenced(not world.is_main):
        _train(args, world)


@contextlib.contextmanager
def _silenced(silent: bool) -> Iterator[None]:
    """Standard error discarded in the block when ``silent``: a data-parallel run's other processes
    would repeat what the first one reports. Errors raised still reach main()."""
    if not silent:
        yield
        return
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
        yield


def _train(args: argparse.Namespace, world: World) -> None:
    from diffusion_studio.core.export import reference_points
    from diffusion_studio.core.provenance import output_metadata, run_settings
    from diffusion_studio.core.runs import Saved, continue_run, new_run, run_training

    if args.resume:
        if not hasattr(args, "steps"):
            raise SettingError("steps", "give --steps: the step count to continue the checkpoint to")
        trainer = continue_run(args.output, args.steps, args.device, world, args.compile)
    else:
        config, schedule, size, notes = _recipe_settings(args)
        trainer = new_run(config, schedule, size, args.image_size, args.channels, world)
        print("\n".join(notes), file=sys.stderr)  # once the data is loaded: a bad --data is the only line
    config, dataset = trainer.config, trainer.dataset
    if dataset.skipped:
        names = ", ".join(name for name, _ in dataset.skipped[:5]) + (" …" if len(dataset.skipped) > 5 else "")
        print(f"skipped {len(dataset.skipped)} unreadable file(s): {names}", file=sys.stderr)
    where = f"{trainer.device} (rank 0 of {world.size} processes)" if world.distributed else str(trainer.device)
    print(
        f"training {type(trainer.model).__name__} ({trainer.parameters:,} parameters) on {dataset.name} "
        f"({len(dataset.data)} samples) on {where}, from step {trainer.step} to {config.steps}"
        + (", compiled (the first step waits for torch.compile)" if trainer.compiled else ""),
        file=sys.stderr,
    )

    reference = None if dataset.is_image else reference_points(dataset.data)
    progress, started, control = _Progress(), time.monotonic(), RunControl()
    with _stop_on_interrupt(control):
        for item in run_training(trainer, args.output, args.save_every, should_stop=control.should_stop,
                                 inference_only=args.inference_only):
            if isinstance(item, Saved):
                count = default_num(dataset.is_image)
                settings = run_settings(item.folder, trainer.preview_config(count), trainer.device, data=config.data,
                                        T=trainer.schedule.timesteps)
                _write_samples(trainer.preview(count), item.folder / "samples.png", reference,
                               output_metadata("sample", [settings], checkpoint_step=item.step))
                continue
            progress.show(
                f"step {item.step}/{item.total_steps}  loss {item.loss:.4f}  "
                f"{item.images_per_second / config.batch_size:.1f} it/s  ETA {clock(item.eta_seconds)}",
                final=item.step == item.total_steps,
            )
    if control.stopped:
        print(f"\nstopped at step {trainer.step}; saved {args.output}", file=sys.stderr)
        raise KeyboardInterrupt
    print(f"saved {args.output} (step {trainer.step}, {clock(time.monotonic() - started)})", file=sys.stderr)


@contextlib.contextmanager
def _stop_on_interrupt(control: RunControl) -> Iterator[None]:
    """The first Ctrl+C asks the run to stop after this step (it saves); a second one interrupts at once."""

    def request_stop(signum, frame) -> None:
        signal.signal(signal.SIGINT, previous)
        print("\nstopping after this step (Ctrl+C again to quit without saving)…", file=sys.stderr)
        control.stop()

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _sampler_options(args: argparse.Namespace, sampler: str) -> dict[str, object]:
    """The options of ``sampler`` given as flags; a flag of another sampler's is an error."""
    chosen = sampler_class(sampler)
    mine = setting_values(args, setting_fields(chosen.Options))
    for cls in SAMPLERS.values():
        for name in setting_values(args, setting_fields(cls.Options)).keys() - mine.keys():
            raise SettingError(name, f"--{name.replace('_', '-')} is not an option of {chosen.label}")
    return mine


def _add_compare_parser(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser(
        "compare",
        help="run several samplers from the same noise and compare cost and result",
        description="Every run starts from the same x_T (one seed). Prints each run's network calls (NFE), "
        "seconds and distance: for 2-D models the sliced Wasserstein distance to the training data, for image "
        "models the RMS distance to the probability-flow ODE solved on all T steps (DDIM, η = 0) from that x_T.",
    )
    compare.add_argument("--model", default="default", help="a checkpoint folder, a diffusers UNet2DModel folder, or 'default'")
    compare.add_argument("--samplers", required=True, metavar="RUNS",
                         help=f"runs separated by ';', each sampler[:key=value,…] with a sampler of {', '.join(SAMPLERS)}, e.g. "
                         "\"ddpm;ddim:steps=50;dpmpp-2m:steps=20\" (keys: steps, spacing, clip, record_every and "
                         "the sampler's options such as eta, variance)")
    add_setting_flags(compare, SampleConfig, skip=("sampler", "steps", "spacing", "clip", "options"))
    compare.add_argument("--reference", metavar="REF",
                         help="what the distances are to: 'ode', an image model's probability-flow ODE on all T steps "
                         "(its default: T network calls, often more than all the runs), 'ode:K' the same on K steps, "
                         "'data' a 2-D model's training data (its default), or 'none'")
    compare.add_argument("--device", default="auto", choices=DEVICES)
    compare.add_argument("--output", "-o", type=Path, help=".png: one row of results per run")
    compare.add_argument("--gif", type=Path, help="also write the runs as an animated GIF, rows in step by t")
    compare.add_argument("--gif-frames", type=GIF_FRAMES, default=60, help="GIF frames, evenly spread over t (default: 60)")
    compare.add_argument("--fps", type=FPS, default=12.0, help="GIF frames per second (default: 12.0)")
    compare.add_argument("--format", choices=("table", "json"), default="table", help="what is printed (default: table)")
    compare.set_defaults(run=run_compare)


def run_compare(args: argparse.Namespace) -> None:
    from diffusion_studio.core.compare import (
        compare_items, comparison_metadata, distance_name, measure, parse_reference, parse_runs, reference_for,
    )
    from diffusion_studio.core.devices import resolve_device
    from diffusion_studio.core.export import (
        comparison_frame, comparison_times, display_scale, reference_points, save_frame, save_gif,
    )
    from diffusion_studio.core.loaded_model import open_model

    for path, suffix in ((args.output, ".png"), (args.gif, ".gif")):
        if path is not None and path.suffix.lower() != suffix:
            raise SettingError("output", f"'{path.name}': use a {suffix} file")
    base = SampleConfig(**setting_values(args, setting_fields(SampleConfig)))
    configs = parse_runs(args.samplers, base)
    device = resolve_device(args.device)
    model = open_model(args.model, device)
    timesteps = model.schedule_config.timesteps
    against = parse_reference(args.reference, model.is_image, timesteps)
    progress = _Progress()

    def report(what: str, step) -> None:
        progress.show(f"{what} step {step.index + 1}/{step.total}", final=step.index + 1 == step.total)

    runs = drain(compare_items(model, configs, device), lambda item: report(f"run {item[0] + 1}/{len(configs)}", item[1]))
    if against.kind == "ode":
        progress.show(f"solving the reference for the distances, {against.describe(timesteps)} from the same x_T "
                      "(--reference ode:K or none costs less)", final=True)
    reference = drain(reference_for(model, base, device, reference=against), lambda step: report("reference ODE", step))
    runs = measure(runs, reference)
    data = None if model.is_image else reference_points(reference)
    if args.format == "json":
        print(json.dumps([{"label": r.label, "sampler": r.config.sampler, "steps": len(r.trajectory.timesteps) - 1,
                           "nfe": r.nfe, "seconds": round(r.seconds, 4), "distance": r.distance} for r in runs], indent=2))
    else:
        width = max(len(r.label) for r in runs)
        measured = "no distance (--reference none)" if against.kind == "none" else distance_name(model.is_image, against.steps)
        print(f"{'run'.ljust(width)}  {'NFE':>5}  {'seconds':>8}  {measured}")
        for r in runs:
            distance = "—" if r.distance is None else f"{r.distance:.4f}"
            print(f"{r.label.ljust(width)}  {r.nfe:>5}  {r.seconds:>8.2f}  {distance}")
    trajectories, labels = [r.trajectory for r in runs], [f"{r.label} · {r.nfe} NFE" for r in runs]
    scale, metadata = display_scale(runs[0].trajectory, 240), comparison_metadata(runs)
    if args.output:
        save_frame(comparison_frame(trajectories, labels, 0, with_x0=False, reference=data, scale=scale), args.output, metadata)
    if args.gif:
        frames = [comparison_frame(trajectories, labels, t, reference=data, scale=scale)
                  for t in comparison_times(trajectories, args.gif_frames)]
        save_gif(frames, args.gif, fps=args.fps, metadata=metadata)
    written = [str(p) for p in (args.output, args.gif) if p]
    if written:
        print(f"wrote {', '.join(written)}", file=sys.stderr)


def _add_bpd_parser(commands: argparse._SubParsersAction) -> None:
    bpd = commands.add_parser(
        "bpd",
        help="the variational bound in bits per dimension, term by term (Ho et al. eq. 5)",
        description="L = L_T + Σ L_{t−1} + L_0 on 8-bit images, every term in bits/dim: one network call per t "
        "and image. Prints the total and each term; a summary goes to stderr.",
    )
    bpd.add_argument("--model", default="default", help="a checkpoint folder, a diffusers UNet2DModel folder, or 'default'")
    bpd.add_argument("--data", help="'digits' (its 179 held-out digits) or a folder of images (default: what the model "
                     "was trained on, held out)")
    bpd.add_argument("--num", type=int, default=64, help="measure on the first N images (default: %(default)s)")
    bpd.add_argument("--variance", choices=tuple(DDPM_VARIANCES), default="beta", help="σ_t² of p_θ(x_{t−1} | x_t) (default: %(default)s)")
    bpd.add_argument("--batch-size", type=int, default=256, help="images per network call (default: %(default)s)")
    bpd.add_argument("--seed", type=SEED, default=0, help="seed of the noise drawn for each t (default: %(default)s)")
    bpd.add_argument("--device", default="auto", choices=DEVICES)
    bpd.add_argument("--format", choices=("csv", "json"), default="csv", help="output format (default: %(default)s)")
    bpd.add_argument("--output", "-o", type=Path, help="write to this file instead of standard output")
    bpd.set_defaults(run=run_bpd)


def run_bpd(args: argparse.Namespace) -> None:
    from diffusion_studio.core.bound import BoundSummary, measure_bound
    from diffusion_studio.core.devices import resolve_device
    from diffusion_studio.core.loaded_model import open_model

    measurement = measure_bound(open_model(args.model, resolve_device(args.device)), args.data, args.num, args.variance,
                                args.seed, args.batch_size)
    progress, T = _Progress(), measurement.timesteps
    terms = drain(measurement.steps(), lambda step: progress.show(f"bound: t = {step.t}/{T}", final=step.t == T))
    summary = BoundSummary.of(terms)
    if args.format == "json":
        text = json.dumps({"model": measurement.model.source, "data": measurement.data_name, "num": measurement.num,
                           "variance": args.variance, "total": summary.total, "L_T": summary.prior,
                           "L_0": summary.decoder, "sum_L_t_minus_1": summary.middle,
                           "terms": summary.terms.tolist()}) + "\n"
    else:
        text = summary.csv()
    _write_text(text, args.output)
    print(f"{summary.total:.4f} bits/dim on {measurement.num} images of {measurement.data_name}: L_T {summary.prior:.2g}, "
          f"Σ L_t−1 (t = 2…T) {summary.middle:.4f}, L_0 {summary.decoder:.4f}", file=sys.stderr)


def _invertible_samplers() -> list[str]:
    """The registered samplers that can run upwards with their default options (Sampler.invertible_with)."""
    return [cls.label for cls in SAMPLERS.values() if cls.invertible_with(cls.Options())]


def _add_invert_parser(commands: argparse._SubParsersAction) -> None:
    invert = commands.add_parser(
        "invert",
        help="inversion: the noise x_T that a deterministic sampler maps back to an image, and the way back",
        description="Runs a deterministic sampler (" + ", ".join(_invertible_samplers()) + ") upwards from the image "
        "(resized to the model's size and colour) to x_T, then samples from that x_T over the same steps. Prints the "
        "noise's mean and standard deviation and the reconstruction's error.",
    )
    invert.add_argument("image", type=Path, help="the image x_0")
    invert.add_argument("--model", default="default", help="a checkpoint folder, a diffusers UNet2DModel folder, or 'default'")
    add_setting_flags(invert, SampleConfig, skip=("num", "seed", "record_every", "options"),
                      defaults={"steps": 50, "sampler": DETERMINISTIC.sampler})
    invert.add_argument("--device", default="auto", choices=DEVICES)
    invert.add_argument("--output", "-o", type=Path, required=True, help="the reconstruction, a .png")
    invert.add_argument("--noise-output", type=Path, help="also save the inverted noise x_T (.npy, C×H×W float32)")
    invert.set_defaults(run=run_invert)


def run_invert(args: argparse.Namespace) -> None:
    import torch

    from diffusion_studio.core.data.images import to_uint8
    from diffusion_studio.core.devices import resolve_device
    from diffusion_studio.core.export import save_frame
    from diffusion_studio.core.inversion import invert
    from diffusion_studio.core.loaded_model import open_model
    from diffusion_studio.core.provenance import output_metadata

    for path, suffix in ((args.output, ".png"), (args.noise_output, ".npy")):
        if path is not None and path.suffix.lower() != suffix:
            raise SettingError("output", f"'{path.name}': use a {suffix} file")
    device = resolve_device(args.device)
    model = open_model(args.model, device)
    x0 = torch.from_numpy(model.read_image(args.image))[None].to(device)
    config = SampleConfig(**setting_values(args, setting_fields(SampleConfig)))
    progress = _Progress()
    inversion = drain(invert(model, x0, config, device), lambda item: progress.show(
        f"{item[0]} step {item[1].index + 1}/{item[1].total}", final=item[0] == "reconstruct" and item[1].index + 1 == item[1].total))
    noise = inversion.noise[0].numpy()
    save_frame(to_uint8(inversion.reconstruction[0].numpy().transpose(1, 2, 0)), args.output,
               output_metadata("invert", [inversion.settings], image=str(args.image.resolve())))
    if args.noise_output:
        with atomic_write(args.noise_output) as handle:
            np.save(handle, noise.astype(np.float32))
    error = float(inversion.rms_error()[0])
    print(f"x_T: mean {noise.mean():+.3f}, std {noise.std():.3f} (N(0, I): 0, 1); reconstruction RMS error {error:.4f} "
          f"({error * 127.5:.2f} of 255 gray levels)")
    print(f"wrote {args.output}" + (f", {args.noise_output}" if args.noise_output else ""), file=sys.stderr)


def _add_export_diffusers_parser(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export-diffusers",
        help="write a checkpoint as a diffusers DDPMPipeline folder",
        description="Writes model_index.json, unet/ (UNet2DModel, safetensors) and scheduler/ (DDPMScheduler with "
        "the checkpoint's schedule and prediction, σ_t² = β_t, x̂_0 clipped to [−1, 1]), which "
        "diffusers.DDPMPipeline.from_pretrained loads offline. The network's output is checked against ours first. "
        "Image models only; needs the diffusers extra.",
    )
    export.add_argument("--model", default="default", help="a checkpoint folder or 'default' (the bundled model)")
    export.add_argument("--output", "-o", type=Path, required=True,
                        help="the folder to write: new, empty, or an earlier export (replaced)")
    export.set_defaults(run=run_export_diffusers)


def run_export_diffusers(args: argparse.Namespace) -> None:
    from diffusion_studio.core.diffusers_export import export_diffusers

    print(f"wrote {export_diffusers(args.model, args.output)}", file=sys.stderr)


def _sample_config(args: argparse.Namespace, base: SampleConfig = SampleConfig()) -> SampleConfig:
    """The run's settings: ``base`` with the flags given (its sampler options kept while the sampler
    stays), checked before anything is loaded."""
    given = setting_values(args, setting_fields(SampleConfig))
    sampler = given.get("sampler", base.sampler)
    options = {**(base.options if sampler == base.sampler else {}), **_sampler_options(args, sampler)}
    config = replace(base, **given, options=options)
    validate_sample_config(config)
    return config


def _record(args: argparse.Namespace, config: SampleConfig, items: Generator, kind: str,
            reference: np.ndarray | None = None, **about: object) -> tuple[Recorder, dict[str, object]]:
    """Drive a recorded run of ``config`` (record_run's generator) with a progress line; then write the
    GIF and the trajectory file the flags ask for. Returns the Recorder and what its pictures record
    (core.provenance: a ``kind`` of output, with ``about``)."""
    from diffusion_studio.core.export import display_scale, save_gif, trajectory_frames
    from diffusion_studio.core.provenance import output_metadata
    from diffusion_studio.core.trajectory import save_trajectory

    progress = _Progress()
    recorder = drain(items, lambda step: progress.show(f"{config.sampler} step {step.index + 1}/{step.total}  t = {step.t}",
                                                       final=step.index + 1 == step.total))
    metadata = output_metadata(kind, [recorder.metadata], **about)
    if args.trajectory:
        save_trajectory(recorder.trajectory(), args.trajectory)
    if args.gif:
        recorded = recorder.trajectory()
        every = max(1, -(-len(recorded) // max(args.gif_frames, 1)))
        scale = args.gif_scale or display_scale(recorded, 320)
        save_gif(trajectory_frames(recorded, every=every, reference=reference, scale=scale), args.gif, fps=args.fps,
                 metadata=metadata)
    return recorder, metadata


def _say_written(args: argparse.Namespace, output: Path) -> None:
    print(f"wrote {output}" + "".join(f", {p}" for p in (args.gif, args.trajectory) if p), file=sys.stderr)


def run_sample(args: argparse.Namespace) -> None:
    from diffusion_studio.core.devices import resolve_device
    from diffusion_studio.core.export import reference_points
    from diffusion_studio.core.loaded_model import open_model
    from diffusion_studio.core.provenance import model_name
    from diffusion_studio.core.sampling import SamplingRun
    from diffusion_studio.core.trajectory import record_run

    recorded = _recorded(args) if args.source else None
    output = args.output or (args.source.with_name(f"{args.source.stem}-again.png") if recorded else None)
    if output is None:
        raise SettingError("output", "give --output, a .png or .npy file (or --from an image to sample again)")
    if output.suffix.lower() not in (".png", ".npy"):
        raise SettingError("output", f"'{output.name}': use a .png or .npy file")
    config = _sample_config(args, recorded.config if recorded else SampleConfig())
    device = resolve_device(getattr(args, "device", recorded.device if recorded else "auto"))
    model = open_model(getattr(args, "model", recorded.model if recorded else "default"), device)
    if not (recorded or hasattr(args, "num")):
        config = replace(config, num=default_num(model.is_image))
    if recorded:
        print(f"sampling again: {run_label(config, model.schedule_config.timesteps)}, seed {config.seed}, {config.num} "
              f"samples of {model_name(model.source)} on {device.type}", file=sys.stderr)
    reference = reference_points(model.training_points())
    recorder, metadata = _record(args, config, record_run(SamplingRun(model, config, device)), "sample", reference)
    _write_samples(recorder.final, output, reference, metadata)
    _say_written(args, output)


def _recorded(args: argparse.Namespace) -> RecordedRun:
    """The run the image of ``--from`` records, with a clear message when its model or its device is
    not here (and not overridden)."""
    from diffusion_studio.core.devices import available_devices
    from diffusion_studio.core.provenance import recorded_run

    recorded = recorded_run(args.source)
    if not hasattr(args, "model") and recorded.model != "default" and not Path(recorded.model).is_dir():
        raise SettingError("model", f"'{args.source.name}' was sampled from the model '{recorded.model}', which is not "
                           "here; give --model to sample with another")
    if not hasattr(args, "device") and recorded.device not in available_devices():
        raise SettingError("device", f"'{args.source.name}' was sampled on {recorded.device}, which this machine does not "
                           f"have; give --device (the same seed gives other samples on another kind of device)")
    return recorded


def run_inpaint(args: argparse.Namespace) -> None:
    from diffusion_studio.core.devices import resolve_device
    from diffusion_studio.core.export import save_frame
    from diffusion_studio.core.inpainting import image_shape, inpainting_strip, load_inpainting, record_inpainting
    from diffusion_studio.core.loaded_model import open_model

    if args.output.suffix.lower() != ".png":
        raise SettingError("output", f"'{args.output.name}': use a .png file")
    device = resolve_device(args.device)
    model = open_model(args.model, device)
    config = _sample_config(args)
    image, mask = load_inpainting(args.image, args.mask, image_shape(model))
    print(f"filling {np.count_nonzero(mask)} of {mask.size} pixels at the model's {mask.shape[1]}×{mask.shape[0]}",
          file=sys.stderr)
    recorder, metadata = _record(args, config, record_inpainting(model, config, image, mask, device), "inpaint",
                                 image=str(args.image.resolve()), mask=str(args.mask.resolve()))
    save_frame(inpainting_strip(image, mask, recorder.final), args.output, metadata)
    _say_written(args, args.output)


OUTPUT_FILES = ("output", "gif", "trajectory", "noise_output")
"""The flags naming a file a command writes (train and export-diffusers write folders, made as needed)."""
FOLDER_COMMANDS = ("train", "export-diffusers")


def _check_output_folders(args: argparse.Namespace) -> None:
    """Refuse, before any work, a file to write whose folder is missing or cannot be written: a
    run that fails only when it saves its result wastes the run."""
    if args.command in FOLDER_COMMANDS:
        return
    for name in OUTPUT_FILES:
        path = getattr(args, name, None)
        if not isinstance(path, Path):
            continue
        folder = path.parent
        if not folder.is_dir():
            raise FileSaveError(path, f"its folder '{folder}' does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise FileSaveError(path, f"its folder '{folder}' cannot be written to")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command (``diffusion-studio COMMAND …``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        _check_output_folders(args)
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
