"""Image views side by side, equal in size, each titled, zooming and panning together."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QWidget


class ImageRow(QWidget):
    """One pg.ImageItem per key, in equal columns under rich-text titles.

    Titles are Qt labels above the plot canvas rather than items inside it: a title inside a
    pyqtgraph layout widens its column by the length of its text. A mouse zoom or pan in one
    view is copied to the others, so each shows the same region of its image (pyqtgraph's own
    setXLink aligns views by their place on screen, which shifts side-by-side views apart).
    """

    def __init__(self, titles: dict[str, str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.titles: dict[str, QLabel] = {}
        self.items: dict[str, pg.ImageItem] = {}
        self.boxes: list[pg.ViewBox] = []
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        for column, (key, title) in enumerate(titles.items()):
            label = QLabel(title)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            label.setStyleSheet("background: white; color: black; font-size: 11pt; padding: 4px")
            layout.addWidget(label, 0, column)
            layout.setColumnStretch(column, 1)
            box = self.graphics.addViewBox(row=0, col=column, lockAspect=True, invertY=True, enableMenu=False)
            item = pg.ImageItem(axisOrder="row-major")
            box.addItem(item)
            box.sigRangeChangedManually.connect(lambda _mask, box=box: self._follow(box))
            self.titles[key] = label
            self.items[key] = item
            self.boxes.append(box)
        layout.addWidget(self.graphics, 1, 0, 1, len(titles))
        layout.setRowStretch(1, 1)

    def _follow(self, source: pg.ViewBox) -> None:
        x_range, y_range = source.viewRange()
        for box in self.boxes:
            if box is not source:
                box.setRange(xRange=x_range, yRange=y_range, padding=0)

    def fit(self) -> None:
        """Fit each view to its image, and keep fitting as the window resizes, until the user zooms."""
        for box in self.boxes:
            box.enableAutoRange()
