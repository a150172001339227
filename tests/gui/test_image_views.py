import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from diffusion_studio.gui.image_views import ImageViews


def test_a_title_wider_than_its_column_wraps_and_the_canvases_stay_level(qtbot):
    views = ImageViews({"long": "a title far too long for its narrow column", "short": "x<sub>0</sub>"})
    qtbot.addWidget(views)
    views.resize(240, 300)
    views.show()
    qtbot.waitExposed(views)
    long, short = views.titles["long"], views.titles["short"]
    assert long.height() >= 2 * long.fontMetrics().lineSpacing()  # wrapped, not cut at both ends
    assert short.height() == long.height()  # the row's titles share its height
    first, second = views.canvases["long"].geometry(), views.canvases["short"].geometry()
    assert (first.top(), first.height()) == (second.top(), second.height()) and first.height() > 150


def test_wrapping_titles_do_not_take_the_height_of_other_views(qtbot):
    """Views share a column's height by their stretch, whatever their titles' lengths (as Your image stacks them)."""
    window = QWidget()
    qtbot.addWidget(window)
    column = QVBoxLayout(window)
    top = ImageViews({"a": "a", "b": "b"})
    bottom = ImageViews({"c": "a title far too long for its narrow column", "d": "d"})
    beside = QHBoxLayout()
    beside.addWidget(bottom, 4)
    beside.addWidget(pg.PlotWidget(), 1)
    column.addWidget(top, 3)
    column.addWidget(pg.PlotWidget(), 2)
    column.addLayout(beside, 2)
    window.resize(600, 500)
    window.show()
    qtbot.waitExposed(window)
    assert top.height() > 1.3 * bottom.height()
