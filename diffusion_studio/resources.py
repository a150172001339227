"""Where the bundled resources live: the repository's top-level resources/ folder."""

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
DEFAULT_MODEL = RESOURCES / "models" / "default"
"""The bundled model that works on first launch (and what ``--model default`` names)."""
SAMPLE_IMAGE = RESOURCES / "images" / "sample.png"
"""The picture the forward panel shows on first launch."""
