"""The night viewer (Qt): the fitted lines, brushing and a time range refit, a session."""

import numpy as np
import pytest
from glue.core import DataCollection
from night_fixture import night_tables

from glue_zeropoint.glue import night as gnight
from glue_zeropoint.night.outputs import write_night


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    result, _ = night_tables(seed=4)
    out = tmp_path_factory.mktemp("night_view")
    write_night(result, out, plots=False, regions=False)
    return out


@pytest.fixture
def app(folder):
    from glue_qt.app import GlueApplication

    dc = DataCollection(gnight.load_night_results(folder))
    app = GlueApplication(dc)
    app.report_error = lambda *a, **k: (_ for _ in ()).throw(AssertionError(a))
    yield app
    app.close()


def test_viewer_draws_lines_and_refits_on_brush_and_time_range(app):
    from glue_zeropoint.qt.night_viewer import NightViewer

    night = app.data_collection[0]
    viewer = app.new_data_viewer(NightViewer, data=night)
    assert viewer.state.night is night
    ax1 = viewer.figure.axes[0]
    assert len(ax1.lines) == len(set(night["band"]))  # one extinction line per band
    n_used = np.asarray(night["used_in_fit"], bool).sum()
    # brush the three highest-airmass frames in any viewer: a subset of the night
    cut = np.sort(np.asarray(night["airmass"]))[-3]
    app.data_collection.new_subset_group("brushed", night.id["airmass"] >= cut)
    assert np.asarray(night["excluded"], bool).sum() == 3
    assert np.asarray(night["used_in_fit"], bool).sum() <= n_used - 3
    assert "k =" in viewer.info.text()
    # a time range
    viewer.state.exclude_subsets = False
    viewer.state.t_max = float(np.nanmedian(night["hours"]))
    assert np.all(np.asarray(night["excluded"], bool)
                  == (np.asarray(night["hours"]) > viewer.state.t_max))


def test_clicking_a_frame_without_its_image_says_so(app):
    from glue_zeropoint.qt.night_viewer import NightViewer

    viewer = app.new_data_viewer(NightViewer, data=app.data_collection[0])
    assert viewer.show_frame(0) is None  # a table-only night: no product, no raw file
    assert "neither its calibrated product nor its raw file" in viewer.info.text()
    assert viewer.state.selected_frame == str(app.data_collection[0]["file"][0])


def test_viewer_survives_a_saved_session(app, tmp_path):
    from glue_qt.app import GlueApplication

    from glue_zeropoint.qt.night_viewer import NightViewer

    viewer = app.new_data_viewer(NightViewer, data=app.data_collection[0])
    viewer.state.t_min = 0.5
    path = tmp_path / "night.glu"
    app.save_session(str(path))
    app2 = GlueApplication.restore_session(str(path))
    try:
        viewers = [v for v in app2.viewers[0] if isinstance(v, NightViewer)]
        assert len(viewers) == 1
        v = viewers[0]
        assert v.state.t_min == 0.5 and v.state.night is not None
        hours = np.asarray(v.state.night["hours"])
        assert np.all(np.asarray(v.state.night["excluded"], bool) == (hours < 0.5))
    finally:
        app2.close()


def test_factory_loaded_night_and_viewer_survive_a_saved_session(folder, tmp_path):
    """The Glue loader path: the data factory's LoadLog is what the session saves."""
    from glue.core.data_factories import load_data
    from glue_qt.app import GlueApplication

    from glue_zeropoint.qt.night_viewer import NightViewer

    gnight.register()
    app = GlueApplication(DataCollection(load_data(str(folder))))
    app.report_error = lambda *a, **k: (_ for _ in ()).throw(AssertionError(a))
    night = app.data_collection[0]
    viewer = app.new_data_viewer(NightViewer, data=night)
    cut = np.sort(np.asarray(night["airmass"]))[-2]
    app.data_collection.new_subset_group("brushed", night.id["airmass"] >= cut)
    viewer.state.t_min = 0.5
    excluded = np.asarray(night["excluded"], bool).copy()
    fits = {b: dict(f) for b, f in night.meta["zp_night_fits"].items()}
    assert excluded.sum() >= 2
    path = tmp_path / "factory_night.glu"
    app.save_session(str(path))
    app.close()
    app2 = GlueApplication.restore_session(str(path))
    try:
        v = [v for v in app2.viewers[0] if isinstance(v, NightViewer)][0]
        night2 = v.state.night
        assert night2 is app2.data_collection[0] and v.state.t_min == 0.5
        assert night2.size == night.size and len(night2.subsets) == 1
        assert np.array_equal(np.asarray(night2["excluded"], bool), excluded)
        for band, f in fits.items():
            assert night2.meta["zp_night_fits"][band]["k"] == pytest.approx(f["k"])
            assert night2.meta["zp_night_fits"][band]["n_used"] == f["n_used"]
        assert len(v.figure.axes[0].lines) == len(fits)
        # the stars are still joined on 'frame'
        stars = app2.data_collection[1]
        assert stars.meta["zp_kind"] == "night_stars"
        assert len(night2.subsets[0].to_mask()) == night2.size
        assert stars.subsets[0].to_mask().sum() > 0
    finally:
        app2.close()
