"""Where the bundled resources live: the package's ``bundled`` folder.

The files are kept once, in the repository's top-level ``resources/`` folder, and
``diffusion_studio/bundled`` is a symbolic link to it. pyproject.toml names them as package data
of ``diffusion_studio``, so a wheel or ``pip install .`` copies them into the installed
package, while an editable install or a plain checkout reads ``resources/`` through the link.
(``resources/README.md`` stays out of the wheel: nothing reads it at run time.)

``importlib.resources.files`` finds the package wherever it was installed. For a package on the
file system, which is what pip installs, editable or not, it is a ``pathlib.Path``, and these
names stay real paths because their readers take paths (a checkpoint is a folder). We do not use
``importlib.resources.as_file``: it only matters for a package imported from a zip file, and it
would copy the 6.5 MB model out to a temporary folder; ``Path()`` refuses such a package at once.
"""

from importlib.resources import files
from pathlib import Path

_PACKAGE = Path(files("diffusion_studio"))
RESOURCES = _PACKAGE / "bundled"
if not RESOURCES.is_dir():  # a checkout where git wrote the link as a small text file (Windows without symlinks)
    RESOURCES = _PACKAGE.parent / "resources"
DEFAULT_MODEL = RESOURCES / "models" / "default"
"""The bundled model that works on first launch (and what ``--model default`` names)."""
SAMPLE_IMAGE = RESOURCES / "images" / "sample.png"
"""The picture the forward panel shows on first launch."""
