import warnings

import numpy as np
import pytest
from glue.core import DataCollection
from glue.core.roi import RectangularROI
from glue.core.subset import RangeSubsetState, RoiSubsetState
from helpers import isolated_bright_stars
from zp_nights import sim_ccd

from glue_zeropoint.glue.links import links_between, sky_component_ids
from glue_zeropoint.glue.loader import ccd_to_data
from glue_zeropoint.glue.stars import (
    STAR_COLUMNS,
    add_stars,
    adopt_stars,
    detect_stars,
    remove_stars,
    star_at,
    stars_for,
    stars_table,
)


@pytest.fixture
def image():
    ccd, truth = sim_ccd(seed=11)
    data = ccd_to_data(ccd, "M13 V")
    return DataCollection([data]), data, truth


def test_add_star_recentres_and_measures_the_true_flux(image):
    dc, img, truth = image
    x, y, flux = isolated_bright_stars(truth)[0]
    stars = add_stars(dc, img, [(x + 1.4, y - 1.1)])  # a click a little off the star
    assert stars is stars_for(dc, img) and stars.label == "Stars: M13 V"
    assert [c.label for c in stars.main_components] == list(STAR_COLUMNS)
    assert stars.size == 1
    assert abs(stars["x"][0] - x) < 0.2 and abs(stars["y"][0] - y) < 0.2
    assert stars["flux"][0] == pytest.approx(flux, rel=0.05)
    assert 0 < stars["flux_err"][0] < 0.05 * flux
    ra, dec = img.coords.pixel_to_world_values(x, y)
    assert stars["ra"][0] == pytest.approx(ra, abs=1e-5)
    assert stars["dec"][0] == pytest.approx(dec, abs=1e-5)
    assert stars["mag_inst"][0] == pytest.approx(-2.5 * np.log10(flux / 20.0), abs=0.05)
    assert stars.meta["zp_aperture"]["r"] > 1


def test_linked_to_the_image_by_pixels_and_sky(image):
    dc, img, truth = image
    x, y, _flux = isolated_bright_stars(truth)[0]
    stars = add_stars(dc, img, [(x, y)])
    assert len(links_between(dc, stars, img)) == 4
    ra_id, dec_id = sky_component_ids(img)
    assert ra_id.label == "Right Ascension"
    np.testing.assert_allclose(stars[img.pixel_component_ids[1]], stars["x"])
    np.testing.assert_allclose(stars[ra_id], stars["ra"])


def test_updates_in_place_keep_ids_links_and_subsets(image):
    dc, img, truth = image
    picks = isolated_bright_stars(truth, n=3)
    stars = add_stars(dc, img, [picks[0][:2]])
    x_id, links_before = stars.id["x"], len(dc.external_links)
    group = dc.new_subset_group("bright", RangeSubsetState(-1e9, 1e12, stars.id["flux"]))
    stars = add_stars(dc, img, [p[:2] for p in picks[1:]])
    assert stars.size == 3 and stars.id["x"] is x_id
    assert len(dc.external_links) == links_before
    assert group.subsets[[s.data for s in group.subsets].index(stars)].to_mask().sum() == 3
    assert list(stars["star_id"]) == [0, 1, 2]
    # clicking the same star again adds nothing
    stars = add_stars(dc, img, [(picks[1][0] + 0.7, picks[1][1])])
    assert stars.size == 3
    stars = remove_stars(dc, img, [1])
    assert stars.size == 2 and list(stars["star_id"]) == [0, 2]
    assert stars.id["x"] is x_id
    # ids are never reused
    stars = add_stars(dc, img, [picks[1][:2]])
    assert list(stars["star_id"]) == [0, 2, 3]


def test_remove_all_then_add_again(image):
    dc, img, truth = image
    x, y, _flux = isolated_bright_stars(truth)[0]
    add_stars(dc, img, [(x, y)])
    stars = remove_stars(dc, img, [0])
    assert stars.size == 0 and len(stars_table(stars)) == 0
    stars = add_stars(dc, img, [(x, y)])
    assert stars.size == 1 and stars["star_id"][0] == 1


def test_detect_finds_the_stars_and_keeps_picked_ones(image):
    dc, img, truth = image
    x, y, _flux = isolated_bright_stars(truth)[0]
    add_stars(dc, img, [(x, y)])
    stars = detect_stars(dc, img)
    assert stars.size >= 25
    assert stars["star_id"][0] == 0  # the picked star is still the first row
    assert len(set(np.asarray(stars["star_id"]).tolist())) == stars.size
    # no duplicates: every pair of stars is more than 2 pixels apart
    xy = np.column_stack([stars["x"], stars["y"]])
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    assert d.min() > 2.0
    assert star_at(stars, x + 1.0, y) == 0
    assert star_at(stars, -50, -50) is None


def test_image_roi_selects_stars_through_the_pixel_links(image):
    dc, img, truth = image
    picks = isolated_bright_stars(truth, n=3)
    stars = add_stars(dc, img, [p[:2] for p in picks])
    x, y, _f = picks[0]
    roi = RectangularROI(x - 3, x + 3, y - 3, y + 3)
    state = RoiSubsetState(img.pixel_component_ids[1], img.pixel_component_ids[0], roi)
    group = dc.new_subset_group("roi", state)
    by_data = {s.data: s for s in group.subsets}
    assert by_data[stars].to_mask().tolist() == [True, False, False]
    assert by_data[img].to_mask().sum() > 0


def test_update_sky_after_a_wcs_is_attached():
    from glue_zeropoint.glue.stars import update_sky

    ccd, truth = sim_ccd(seed=11)
    wcs = ccd.wcs
    ccd.wcs = None
    img = ccd_to_data(ccd, "no wcs yet")
    dc = DataCollection([img])
    x, y, _flux = isolated_bright_stars(truth)[0]
    stars = add_stars(dc, img, [(x, y)])
    assert np.isnan(stars["ra"][0]) and len(links_between(dc, stars, img)) == 2
    img.coords = wcs
    img.meta["zp_wcs_header"] = wcs.to_header_string(relax=True)
    assert update_sky(dc, img) is stars
    ra, dec = wcs.all_pix2world([[stars["x"][0], stars["y"][0]]], 0)[0]
    assert stars["ra"][0] == pytest.approx(ra) and stars["dec"][0] == pytest.approx(dec)
    assert len(links_between(dc, stars, img)) == 4


def test_table_row_selections_stay_on_the_same_stars(image):
    from glue.core.subset import ElementSubsetState

    dc, img, truth = image
    picks = isolated_bright_stars(truth, n=3)
    stars = add_stars(dc, img, [p[:2] for p in picks])
    group = dc.new_subset_group("rows", ElementSubsetState(indices=[1, 2], data=stars))
    subset = next(s for s in group.subsets if s.data is stars)
    assert stars["star_id"][subset.to_mask()].tolist() == [1, 2]
    remove_stars(dc, img, [0])
    assert stars["star_id"][subset.to_mask()].tolist() == [1, 2]
    add_stars(dc, img, [picks[0][:2]])
    assert stars["star_id"][subset.to_mask()].tolist() == [1, 2]


def test_stars_from_and_to_ds9_regions_without_qt(image, tmp_path):
    """The scripting path (Glue's terminal, a notebook): no Qt involved."""
    from astropy.coordinates import SkyCoord
    from regions import CirclePixelRegion, PixCoord, Regions

    from glue_zeropoint.exceptions import InputError
    from glue_zeropoint.glue.loader import wcs_from_meta
    from glue_zeropoint.glue.stars import add_stars_from_regions, write_star_regions

    dc, data, truth = image
    with pytest.raises(InputError, match="no stars listed yet"):
        write_star_regions(dc, data, tmp_path / "none.reg")
    picked = isolated_bright_stars(truth, n=3)
    wcs = wcs_from_meta(data)
    regs = [CirclePixelRegion(PixCoord(x - 0.9, y + 0.6), 4.0).to_sky(wcs) for x, y, _ in picked]
    path = tmp_path / "marked.reg"
    Regions(regs).write(str(path), format="ds9")
    stars, added = add_stars_from_regions(dc, data, path)
    assert len(added) == 3 and stars.size == 3
    for (x, y, _f), sx, sy in zip(picked, stars["x"], stars["y"], strict=True):
        assert abs(sx - x) < 0.25 and abs(sy - y) < 0.25
    # the same file again adds nothing: every region is a listed star
    assert add_stars_from_regions(dc, data, path)[1] == []
    out = write_star_regions(dc, data, tmp_path / "out.reg")
    back = SkyCoord([r.center for r in Regions.read(str(out), format="ds9")])
    bx, by = wcs.world_to_pixel(back)
    np.testing.assert_allclose(bx, stars["x"], atol=1e-3)
    np.testing.assert_allclose(by, stars["y"], atol=1e-3)


def test_a_finished_measurement_is_adopted_as_it_is(image):
    """A measurement made elsewhere (``measure`` with the catalog's undetected neighbours)
    becomes the stars dataset with its own fluxes and flags; bare positions are measured."""
    from glue_zeropoint.exceptions import InputError
    from glue_zeropoint.glue.datasets import night_datasets
    from glue_zeropoint.photometry import find_stars, measure_stars
    from glue_zeropoint.photometry.flags import FLAG_CROWDED
    from glue_zeropoint.simulate import reference_catalog

    dc, img, truth = image
    ccd, _ = sim_ccd(seed=11)
    found = find_stars(ccd)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a small frame's few curve-of-growth stars
        measured = measure_stars(ccd, found)
    measured["flags"][:3] |= FLAG_CROWDED  # what only the measurement knew
    stars = adopt_stars(dc, img, measured)
    assert stars is stars_for(dc, img) and stars.size == len(measured)
    for name in ("x", "y", "flux", "flux_err", "mag_inst", "flags"):
        assert np.array_equal(stars[name], np.asarray(measured[name])), name
    assert list(stars["star_id"]) == list(measured["star_id"])
    assert stars.meta["zp_aperture"]["r"] == measured.meta["aperture_radius"]
    assert stars.meta["zp_next_star_id"] == int(np.max(measured["star_id"])) + 1
    with pytest.raises(InputError, match="finished measurement"):
        adopt_stars(dc, img, found["x", "y"])
    # night_datasets: a measurement is adopted, bare positions are measured
    catalog = reference_catalog(truth["field"], style="normalised", seed=11)
    for given, adopted in ((measured, True), (found["x", "y"], False)):
        dc2 = DataCollection()
        _d, first, _c, stars2 = night_datasets(dc2, [ccd], catalog, "V", stars=given)
        crowded = (np.asarray(stars2["flags"])[:3] & FLAG_CROWDED) != 0
        assert crowded.all() == adopted
