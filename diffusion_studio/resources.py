"""Where the bundled resources live: the repository's top-level resources/ folder."""

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
