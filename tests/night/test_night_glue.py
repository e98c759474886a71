"""The night in Glue: the dataset, the factory, the join to the stars, refits, sessions."""

import numpy as np
import pytest
from glue.core import DataCollection
from glue.core.data_factories import find_factory, load_data
from night_fixture import night_tables

from glue_zeropoint.glue import night as gnight
from glue_zeropoint.night.outputs import write_night


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    result, sim = night_tables()
    out = tmp_path_factory.mktemp("night_out")
    write_night(result, out, plots=False, regions=False)
    return out, result, sim


@pytest.fixture(autouse=True)
def _registered():
    gnight.register()


def test_factory_loads_the_night_folder(folder):
    out, result, _ = folder
    assert find_factory(str(out)) is gnight.night_factory
    datas = load_data(str(out))
    night, stars = datas
    assert night.meta["zp_kind"] == "night" and night.size == len(result.frames)
    for name in ("time", "hours", "airmass", "band", "zp", "zp_err", "k_residual", "sky_sb",
                 "fwhm", "n_used", "flags", "zp_model", "cloudy"):
        assert name in [c.label for c in night.components], name
    assert stars.meta["zp_kind"] == "night_stars"
    # the same cloudy frames as the command's fit
    assert np.array_equal(np.asarray(night["cloudy"], bool), np.asarray(result.frames["cloudy"]))


def test_brushing_frames_refits_and_selects_their_stars(folder):
    out, result, sim = folder
    dc = DataCollection(load_data(str(out)))
    night, stars = dc[0], dc[1]
    before = dict(night.meta["zp_night_fits"])
    # a time range: the first third of the night
    state = night.id["hours"] < np.nanpercentile(night["hours"], 33)
    subset = dc.new_subset_group("early frames", state)
    fits = gnight.refit(night, subset.subsets[0])
    assert night.meta["zp_night_excluded"]
    assert np.all(np.asarray(night["excluded"], bool) == np.asarray(subset.subsets[0].to_mask()))
    for band in fits:
        assert fits[band]["n_used"] < before[band]["n_used"] or before[band]["n_used"] == 0
    # the subset defined on frames selects their stars through the join on 'frame'
    smask = subset.subsets[1].to_mask()
    frames_sel = set(np.asarray(night["frame"])[subset.subsets[0].to_mask()].tolist())
    assert set(np.asarray(stars["frame"])[smask].tolist()) == frames_sel
    gnight.refit(night, [])
    assert night.meta["zp_night_excluded"] == []


def test_scatter_of_zp_against_airmass(folder):
    from glue_qt.app import GlueApplication
    from glue_qt.viewers.scatter import ScatterViewer

    out, _, _ = folder
    dc = DataCollection(load_data(str(out)))
    app = GlueApplication(dc)
    try:
        viewer = app.new_data_viewer(ScatterViewer, data=dc[0])
        viewer.state.x_att = dc[0].id["airmass"]
        viewer.state.y_att = dc[0].id["zp_night"]
        assert viewer.state.layers[0].layer is dc[0]
    finally:
        app.close()


@pytest.mark.parametrize("how", ["script", "factory"])
def test_exclusion_survives_a_saved_session(folder, tmp_path, how):
    from glue.core.state import GlueSerializer, GlueUnSerializer

    out, _, _ = folder
    # datasets made by load_night_results (run_night, a script) are saved whole; the factory's
    # are saved as its LoadLog (the folder re-read on restore)
    dc = DataCollection(gnight.load_night_results(out) if how == "script"
                        else load_data(str(out)))
    gnight.refit(dc[0], [str(dc[0]["file"][0])])
    text = GlueSerializer(dc).dumps()
    restored = GlueUnSerializer.loads(text).object("__main__")
    night = restored[0]
    assert night.meta["zp_night_excluded"] == [str(dc[0]["file"][0])]
    gnight.refit(night)  # re-applies the saved exclusion
    assert bool(np.asarray(night["excluded"])[0])


def test_refit_in_glue_keeps_ks_systematic_bound(tmp_path):
    """A band whose k carries the common tail's systematic bound (``k_sys``) keeps it when
    Glue refits the line: the night viewer's k error must not shrink back to the statistics
    alone when a frame is brushed out."""
    result, _ = night_tables()
    band = next(iter(result.fits))
    result.fits[band].k_sys = 0.037
    write_night(result, tmp_path, plots=False, regions=False)
    night = load_data(str(tmp_path))[0]
    assert night.meta["zp_night_k_sys"][band] == pytest.approx(0.037)
    fits = gnight.refit(night, [str(night["file"][0])])
    assert fits[band]["k_sys"] == pytest.approx(0.037)
    assert fits[band]["k_err_total"] == pytest.approx(np.hypot(fits[band]["k_err"], 0.037))
    others = [b for b in fits if b != band and "error" not in fits[b]]
    assert all(fits[b]["k_sys"] == 0.0 for b in others)
