"""The bundled model, sample image and digits are package data: importlib.resources finds them in
this checkout, and the wheel built from it carries them beside every module, and nothing else."""

import gzip
import shutil
import subprocess
import sys
import zipfile
from importlib.resources import files
from pathlib import Path

from PIL import Image
from safetensors import safe_open

from diffusion_studio.core.checkpoint import WEIGHTS_FILE, read_config
from diffusion_studio.core.data.datasets import DIGITS_FILE
from diffusion_studio.resources import DEFAULT_MODEL, RESOURCES, SAMPLE_IMAGE

ROOT = Path(__file__).resolve().parents[1]


def bundled_files() -> list[Path]:
    """Every file the package names, the model folder's files included."""
    return [*sorted(DEFAULT_MODEL.iterdir()), SAMPLE_IMAGE, DIGITS_FILE]


def test_the_named_resources_are_readable_package_data():
    package = Path(files("diffusion_studio"))
    for path in bundled_files():
        assert path.is_relative_to(package) and path.is_file(), f"{path} is not a file inside {package}"
    assert read_config(DEFAULT_MODEL)["model"]["kind"] == "unet"
    with safe_open(DEFAULT_MODEL / WEIGHTS_FILE, framework="numpy") as weights:
        assert any(key.startswith("ema.") for key in weights.keys())
    with Image.open(SAMPLE_IMAGE) as image:
        image.verify()
    with gzip.open(DIGITS_FILE, "rt") as handle:
        assert sum(1 for _ in handle) == 1797


def test_the_wheel_holds_every_module_and_the_bundled_files_and_nothing_else(tmp_path):
    # Build from a copy of the checkout without what builds and runs leave in it (as a fresh clone
    # is), so that a stale build/ folder cannot put deleted files into the wheel.
    source = tmp_path / "source"
    left_behind = (".git", ".venv", ".whl", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis")
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*left_behind))
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(tmp_path), str(source)]
    done = subprocess.run(build, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("diffusion_studio-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    modules = {p.relative_to(source).as_posix() for p in (source / "diffusion_studio").rglob("*.py")}
    bundled = {f"diffusion_studio/bundled/{p.relative_to(RESOURCES).as_posix()}" for p in bundled_files()}
    assert modules <= names, f"modules missing from the wheel: {sorted(modules - names)}"
    assert bundled <= names, f"bundled files missing from the wheel: {sorted(bundled - names)}"
    extra = {n for n in names - modules - bundled if not n.startswith("diffusion_studio-")}
    assert not extra, f"the wheel holds more than the package: {sorted(extra)}"
