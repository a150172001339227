"""The import contracts in pyproject.toml hold, and they would catch a module that broke them."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """Run import-linter on the package found in ``root`` (ahead of the installed one)."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
         "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root, env={"PYTHONPATH": str(root), "PATH": ""}, capture_output=True, text=True, timeout=300,
    )


def test_the_import_contracts_are_kept():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_module_that_breaks_the_layers_is_caught(tmp_path):
    shutil.copytree(ROOT / "diffusion_studio", tmp_path / "diffusion_studio", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    schedules = tmp_path / "diffusion_studio" / "core" / "schedules.py"
    schedules.write_text(schedules.read_text() + "\n\ndef _plot():\n    import pyqtgraph\n")
    samplers = tmp_path / "diffusion_studio" / "core" / "samplers" / "ddim.py"
    samplers.write_text(samplers.read_text() + "\nfrom diffusion_studio.core.training import Trainer\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    report = done.stdout
    assert "The engine, the sessions and the command line never load Qt or the GUI BROKEN" in report
    assert "diffusion_studio.core.schedules -> pyqtgraph" in report
    assert "Inside the engine: each module imports only those below it BROKEN" in report
    assert "diffusion_studio.core.samplers.ddim -> diffusion_studio.core.training" in report


def test_the_architecture_doc_draws_the_engine_order_of_the_contract():
    contract = re.search(r'containers = \["diffusion_studio.core"\].*?layers = \[(.*?)\]', (ROOT / "pyproject.toml").read_text(), re.S)
    drawn = re.search(r"```\n(runs → .*?)```", (ROOT / "docs" / "architecture.md").read_text(), re.S)
    assert [" ".join(layer.split()) for layer in drawn.group(1).split("→")] == re.findall(r'"([^"]+)"', contract.group(1))
