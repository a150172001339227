"""The app's state and logic without widgets: one session per panel, the shared state, jobs.

Sessions hold what a panel shows and does (ndv's model/controller split, napari's Dims/QtDims);
they emit psygnal events, run anywhere (tests, scripts) without Qt, and the widgets in
``diffusion_studio.gui`` bind to them and paint. Long work is a ``Job``: a generator a worker
thread drives, whose digested updates come back to the session.
"""
