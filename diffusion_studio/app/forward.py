"""The Forward panel without widgets: the loaded images, the selected x_0, the noise ε, and x_t
made by the closed form or by the Markov chain.

Closed form (Ho et al. eq. 4): x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε with one ε held fixed, so moving t
changes only t. Step by step (eq. 2): x_t = √α_t x_{t−1} + √β_t ε_t, fresh noise every step,
which lands in the same distribution: the noise the chain added, (x_t − √ᾱ_t x_0)/√(1 − ᾱ_t),
has mean 0 and standard deviation 1 like ε.

The chain walks only when ``advance_chain`` is called, a time budget at a time, so a view can
keep its event loop live while it walks (the panel calls it from a timer while ``chain_pending``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from psygnal import Signal

from diffusion_studio.app.state import StudioState
from diffusion_studio.core.chain import ForwardChain
from diffusion_studio.core.data.images import save_image
from diffusion_studio.core.errors import DiffusionStudioError, SettingError
from diffusion_studio.core.export import forward_strip
from diffusion_studio.core.process import q_sample
from diffusion_studio.core.recipes import signal_left_warning

HISTOGRAM_PIXELS = 65_536
"""The histogram of x_t uses this many pixels, picked once at random (enough for a smooth curve)."""
HISTOGRAM_EDGES = np.linspace(-4.0, 4.0, 81)
_BIN_WIDTH = HISTOGRAM_EDGES[1] - HISTOGRAM_EDGES[0]
MODES = ("closed", "chain")
"""How x_t is made: the closed form (eq. 4), or the Markov chain of t steps (eq. 2)."""


@dataclass(frozen=True)
class ForwardImage:
    """One loaded image: its name in the strip and x_0."""

    name: str
    x0: np.ndarray  # H×W×C float32 in [−1, 1]


@dataclass(frozen=True)
class ForwardView:
    """x_t as it is to be shown, with the numbers that describe it.

    Closed form: x_t = signal·x_0 + noise·ε with the session's x_0 and ε (x_t is left None, so a
    view can draw it from those two at its own speed; ``ForwardSession.x_t()`` computes it).
    Chain: x_t is the chain's state, whose t lags the state's t while the chain walks.
    """

    t: int  # the step x_t is at
    signal: float  # √ᾱ_t, the scale of x_0
    noise: float  # √(1 − ᾱ_t), the scale of ε
    snr: float  # ᾱ_t / (1 − ᾱ_t); infinite at t = 0
    x_t: np.ndarray | None  # chain: its state at t (H×W×C float32); closed form: None
    added: np.ndarray | None  # chain: the noise it added, (x_t − √ᾱ_t x_0)/√(1 − ᾱ_t), zeros at t = 0; closed form: None
    added_stats: tuple[float, float] | None  # mean and standard deviation of ``added`` (ε's are 0, 1); None at t = 0
    density: np.ndarray  # histogram of x_t's pixels, density per bin of HISTOGRAM_EDGES
    closed_density: np.ndarray | None  # chain: the closed form's histogram at the same t, to compare; else None
    outside: float  # the share of x_t's values outside [−1, 1], which a picture of x_t shows clipped


def histogram_density(values: np.ndarray) -> np.ndarray:
    """Density per bin of HISTOGRAM_EDGES: count / (all values × bin width), so the bars
    integrate to the share of values inside [−4, 4], comparable with the N(0, 1) curve."""
    bins = np.floor((values - HISTOGRAM_EDGES[0]) / _BIN_WIDTH).astype(np.intp)
    bins = bins[(bins >= 0) & (bins < HISTOGRAM_EDGES.size - 1)]
    return np.bincount(bins, minlength=HISTOGRAM_EDGES.size - 1) / (values.size * _BIN_WIDTH)


def share_outside(values: np.ndarray) -> float:
    """The share of values with |x| > 1: those an image of x_t draws as pure black or white."""
    return float(np.mean(np.abs(values) > 1.0))


def normal_density(x: np.ndarray) -> np.ndarray:
    """N(0, 1) density: exp(−x²/2)/√(2π)."""
    return np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


def strip_times(text: str) -> list[int]:
    """The t values typed for a strip, separated by commas or semicolons (SettingError if they are
    not whole numbers; ``save_strip`` checks that they lie in 0…T)."""
    try:
        return [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise SettingError("t", f"expected whole numbers separated by commas, got '{text}'") from None


def unread_report(opened: int, unread: Sequence[tuple[Path, str]]) -> str:
    """What to tell the user when some files could not be read as images: a summary on one line
    naming the first file and its reason; for several files, then a blank line and every file with
    its reason, one a line (details the window keeps out of the status bar)."""
    kept = f"{opened} image(s) opened" if opened else "Nothing was opened"
    (path, reason), others = unread[0], len(unread) - 1
    if not others:
        return f"{kept}; {path.name} could not be read ({reason})"
    listed = "\n".join(f"{p.name}: {r}" for p, r in unread)
    return f"{kept}; {len(unread)} files could not be read: {path.name} ({reason}) and {others} more\n\n{listed}"


class ForwardSession:
    """Watch q(x_t | x_0) destroy an image: one x_0 of the loaded images, one ε per seed, t from the state."""

    imagesAdded = Signal(object)  # the ForwardImages appended to ``images``
    imageRemoved = Signal(int)  # the index the removed image had
    imageChanged = Signal(int)  # x_0 is now images[index]
    noiseChanged = Signal(int)  # the seed changed, or x_0 did: ε is drawn anew (from this seed)
    modeChanged = Signal(str)  # one of MODES
    shown = Signal(object)  # a ForwardView: what x_t is now

    def __init__(self, state: StudioState) -> None:
        self.state = state
        self.images: list[ForwardImage] = []
        self.index = -1  # of the selected image; −1 while there is none
        self.seed = 0
        self.mode = MODES[0]
        self.eps: np.ndarray | None = None  # ε ~ N(0, I) of x_0's shape, drawn from the seed
        self.chain: ForwardChain | None = None  # in chain mode, the walk from x_0 towards t
        self._picked: np.ndarray | None = None  # pixel indices for the histogram; None: all pixels
        self._x0_picked = self._eps_picked = np.zeros(0, np.float32)  # x_0 and ε at those pixels
        state.tChanged.connect(self._show)
        state.scheduleChanged.connect(self._restart)

    @property
    def image(self) -> ForwardImage | None:
        return self.images[self.index] if self.images else None

    @property
    def x0(self) -> np.ndarray | None:
        image = self.image
        return None if image is None else image.x0

    # ---- images -------------------------------------------------------------------------------

    def add_images(self, images: Sequence[ForwardImage]) -> None:
        """Append to the images and select the last one added."""
        if not images:
            return
        self.images.extend(images)
        self.imagesAdded.emit(list(images))
        self._show_image(len(self.images) - 1)

    def remove_current(self) -> bool:
        """Remove the selected image and select the one after it (or before, at the end).

        One image always stays: False, and nothing removed, when the selected image is the last.
        """
        if len(self.images) <= 1:
            return False
        index = self.index
        del self.images[index]
        self.imageRemoved.emit(index)
        self._show_image(min(index, len(self.images) - 1))
        return True

    def select(self, index: int) -> None:
        """Make images[index] the x_0 (IndexError if there is no such image)."""
        if not 0 <= index < len(self.images):
            raise IndexError(f"no image {index}: {len(self.images)} loaded")
        if index != self.index:
            self._show_image(index)

    def _show_image(self, index: int) -> None:
        self.index = index
        size = self.images[index].x0.size
        rng = np.random.default_rng(0)
        self._picked = rng.choice(size, HISTOGRAM_PIXELS, replace=False) if size > HISTOGRAM_PIXELS else None
        self.imageChanged.emit(index)
        self._draw_noise()

    # ---- noise, mode, t, schedule -------------------------------------------------------------

    def set_seed(self, seed: int) -> None:
        """Draw ε from this seed: the same seed gives the same ε for the same image shape."""
        if seed != self.seed:
            self.seed = int(seed)
            self._draw_noise()

    def new_noise(self) -> None:
        """A fresh ε: the next seed."""
        self.set_seed(self.seed + 1)

    def _draw_noise(self) -> None:
        x0 = self.x0
        if x0 is not None:
            self.eps = np.random.default_rng(self.seed).standard_normal(x0.shape, dtype=np.float32)
            self._x0_picked, self._eps_picked = self._pick(x0), self._pick(self.eps)
        self.noiseChanged.emit(self.seed)
        self._restart()

    def set_mode(self, mode: str) -> None:
        """Make x_t by the closed form ("closed") or the chain ("chain"; it starts again from x_0);
        ValueError for any other mode."""
        if mode not in MODES:
            raise ValueError(f"unknown mode '{mode}': expected one of {', '.join(MODES)}")
        if mode != self.mode:
            self.mode = mode
            self.modeChanged.emit(mode)
            self._restart()

    def _restart(self) -> None:
        """A new chain from x_0 (in chain mode) for the current image, seed and schedule, then show."""
        x0 = self.x0
        self.chain = ForwardChain(self.state.schedule, x0, self.seed) if self.mode == "chain" and x0 is not None else None
        self._show()

    def _show(self) -> None:
        view = self.view()
        if view is not None:
            self.shown.emit(view)

    # ---- the chain ----------------------------------------------------------------------------

    @property
    def chain_pending(self) -> bool:
        """True while the chain has yet to reach the state's t (advance_chain has work to do)."""
        return self.chain is not None and self.chain.t != self.state.t

    def advance_chain(self, budget_s: float) -> bool:
        """Walk the chain towards the state's t, at least one step and then for up to ``budget_s``
        seconds, and show where it got to; True once it is at t (at once when nothing walks)."""
        if not self.chain_pending:
            return True
        target = self.state.t
        deadline = time.perf_counter() + budget_s
        while not self.chain.advance(target, max_steps=1) and time.perf_counter() < deadline:
            pass
        self._show()
        return self.chain.t == target

    # ---- what x_t is --------------------------------------------------------------------------

    def coefficients(self, t: int) -> tuple[float, float]:
        """(√ᾱ_t, √(1 − ᾱ_t)): the scales of x_0 and of ε in x_t."""
        s = self.state.schedule
        return float(s.sqrt_alpha_bars[t]), float(s.sqrt_one_minus_alpha_bars[t])

    def schedule_warning(self) -> str | None:
        """Why the schedule in use ends far from noise, or None (core.recipes.signal_left_warning)."""
        return signal_left_warning(self.state.schedule.config)

    def x_t(self) -> np.ndarray | None:
        """x_t at the state's t as floats: the closed form, or the chain's state once it has reached
        t (None before that, and while no image is loaded)."""
        x0 = self.x0
        if x0 is None:
            return None
        if self.mode == "chain":
            return self.chain.x.copy() if not self.chain_pending else None
        return q_sample(self.state.schedule, x0, self.state.t, self.eps)

    def view(self) -> ForwardView | None:
        """What to show now (None while no image is loaded): the closed form at the state's t, or
        the chain where it is, with the closed form's histogram at the same t over its own."""
        x0 = self.x0
        if x0 is None:
            return None
        chain = self.chain
        t = self.state.t if chain is None else chain.t
        a, b = self.coefficients(t)
        closed_values = a * self._x0_picked + b * self._eps_picked
        closed = histogram_density(closed_values)
        numbers = dict(t=t, signal=a, noise=b, snr=float(self.state.schedule.snr[t]))
        if chain is None:
            return ForwardView(**numbers, x_t=None, added=None, added_stats=None, density=closed, closed_density=None,
                               outside=share_outside(closed_values))
        if b > 0:
            added = (chain.x - a * x0) / b
            stats = (float(added.mean()), float(added.std()))
        else:
            added, stats = np.zeros_like(x0), None
        values = self._pick(chain.x)
        return ForwardView(**numbers, x_t=chain.x, added=added, added_stats=stats,
                           density=histogram_density(values), closed_density=closed, outside=share_outside(values))

    def _pick(self, array: np.ndarray) -> np.ndarray:
        flat = array.reshape(-1)
        return flat if self._picked is None else flat[self._picked]

    # ---- saving -------------------------------------------------------------------------------

    def save_xt(self, path: str | Path) -> None:
        """Write x_t as a PNG (DiffusionStudioError, and no file, if there is none yet or it cannot be written)."""
        x = self.x_t()
        if x is None:
            raise DiffusionStudioError("No image is loaded." if self.x0 is None
                                       else "The chain has not reached t yet; save again in a moment.")
        save_image(x, path)

    def save_strip(self, path: str | Path, times: Sequence[int]) -> None:
        """Write x_0, then the closed form x_t with the ε held fixed at each of ``times``, as one PNG
        (SettingError for a t outside 0…T; DiffusionStudioError, and no file, on any failure)."""
        if self.x0 is None:
            raise DiffusionStudioError("No image is loaded.")
        save_image(forward_strip(self.state.schedule, self.x0, self.eps, times), path)
