"""Durations as people read them on a progress line."""

from __future__ import annotations


def clock(seconds: float) -> str:
    """m:ss below an hour, h:mm:ss above; negative durations read as 0:00."""
    seconds = int(max(seconds, 0))
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours}:{minutes:02d}:{seconds % 60:02d}" if hours else f"{minutes}:{seconds % 60:02d}"
