"""A widget whose resizeEvent fails as C code fails (an IndexError), shown in a stacked widget.

    python guarded_override.py guarded|bare

Unguarded, PySide6 ends the process with a segmentation fault; guarded, it prints the traceback
and goes on, printing "alive".
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication, QLabel, QStackedWidget, QWidget  # noqa: E402

from diffusion_studio.gui.guard import guarded  # noqa: E402


def main(mode: str) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])

    def resize_event(self, event) -> None:
        QWidget.resizeEvent(self, event)
        [][1]  # noqa: B018 (the bug: an IndexError raised by C code)

    Failing = type("Failing", (QWidget,), {"resizeEvent": guarded(resize_event) if mode == "guarded" else resize_event})
    stack = QStackedWidget()
    stack.addWidget(QLabel("first"))
    failing = Failing()
    stack.addWidget(failing)
    stack.resize(300, 200)
    stack.show()
    app.processEvents()
    stack.setCurrentWidget(failing)  # lays out, and so resizes, the failing widget
    app.processEvents()
    print("alive", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
