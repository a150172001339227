"""Titled image views in a grid, each keeping the image's aspect, zooming and panning together."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

Cell = tuple[int, int, int]  # (row, column, rows spanned) in the views' grid


class ImageViews(QWidget):
    """One pg.ImageItem per key, each on a canvas of its own under a rich-text title.

    By default the views stand side by side in equal columns; ``cells`` places them in a grid
    instead (a view spanning two rows is twice as tall, its column twice as wide).
    Titles are Qt labels above each canvas rather than items inside it: a title inside a
    pyqtgraph layout widens its column by the length of its text. A mouse zoom or pan in one
    view is copied to the others, so each shows the same region of its image (pyqtgraph's own
    setXLink aligns views by their place on screen, which shifts views apart).
    """

    def __init__(self, titles: dict[str, str], cells: dict[str, Cell] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        cells = cells or {key: (0, column, 1) for column, key in enumerate(titles)}
        self.titles: dict[str, QLabel] = {}
        self.items: dict[str, pg.ImageItem] = {}
        self.canvases: dict[str, pg.GraphicsLayoutWidget] = {}
        self.boxes: list[pg.ViewBox] = []
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(0)
        for key, title in titles.items():
            row, column, rows = cells[key]
            cell = QWidget()
            cell.setStyleSheet("background: white")
            stack = QVBoxLayout(cell)
            stack.setContentsMargins(0, 0, 0, 0)
            stack.setSpacing(0)
            label = QLabel(title)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            label.setStyleSheet("color: black; font-size: 11pt; padding: 4px")
            canvas = pg.GraphicsLayoutWidget()
            canvas.setBackground("w")
            canvas.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
            box = canvas.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
            item = pg.ImageItem(axisOrder="row-major")
            box.addItem(item)
            box.sigRangeChangedManually.connect(lambda _mask, box=box: self._follow(box))
            stack.addWidget(label)
            stack.addWidget(canvas, 1)
            grid.addWidget(cell, row, column, rows, 1)
            grid.setColumnStretch(column, max(grid.columnStretch(column), rows))
            self.titles[key], self.items[key], self.canvases[key] = label, item, canvas
            self.boxes.append(box)
        for row in range(grid.rowCount()):
            grid.setRowStretch(row, 1)

    def _follow(self, source: pg.ViewBox) -> None:
        x_range, y_range = source.viewRange()
        for box in self.boxes:
            if box is not source:
                box.setRange(xRange=x_range, yRange=y_range, padding=0)

    def fit(self) -> None:
        """Fit each view to its image, and keep fitting as the window resizes, until the user zooms."""
        for box in self.boxes:
            box.enableAutoRange()
