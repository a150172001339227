"""`python -m diffusion_studio` runs the same entry point as the `diffusion-studio` command."""

import sys

from diffusion_studio.launcher import main

sys.exit(main())
