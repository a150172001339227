"""The desktop app: PySide6 + pyqtgraph views composed over the Qt-free engine in ``core``.

Nothing here imports torch at module level, so the window is on screen before torch loads.
"""
