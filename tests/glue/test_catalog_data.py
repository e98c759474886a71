import json

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table
from astropy.wcs import WCS
from glue.core import Data, DataCollection
from glue.core.roi import CircularROI
from glue.core.subset import RoiSubsetState
from zp_nights import sim_ccd

from glue_zeropoint.catalogs import read_catalog, write_catalog
from glue_zeropoint.exceptions import CatalogError
from glue_zeropoint.glue.catalog_data import catalog_to_data, catalogs_for, link_catalog
from glue_zeropoint.glue.links import links_between, sky_component_ids
from glue_zeropoint.glue.loader import ccd_to_data
from glue_zeropoint.glue.stars import add_stars
from glue_zeropoint.simulate import reference_catalog


@pytest.fixture
def field(tmp_path):
    ccd, truth = sim_ccd(seed=21)
    image = ccd_to_data(ccd, "M13 V")
    path = tmp_path / "ref.ecsv"
    write_catalog(read_catalog_from(truth, tmp_path), path)
    return DataCollection([image]), image, truth, read_catalog(path)


def read_catalog_from(truth, tmp_path):
    raw = reference_catalog(truth["field"], style="apass")
    raw_path = tmp_path / "apass.ecsv"
    raw.write(raw_path, format="ascii.ecsv")
    return read_catalog(raw_path)


def test_catalog_table_becomes_a_glue_table(field):
    _dc, _image, _truth, table = field
    data = catalog_to_data(table, "APASS: M13 V")
    labels = [c.label for c in data.main_components]
    assert {"id", "ra", "dec", "mag_V", "err_V"} <= set(labels)
    assert data.size == len(table)
    np.testing.assert_allclose(data["ra"], np.asarray(table["ra"], float))
    assert data.get_kind("id") == "categorical"
    assert data.meta["zp_kind"] == "catalog"
    assert json.loads(json.dumps(dict(data.meta))) == dict(data.meta)


def test_masked_and_boolean_columns():
    table = Table({"ra": [1.0, 2.0], "dec": [3.0, 4.0],
                   "mag_V": MaskedColumn([12.0, 13.0], mask=[False, True]),
                   "variable": [True, False], "otype": ["V*", "*"]})
    table.meta["retrieved"] = object()  # not JSON: dropped
    data = catalog_to_data(table, "t")
    assert np.isnan(data["mag_V"][1]) and data["mag_V"][0] == 12.0
    assert data["variable"].tolist() == [1, 0]
    assert "retrieved" not in data.meta
    with pytest.raises(CatalogError, match="no 'ra'/'dec'"):
        catalog_to_data(Table({"x": [1.0]}), "bad")


def test_link_catalog_to_image_world_and_to_stars(field):
    dc, image, truth, table = field
    catalog = catalog_to_data(table, "APASS: M13 V")
    link_catalog(dc, catalog, image)
    assert catalogs_for(dc, image) == [catalog]
    assert len(links_between(dc, catalog, image)) == 2
    # stars made after the catalog get linked to it too
    x, y = truth["field"].stars["x"][0], truth["field"].stars["y"][0]
    stars = add_stars(dc, image, [(x, y)])
    assert len(links_between(dc, catalog, stars)) == 2
    # catalog positions map onto the image pixels through the WCS
    cx = catalog[image.pixel_component_ids[1]]
    cy = catalog[image.pixel_component_ids[0]]
    px, py = image.coords.world_to_pixel_values(np.asarray(table["ra"]), np.asarray(table["dec"]))
    np.testing.assert_allclose(cx, px, atol=1e-6)
    np.testing.assert_allclose(cy, py, atol=1e-6)
    # a ROI on the image selects catalog sources inside it
    roi = CircularROI(float(x), float(y), 5.0)
    group = dc.new_subset_group("around", RoiSubsetState(image.pixel_component_ids[1],
                                                         image.pixel_component_ids[0], roi))
    masks = {s.data: s.to_mask() for s in group.subsets}
    inside = np.hypot(px - x, py - y) < 5.0
    assert masks[catalog].tolist() == inside.tolist() and inside.any()
    assert masks[stars].tolist() == [True]


def test_ra_is_found_by_axis_type_not_position():
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["DEC--TAN", "RA---TAN"]
    wcs.wcs.crval = [36.0, 250.0]
    wcs.wcs.crpix = [5, 5]
    wcs.wcs.cdelt = [1e-4, 1e-4]
    image = Data(flux=np.zeros((10, 10)), coords=wcs, label="swapped")
    ra_id, dec_id = sky_component_ids(image)
    assert ra_id is image.world_component_ids[0]
    assert dec_id is image.world_component_ids[1]
    assert sky_component_ids(Data(flux=np.zeros((3, 3)), label="no wcs")) is None


@pytest.mark.filterwarnings("ignore:Some non-standard WCS keywords")
def test_session_round_trip_keeps_tables_meta_and_links(field):
    from glue.core.state import GlueSerializer, GlueUnSerializer

    from glue_zeropoint.glue.stars import stars_for

    dc, image, truth, table = field
    catalog = catalog_to_data(table, "APASS: M13 V")
    link_catalog(dc, catalog, image)
    x, y = truth["field"].stars["x"][0], truth["field"].stars["y"][0]
    stars = add_stars(dc, image, [(x, y)])
    restored = GlueUnSerializer.loads(GlueSerializer(dc).dumps()).object("__main__")
    by_label = {d.label: d for d in restored}
    image2, catalog2 = by_label["M13 V"], by_label["APASS: M13 V"]
    stars2 = stars_for(restored, image2)
    assert stars2 is not None and stars2.meta["zp_aperture"] == stars.meta["zp_aperture"]
    assert catalogs_for(restored, image2) == [catalog2]
    assert len(links_between(restored, stars2, image2)) == 4
    assert len(links_between(restored, catalog2, image2)) == 2
    assert len(links_between(restored, catalog2, stars2)) == 2
    # glue alone restores the WCS without SIP (unless the session feature saves it);
    # re-attaching the one kept in meta fixes the positions
    if image2.coords.sip is None:
        from glue_zeropoint.glue.loader import wcs_from_meta
        from glue_zeropoint.glue.wcs_update import attach_wcs

        attach_wcs(image2, wcs_from_meta(image2), data_collection=restored)
    assert image2.coords.sip is not None
    np.testing.assert_allclose(catalog2[image2.pixel_component_ids[1]],
                               catalog[image.pixel_component_ids[1]], atol=1e-6)
    assert list(catalog2["id"]) == list(catalog["id"])
