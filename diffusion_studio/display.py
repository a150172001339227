"""Can the window open here? Checked before Qt is imported, since Qt aborts (a core dump, exit 134)
when it finds no display or its xcb platform plugin cannot load its system libraries.

Linux only, and cheap: it reads the environment and asks the dynamic loader for the libraries by
soname (``ctypes.CDLL``, as Qt's plugin will), without importing Qt.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping

XCB_LIBRARIES = {
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
}
"""The system libraries Qt 6's xcb platform plugin (libqxcb.so, libQt6XcbQpa) links, by soname →
(Debian/Ubuntu package, Fedora package)."""


def loads(soname: str) -> bool:
    """True if the dynamic loader finds and loads this library."""
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def display_problem(environ: Mapping[str, str] = os.environ, platform: str = sys.platform,
                    load: Callable[[str], bool] = loads) -> str | None:
    """One line saying why Qt could not open a window here and what to do; None when it can (or when
    ``QT_QPA_PLATFORM`` names a platform other than xcb, which is the user's choice)."""
    if not platform.startswith("linux"):
        return None
    chosen = environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if chosen and chosen != "xcb":
        return None
    if not chosen and environ.get("WAYLAND_DISPLAY"):
        return None  # Qt takes Wayland, whose libraries a Wayland desktop has
    if not environ.get("DISPLAY"):
        unset = "DISPLAY is not set" if chosen else "neither DISPLAY nor WAYLAND_DISPLAY is set"
        return (f"diffusion-studio: no display to open the window on ({unset}): use the command line "
                "(diffusion-studio --help), or set QT_QPA_PLATFORM=offscreen to render without a screen")
    missing = [soname for soname in XCB_LIBRARIES if not load(soname)]
    if not missing:
        return None
    debian = " ".join(dict.fromkeys(XCB_LIBRARIES[soname][0] for soname in missing))
    fedora = " ".join(dict.fromkeys(XCB_LIBRARIES[soname][1] for soname in missing))
    return (f"diffusion-studio: Qt's xcb display plugin needs system libraries that are missing ({', '.join(missing)}): "
            f"sudo apt-get install {debian} (Debian, Ubuntu) or sudo dnf install {fedora} (Fedora)")
