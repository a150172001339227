"""Titled image views in a grid, each keeping the image's aspect, zooming and panning together."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QWidget

from diffusion_studio.gui.guard import guarded

Cell = tuple[int, int, int]  # (row, column, rows spanned) in the views' grid


class ImageViews(QWidget):
    """One pg.ImageItem per key, each on a canvas of its own under a rich-text title.

    By default the views stand side by side in equal columns; ``cells`` places them in a grid
    instead (a view spanning two rows is twice as tall, its column twice as wide).
    Titles are Qt labels above each canvas rather than items inside it: a title inside a
    pyqtgraph layout widens its column by the length of its text. A title wider than its column
    wraps, and the titles of a grid row share that row's height, so the canvases under them keep
    one size and stay level. A mouse zoom or pan in one view is copied to the others, so each
    shows the same region of its image (pyqtgraph's own setXLink aligns views by their place on
    screen, which shifts views apart).
    """

    def __init__(self, titles: dict[str, str], cells: dict[str, Cell] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        cells = cells or {key: (0, column, 1) for column, key in enumerate(titles)}
        self.titles: dict[str, QLabel] = {}
        self.items: dict[str, pg.ImageItem] = {}
        self.canvases: dict[str, pg.GraphicsLayoutWidget] = {}
        self.boxes: list[pg.ViewBox] = []
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setStyleSheet("background: white")
        grid = QGridLayout(self)  # view row r: its titles in grid row 2r, its canvases from grid row 2r + 1
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(0)
        for key, title in titles.items():
            row, column, rows = cells[key]
            label = QLabel(title)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setWordWrap(True)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            label.setStyleSheet("color: black; font-size: 11pt; padding: 4px")
            canvas = pg.GraphicsLayoutWidget()
            canvas.setBackground("w")
            canvas.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
            box = canvas.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
            item = pg.ImageItem(axisOrder="row-major")
            box.addItem(item)
            box.sigRangeChangedManually.connect(lambda _mask, box=box: self._follow(box))
            grid.addWidget(label, 2 * row, column)
            grid.addWidget(canvas, 2 * row + 1, column, 2 * rows - 1, 1)  # over the title rows it spans too
            grid.setColumnStretch(column, max(grid.columnStretch(column), rows))
            self.titles[key], self.items[key], self.canvases[key] = label, item, canvas
            self.boxes.append(box)
        for row in range(1, grid.rowCount(), 2):
            grid.setRowStretch(row, 1)

    @guarded(fallback=False)
    def hasHeightForWidth(self) -> bool:
        """False: the views take the height their parent gives them. (Their wrapping titles would
        otherwise ask for a height to suit the width, that of the titles alone, as the canvases ask for none.)"""
        return False

    def _follow(self, source: pg.ViewBox) -> None:
        x_range, y_range = source.viewRange()
        for box in self.boxes:
            if box is not source:
                box.setRange(xRange=x_range, yRange=y_range, padding=0)

    def fit(self) -> None:
        """Fit each view to its image, and keep fitting as the window resizes, until the user zooms."""
        for box in self.boxes:
            box.enableAutoRange()
