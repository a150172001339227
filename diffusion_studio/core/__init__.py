"""The Qt-free engine: schedules, the forward and reverse processes, samplers, data.

Submodules are imported on demand (``from diffusion_studio.core import schedules``) so that
importing the package stays cheap: torch is loaded only by the modules that need it.
"""
