"""The core and the CLI never load Qt; importing the core does not even load torch."""

import json
import os
import subprocess
import sys
import tempfile

PROBE = """
import json, sys
import diffusion_studio.core
after_core = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'PySide6', 'shiboken6', 'pyqtgraph'))
from diffusion_studio.core import schedules, process, samplers, sampling, vlb, atomic, training, checkpoint, devices, loaded_model
from diffusion_studio.core import trajectory, export, train_config, runs, inpainting, diffusers_export
from diffusion_studio.core.models import unet, mlp, config, diffusers_unet, presets
from diffusion_studio.core.data import images, datasets
from diffusion_studio import cli
cli.main(['schedule', '-T', '5', '--output', sys.argv[1]])
cli.main(['sample', '--model', 'default', '--sampler', 'ddim', '--steps', '2', '--num', '1', '--device', 'cpu',
          '--output', sys.argv[1] + '.npy'])
qt = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph'))
print(json.dumps({'after_core': after_core, 'qt': qt}))
"""


def test_core_and_cli_load_no_qt(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "s.csv")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["qt"] == []
    assert loaded["after_core"] == []
    assert (tmp_path / "s.csv").exists()


def test_cli_noise_loads_neither_qt_nor_torch(tmp_path):
    probe = (
        "import sys, numpy as np; from PIL import Image;"
        "Image.fromarray(np.zeros((4, 4), np.uint8)).save(sys.argv[1] + '/in.png');"
        "from diffusion_studio.cli import main;"
        "main(['noise', sys.argv[1] + '/in.png', '--t', '3', '-o', sys.argv[1] + '/out.png']);"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'PySide6', 'pyqtgraph'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_window_is_on_screen_before_torch_loads():
    probe = (
        "import sys; from PySide6.QtWidgets import QApplication; app = QApplication([]);"
        "from diffusion_studio.gui.main_window import MainWindow; w = MainWindow(); w.show(); app.processEvents();"
        "print(w.isVisible(), len(w.forward.session.images), 'torch' in sys.modules)"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": tempfile.mkdtemp()}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "1", "False"]
