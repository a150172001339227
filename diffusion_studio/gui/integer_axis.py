"""An axis for counts such as training steps: ticks at whole numbers only, so that a run of a few
steps reads 1, 2, 3 rather than 0.5, 1.5, 2.5."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg


class IntegerAxis(pg.AxisItem):
    """pyqtgraph's axis, less its ticks between whole numbers (written without decimals)."""

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[float]]]:
        levels = super().tickValues(minVal, maxVal, size)
        return [(spacing, values if spacing >= 1 else [v for v in values if np.isclose(v, np.round(v))])
                for spacing, values in levels]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        if spacing >= 1:
            return super().tickStrings(values, scale, spacing)
        return [f"{round(v * scale):d}" for v in values]
