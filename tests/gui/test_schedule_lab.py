import csv

import numpy as np
import pytest
from PySide6.QtCore import Qt

from diffusion_studio.core.schedules import ScheduleConfig, make_schedule
from diffusion_studio.app.schedules import PLOTTED, curve_values


def plotted(curve) -> np.ndarray:
    return np.asarray(curve.yData)


def show_lab(window):
    """The lab's cursor and table follow t while it is on screen (and catch up when shown)."""
    window.show()
    window.tabs.setCurrentWidget(window.schedules)
    return window.schedules


def test_curves_are_the_engine_arrays_and_follow_the_schedule(window):
    lab = window.schedules
    # the schedule in use, then the pinned cosine (the default comparison)
    linear, cosine = make_schedule("linear"), make_schedule("cosine")
    for key in PLOTTED:
        assert np.array_equal(plotted(lab.curves[key][0]), curve_values(linear, key))
        assert np.array_equal(plotted(lab.curves[key][1]), curve_values(cosine, key))
    assert np.array_equal(lab.curves["beta"][0].xData, np.arange(1, 1001))
    # change it in the forward panel's form: the lab's curves and its own form follow
    window.forward.schedule_form.form["name"].widget.setCurrentText("quadratic")
    quadratic = make_schedule("quadratic")
    assert lab.schedule_form.form["name"].value() == "quadratic"
    for key in PLOTTED:
        assert np.array_equal(plotted(lab.curves[key][0]), curve_values(quadratic, key))
    # T and β range too
    window.state.set_schedule_config(ScheduleConfig("linear", 50, 1e-3, 0.05))
    assert np.allclose(plotted(lab.curves["beta"][0]), np.linspace(1e-3, 0.05, 50))
    assert window.forward.t_slider.maximum() == 50


def test_an_impossible_schedule_is_refused_with_the_reason(window):
    form = window.forward.schedule_form
    form.form["beta_end"].widget.setValue(0.00005)  # below β_1 = 10⁻⁴
    assert "larger than β_end" in form.problem.text()
    assert window.state.schedule.config == ScheduleConfig()
    assert form.form["beta_end"].value() == pytest.approx(0.02)  # the form shows what is in use again


def test_a_typed_t_applies_on_enter_not_per_keystroke(window, qtbot):
    box = window.forward.schedule_form.form["timesteps"].widget
    box.lineEdit().selectAll()
    qtbot.keyClicks(box.lineEdit(), "50")
    assert window.state.schedule.timesteps == 1000  # "5" was never a schedule
    qtbot.keyClick(box.lineEdit(), Qt.Key.Key_Return)
    assert window.state.schedule.timesteps == 50 and window.forward.t_slider.maximum() == 50


def test_pin_compare_and_remove(window):
    lab = show_lab(window)
    window.state.update_schedule(name="sigmoid")
    lab.pin_current()
    assert [c.name for c in lab.session.pins] == ["cosine", "sigmoid"]
    window.state.update_schedule(name="linear")
    assert [len(lab.curves[key]) for key in PLOTTED] == [3] * len(PLOTTED)
    assert lab.table.columnCount() == 3
    lab.compare_list.setCurrentRow(0)
    lab.remove_selected()
    assert [c.name for c in lab.session.pins] == ["sigmoid"] and len(lab.curves["beta"]) == 2


def test_cursor_moves_with_t_and_moves_t(window):
    window.forward.t_slider.setValue(123)  # while the forward panel is on screen
    lab = show_lab(window)
    assert all(cursor.value() == 123 for cursor in lab.cursors.values())
    assert lab.table.item(2, 0).text() == f"{make_schedule('linear').alpha_bars[123]:.5g}"
    cursor = lab.cursors["alpha_bar"]
    cursor.setValue(640.4)
    cursor.sigDragged.emit(cursor)
    assert window.state.t == 640 and window.forward.t_spin.value() == 640
    lab.normalized.setChecked(True)
    assert lab.cursors["beta"].value() == pytest.approx(0.64)
    assert lab.curves["beta"][0].xData[-1] == pytest.approx(1.0)


def test_notation_toggle_renames_everything(window):
    lab = show_lab(window)
    headers = [lab.table.verticalHeaderItem(i).text() for i in range(lab.table.rowCount())]
    assert headers == ["βₜ", "αₜ", "ᾱₜ", "√ᾱₜ", "√(1 − ᾱₜ)", "log SNRₜ"]
    assert lab.plots["sqrt_alpha_bar"].titleLabel.text == "√ᾱ<sub>t</sub>"
    window.notation_actions["seed000"].trigger()
    assert window.state.notation == "seed000"
    assert lab.plots["sqrt_alpha_bar"].titleLabel.text == "ᾱ<sup>S</sup><sub>t</sub>"
    assert lab.plots["beta"].titleLabel.text == "(β<sup>S</sup><sub>t</sub>)²"
    assert lab.table.verticalHeaderItem(0).text() == "(βˢₜ)²"  # typeset as the plot titles are, in plain text
    assert "β̄<sup>S</sup><sub>t</sub> = " in window.forward.readout.text()
    window.notation_actions["ho"].trigger()
    assert "√(1 − ᾱ<sub>t</sub>) = " in window.forward.readout.text()


def test_export_csv_holds_every_plotted_schedule(window, tmp_path):
    path = tmp_path / "schedules.csv"
    assert window.schedules.export_csv(path)
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2000
    by_schedule = {}
    for row in rows:
        by_schedule.setdefault(row["schedule"].split()[0], []).append(row)
    for name in ("linear", "cosine"):
        schedule = make_schedule(name)
        assert [int(r["t"]) for r in by_schedule[name]] == list(range(1, 1001))
        assert np.array_equal([float(r["alpha_bar"]) for r in by_schedule[name]], schedule.alpha_bars[1:])
        assert np.array_equal([float(r["log_snr"]) for r in by_schedule[name]], schedule.log_snr[1:])


def test_a_full_disk_during_export_keeps_the_old_file(window, qtbot, tmp_path, monkeypatch):
    import errno
    import os

    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "s.csv").write_text("old")

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)  # the write fails as a full disk makes it fail
    with qtbot.waitSignal(window.schedules.failed) as failed:
        assert not window.schedules.export_csv(folder / "s.csv")
    assert "No space left" in failed.args[1] and "s.csv" in failed.args[1]
    assert (folder / "s.csv").read_text() == "old"
    assert [p.name for p in folder.iterdir()] == ["s.csv"]


def test_fitting_the_bulk_unflattens_alpha_against_cosine(window, qtbot):
    """Cosine's α_t falls to 0.001 in its last steps, which squeezes linear's 0.98…1 into a line; fitting
    the middle of the values spreads linear's α_t over the axis again, and unchecking restores the whole range."""
    lab = show_lab(window)
    plot = lab.plots["alpha"]

    def y_range():
        plot.vb.updateAutoRange()
        return plot.vb.viewRange()[1]

    assert y_range()[0] < 0.01
    lab.bulk.setChecked(True)
    low, high = y_range()
    assert low > 0.9 and high >= 0.999
    linear_alpha = curve_values(make_schedule("linear"), "alpha")
    assert (linear_alpha.max() - linear_alpha.min()) / (high - low) > 0.2  # its span now fills a fifth of the axis or more
    lab.bulk.setChecked(False)
    assert y_range()[0] < 0.01
