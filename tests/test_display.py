"""The launcher says in one line why the window cannot open, before Qt aborts."""

import os
import subprocess
import sys

import pytest

from diffusion_studio.display import XCB_LIBRARIES, display_problem

LINUX = "linux"


@pytest.mark.skipif(not sys.platform.startswith(LINUX), reason="the display check is Linux's")
def test_no_display_is_one_line_and_exit_2_without_loading_qt():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    probe = ("import sys; from diffusion_studio.launcher import main; code = main([]);"
             "print('PySide6' in sys.modules); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2, done.stderr
    assert done.stdout.strip() == "False"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0]
    assert "diffusion-studio --help" in lines[0] and "QT_QPA_PLATFORM=offscreen" in lines[0]


@pytest.mark.parametrize("environ", [
    {"DISPLAY": ":0"}, {"WAYLAND_DISPLAY": "wayland-0"}, {"QT_QPA_PLATFORM": "offscreen"},
    {"QT_QPA_PLATFORM": "wayland;xcb"}, {"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":1"},
])
def test_a_display_with_its_libraries_is_no_problem(environ):
    assert display_problem(environ, LINUX, load=lambda soname: True) is None


def test_other_systems_are_not_checked():
    assert display_problem({}, "darwin", load=lambda soname: False) is None


def test_xcb_without_a_display_is_named():
    assert "DISPLAY is not set" in display_problem({"QT_QPA_PLATFORM": "xcb"}, LINUX, load=lambda soname: True)


def test_missing_xcb_libraries_give_the_install_line():
    gone = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-shm.so.0", "libxcb-xkb.so.1"}
    problem = display_problem({"DISPLAY": ":0"}, LINUX, load=lambda soname: soname not in gone)
    assert "\n" not in problem and all(soname in problem for soname in gone)
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1 libxcb-shm0 libxcb-xkb1 (Debian, Ubuntu)" in problem
    assert "sudo dnf install xcb-util-wm xcb-util-keysyms libxcb (Fedora)" in problem


def test_every_library_has_both_packages():
    assert all(len(packages) == 2 and all(packages) for packages in XCB_LIBRARIES.values())
