"""How 2-D point clouds are drawn in every panel: the data in translucent grey behind, samples in
translucent blue over it, so that where the samples lie on the data both stay visible."""

from __future__ import annotations

import pyqtgraph as pg

DATA_COLOUR = (150, 150, 150)
SAMPLES_COLOUR = (31, 94, 200)


def data_cloud(size: float = 3, **options) -> pg.ScatterPlotItem:
    """The training data's points (drawn first, so behind)."""
    return pg.ScatterPlotItem(size=size, pen=None, brush=pg.mkBrush(*DATA_COLOUR, 110), **options)


def sample_cloud(size: float = 4, **options) -> pg.ScatterPlotItem:
    """Samples, or x_t, over the data."""
    return pg.ScatterPlotItem(size=size, pen=None, brush=pg.mkBrush(*SAMPLES_COLOUR, 150), **options)
