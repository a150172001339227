import numpy as np
import pytest

from diffusion_studio.core.compare import ComparedRun
from diffusion_studio.core.sample_config import SampleConfig
from diffusion_studio.core.trajectory import Trajectory
from diffusion_studio.gui.comparison_view import TITLE_PX, ComparisonView, best_columns


@pytest.mark.parametrize("runs, width, height, columns", [
    (4, 420, 350, 2),  # a 1024×600 window: two by two, not four thin rows
    (2, 420, 350, 1),
    (4, 1200, 300, 4),  # wide and low: side by side
    (3, 900, 700, 2),
    (1, 10, 10, 1),
    (0, 400, 300, 1),
])
def test_columns_give_the_largest_views(runs, width, height, columns):
    assert best_columns(runs, width, height) == columns
    side = lambda c: min(width / (2 * c), height / -(-runs // c) - TITLE_PX)  # noqa: E731
    assert all(side(columns) >= side(c) for c in range(1, runs + 1))


def image_run(label: str, nfe: int) -> ComparedRun:
    frames = np.zeros((3, 4, 8, 8, 1), np.uint8)
    trajectory = Trajectory(np.array([20, 10, 0]), frames, frames, {})
    return ComparedRun(label, SampleConfig(), trajectory, np.zeros((4, 1, 8, 8), np.float32), nfe, 0.1, 0.5 / nfe)


def test_four_runs_in_a_small_window_stand_two_by_two_and_regroup_when_it_widens(qtbot):
    view = ComparisonView()
    qtbot.addWidget(view)
    view.resize(600, 380)
    view.show()
    view.show_runs([image_run(f"run {i}", 10 * (i + 1)) for i in range(4)], None, "distance")
    view.show_t([2, 2, 2, 2])
    position = lambda i: view.grid.getItemPosition(view.grid.indexOf(view.cells[i]))[:2]  # noqa: E731
    qtbot.waitUntil(lambda: position(3) == (1, 1))
    assert [position(i) for i in range(4)] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert view.titles[2].text().startswith("<b>3. run 2</b><br>result · 30 NFE")
    assert [label.toPlainText() for label in view._quality_labels] == ["1", "2", "3", "4"]
    view.resize(1900, 380)
    qtbot.waitUntil(lambda: position(3) == (0, 3))


def test_a_title_too_wide_for_its_column_puts_the_distance_on_a_line_of_its_own(qtbot):
    view = ComparisonView()
    qtbot.addWidget(view)
    view.resize(1900, 380)
    view.show()
    view.show_runs([image_run(f"DDIM {n} steps", n) for n in (10, 20, 50, 1000)], None, "distance")
    view.show_t([1, 1, 1, 1])

    def lines_fit() -> bool:
        return all(title.fontMetrics().horizontalAdvance(line) <= title.width()
                   for title in view.titles for line in title.text().replace("<b>", "").replace("</b>", "").split("<br>"))

    assert all(title.text().count("<br>") == 1 for title in view.titles) and lines_fit()
    view.resize(600, 380)  # two by two, columns of about 240 px
    qtbot.waitUntil(lambda: all(title.text().count("<br>") == 2 for title in view.titles))
    assert view.titles[3].text().endswith("<br>distance 0.0005") and lines_fit()
    assert len({title.height() for title in view.titles}) == 1 and view.titles[0].height() > TITLE_PX  # rows stay level
