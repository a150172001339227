"""The playhead over a recorded reverse process, and playback: what scrubbing needs, whatever ran.

The playhead is a timestep t, not a frame number, so that trajectories of different step counts
can be scrubbed together: each shows its frame nearest t (``Trajectory.frame_at``). The stops of
the timeline (``times``) are the recorded timesteps, descending: x_T first, the result (t = 0) last, or
the x_t a cancelled run reached.
"""

from __future__ import annotations

import numpy as np
from psygnal import Signal


class Playhead:
    """A playhead t over the stops ``times``, moved by scrubbing or by playback (one stop a tick).
    The sessions that show recorded frames (sampling, inpainting) are playheads."""

    playheadChanged = Signal(int)  # t
    playingChanged = Signal(bool)

    def __init__(self) -> None:
        super().__init__()
        self.times = np.zeros(0, int)  # the timeline's stops, descending
        self.t = 0
        self.playing = False

    def set_t(self, t: int) -> None:
        if t != self.t:
            self.t = int(t)
            self.playheadChanged.emit(self.t)

    def position(self) -> int:
        """Where the playhead is among ``times`` (the stop nearest t)."""
        return int(np.abs(self.times - self.t).argmin())

    def set_frame(self, k: int) -> None:
        """Move the playhead to the k-th stop of ``times``, clamped: with one trajectory its k-th
        frame; with several, every frame of any of them is a stop."""
        if len(self.times):
            self.set_t(int(self.times[max(0, min(k, len(self.times) - 1))]))

    def step_frames(self, delta: int) -> None:
        if len(self.times):
            self.set_frame(self.position() + delta)

    def toggle_play(self) -> None:
        if self.playing:
            self.stop_playing()
        elif len(self.times):
            if self.position() == len(self.times) - 1:
                self.set_frame(0)
            self.playing = True
            self.playingChanged.emit(True)

    def stop_playing(self) -> None:
        if self.playing:
            self.playing = False
            self.playingChanged.emit(False)

    def tick(self) -> None:
        """One stop on while playing; playback stops at the last."""
        if not self.playing or not len(self.times):
            return
        if self.position() >= len(self.times) - 1:
            self.stop_playing()
        else:
            self.step_frames(1)
