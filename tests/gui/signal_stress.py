"""Emit many signals from a worker thread to the main thread, as the app's workers will.

Run as a script: prints a line every 1,000 signals received, then the numbers received, and exits 0.
PySide6 6.12.0 on Python 3.11 aborts the interpreter part-way (a reference-count bug in Signal.emit).
"""

import sys

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Signal, Slot


class Worker(QObject):
    progress = Signal(object)
    count = Signal(int)
    finished = Signal()

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total

    @Slot()
    def run(self) -> None:
        for i in range(self.total):
            self.progress.emit({"step": i, "loss": 1.0 / (i + 1), "tags": ["a", "b"]})
            self.count.emit(i)
        self.finished.emit()


class Receiver(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.records = 0
        self.counts = 0

    @Slot(object)
    def on_progress(self, record: dict) -> None:
        self.records += record["step"] >= 0

    @Slot(int)
    def on_count(self, i: int) -> None:
        self.counts += 1
        if self.counts % 1000 == 0:
            print("received", self.counts, flush=True)


def main(total: int) -> int:
    app = QCoreApplication(sys.argv[:1])
    thread = QThread()
    worker, receiver = Worker(total), Receiver()
    worker.moveToThread(thread)
    worker.progress.connect(receiver.on_progress)
    worker.count.connect(receiver.on_count)
    worker.finished.connect(thread.quit)
    thread.started.connect(worker.run)
    thread.finished.connect(app.quit)
    QTimer.singleShot(0, thread.start)
    app.exec()
    thread.wait()
    app.processEvents()
    print(receiver.records, receiver.counts)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
