"""The "match to sky" tool in a real offscreen GlueApplication, driven by mouse clicks."""

import numpy as np
import pytest
from astrometry_helpers import make_frame, rms_vs_truth, without_wcs
from glue.core import Data
from glue.core.link_helpers import LinkSame


def _click(qtbot, viewer, x, y, button=None):
    """A real Qt mouse click on a viewer's canvas at axes data coordinates (x, y)."""
    from qtpy import QtCore

    canvas = viewer.axes.figure.canvas
    X, Y = viewer.axes.transData.transform((x, y))
    ratio = canvas.device_pixel_ratio if hasattr(canvas, "device_pixel_ratio") else 1.0
    pos = QtCore.QPoint(int(round(X / ratio)), int(round(canvas.height() - Y / ratio)))
    qtbot.mouseClick(canvas, button or QtCore.Qt.MouseButton.LeftButton, pos=pos)


@pytest.fixture(scope="module")
def frame():
    return make_frame(shape=(512, 512), n_stars=150, seed=9, rotation=40.0, sip_coeff=2.0)


def test_match_to_sky_by_clicks(glue_app, qtbot, frame, tmp_path):
    from glue_qt.viewers.image import ImageViewer
    from glue_qt.viewers.scatter import ScatterViewer
    from qtpy import QtCore

    from glue_zeropoint.qt.match_sky import TOOL_ID

    assert TOOL_ID in ImageViewer.tools
    from astropy.io import fits

    from glue_zeropoint.astrometry import wcs_from_header
    from glue_zeropoint.glue.loader import ccd_to_data

    ccd, field, cat = frame
    # an unsolved calibrated product, loaded the way the plugin loads them
    ccd = without_wcs(ccd)
    product = tmp_path / "m13_cal.fits"
    fits.PrimaryHDU(np.asarray(ccd.data, np.float32), header=ccd.meta).writeto(product)
    img = ccd_to_data(ccd, "m13 light", product=product)
    assert img.coords is None
    catalog = Data(ra=np.asarray(cat["ra"]), dec=np.asarray(cat["dec"]),
                   mag_V=np.asarray(cat["mag_V"]), label="catalog")
    dc = glue_app.data_collection
    dc.append(img)
    dc.append(catalog)
    glue_app.show()
    iv = glue_app.new_data_viewer(ImageViewer, data=img)
    sv = glue_app.new_data_viewer(ScatterViewer, data=catalog)
    sv.state.x_att = catalog.id["ra"]
    sv.state.y_att = catalog.id["dec"]
    qtbot.wait(50)
    tool = iv.toolbar.tools[TOOL_ID]
    tool.activate()  # what the toolbar button does
    assert tool.running
    assert tool.sky_views() == [sv]

    s = field.stars
    on = (s["x"] > 40) & (s["x"] < 470) & (s["y"] > 40) & (s["y"] < 470)
    bright = np.flatnonzero(on)[:30]
    # four stars spread over the image, clicked 2 pixels off
    picks = [bright[np.argmin(np.hypot(s["x"][bright] - cx, s["y"][bright] - cy))]
             for cx, cy in ((100, 100), (400, 120), (130, 420), (380, 380))]
    for n, k in enumerate(picks, start=1):
        _click(qtbot, iv, s["x"][k] + 2.0, s["y"][k] - 1.5)
        assert tool.matcher.pending is not None
        assert np.hypot(tool.matcher.pending[0] - s["x"][k],
                        tool.matcher.pending[1] - s["y"][k]) < 0.3  # snapped to the star
        _click(qtbot, sv, s["ra"][k] + 0.5 / 3600, s["dec"][k])
        assert len(tool.matcher.pixels) == n
        if n == 2:  # a star clicked by mistake, undone with a right click
            _click(qtbot, iv, s["x"][picks[0]], s["y"][picks[0]])
            _click(qtbot, iv, 10, 10, button=QtCore.Qt.MouseButton.RightButton)
            assert tool.matcher.pending is None and len(tool.matcher.pixels) == 2
    assert img.coords is not None and len(img.world_component_ids) == 2
    err = rms_vs_truth(img.coords, field)
    assert err < 0.1, tool.matcher.report
    assert "refined with" in tool.matcher.report
    # catalog linked to the image's new world coordinates: the markers land on the stars
    dc.add_link(LinkSame(catalog.id["ra"], img.world_component_ids[1]))
    dc.add_link(LinkSame(catalog.id["dec"], img.world_component_ids[0]))
    iv.add_data(catalog)
    k = picks[0]
    assert img[catalog.id["ra"]][int(round(s["y"][k])), int(round(s["x"][k]))] == \
        pytest.approx(s["ra"][k], abs=1.0 / 3600)
    # the WCS went into the calibrated product too (SIP included)
    saved = wcs_from_header(product, shape=(512, 512), require=True)
    assert rms_vs_truth(saved, field) < 0.1
    assert "saved in m13_cal.fits" in tool.matcher.report
    glue_app.screenshot(str(tmp_path / "match_sky.png"))
    tool.activate()  # pressed again: the session ends
    assert not tool.running and not tool._sky_connections
