"""The column of settings on a panel's left."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget


def settings_column(widgets: Iterable[QWidget]) -> QScrollArea:
    """The widgets stacked from the top, as wide as the widest: the column scrolls up and down
    when the window is too short for it (never sideways)."""
    inner = QWidget()
    layout = QVBoxLayout(inner)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    layout.addStretch(1)
    column = QScrollArea()
    column.setWidget(inner)
    column.setWidgetResizable(True)
    column.setFrameShape(QFrame.Shape.NoFrame)
    column.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    column.setMinimumWidth(inner.sizeHint().width() + column.verticalScrollBar().sizeHint().width())
    return column
