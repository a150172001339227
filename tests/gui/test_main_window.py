from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QLineEdit, QWidget

from diffusion_studio.resources import DEFAULT_MODEL
from diffusion_studio.gui.main_window import MainWindow, environment_report
from tests.gui.conftest import drop, write_image


def test_menus_have_the_standard_shortcuts(window):
    actions = {a.text().replace("&", ""): a for menu in window.menuBar().actions() for a in menu.menu().actions()}
    assert actions["Open images…"].shortcut().toString() == "Ctrl+O"
    assert actions["Quit"].shortcut().toString() == "Ctrl+Q"
    assert {"Open model…", "Export…", "Forward process", "Schedules", "Training", "Sampling", "About Diffusion Studio"} <= set(actions)
    actions["Schedules"].trigger()
    assert window.tabs.currentWidget() is window.schedules


def test_drag_enter_accepts_local_files_only(window, tmp_path):
    def entered(urls):
        mime = QMimeData()
        mime.setUrls(urls)
        event = QDragEnterEvent(QPointF(5, 5).toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier)
        window.dragEnterEvent(event)
        return event.isAccepted()

    assert entered([QUrl.fromLocalFile(str(tmp_path / "a.png"))])
    assert not entered([QUrl("https://example.com/a.png")])


def drag_files_onto(window: MainWindow, widget: QWidget, *paths: Path) -> None:
    """Drag files from a file manager and drop them on ``widget``: DragEnter, DragMove, Drop.

    The events go to the window's QWindow at the widget's centre, as the platform sends them;
    Qt then hands them to the widget under the cursor (the first one that accepts drops).
    Sending them to the widget itself would skip that choice. Like file managers, the drag
    carries the files as text too: the text a line edit would paste.
    """
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    mime.setText(" ".join(QUrl.fromLocalFile(str(p)).toString() for p in paths))
    at = QPointF(widget.mapTo(window, widget.rect().center()))
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    for event in (QDragEnterEvent(at.toPoint(), *args), QDragMoveEvent(at.toPoint(), *args), QDropEvent(at, *args)):
        QApplication.sendEvent(window.windowHandle(), event)


def test_an_image_dropped_on_a_text_field_opens_and_leaves_the_text(window, qtbot, tmp_path):
    window.show()
    qtbot.waitExposed(window)
    field = window.forward.strip_ts
    text = field.text()
    drag_files_onto(window, field, write_image(tmp_path / "photo.png"))
    qtbot.waitUntil(lambda: len(window.forward.session.images) == 2, timeout=5000)
    assert window.forward.session.images[-1].name == "photo.png" and field.text() == text


def test_files_dropped_on_any_line_edit_reach_the_window(window, qtbot, tmp_path, monkeypatch):
    """Every tab's line edits, those inside spin boxes and combo boxes too."""
    opened = []
    monkeypatch.setattr(window, "open_paths", opened.append)
    path = write_image(tmp_path / "photo.png")
    window.show()
    qtbot.waitExposed(window)
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        fields = [f for f in window.tabs.currentWidget().findChildren(QLineEdit) if f.isVisible()]
        assert fields
        for field in fields:
            text = field.text()
            drag_files_onto(window, field, path)
            assert opened.pop() == [path] and field.text() == text, window.tabs.tabText(index)


def test_a_panels_message_goes_when_the_tab_changes(window):
    window.forward.remove_current()  # the sample is the only image: the Forward panel says it stays
    assert "The last image stays" in window.statusBar().currentMessage()
    window.tabs.setCurrentWidget(window.schedules)
    assert window.statusBar().currentMessage() == ""


def test_a_model_opened_for_another_tab_is_announced_there(window, qtbot):
    """As the Training panel's "Sample from it" does: the model's message outlives the switch it asks for."""
    window.open_model(DEFAULT_MODEL, then=lambda: window.tabs.setCurrentWidget(window.sampling))
    qtbot.waitUntil(lambda: window.tabs.currentWidget() is window.sampling, timeout=30000)
    assert "1.6M parameters" in window.statusBar().currentMessage()


def test_dropping_a_checkpoint_folder_opens_it_as_the_model(window, qtbot):
    drop(window, DEFAULT_MODEL)
    qtbot.waitUntil(lambda: window.state.model is not None, timeout=30000)
    assert window.state.model.sample_shape == (1, 16, 16)
    assert "1.6M parameters" in window.statusBar().currentMessage() and "digits" in window.statusBar().currentMessage()
    assert "16×16 gray" in window.sampling.model_box.label.text() and window.sampling.run_button.isEnabled()
    assert str(DEFAULT_MODEL.resolve()) in window.preferences.recent("models")
    assert window.error_box is None


def test_dropping_a_broken_checkpoint_says_why_and_keeps_no_model(window, qtbot, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text("{ not json")
    drop(window, folder)
    qtbot.waitUntil(lambda: window.error_box is not None, timeout=30000)
    assert "config.json': it is not valid JSON" in window.error_box.text()
    assert window.state.model is None


def test_settings_persist_between_launches(make_window, qtbot, tmp_path):
    first = make_window()
    first.resize(700, 500)
    first.notation_actions["seed000"].trigger()
    first.state.update_schedule(name="sigmoid")
    first.schedules.pin_current()
    drop(first, write_image(tmp_path / "kept.png"))
    qtbot.waitUntil(lambda: len(first.forward.session.images) == 2, timeout=5000)
    first.tabs.setCurrentIndex(1)
    first.close()

    second = make_window()
    assert (second.width(), second.height()) == (700, 500)
    assert second.tabs.currentIndex() == 1 and second.state.notation == "seed000"
    assert [c.name for c in second.schedules.session.pins] == ["cosine", "sigmoid"]
    assert second.state.schedule.config.name == "sigmoid"
    assert second.preferences.recent("images") == [str((tmp_path / "kept.png").resolve())]


def test_export_acts_on_the_current_panel(window, monkeypatch):
    called = []
    monkeypatch.setattr(window.schedules, "export", lambda: called.append("schedules"))
    window.tabs.setCurrentWidget(window.schedules)
    window.export_current()
    window.tabs.setCurrentWidget(window.training)
    window.export_current()
    assert called == ["schedules"] and "Nothing to export" in window.statusBar().currentMessage()


def test_closing_while_the_chain_runs_stops_it(window, qtbot):
    panel, session = window.forward, window.forward.session
    panel.mode.setCurrentIndex(panel.mode.findData("chain"))
    panel.t_spin.setValue(1000)  # a long walk on a 512×512 image
    qtbot.waitUntil(lambda: session.chain.t > 0, timeout=5000)  # the panel walks it while the UI runs
    window.close()
    reached = session.chain.t
    qtbot.wait(200)  # time for many steps, were it still walking
    assert session.chain_pending and session.chain.t == reached


def test_closing_hides_the_window_before_waiting_for_work_that_cannot_stop_at_once(window, monkeypatch):
    window.show()
    visible_while_waiting = []
    monkeypatch.setattr(window.tasks, "wait", lambda: visible_while_waiting.append(window.isVisible()))
    window.close()
    assert visible_while_waiting == [False]


def test_environment_report_names_versions_and_devices():
    import torch

    report = environment_report()
    assert f"torch {torch.__version__}" in report and "CPU" in report


def test_x_t_survives_a_schedule_change(window):
    window.forward.t_slider.setValue(500)
    window.state.update_schedule(timesteps=100)
    assert window.state.t == 50 and window.forward.t_slider.value() == 50
    x_t = window.forward.session.x_t()
    assert np.isfinite(x_t).all()
