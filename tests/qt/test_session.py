"""Save a glue session with the zero-point viewer and get it all back: by reference and with
data included (then from another folder, with the products gone), and the demo's app."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from glue.core.roi import RectangularROI
from glue.core.subset import RangeSubsetState, RoiSubsetState
from qtpy import QtWidgets

from glue_zeropoint.glue import loader
from glue_zeropoint.glue.catalog_data import catalog_to_data, link_catalog
from glue_zeropoint.glue.stars import detect_stars
from glue_zeropoint.qt.app import build_app, image_datasets, save_outputs
from glue_zeropoint.qt.zeropoint_viewer import ZeroPointViewer
from glue_zeropoint.simulate import make_field, reference_catalog, simulate_image

OUTPUT = Path(__file__).parents[1] / "_output"
SHAPE = (320, 320)

pytestmark = pytest.mark.filterwarnings("ignore:Some non-standard WCS keywords")


def _scene(app, product_dir):
    """A product on disk loaded through the plugin's factory, stars, catalog, viewer, subset."""
    field = make_field(SHAPE, n_stars=90, seed=6, sip_coeff=2.0)
    ccd, _ = simulate_image(field, seed=6)
    product_dir.mkdir(parents=True)
    path = loader.write_product(ccd, product_dir / "M13_V_001_cal.fits")
    dc = app.data_collection
    (image,) = image_datasets(dc, [path])
    stars = detect_stars(dc, image)
    catalog = catalog_to_data(reference_catalog(field, style="normalised", seed=6), "sim cat")
    link_catalog(dc, catalog, image)
    viewer = app.new_data_viewer(ZeroPointViewer, data=image)
    state = viewer.state
    state.fit_color_term = True
    state.clip_sigma = 4.0
    matches = state.add_matches_data()
    # a brushed region on the matches (joined to the stars) and a range on the star ids
    faint = dc.new_subset_group("faint", RoiSubsetState(
        matches.id["cat_mag"], matches.id["delta"], RectangularROI(17.0, 30.0, 0.0, 40.0)))
    dc.new_subset_group("first ten", RangeSubsetState(-0.5, 9.5, stars.id["star_id"]))
    state.subset = faint
    state.selection_mode = "exclude"
    state.excluded_ids = [int(stars["star_id"][3]), int(stars["star_id"][7])]
    assert state.result is not None, state.status
    return image, stars, catalog, viewer


def _snapshot(app):
    """What must survive a session round trip, in comparable form."""
    dc = app.data_collection
    viewer = next(v for tab in app.viewers for v in tab if isinstance(v, ZeroPointViewer))
    state = viewer.state
    image = next(d for d in dc if d.meta.get("zp_kind") == "light")
    stars = next(d for d in dc if d.meta.get("zp_kind") == "stars")
    links = sorted(
        (type(link).__name__, tuple(f"{c.parent.label}:{c.label}" for c in link.cids1),
         tuple(f"{c.parent.label}:{c.label}" for c in link.cids2))
        for link in dc.external_links)
    return {
        "labels": [d.label for d in dc],
        "zp": state.result.zp, "zp_err": state.result.zp_err, "n_used": state.result.n_used,
        "color_term": state.result.color_term,
        "saved_zp": (state.saved_result or {}).get("zp"),
        "choices": (state.image.label, state.stars.label, state.catalog.label, state.band,
                    state.color, state.fit_color_term, state.selection_mode,
                    state.subset.label if state.subset else None,
                    sorted(int(i) for i in state.excluded_ids), state.clip_sigma),
        "stars": {name: np.asarray(stars[name]) for name in ("star_id", "x", "y", "mag_inst")},
        "links": links,
        "subsets": [(g.label, type(g.subset_state).__name__, int(stars.get_mask(
            g.subset_state).sum())) for g in dc.subset_groups],
        "sip_a": np.array(image.coords.sip.a) if image.coords.sip is not None else None,
        "ctype": list(image.coords.wcs.ctype),
        "world": image.coords.pixel_to_world_values(5.0, 300.0),
    }


def _assert_same(restored, original):
    assert restored["labels"] == original["labels"]
    assert restored["choices"] == original["choices"]
    assert restored["zp"] == pytest.approx(original["zp"], abs=1e-9)
    assert restored["zp_err"] == pytest.approx(original["zp_err"], abs=1e-9)
    assert restored["n_used"] == original["n_used"]
    assert restored["color_term"] == pytest.approx(original["color_term"], abs=1e-9)
    assert restored["saved_zp"] == pytest.approx(original["zp"], abs=1e-12)
    for name, values in original["stars"].items():
        np.testing.assert_array_equal(restored["stars"][name], values)
    assert restored["links"] == original["links"]
    assert restored["subsets"] == original["subsets"]
    assert restored["ctype"] == ["RA---TAN-SIP", "DEC--TAN-SIP"]
    np.testing.assert_array_equal(restored["sip_a"], original["sip_a"])
    np.testing.assert_allclose(restored["world"], original["world"], rtol=0, atol=1e-10)


def _restore(path):
    from glue_qt.app.application import GlueApplication

    app = GlueApplication.restore_session(str(path), show=False)
    QtWidgets.QApplication.processEvents()
    return app


@pytest.fixture
def no_recalibration(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("restoring a session recalibrated a night")

    monkeypatch.setattr(loader, "_calibrate", refuse)


def test_session_by_reference_restores_everything(glue_app, tmp_path, no_recalibration):
    image, stars, catalog, viewer = _scene(glue_app, tmp_path / "products")
    original = _snapshot(glue_app)
    assert original["sip_a"] is not None and original["subsets"][0][2] > 0
    session = tmp_path / "by reference.glu"
    glue_app.save_session(str(session))
    text = session.read_text(encoding="utf-8")
    assert "M13_V_001_cal.fits" in text  # the image is a reference to the product
    restored_app = _restore(session)
    try:
        _assert_same(_snapshot(restored_app), original)
        # the restored viewer still reacts to the subsets
        state = next(v for tab in restored_app.viewers for v in tab
                     if isinstance(v, ZeroPointViewer)).state
        n_used = state.result.n_used
        state.selection_mode = "all"
        assert state.result.n_used > n_used
    finally:
        restored_app.close()


@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")  # the truncation
def test_broken_product_is_a_clear_error_for_callers_that_need_the_data(glue_app, tmp_path,
                                                                        no_recalibration):
    """In the app, File > Open of a broken product is a non-modal message and no data; but
    image_datasets and glue's session restore index the result: they get our error, not an
    IndexError from an empty list."""
    from glue_zeropoint.exceptions import InputError

    image, stars, catalog, viewer = _scene(glue_app, tmp_path / "products")
    session = tmp_path / "by reference.glu"
    glue_app.save_session(str(session))
    product = tmp_path / "products" / "M13_V_001_cal.fits"
    product.write_bytes(product.read_bytes()[:5000])  # truncated on disk since
    with pytest.raises(InputError, match="M13_V_001_cal.fits"):
        image_datasets(glue_app.data_collection, [product])
    with pytest.raises(InputError, match="M13_V_001_cal.fits"):
        _restore(session)


def test_session_with_data_works_without_the_products(glue_app, tmp_path, no_recalibration):
    image, stars, catalog, viewer = _scene(glue_app, tmp_path / "products")
    original = _snapshot(glue_app)
    saved_dir = tmp_path / "saved"
    saved_dir.mkdir()
    session = saved_dir / "with data.glu"
    glue_app.save_session(str(session), include_data=True)
    # another machine: the products are gone and the session is opened from elsewhere
    shutil.rmtree(tmp_path / "products")
    moved = tmp_path / "elsewhere" / "copy.glu"
    moved.parent.mkdir()
    shutil.move(session, moved)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        restored_app = _restore(moved)
    finally:
        os.chdir(cwd)
    try:
        _assert_same(_snapshot(restored_app), original)
    finally:
        restored_app.close()


def test_demo_app_builds_saves_and_reopens(qapp, no_modal_dialogs, tmp_path, monkeypatch):
    from glue.config import settings

    for name in ("Astronomy WCS", "Astronomy WCS (3D)"):
        monkeypatch.setitem(settings.AUTOLINK, name, "always_ignore")
    field = make_field((256, 256), n_stars=70, seed=2, sip_coeff=1.0)
    ccd, _ = simulate_image(field, seed=2)
    app = build_app([ccd], reference_catalog(field, bands=("B", "V", "R", "I"), seed=2), "V",
                    color="B-V")
    try:
        roles = app.zp_viewers
        assert set(roles) == {"image", "scatter", "table", "zeropoint"}
        zp = roles["zeropoint"].state.result
        assert zp is not None and zp.color_term is not None
        assert abs(zp.zp - 21.5) < 3 * zp.zp_err_total + 0.01
        written = save_outputs(app, tmp_path / "demo out")
        names = {p.name for p in written}
        assert {"demo.glu", "glue_window.png", "zeropoint_residuals.png",
                "zeropoint_glue.json"} <= names
        OUTPUT.mkdir(exist_ok=True)
        shutil.copy(tmp_path / "demo out" / "glue_window.png", OUTPUT / "demo_app.png")
    finally:
        app.close()
    reopened = _restore(tmp_path / "demo out" / "demo.glu")
    try:
        state = next(v for tab in reopened.viewers for v in tab
                     if isinstance(v, ZeroPointViewer)).state
        assert state.result.zp == pytest.approx(zp.zp, abs=1e-9)
        assert len(reopened.viewers[0]) == 4
    finally:
        reopened.close()
