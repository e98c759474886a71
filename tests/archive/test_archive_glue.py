"""The archive in Glue: a real GlueApplication (offscreen) opens a store through the plugin's
data factory; the frames and nights datasets hold the store's values and are joined."""

import numpy as np
from glue.core.data_factories import find_factory

from glue_zeropoint.archive import read_archive, read_summaries
from glue_zeropoint.glue import archive as garchive


def test_glue_opens_the_archive(glue_app, serial_store):
    assert find_factory(str(serial_store)) is garchive.archive_factory
    glue_app.load_data(str(serial_store))
    dc = glue_app.data_collection
    frames = next(d for d in dc if d.meta.get("zp_kind") == "archive_frames")
    nights = next(d for d in dc if d.meta.get("zp_kind") == "archive_nights")
    t, s = read_archive(serial_store), read_summaries(serial_store)
    assert frames.size == len(t) and nights.size == len(s)
    np.testing.assert_array_equal(frames["zp"], t["zp"].to_numpy(float))
    np.testing.assert_array_equal(frames["date"], t["mjd"].to_numpy(float))
    np.testing.assert_array_equal(frames["sky_sb"], t["sky_sb"].to_numpy(float))
    assert list(frames["night"]) == t["night"].tolist()
    np.testing.assert_array_equal(nights["zp_median"], s["zp_median"].to_numpy(float))
    assert np.all(np.diff(nights["date"]) == 1.0)  # one night a day
    # a night selected in the nights dataset selects that night's frames (join on night_id)
    dc.new_subset_group("odd night", nights.id["night_id"] == 1)
    sub = next(sg for sg in frames.subsets if sg.label == "odd night")
    picked = np.asarray(frames["night"])[sub.to_mask()]
    assert set(picked) == {nights.meta["zp_archive_nights"]["1"]} and len(picked) == 4

    # the odd night opens as a Night dataset, as the night command's folder would give it
    added = garchive.open_selected_nights(dc, sub)
    assert len(added) == 1 and added[0] in dc
    night = added[0]
    assert night.meta["zp_kind"] == "night" and night.size == 4
    name = nights.meta["zp_archive_nights"]["1"]
    rows = t[t["night"] == name]
    np.testing.assert_array_equal(night["zp_night"], rows["zp_night"].to_numpy(float))
    # its refit gives the archive's k residuals back (same fit, same frames)
    np.testing.assert_allclose(night["k_residual"], rows["k_residual"].to_numpy(float),
                               rtol=0, atol=1e-12)
    assert garchive.open_selected_nights(dc, sub) == []  # already open


def test_a_click_on_a_night_in_a_scatter_plot_opens_it(glue_app, serial_store, tmp_path):
    """The 'Open night' tool of glue's scatter viewer: a click on a night's point of ZP vs
    date opens that night in a night viewer; a click on empty space opens nothing; a second
    click on the same night does not add it twice."""
    from glue_qt.viewers.scatter import ScatterViewer

    from glue_zeropoint.qt.archive_tool import OpenNightTool, open_night_at
    from glue_zeropoint.qt.night_viewer import NightViewer

    glue_app.load_data(str(serial_store))
    dc = glue_app.data_collection
    nights = next(d for d in dc if d.meta.get("zp_kind") == "archive_nights")
    viewer = glue_app.new_data_viewer(ScatterViewer, data=nights)
    viewer.state.x_att = nights.id["date"]
    viewer.state.y_att = nights.id["zp_median"]
    assert OpenNightTool.tool_id in viewer.toolbar.tools
    viewer.figure.canvas.draw()
    row = 1
    x, y = float(nights["date"][row]), float(nights["zp_median"][row])
    night = open_night_at(viewer, x, y)
    name = nights.meta["zp_archive_nights"][str(int(nights["night_id"][row]))]
    assert night is not None and night in dc and night.meta["zp_archive_night"] == name
    assert any(isinstance(v, NightViewer) and v.state.night is night
               for tab in glue_app.viewers for v in tab)
    n = len(dc)
    assert open_night_at(viewer, x, y) is night and len(dc) == n  # not added twice
    # far from every point (in screen pixels): nothing
    lo, hi = viewer.axes.get_xlim()
    assert open_night_at(viewer, lo + 0.001 * (hi - lo), viewer.axes.get_ylim()[1]) is None
    glue_app.screenshot(str(tmp_path / "archive_open_night.png"))
