"""The Schedules panel's session, with no widget: pins kept between launches, the schedule in use
first, the t or t/T axis and its cursor, the values at the cursor, and CSV."""

import csv
import errno
import os

import numpy as np
import pytest

from diffusion_studio.app.schedules import DEFAULT_PINS, PLOTTED, SchedulesSession, curve_values, restore_pins
from diffusion_studio.app.state import StudioState
from diffusion_studio.core.errors import DiffusionStudioError
from diffusion_studio.core.schedules import ScheduleConfig, make_schedule
from tests.app.events import Recorder

SIGMOID = ScheduleConfig(name="sigmoid")


@pytest.fixture
def state():
    return StudioState()


@pytest.fixture
def session(state):
    return SchedulesSession(state)


def names(schedules) -> list[str]:
    return [s.config.name for s in schedules]


def test_cosine_is_pinned_at_first_and_the_schedule_in_use_comes_first(state, session):
    assert session.pins == list(DEFAULT_PINS) == [ScheduleConfig(name="cosine")]
    assert names(session.shown()) == ["linear", "cosine"]
    assert session.shown()[0] is state.schedule
    state.update_schedule(name="cosine")  # a pin equal to the schedule in use is drawn once, as in use
    assert names(session.shown()) == ["cosine"]


def test_pinning_keeps_a_schedule_on_the_plots_when_it_changes(state, session):
    seen = Recorder(session)
    state.set_schedule_config(SIGMOID)
    assert session.pin_current()
    assert not session.pin_current()  # pinned already: nothing changes, no event
    assert len(seen.args("pinsChanged")) == 1
    state.update_schedule(name="linear")
    assert names(session.shown()) == ["linear", "cosine", "sigmoid"]
    session.unpin(0)
    assert session.pins == [SIGMOID] and len(seen.args("pinsChanged")) == 2
    session.use_pinned(0)
    assert state.schedule.config == SIGMOID and names(session.shown()) == ["sigmoid"]
    with pytest.raises(IndexError):
        session.unpin(3)


def test_the_pins_survive_a_relaunch(state, session):
    state.set_schedule_config(ScheduleConfig("linear", 50, 1e-3, 0.05))
    session.pin_current()
    again = SchedulesSession(StudioState(), session.pins_json())
    assert again.pins == [ScheduleConfig(name="cosine"), ScheduleConfig("linear", 50, 1e-3, 0.05)]


@pytest.mark.parametrize("saved", ["{ not json", '[{"name": "cosine", "colour": 3}]', '[{"name": "nope"}]',
                                   '[{"name": "linear", "beta_start": 0.5, "beta_end": 0.1}]', "7"])
def test_pins_that_cannot_be_read_or_cannot_exist_give_the_default(saved):
    assert restore_pins(saved) == list(DEFAULT_PINS)


def test_the_cursor_moves_t_on_either_axis(state, session):
    seen = Recorder(session)
    session.move_cursor(640.4)
    assert state.t == 640 and session.cursor_x() == 640
    session.set_normalized(True)
    session.set_normalized(True)
    assert seen.values("axisChanged") == [True]
    assert session.cursor_x() == pytest.approx(0.64)
    assert session.x(state.schedule)[[0, -1]] == pytest.approx([0.001, 1.0])
    session.move_cursor(0.25)
    assert state.t == 250


def test_values_at_the_cursor_are_at_the_same_t_or_the_same_fraction_of_t(state, session):
    state.set_schedule_config(ScheduleConfig("linear", 50, 1e-3, 0.05))
    state.set_t(40)
    cosine = make_schedule("cosine")
    linear, pinned = session.values_at_cursor()
    assert linear == [float(curve_values(state.schedule, key)[39]) for key in PLOTTED]
    assert pinned == [float(curve_values(cosine, key)[39]) for key in PLOTTED]  # t = 40 of cosine's 1000
    session.set_normalized(True)
    assert session.values_at_cursor()[1] == [float(curve_values(cosine, key)[799]) for key in PLOTTED]  # t/T = 0.8
    state.set_t(0)  # t = 0 is the data: nothing is plotted there
    assert session.values_at_cursor() == [[None] * len(PLOTTED)] * 2


def test_the_csv_holds_every_schedule_shown(session, tmp_path):
    path = tmp_path / "schedules.csv"
    session.export_csv(path)
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    assert [row["schedule"].split()[0] for row in rows] == ["linear"] * 1000 + ["cosine"] * 1000
    assert np.array_equal([float(r["alpha_bar"]) for r in rows[1000:]], make_schedule("cosine").alpha_bars[1:])


def test_a_failed_export_keeps_the_old_file(session, tmp_path, monkeypatch):
    path = tmp_path / "s.csv"
    path.write_text("old")

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiffusionStudioError, match="No space left"):
        session.export_csv(path)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["s.csv"]
