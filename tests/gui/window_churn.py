"""Open and close several windows, then load torch and the bundled model on a worker and sample.

    python window_churn.py FOLDER

The closed windows leave Qt objects in reference cycles; the model load and the sampling run
allocate on worker threads. Were garbage collected there, Shiboken would delete those widgets on
the worker, which could deadlock with the UI thread (issue 16.6). A deadlock needs unlucky timing,
but where each closed window is finalised does not: the script notes the thread of each (a
weakref.finalize callback), and whether any collection ran off the UI thread. Prints what happened
as JSON and exits 0; a hang is ended by the caller's timeout.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import weakref
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, QTimer  # noqa: E402

WINDOWS = 4


def main(folder: Path) -> int:
    from diffusion_studio.gui.app import application
    from diffusion_studio.gui.main_window import MainWindow
    from diffusion_studio.gui.preferences import Preferences

    app = application()
    ui_thread = threading.get_ident()
    finalised_on: list[int] = []
    collected_on: set[int] = set()
    gc.callbacks.append(lambda phase, info: collected_on.add(threading.get_ident()) if phase == "start" else None)
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    for _ in range(WINDOWS):
        window = MainWindow(Preferences(settings))
        weakref.finalize(window, lambda: finalised_on.append(threading.get_ident()))
        window.show()
        app.processEvents()
        window.close()
        window.deleteLater()
    del window
    torch_before = "torch" in sys.modules
    window = MainWindow(Preferences(settings))
    window.show()
    panel = window.sampling
    samples = []

    def sample() -> None:
        panel.settings.run_form.set_values({"steps": 5, "num": 4})
        panel.run()

    def check() -> None:
        if panel.session.final is not None and not panel.running:
            samples.append(panel.session.final.shape)
            window.close()
            app.quit()

    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(20)
    window.tabs.setCurrentWidget(panel)
    window.open_model("default", then=sample)
    app.exec()
    gc.collect()  # what is left of the closed windows, on the UI thread
    print(json.dumps({
        "torch_before": torch_before,
        "samples": [list(s) for s in samples],
        "windows_finalised": len(finalised_on),
        "finalised_off_ui_thread": sum(thread != ui_thread for thread in finalised_on),
        "collections_off_ui_thread": len(collected_on - {ui_thread}),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
