"""SIMBAD identification of measured stars: the real astroquery client over HTTP to the CDS stub."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from catalog_helpers import RADIUS

from glue_zeropoint.catalogs import CatalogCache, crossmatch, identify, identify_field
from glue_zeropoint.catalogs.identify import (
    NONSTELLAR_OTYPES,
    VARIABLE_OTYPES,
    is_nonstellar,
    is_variable,
)
from glue_zeropoint.exceptions import CatalogError, InputError

N_SIMBAD = 40  # SIMBAD knows the first 40 of the field's 60 stars


def measured(field, n=None, jitter_arcsec=0.3, seed=5):
    """Measured stars: the field's stars with a centroid/WCS error, in the order of the field."""
    n = field.n if n is None else n
    rng = np.random.default_rng(seed)
    dec = field.dec[:n] + rng.normal(0, jitter_arcsec, n) / 3600
    ra = field.ra[:n] + rng.normal(0, jitter_arcsec, n) / 3600 / np.cos(np.radians(field.dec[:n]))
    return Table({"star_id": np.arange(n), "ra": ra, "dec": dec,
                  "mag_inst": field.V[:n] - 25.0, "mag_inst_err": np.full(n, 0.01)})


@pytest.fixture
def simbad_stub(stub, field):
    stub.set_simbad(field.simbad(n=N_SIMBAD))
    return stub


def cone_queries(stub):
    return [q for q in stub.simbad_queries() if "CONTAINS" in q]


def in_field(field):
    """Indices of the field's stars inside the test cone."""
    center = SkyCoord(150.0, 20.0, unit="deg")
    return np.nonzero(SkyCoord(field.ra, field.dec, unit="deg").separation(center) <= RADIUS)[0]


def test_identify_field_one_cone_query_and_flags(simbad_stub, field, center):
    stars = measured(field)
    out = identify_field(stars, center, RADIUS)

    # what the client sent: one cone query for the whole field, with our centre and radius
    (adql,) = cone_queries(simbad_stub)
    circle = adql.split("CIRCLE('ICRS',")[1].split(")")[0]
    ra, dec, rad = (float(v) for v in circle.split(","))
    assert (ra, dec) == pytest.approx((150.0, 20.0)) and rad == pytest.approx(RADIUS.to_value(u.deg))
    assert adql.startswith("SELECT TOP 20000 ")
    assert "main_id" in adql and "otype" in adql

    inside = in_field(field)
    known = inside[inside < N_SIMBAD]
    unknown = inside[inside >= N_SIMBAD]
    assert len(known) > 10 and len(unknown) > 3
    ids = np.asarray(out["simbad_id"])
    assert list(ids[known]) == [f"TYC {1000 + k}-{k % 97}-1" for k in known]
    assert set(ids[unknown]) == {""} and set(np.asarray(out["simbad_otype"])[unknown]) == {""}
    assert np.all(np.isnan(np.asarray(out["simbad_sep_arcsec"])[unknown]))
    assert np.all(np.asarray(out["simbad_sep_arcsec"])[known] < 1.5)
    # a known variable (otype RR*) and a galaxy (otype G) of the simulated field
    variables = [k for k in known if field.variable[k]]
    assert variables and all(out["variable"][k] for k in variables)
    assert all(out["simbad_otype"][k] == "RR*" for k in variables)
    assert 1 in known and out["simbad_otype"][1] == "G" and out["nonstellar"][1]
    assert not out["variable"][1]
    others = [k for k in inside if k not in variables and k != 1]
    assert not np.any(np.asarray(out["variable"])[others])
    assert not np.any(np.asarray(out["nonstellar"])[others])
    assert not np.any(np.asarray(out["variable"])[unknown])
    info = out.meta["identify"]
    assert info["n_identified"] == len(known) and info["n_variable"] == len(variables)
    assert info["n_nonstellar"] == 1 and info["from_cache"] is False
    # the input columns are kept, in order, and the input is not modified
    assert out.colnames[:5] == stars.colnames and "simbad_id" not in stars.colnames

    # the same field again: answered by the cache, no new query
    again = identify_field(stars, center, RADIUS)
    assert len(cone_queries(simbad_stub)) == 1
    assert again.meta["identify"]["from_cache"] is True
    assert list(again["simbad_id"]) == list(out["simbad_id"])


def test_offline_from_the_cache_after_the_stub_is_stopped(simbad_stub, field, center, tmp_path,
                                                          monkeypatch):
    stars = measured(field)
    online = identify_field(stars, center, RADIUS)
    simbad_stub.stop()
    n_requests = len(simbad_stub.requests)

    offline = identify_field(stars, center, RADIUS, offline=True)
    assert offline.meta["identify"]["from_cache"] is True
    assert list(offline["simbad_id"]) == list(online["simbad_id"])
    assert list(offline["variable"]) == list(online["variable"])
    # a smaller cone inside the cached one is answered offline too
    inner = identify_field(stars[:10], center, RADIUS / 2, offline=True)
    assert inner.meta["identify"]["from_cache"] is True
    # GLUE_ZEROPOINT_OFFLINE=1 is honoured as well
    monkeypatch.setenv("GLUE_ZEROPOINT_OFFLINE", "1")
    assert identify_field(stars, center, RADIUS).meta["identify"]["from_cache"] is True
    monkeypatch.delenv("GLUE_ZEROPOINT_OFFLINE")
    assert len(simbad_stub.requests) == n_requests  # nothing was sent

    # an empty cache offline: a clear message that says what to do
    with pytest.raises(CatalogError, match=r"offline: no cached answer of SIMBAD .*run the same "
                                           r"query once online"):
        identify_field(stars, center, RADIUS, offline=True, cache=CatalogCache(tmp_path / "e"))
    # online, the service down, nothing cached: the service failure is named
    with pytest.raises(CatalogError, match="SIMBAD"):
        identify_field(stars, center, RADIUS, cache=False, timeout=2)


def test_identify_field_defaults_to_the_stars_extent(simbad_stub, field):
    stars = measured(field, n=N_SIMBAD)
    out = identify_field(stars)
    (adql,) = cone_queries(simbad_stub)
    info = out.meta["identify"]
    assert f"{info['center_ra']:.6f}"[:6] in adql
    assert info["field_radius_deg"] > 0.18  # the stars' extent (0.2 deg disc) + 1 arcmin
    assert info["n_identified"] == N_SIMBAD


def test_empty_simbad_answer_leaves_every_star_unidentified(cds_stub, field, center):
    empty = field.simbad(n=2)[:0]
    cds_stub.set_simbad(empty)
    out = identify_field(measured(field), center, RADIUS)
    assert set(out["simbad_id"]) == {""} and not np.any(out["variable"])
    assert out.meta["identify"]["n_simbad"] == 0


def test_raw_astroquery_table_and_radius_fallback():
    stars = Table({"ra": [10.0, 10.01, 10.5], "dec": [20.0, 20.0, 20.0]})
    raw = Table({"main_id": ["V* XX Tst", "NGC 1"], "ra": [10.0 + 1e-4, 10.01],
                 "dec": [20.0, 20.0], "otype": ["EB?", "GiG"]})
    out = identify(stars, raw)
    assert list(out["simbad_id"]) == ["V* XX Tst", "NGC 1", ""]
    assert list(out["variable"]) == [True, False, False]
    assert list(out["nonstellar"]) == [False, True, False]
    info = out.meta["identify"]
    assert info["radius_arcsec"] == 3.0 and "too few pairs" in info["radius_method"]
    # a given radius; identifying twice replaces the columns
    again = identify(out, raw, radius=0.1 * u.arcsec)
    assert list(again["simbad_id"]) == ["", "NGC 1", ""]
    assert again.colnames.count("simbad_id") == 1


def test_bad_input_is_named():
    with pytest.raises(InputError, match="no 'ra' column"):
        identify(Table({"x": [1.0]}), Table({"id": ["a"], "ra": [1.0], "dec": [1.0]}))
    with pytest.raises(CatalogError, match="no object has a finite position"):
        identify(Table({"ra": [1.0], "dec": [1.0]}),
                 Table({"id": ["a"], "ra": [np.nan], "dec": [np.nan], "otype": ["*"]}))


def test_the_fit_leaves_simbad_variables_and_galaxies_out(field):
    """identify() on the crossmatch output marks cat_variable/cat_nonstellar for the fit."""
    from glue_zeropoint.zeropoint import fit_zeropoint

    stars = measured(field)
    stars.meta["exptime"] = 1.0
    ref = Table({"id": [str(k) for k in range(field.n)], "ra": field.ra, "dec": field.dec,
                 "mag_V": field.V, "err_V": np.full(field.n, 0.02),
                 "variable": np.zeros(field.n, bool), "nonstellar": np.zeros(field.n, bool)})
    simbad = Table({"id": [f"S{k}" for k in range(field.n)], "ra": field.ra, "dec": field.dec,
                    "otype": np.where(field.variable, "Mi*", "*")})
    simbad["otype"][1] = "QSO"
    matches = identify(crossmatch(stars, ref, radius=2.0), simbad, radius=2.0)
    assert np.array_equal(np.asarray(matches["cat_variable"]), field.variable | False)
    assert matches.meta["identify"]["marked_catalog"]["cat_nonstellar"] == 1
    zp = fit_zeropoint(matches, "V")
    reasons = dict(zip(zp.stars["star_id"].tolist(), zp.stars["reason"].tolist(), strict=True))
    assert {reasons[k] for k in np.nonzero(field.variable)[0]} == {"variable"}
    assert reasons[1] == "nonstellar"
    assert zp.n_used == field.n - field.variable.sum() - 1
    assert zp.zp == pytest.approx(25.0, abs=0.01)
    # not asked: the catalog flags stay the catalog's
    plain = identify(crossmatch(stars, ref, radius=2.0), simbad, mark_catalog=False)
    assert not np.any(np.asarray(plain["cat_variable"]))


@pytest.mark.parametrize("otype, variable, nonstellar", [
    ("*", False, False), ("**", False, False), ("PM*", False, False), ("", False, False),
    ("V*", True, False), ("V*?", True, False), ("RR*", True, False), ("RR?", True, False),
    ("Ce*", True, False), ("cC*", True, False), ("dS*", True, False), ("EB*", True, False),
    ("Al*", True, False), ("Mi*", True, False), ("LP*", True, False), ("LP?", True, False),
    ("sr*", True, False), ("Ir*", True, False), ("Or*", True, False), ("Er*", True, False),
    ("RI*", True, False), ("Ro*", True, False), ("BY*", True, False), ("RS*", True, False),
    ("Fl*", True, False), ("gD*", True, False), ("El*", True, False), ("bC*", True, False),
    ("WV*", True, False), ("CV*", True, False), ("No*", True, False), ("DN*", True, False),
    ("Pu*", True, False), ("RRLyr", True, False), ("RRLyrae", True, False),
    ("LongPeriodV*", True, False), ("EclBin", True, False), ("EclBin_Candidate", True, False),
    ("G", False, True), ("G?", False, True), ("GiG", False, True), ("QSO", False, True),
    ("Q?", False, True), ("AGN", False, True), ("Sy1", False, True), ("Cl*", False, True),
    ("GlC", False, True), ("OpC", False, True), ("PN", False, True), ("HII", False, True),
    ("RNe", False, True), ("SNR", False, True), ("Galaxy", False, True),
    ("GlobCluster", False, True),
])
def test_otype_classes(otype, variable, nonstellar):
    assert is_variable(otype) is variable
    assert is_nonstellar(otype) is nonstellar


def test_otype_lists_do_not_overlap():
    assert not (VARIABLE_OTYPES & NONSTELLAR_OTYPES)
