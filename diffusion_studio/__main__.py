"""`python -m diffusion_studio` runs the same entry point as the `diffusion-studio` command."""

import sys

from diffusion_studio.cli import main

sys.exit(main())
