"""The largest sizes a user or a file may ask for, in one place.

Generous for any real use of a teaching lab, small enough that asking for one never makes the
program try to allocate more than a machine has. The settings metadata (``setting(..., le=...)``)
and the loaders of model configs use them, so a CLI flag, a form and a config.json refuse a size
the same way, naming it.
"""

MAX_TIMESTEPS = 100_000
"""T, and the sampling steps on it (the arrays of a schedule are a few float64 per t)."""
MAX_IMAGE_SIZE = 1024
"""The side of the square images a network takes, in pixels."""
MAX_CHANNELS = 4096
"""A network's widest layer: a U-Net level's channels, an MLP's width, its time embedding."""
MAX_BLOCKS = 64
"""Residual blocks per U-Net level, MLP layers."""
MAX_PARAMETERS = 10**9
"""A network's parameters (4 GB of float32 weights; Ho et al.'s CIFAR-10 U-Net has 35.7 million)."""
MAX_SAMPLES = 100_000
"""Samples drawn (or images measured) in one run."""
MAX_BATCH = 65_536
"""Samples per training step or per network call."""
MAX_TRAIN_STEPS = 10**9
"""Optimizer steps of a run (and its warm-up)."""
MAX_SEED = 2**31 - 1
"""Seeds: what a form's spin box holds, and far more runs than anyone makes."""
MAX_CLASSES = 10_000
"""Classes of a class-conditional network (rows of its class embedding, less the null label)."""
MAX_GUIDANCE = 100.0
"""Classifier-free guidance w (practice stays below 20)."""
MAX_GIF_FRAMES = 10_000
MAX_GIF_SCALE = 64
"""How many times a GIF enlarges its frames."""
GIF_FPS = (0.1, 100.0)
"""GIF frame rates: a GIF's delay is whole hundredths of a second, at most 655 s."""
