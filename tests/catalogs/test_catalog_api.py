"""get_catalog (specs, defaults by band, cache hit, fallback, offline) and field_of."""

import shutil

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS
from catalog_helpers import CDS, RADIUS, in_cone

from glue_zeropoint.catalogs import CatalogCache, field_of, get_catalog, parse_spec
from glue_zeropoint.exceptions import CatalogError, CatalogServiceError


@pytest.fixture
def cache(tmp_path):
    return CatalogCache(tmp_path / "cache")


def test_query_is_cached_and_reused(stub, center, cache):
    first = get_catalog("vizier:II/336/apass9", center, RADIUS, cache=cache)
    assert first.meta["from_cache"] is False and len(cache) == 1
    n_requests = len(stub.requests)
    second = get_catalog("vizier:II/336/apass9", center, RADIUS, cache=cache)
    assert len(stub.requests) == n_requests  # no new query
    assert second.meta["from_cache"] is True and 0 <= second.meta["cache_age_s"] < 60
    np.testing.assert_array_equal(second["mag_V"], first["mag_V"])
    assert list(second["id"]) == list(first["id"])
    assert second.meta["catalog"] == "vizier:II/336/apass9"
    assert second.meta["query"] == first.meta["query"]


def test_default_cache_folder_from_environment(stub, center, tmp_path):
    get_catalog("simbad", center, RADIUS)
    assert len(list((tmp_path / "catalog-cache").glob("*.ecsv"))) == 1


def test_refresh_queries_again(stub, center, cache):
    get_catalog("vizier:II/336/apass9", center, RADIUS, cache=cache)
    fresh = get_catalog("vizier:II/336/apass9", center, RADIUS, cache=cache, refresh=True)
    assert len(stub.vizier_requests()) == 2 and fresh.meta["from_cache"] is False


def test_stale_entry_is_refreshed(stub, center, tmp_path):
    cache = CatalogCache(tmp_path / "c", max_age=0.0)
    get_catalog("vizier:II/336/apass9", center, RADIUS, cache=cache)
    get_catalog("vizier:II/336/apass9", center, RADIUS, cache=cache)
    assert len(stub.vizier_requests()) == 2


def test_fallback_to_cache_when_the_service_is_down(stub, center, cache):
    get_catalog("vizier:II/336/apass9", center, RADIUS, cache=cache)
    stub.stop()
    with pytest.warns(UserWarning, match=r"VizieR II/336/apass9 failed \(.*could not be "
                                         r"reached.*using the cached answer from \d+ s ago"):
        table = get_catalog("vizier:II/336/apass9", center, RADIUS, cache=cache, refresh=True,
                            timeout=2)
    assert table.meta["from_cache"] is True and len(table) > 0


def test_fallback_for_simbad_on_http_500(stub, center, cache):
    get_catalog("simbad", center, RADIUS, cache=cache)
    stub.fail("http500", service="simbad")
    with pytest.warns(UserWarning, match=r"SIMBAD failed .*HTTP 500.*cached answer"):
        table = get_catalog("simbad", center, RADIUS, cache=cache, refresh=True)
    assert table.meta["from_cache"] and "otype" in table.colnames


def test_failure_without_cache_raises(stub, center, cache):
    stub.fail("http500")
    with pytest.raises(CatalogServiceError, match="HTTP 500"):
        get_catalog("vizier:II/336/apass9", center, RADIUS, cache=cache)
    assert len(cache) == 0


def test_offline_without_cache_says_what_to_do(stub, center, cache):
    with pytest.raises(CatalogError, match=r"offline: no cached answer of VizieR II/336/apass9"
                                           r".*glue-zeropoint catalog IMAGE --catalog "
                                           r"vizier:II/336/apass9"):
        get_catalog("vizier:II/336/apass9", center, RADIUS, cache=cache, offline=True)
    assert stub.requests == []


def test_offline_uses_cache_only(stub, center, cache, monkeypatch):
    get_catalog("vizier:II/336/apass9", center, RADIUS, cache=cache)
    stub.stop()
    n = len(stub.requests)
    table = get_catalog("vizier:II/336/apass9", center, RADIUS, cache=cache, offline=True)
    assert table.meta["from_cache"] and len(stub.requests) == n
    monkeypatch.setenv("GLUE_ZEROPOINT_OFFLINE", "1")
    smaller = get_catalog("vizier:II/336/apass9", center, RADIUS / 2, cache=cache)
    # answered from the cached 10' cone, cut to the 5' one
    assert smaller.meta["from_cache"] and 0 < len(smaller) < len(table)
    sep = SkyCoord(smaller["ra"], smaller["dec"], unit="deg").separation(center)
    assert np.all(sep <= RADIUS / 2)


def test_cache_false_writes_nothing(stub, center, tmp_path):
    get_catalog("vizier:II/336/apass9", center, RADIUS, cache=False)
    assert not (tmp_path / "catalog-cache").exists()


def test_default_for_V_is_gaia_syntphot(stub, center, cache):
    table = get_catalog("default", center, RADIUS, band="V", cache=cache)
    assert table.meta["catalog"] == "vizier:I/360/syntphot"
    assert table.meta["default_for_band"] == "V"


def test_default_for_V_falls_back_to_apass(cds_stub, field, center, cache):
    cds_stub.set_vizier("II/336/apass9", field.apass())  # no syntphot answer: HTTP 404
    with pytest.warns(UserWarning, match=r"default catalog for band V: using II/336/apass9"):
        table = get_catalog("default", center, RADIUS, band="V", cache=cache)
    assert table.meta["catalog"] == "vizier:II/336/apass9"
    assert [r["params"]["-source"] for r in cds_stub.vizier_requests()] == [
        "I/360/syntphot", "II/336/apass9"]


def test_default_for_r_is_refcat2(stub, center, cache):
    table = get_catalog("default", center, RADIUS, band="r", cache=cache)
    assert table.meta["catalog"] == "vizier:J/ApJ/867/105"


def test_default_needs_a_band(center):
    with pytest.raises(CatalogError, match="pass band="):
        get_catalog("default", center, RADIUS)
    with pytest.raises(CatalogError, match="no default catalog for band 'Q'"):
        get_catalog("default", center, RADIUS, band="Q")


def test_band_is_checked(stub, center, cache):
    with pytest.raises(CatalogError, match=r"has no band 'R'; it has: B, V, g, r, i"):
        get_catalog("vizier:II/336/apass9", center, RADIUS, band="R", cache=cache)


def test_local_file_spec(tmp_path, center):
    path = tmp_path / "landolt.csv"
    shutil.copy(CDS / "landolt1992_standards.csv", path)
    table = get_catalog(str(path), center, RADIUS, band="V", offline=True)
    assert len(table) == 526 and table.meta["catalog"] == str(path)
    with pytest.raises(CatalogError, match="has no band 'z'; it has: U, B, V, R, I"):
        get_catalog(path, center, RADIUS, band="z")


@pytest.mark.parametrize("spec, message", [
    ("", "empty catalog spec"), ("vizier:", "needs a catalog id"),
    ("nothere.ecsv", "nothere.ecsv: no such catalog file"),
])
def test_bad_specs(spec, message):
    with pytest.raises(CatalogError, match=message):
        parse_spec(spec)


def test_progress_is_reported(stub, center, cache):
    calls = []
    get_catalog("vizier:II/336/apass9", center, RADIUS, cache=cache,
                progress=lambda done, total, msg: calls.append((done, total, msg)))
    assert calls[0] == (0, 1, "querying VizieR II/336/apass9")
    assert calls[-1][0] == 1 and "rows" in calls[-1][2]


def test_one_query_per_field(stub, field, center, cache):
    table = get_catalog("simbad", center, RADIUS, cache=cache)
    cones = [q for q in stub.simbad_queries() if "CONTAINS" in q]
    assert len(cones) == 1
    assert len(table) == in_cone(field.ra, field.dec, center, RADIUS).sum()


# ---------------------------------------------------------------- field_of


def _wcs(nx=600, ny=400, scale=1.5, ra=150.0, dec=20.0, rot=False):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]
    wcs.wcs.cdelt = [-scale / 3600, scale / 3600]
    return wcs


def test_field_of_centre_and_radius():
    center, radius = field_of(_wcs(), (400, 600))
    assert center.ra.deg == pytest.approx(150.0, abs=1e-8)
    assert center.dec.deg == pytest.approx(20.0, abs=1e-8)
    half_diagonal = np.hypot(600, 400) / 2 * 1.5 * u.arcsec
    assert radius.to(u.arcsec).value == pytest.approx((half_diagonal + 1 * u.arcmin).value,
                                                      rel=1e-3)
    _, bigger = field_of(_wcs(), (400, 600), margin=5 * u.arcmin)
    assert (bigger - radius).to(u.arcmin).value == pytest.approx(4.0)


def test_field_of_near_the_pole_and_ra_zero():
    center, radius = field_of(_wcs(ra=0.01, dec=89.9), (400, 600))
    assert center.dec.deg == pytest.approx(89.9, abs=1e-6)
    assert radius.to(u.arcmin).value == pytest.approx(9.0 + 1.0, rel=1e-2)  # not the RA span


def test_field_of_without_celestial_axes():
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["LINEAR", "LINEAR"]
    with pytest.raises(CatalogError, match="no celestial"):
        field_of(wcs, (10, 10))
