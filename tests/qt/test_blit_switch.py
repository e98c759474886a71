"""The blitting's one switch (glue_zeropoint.qt.blit.ENABLED / GLUE_ZEROPOINT_BLIT=0), and a
blitted frame compared pixel by pixel with a full redraw made with the switch off."""

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import isolated_bright_stars
from test_tools import _aperture_pixels, _buffer, _settle, click

from glue_zeropoint.glue.stars import stars_for
from glue_zeropoint.qt import blit


@pytest.mark.parametrize("value, enabled", [("0", False), ("off", False), ("1", True)])
def test_environment_variable_sets_the_switch(value, enabled):
    env = dict(os.environ, GLUE_ZEROPOINT_BLIT=value, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", "import glue_zeropoint.qt.blit as b; "
                          "print(b.ENABLED)"], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == str(enabled)


def test_switch_off_leaves_the_canvas_alone(glue_app, image_viewer, qtbot, monkeypatch):
    monkeypatch.setattr(blit, "ENABLED", True)  # restored after the test
    viewer, light, truth = image_viewer
    blit.set_enabled(False)  # the tools installed it with the viewer: removed now
    canvas = viewer.figure.canvas
    (x1, y1, _f), = isolated_bright_stars(truth, margin=25, n=1)
    viewer.toolbar.active_tool = "zp:star"
    click(qtbot, viewer, x1, y1)
    qtbot.wait(50)
    stars = stars_for(glue_app.data_collection, light)
    assert stars.size == 1
    assert getattr(viewer, "_zp_fast_redraw", None) is None
    assert "draw" not in canvas.__dict__ and "draw_idle" not in canvas.__dict__
    assert not [a for a in viewer.axes.get_children() if a.get_animated()]
    canvas.draw()
    r = stars.meta["zp_aperture"]["r"]
    assert _aperture_pixels(viewer, _buffer(viewer), stars["x"][0], stars["y"][0], r) > 10


def test_blitted_frame_equals_a_full_redraw(glue_app, image_viewer, qtbot, monkeypatch):
    monkeypatch.setattr(blit, "ENABLED", True)  # restored after the test
    viewer, light, truth = image_viewer
    canvas = viewer.figure.canvas
    (x1, y1, _f1), (x2, y2, _f2) = isolated_bright_stars(truth, margin=25, n=2)
    viewer.toolbar.active_tool = "zp:star"
    fast = viewer._zp_fast_redraw
    _settle(qtbot, viewer)
    click(qtbot, viewer, x1, y1)  # adds the stars layer: a full draw
    qtbot.wait(50)
    blits = fast.fast_draws
    click(qtbot, viewer, x2, y2)  # only the apertures change: a blit
    qtbot.wait(50)
    assert fast.fast_draws > blits
    blitted = _buffer(viewer)
    stars = stars_for(glue_app.data_collection, light)
    r = stars.meta["zp_aperture"]["r"]
    assert _aperture_pixels(viewer, blitted, stars["x"][1], stars["y"][1], r) > 10

    blit.set_enabled(False)  # removes the blitting from the live canvas
    assert fast.canvas is None and "draw" not in canvas.__dict__
    canvas.draw()
    full = _buffer(viewer)
    assert blitted.shape == full.shape
    np.testing.assert_array_equal(blitted, full)

    # and back on: the next change is blitted again, still identical to a full draw
    blit.set_enabled(True)
    click(qtbot, viewer, stars["x"][0], stars["y"][0])  # removes the first star
    qtbot.wait(50)
    fast = viewer._zp_fast_redraw
    assert fast.canvas is not None and stars.size == 1
    again = _buffer(viewer)
    blit.set_enabled(False)
    canvas.draw()
    np.testing.assert_array_equal(again, _buffer(viewer))
