"""ZeroPointViewerState: the zero-point logic on glue data, without Qt."""

import json

import numpy as np
import pytest
from glue.core import DataCollection
from glue.core.roi import RectangularROI
from glue.core.subset import RangeSubsetState, RoiSubsetState

from glue_zeropoint.glue.catalog_data import catalog_to_data, link_catalog
from glue_zeropoint.glue.loader import ccd_to_data
from glue_zeropoint.glue.session import restore_sip_from_meta
from glue_zeropoint.glue.stars import detect_stars
from glue_zeropoint.glue.viewer_state import ZeroPointViewerState, color_choices
from glue_zeropoint.simulate import make_field, reference_catalog, simulate_image

TRUE_ZP = 21.5


def outlier_index(field, shape):
    """The brightest field star well inside the image (its catalog row has the same index)."""
    x, y = np.asarray(field.stars["x"]), np.asarray(field.stars["y"])
    inside = (x > 30) & (x < shape[1] - 30) & (y > 30) & (y < shape[0] - 30)
    return int(np.nonzero(inside)[0][0])  # the field is sorted by V magnitude


def make_scene(seed=4, shape=(384, 384), n_stars=110, outlier=0.0):
    """An image, its stars and a catalog (one bright star's catalog V off by ``outlier``)."""
    field = make_field(shape, n_stars=n_stars, seed=seed, sip_coeff=1.5)
    ccd, truth = simulate_image(field, seed=seed)
    table = reference_catalog(field, style="normalised", seed=seed)
    index = outlier_index(field, shape)
    if outlier:
        table["mag_V"][index] += outlier
        table["mag_B"][index] += outlier
    dc = DataCollection()
    image = ccd_to_data(ccd, "M13 V")
    dc.append(image)
    stars = detect_stars(dc, image)
    catalog = catalog_to_data(table, "sim catalog")
    link_catalog(dc, catalog, image)
    return dc, image, stars, catalog, table["id"][index]


@pytest.fixture(scope="module")
def scene():
    return make_scene()


@pytest.fixture(scope="module")
def outlier_scene():
    return make_scene(outlier=1.0)


def outlier_star_id(state, cat_id):
    stars = state.result.stars
    return int(stars["star_id"][np.asarray(stars["cat_id"]) == cat_id][0])


def test_picks_inputs_and_recovers_the_zero_point(scene):
    dc, image, stars, catalog, _ = scene
    state = ZeroPointViewerState(data_collection=dc)
    try:
        assert (state.image, state.stars, state.catalog) == (image, stars, catalog)
        assert state.band == "V"  # from the image's filter
        assert state.color == "B-V"
        r = state.result
        assert state.status == ""
        assert r is not None and r.band == "V"
        assert abs(r.zp - TRUE_ZP) < 3 * r.zp_err_total
        assert r.n_used >= 30 and r.n_used <= r.n_matched
        assert abs(r.sky_sb - 20.0) < 0.05  # sky measured once, shifted with the ZP
        table = state.star_table()
        assert set(table["status"]) <= {"used", "clipped", "excluded", "left out"}
        assert (table["status"] == "used").sum() == r.n_used
    finally:
        state.disconnect()


def test_colour_term_on_request(scene):
    dc, *_ = scene
    state = ZeroPointViewerState(data_collection=dc)
    try:
        assert state.result.color_term is None
        state.fit_color_term = True
        assert state.result.color_term is not None
        assert abs(state.result.color_term) < 5 * state.result.color_term_err + 0.01
    finally:
        state.disconnect()


def test_brushed_outlier_moves_the_zero_point_toward_the_truth(outlier_scene):
    dc, image, stars, catalog, cat_id = outlier_scene
    # clipping off: only the user's selection can remove the bad star
    state = ZeroPointViewerState(data_collection=dc, clip_sigma=1000.0)
    try:
        before = state.result
        sid = outlier_star_id(state, cat_id)
        assert before.zp > TRUE_ZP + 0.03  # the outlier drags the ZP up (and inflates its error)
        matches = state.add_matches_data()
        row = np.nonzero(np.asarray(matches["star_id"]) == sid)[0][0]
        mag, delta = float(matches["cat_mag"][row]), float(matches["delta"][row])
        assert delta - TRUE_ZP > 0.8
        # a region drawn on (cat_mag, delta) selects the star through the star_id join
        roi = RectangularROI(mag - 0.02, mag + 0.02, delta - 0.1, delta + 0.1)
        group = dc.new_subset_group("outlier", RoiSubsetState(matches.id["cat_mag"],
                                                              matches.id["delta"], roi))
        assert state.star_ids_in(group) == [sid]
        revision = state.revision
        state.subset = group
        state.selection_mode = "exclude"
        after = state.result
        assert state.revision > revision
        assert after.n_used == before.n_used - 1
        assert abs(after.zp - TRUE_ZP) < abs(before.zp - TRUE_ZP)
        assert abs(after.zp - TRUE_ZP) < 3 * after.zp_err_total
        assert "excluded" in set(state.star_table()["status"])
        # moving the region away (a subset update message) brings the star back
        group.subset_state = RoiSubsetState(matches.id["cat_mag"], matches.id["delta"],
                                            RectangularROI(0, 1, 0, 1))
        assert state.result.n_used == before.n_used
        # 'only' the subset: a range of star ids on the stars table
        group.subset_state = RangeSubsetState(-0.5, 20.5, stars.id["star_id"])
        state.selection_mode = "only"
        assert state.result.n_used <= 21
    finally:
        state.disconnect()


def test_exclude_and_include_by_hand(outlier_scene):
    dc, image, stars, catalog, cat_id = outlier_scene
    state = ZeroPointViewerState(data_collection=dc, clip_sigma=1000.0)
    try:
        n0 = state.result.n_used
        sid = outlier_star_id(state, cat_id)
        group = dc.new_subset_group("one star", RangeSubsetState(sid - 0.5, sid + 0.5,
                                                                 stars.id["star_id"]))
        assert state.exclude_subset(group) == [sid]
        assert list(state.excluded_ids) == [sid]
        assert state.result.n_used == n0 - 1
        reason = state.result.stars["reason"][state.result.stars["star_id"] == sid][0]
        assert reason == "excluded"
        state.include_all()
        assert list(state.excluded_ids) == [] and state.result.n_used == n0
    finally:
        state.disconnect()


def test_problems_become_a_status_not_an_exception(scene):
    dc, image, stars, catalog, _ = scene
    state = ZeroPointViewerState(data_collection=dc)
    try:
        state.selection_mode = "only"
        group = dc.new_subset_group("nothing", RangeSubsetState(-10, -5, stars.id["star_id"]))
        state.subset = group
        assert state.result is None
        assert "usable star" in state.status  # FitError message from the fit
        state.selection_mode = "all"
        assert state.result is not None and state.status == ""
        state.catalog = None
        assert state.result is None and "catalog" in state.status
    finally:
        state.disconnect()
        for g in list(dc.subset_groups):
            dc.remove_subset_group(g)


def test_stars_added_later_refit_the_zero_point():
    dc, image, stars, catalog, _ = make_scene(seed=8, shape=(256, 256), n_stars=60)
    state = ZeroPointViewerState(data_collection=dc)
    try:
        n0, rev = state.result.n_matched, state.revision
        from glue_zeropoint.glue.stars import remove_stars

        remove_stars(dc, image, [int(i) for i in np.asarray(stars["star_id"])[:5]])
        assert state.revision > rev
        assert state.result.n_matched <= n0 - 4
    finally:
        state.disconnect()


def test_state_serialises_choices_and_result(scene):
    from glue.core.state import GlueSerializer

    dc, image, stars, catalog, _ = scene
    state = ZeroPointViewerState(data_collection=dc, excluded_ids=[np.int64(3), 5])
    try:
        rec = state.__gluestate__(GlueSerializer(dc))
        values = rec["values"]
        assert values["excluded_ids"] == [3, 5]
        assert values["band"] == "st__V" and values["color"] == "st__B-V"
        saved = json.loads(values["result"][4:])
        assert saved["zp"] == pytest.approx(state.result.zp)
        assert saved["n_used"] == state.result.n_used
    finally:
        state.disconnect()


def test_colour_choices():
    assert color_choices(["B", "V", "R"])[:2] == ["B-V", "V-R"]
    assert color_choices(["r", "g", "i"]) == ["g-r", "r-i", "g-i"]


@pytest.mark.filterwarnings("ignore:Some non-standard WCS keywords")
def test_session_patch_restores_sip_only_when_consistent():
    field = make_field((200, 200), n_stars=10, seed=1, sip_coeff=2.0)
    ccd, _ = simulate_image(field, seed=1)
    data = ccd_to_data(ccd, "img")
    full = data.meta["zp_wcs_header"]
    tan_only = data.coords.to_header_string()  # what glue writes (no SIP)
    assert "A_ORDER" in full and "A_ORDER" not in tan_only
    rec = {"img": {"coords": "WCS", "meta": {"contents": {"st__zp_wcs_header": "st__" + full}}},
           "WCS": {"_type": "astropy.wcs.wcs.WCS", "header": tan_only}}
    assert restore_sip_from_meta(rec) == ["img"]
    assert rec["WCS"]["header"] == full
    # a WCS changed in the session (different CRVAL) is left alone
    moved = field.wcs.deepcopy()
    moved.wcs.crval = [moved.wcs.crval[0] + 0.01, moved.wcs.crval[1]]
    rec["WCS"]["header"] = moved.to_header_string()
    assert restore_sip_from_meta(rec) == []


def test_plugin_registers_the_session_patch():
    from glue.config import session_patch
    from glue.main import load_plugins

    from glue_zeropoint.glue import session

    load_plugins(require_qt_plugins=False)
    assert sum(m.function is session._patch for m in session_patch.members) == 1
