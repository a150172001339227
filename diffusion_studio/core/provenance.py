"""What made a picture: the model, the sampler's settings and the seed, kept in the PNGs and GIFs
the app and the command line write, so that ``diffusion-studio sample --from IMAGE`` runs it again.

A written file's metadata is one JSON object (``output_metadata``)::

    {"format": 1, "software": "Diffusion Studio 0.1.0", "kind": "sample",
     "runs": [{"model": "default", "device": "cpu", "sampler": "ddim", "steps": 50, "spacing": "auto",
               "clip": null, "num": 16, "seed": 0, "record_every": 1, "options": {"eta": 0.0},
               "data": "digits", "T": 1000}]}

with one entry in ``runs`` per sampling run (``run_settings``; a comparison has several). A PNG
holds it as the text chunk ``diffusion-studio``, beside a readable ``Description`` and
``Software``; a GIF holds the same JSON as its comment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from diffusion_studio import __version__
from diffusion_studio.core.data.images import open_image_file
from diffusion_studio.core.errors import ImageLoadError, MetadataError, SettingError
from diffusion_studio.core.files import parse_json
from diffusion_studio.core.sample_config import SampleConfig, run_label, validate_sample_config
from diffusion_studio.resources import DEFAULT_MODEL

KEY = "diffusion-studio"
"""The PNG text chunk that holds the JSON."""
FORMAT_VERSION = 1
SOFTWARE = f"Diffusion Studio {__version__}"
KINDS = {"sample": "samples", "inpaint": "inpainting", "invert": "DDIM inversion and back", "compare": "comparison"}
"""What wrote a file → the words for it."""
_CONFIG_FIELDS = tuple(f.name for f in fields(SampleConfig))


def model_name(source: str | Path) -> str:
    """How a run names its model: "default" for the bundled one, else the folder's absolute path
    (so that the name still finds it from another working folder). Takes what open_model takes."""
    folder = Path(source).resolve()
    return "default" if str(source) == "default" or folder == DEFAULT_MODEL.resolve() else str(folder)


def run_settings(model: str | Path, config: SampleConfig, device: Any, **about: Any) -> dict[str, Any]:
    """What one sampling run records, enough to run it again: its model (``model_name``), the kind
    of device (the same seed gives the same samples on the same kind), every SampleConfig field,
    then ``about`` (the data, T, …; a key there replaces the config's). ``device``: a torch.device
    or its name ("cuda:1" is of kind "cuda")."""
    kind = str(getattr(device, "type", device)).split(":")[0]
    return {"model": model_name(model), "device": kind, **asdict(config), **about}


def output_metadata(kind: str, runs: Sequence[Mapping[str, Any]], **about: Any) -> dict[str, Any]:
    """What a written picture records: the software, what wrote it (a key of KINDS), each run's
    settings (``run_settings``, as a trajectory's metadata holds them), and ``about``."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of output {kind!r}")
    return {"format": FORMAT_VERSION, "software": SOFTWARE, "kind": kind, "runs": [dict(run) for run in runs], **about}


def run_config(run: Mapping[str, Any]) -> SampleConfig:
    """A recorded run's SampleConfig, checked; SettingError or TypeError if it cannot be one."""
    values = {name: run[name] for name in _CONFIG_FIELDS if name in run}
    if not isinstance(values.get("options", {}), Mapping):
        raise SettingError("options", f"expected a mapping of option names to values, got {values['options']!r}")
    config = SampleConfig(**values)
    validate_sample_config(config)
    return config


def _run_words(run: Mapping[str, Any]) -> str:
    """A run in a few words: its label, or what run_label says of its settings."""
    if "label" in run:
        return str(run["label"])
    try:
        return f"{run_label(run_config(run), run.get('T', 0))}, seed {run['seed']}"
    except (KeyError, TypeError, ValueError):  # SettingError is a ValueError
        return f"a run of {run.get('sampler', 'an unknown sampler')}"


def describe(metadata: Mapping[str, Any]) -> str:
    """The metadata in a sentence, for a PNG's Description."""
    runs = metadata["runs"]
    first = runs[0] if runs else {}
    what = KINDS[metadata["kind"]]
    head = f"{what[0].upper()}{what[1:]} by {SOFTWARE} from the model {first.get('model', '?')}"
    body = "; ".join(_run_words(run) for run in runs)
    count = f", {first['num']} sample{'' if first['num'] == 1 else 's'}" if "num" in first else ""
    return f"{head}: {body}{count}. The settings are in the '{KEY}' text as JSON."


def png_info(metadata: Mapping[str, Any]) -> PngInfo:
    """PNG text chunks holding the metadata: KEY (JSON), Description and Software."""
    info = PngInfo()
    info.add_text(KEY, json.dumps(metadata))
    info.add_text("Description", describe(metadata))
    info.add_text("Software", SOFTWARE)
    return info


def gif_comment(metadata: Mapping[str, Any]) -> bytes:
    """The metadata as a GIF comment: the same JSON."""
    return json.dumps(metadata).encode("utf-8")


def _stored_text(path: Path) -> tuple[str | None, bool]:
    """The JSON text an image holds, and whether it is surely meant as ours (a PNG's KEY chunk; a
    GIF's comment may be anyone's)."""
    try:
        with open_image_file(path) as handle, Image.open(handle) as image:
            if image.format == "PNG":
                return image.text.get(KEY), True
            comment = image.info.get("comment")
    except UnidentifiedImageError:
        raise ImageLoadError(path, "not an image format that can be read") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageLoadError(path, f"the file is damaged or unreadable ({exc})") from None
    if isinstance(comment, bytes):
        comment = comment.decode("utf-8", errors="replace")
    return comment, False


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata a picture written here holds. MetadataError if it holds none or it is damaged;
    ImageLoadError if the file cannot be opened as an image."""
    path = Path(path)
    text, ours = _stored_text(path)
    none = MetadataError(f"'{path.name}' holds no Diffusion Studio settings: it was not written by Diffusion Studio, "
                         "or a program that changed it dropped them")
    if text is None:
        raise none
    try:
        metadata = parse_json(text)
    except ValueError as exc:
        if not ours:
            raise none from None
        raise MetadataError(f"'{path.name}': its Diffusion Studio settings are damaged ({exc})") from None
    if not (isinstance(metadata, dict) and str(metadata.get("software", "")).startswith("Diffusion Studio")):
        if not ours:
            raise none
        raise MetadataError(f"'{path.name}': its Diffusion Studio settings are damaged (not a settings object)")
    if metadata.get("format") != FORMAT_VERSION:
        raise MetadataError(f"'{path.name}' holds settings in format {metadata.get('format')!r} "
                            f"({metadata['software']}); this version reads format {FORMAT_VERSION}")
    runs = metadata.get("runs")
    runs_ok = isinstance(runs, list) and runs and all(isinstance(r, dict) for r in runs)
    if not isinstance(metadata.get("kind"), str) or metadata["kind"] not in KINDS or not runs_ok:
        raise MetadataError(f"'{path.name}': its Diffusion Studio settings are damaged (no runs, or an unknown kind)")
    return metadata


@dataclass(frozen=True)
class RecordedRun:
    """A sampling run as a picture recorded it."""

    model: str  # "default" or a model folder
    config: SampleConfig
    device: str  # the kind of device it ran on ("cpu", "cuda", "mps")


def recorded_run(path: str | Path) -> RecordedRun:
    """The one sampling run a picture written by ``sample`` (or the Sampling panel) records.
    MetadataError, naming the file, for none, damaged settings, or a picture of something else."""
    path = Path(path)
    metadata = read_metadata(path)
    runs = metadata["runs"]
    if metadata["kind"] != "sample" or len(runs) != 1:
        made = f"{len(runs)} runs" if len(runs) > 1 else KINDS[metadata["kind"]]
        raise MetadataError(f"'{path.name}' records {made}, not one sampling run: only samples "
                            "(written by sample or the Sampling panel) can be sampled again")
    run = runs[0]
    missing = [name for name in ("model", *_CONFIG_FIELDS) if name not in run and name != "record_every"]
    if missing:
        raise MetadataError(f"'{path.name}': its Diffusion Studio settings are damaged (no {', '.join(missing)})")
    try:
        config = run_config(run)
    except (SettingError, TypeError) as exc:
        raise MetadataError(f"'{path.name}': its Diffusion Studio settings are damaged ({exc})") from None
    return RecordedRun(str(run["model"]), config, str(run.get("device", "cpu")))
