"""The timeline of a recorded reverse process: step buttons, a slider over the stops, play/pause."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSlider, QSpinBox, QStyle, QWidget

from diffusion_studio.app.playhead import Playhead


class TimelineBar(QWidget):
    """First, back, play, forward, last; a slider over the playhead's stops (x_T at the left, the
    result at the right); the playback speed; and a label the panel writes the frame's t in. Bound to
    a Playhead (app.playhead): the controls move it, and the slider follows it."""

    def __init__(self, playhead: Playhead, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.playhead = playhead
        icon = self.style().standardIcon
        self.first_button = QPushButton(icon(QStyle.StandardPixmap.SP_MediaSkipBackward), "")
        self.back_button = QPushButton(icon(QStyle.StandardPixmap.SP_MediaSeekBackward), "")
        self.play_button = QPushButton()
        self.forward_button = QPushButton(icon(QStyle.StandardPixmap.SP_MediaSeekForward), "")
        self.last_button = QPushButton(icon(QStyle.StandardPixmap.SP_MediaSkipForward), "")
        self.buttons = (self.first_button, self.back_button, self.play_button, self.forward_button, self.last_button)
        for button, tip in zip(self.buttons, ("First frame (Home)", "Step back (←)", "Play / pause (Space)",
                                              "Step forward (→)", "Last frame (End)")):
            button.setToolTip(tip)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Recorded frames, from x_T (left) to the result x_0, or where a cancelled run stopped (right). "
                               "←/→ step, Home/End")
        self.fps = QSpinBox()
        self.fps.setRange(1, 120)
        self.fps.setValue(20)
        self.fps.setSuffix(" fps")
        self.fps.setToolTip("Playback speed")
        self.label = QLabel()
        self.label.setMinimumWidth(190)
        self.play_timer = QTimer(self)
        self.shortcuts: list[QShortcut] = []  # the keys, once bind_keys gives them a panel
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for button in self.buttons:
            layout.addWidget(button)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.fps)
        layout.addWidget(self.label)

        self.slider.valueChanged.connect(playhead.set_frame)
        self.first_button.clicked.connect(lambda: playhead.set_frame(0))
        self.last_button.clicked.connect(lambda: playhead.set_frame(len(playhead.times) - 1))
        self.back_button.clicked.connect(lambda: playhead.step_frames(-1))
        self.forward_button.clicked.connect(lambda: playhead.step_frames(1))
        self.play_button.clicked.connect(playhead.toggle_play)
        self.fps.valueChanged.connect(lambda fps: self.play_timer.setInterval(round(1000 / fps)))
        self.play_timer.timeout.connect(playhead.tick)
        playhead.playingChanged.connect(self._on_playing)
        playhead.playheadChanged.connect(self._on_playhead)
        self._show_playing(False)
        self.set_enabled(False)

    def set_stops(self) -> None:
        """The playhead has new stops (``times``): one slider position each."""
        with QSignalBlocker(self.slider):
            self.slider.setRange(0, max(0, len(self.playhead.times) - 1))
            self.slider.setValue(self.playhead.position() if len(self.playhead.times) else 0)

    def set_enabled(self, enabled: bool) -> None:
        """The controls and their keys (not the label and the speed) work only when there is something to scrub."""
        for control in (self.slider, *self.buttons, *self.shortcuts):
            control.setEnabled(enabled)

    def bind_keys(self, panel: QWidget) -> None:
        """Home, ←, Space, →, End press the first, back, play, forward and last buttons wherever the
        focus is in ``panel``: as shortcuts they come before a focused list's or scroll area's own use
        of the keys, while a text or number field keeps them for editing (Qt's ShortcutOverride)."""
        keys = (Qt.Key.Key_Home, Qt.Key.Key_Left, Qt.Key.Key_Space, Qt.Key.Key_Right, Qt.Key.Key_End)
        for button, key in zip(self.buttons, keys):
            shortcut = QShortcut(QKeySequence(key), panel)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.setEnabled(self.slider.isEnabled())
            shortcut.activated.connect(button.click)
            self.shortcuts.append(shortcut)

    def _on_playhead(self, _t: int) -> None:
        if not len(self.playhead.times):
            return
        with QSignalBlocker(self.slider):
            self.slider.setValue(self.playhead.position())

    def _on_playing(self, playing: bool) -> None:
        if playing:
            self.play_timer.start(round(1000 / self.fps.value()))
        else:
            self.play_timer.stop()
        self._show_playing(playing)

    def _show_playing(self, playing: bool) -> None:
        pixmap = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(pixmap))
        self.play_button.setText("Pause" if playing else "Play")
