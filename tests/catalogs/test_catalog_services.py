"""query_vizier / query_simbad: astroquery's real clients over HTTP to the CDS stub."""


import numpy as np
import pytest
from astropy import units as u
from catalog_helpers import RADIUS, in_cone

from glue_zeropoint.catalogs import query_simbad, query_vizier
from glue_zeropoint.exceptions import CatalogError, CatalogServiceError

# ---------------------------------------------------------------- VizieR: what is sent, parsed


def test_apass_request_and_table(stub, field, center):
    cat = query_vizier("II/336/apass9", center, RADIUS)
    sent = stub.vizier_requests()
    assert len(sent) == 1 and sent[0]["method"] == "POST" and sent[0]["path"] == "/viz-bin/votable"
    params = sent[0]["params"]
    assert params["-source"] == "II/336/apass9"
    ra, dec = params["-c"].split("+")
    assert float(ra) == pytest.approx(150.0, abs=1e-4) and float(dec) == pytest.approx(20, abs=1e-4)
    assert float(params["-c.rd"]) == pytest.approx(RADIUS.to_value(u.deg))
    assert params["-out.max"] == "20000"  # never astroquery's default of 50
    out = params["-out"].split(",")
    assert {"*", "RAJ2000", "DEJ2000", "Vmag", "e_Vmag"} <= set(out)
    assert "recno" not in out  # never kept as an identifier, so never asked for
    assert "r'mag" not in out  # in APASS's default set ('*'); optional in the spec
    # parsed: exactly the stars in the cone, with their magnitudes
    truth = in_cone(field.ra, field.dec, center, RADIUS)
    assert len(cat) == truth.sum() > 10
    np.testing.assert_allclose(np.sort(cat["mag_V"]), np.sort(np.round(field.V[truth], 3)))
    assert cat.meta["catalog"] == "vizier:II/336/apass9" and cat.meta["service"] == "vizier"
    assert cat.meta["query"]["row_limit"] == 20000
    assert cat.meta["query"]["radius"] == pytest.approx(RADIUS.to_value(u.deg))
    assert cat.meta["truncated"] is False and cat.meta["from_cache"] is False
    assert cat.meta["bands"] == ["B", "V", "g", "r", "i"]
    assert cat["ref_epoch"][0] == 2000.0 and np.all(np.isnan(cat["pmra"]))


def test_row_limit_is_set_and_a_full_answer_is_flagged(stub, center):
    with pytest.warns(UserWarning, match=r"II/336/apass9.*cut at row_limit=7"):
        cat = query_vizier("II/336/apass9", center, RADIUS, row_limit=7)
    assert stub.vizier_requests()[0]["params"]["-out.max"] == "7"
    assert len(cat) == 7 and cat.meta["truncated"] is True


def test_unlimited_rows(stub, field, center):
    cat = query_vizier("II/336/apass9", center, RADIUS, row_limit=-1)
    assert stub.vizier_requests()[0]["params"]["-out.max"] == "unlimited"
    assert cat.meta["truncated"] is False
    assert len(cat) == in_cone(field.ra, field.dec, center, RADIUS).sum()


def test_recorded_answer_at_the_50_row_default_is_flagged(cds_stub, center):
    cds_stub.set_vizier_file("J/ApJ/706/83", "kang2010.xml")  # 50 rows: astroquery's default
    with pytest.warns(UserWarning, match="cut at row_limit=50"):
        cat = query_vizier("J/ApJ/706/83", center, RADIUS, row_limit=50)
    assert len(cat) == 50 and cat.meta["truncated"]
    assert cat.meta["bands"] == ["J", "H", "Ks"]


def test_gaia_syntphot_joined_with_gaiadr3(stub, field, center):
    cat = query_vizier("I/360/syntphot", center, RADIUS)
    sent = [r["params"] for r in stub.vizier_requests()]
    assert [p["-source"] for p in sent] == ["I/360/syntphot", "I/355/gaiadr3"]
    assert "pmRA" not in sent[0]["-out"] and "Vmag" in sent[0]["-out"]
    assert sent[0]["-out"].split(",")[:3] == ["Source", "RA_ICRS", "DE_ICRS"]
    assert sent[1]["-out"] == "Source,pmRA,pmDE,VarFlag" and sent[1]["Gmag"] == "<18"
    truth = in_cone(field.ra, field.dec, center, RADIUS)
    index = {s: i for i, s in enumerate(field.source)}
    rows = np.array([index[int(s)] for s in cat["id"]])
    assert len(rows) == truth.sum()
    np.testing.assert_allclose(cat["pmra"], field.pmra[rows])
    np.testing.assert_allclose(cat["mag_V"], np.round(field.V[rows], 4))
    np.testing.assert_array_equal(cat["variable"], field.variable[rows])
    assert np.all(np.isnan(cat["mag_U"]))  # UFlag = 0: outside the validated range
    np.testing.assert_allclose(cat["err_V"], 2.5 / np.log(10) * 0.01)
    assert cat["ref_epoch"][0] == 2016.0
    assert cat.meta["bands"] == ["U", "B", "V", "R", "I", "u", "g", "r", "i", "z"]


def test_companion_failure_keeps_the_photometry(stub, center):
    def fail_gaiadr3(params):
        raise KeyError("gone")

    stub.set_vizier("I/355/gaiadr3", fail_gaiadr3)
    with pytest.warns(UserWarning, match="could not add pmRA, pmDE, VarFlag from I/355/gaiadr3"):
        cat = query_vizier("I/360/syntphot", center, RADIUS)
    assert len(cat) > 0 and np.all(np.isnan(cat["pmra"]))


def test_refcat2_epoch_and_dupvar(stub, field, center):
    cat = query_vizier("vizier:J/ApJ/867/105", center, RADIUS)
    assert cat.meta["bands"] == ["g", "r", "i", "z"]
    assert np.all(cat["ref_epoch"] == 2015.5)
    assert np.all(np.isfinite(cat["pmra"]))
    truth = in_cone(field.ra, field.dec, center, RADIUS)
    assert cat["variable"].sum() == field.variable[truth].sum()


# ---------------------------------------------------------------- VizieR: failures


def test_empty_answer(stub):
    from astropy.coordinates import SkyCoord

    far = SkyCoord(10, -60, unit="deg")
    with pytest.raises(CatalogError, match=r"VizieR \(II/336/apass9\) has no stars within 10.00"):
        query_vizier("II/336/apass9", far, RADIUS)


def test_vizier_error_votable(cds_stub, center):
    cds_stub.set_vizier_file("II/336/apass9", "no_server_error.xml")
    with pytest.raises(CatalogServiceError,
                       match=r"VizieR \(II/336/apass9\) answered with an error: The database is "
                             r"not currently reachable"):
        query_vizier("II/336/apass9", center, RADIUS)


def test_timeout_is_bounded(stub, center):
    stub.fail("timeout", delay=300.0)  # the stub holds its answer until released
    with pytest.raises(CatalogServiceError, match=r"did not answer within 0.5 s"):
        query_vizier("II/336/apass9", center, RADIUS, timeout=0.5)
    assert stub.held == 1  # the client gave up while the server still held the answer
    stub.release()


@pytest.mark.parametrize("mode, message", [
    ("http500", r"VizieR \(II/336/apass9\) failed with HTTP 500 .*try again later"),
    ("http429", r"rate limiting this computer \(HTTP 429.*wait 30 s"),
    ("truncated", r"truncated or malformed VOTable.*try again"),
    ("garbage", r"did not send a VOTable"),
    ("reset", r"VizieR \(II/336/apass9\) could not be reached"),
])
def test_server_failures(stub, center, mode, message):
    stub.fail(mode)
    with pytest.raises(CatalogServiceError, match=message):
        query_vizier("II/336/apass9", center, RADIUS)


def test_connection_refused(stub, center):
    stub.stop()
    with pytest.raises(CatalogServiceError, match=r"could not be reached at http://127.0.0.1"):
        query_vizier("II/336/apass9", center, RADIUS, timeout=2)


def test_unknown_catalog_is_an_http_error(stub, center):
    with pytest.raises(CatalogServiceError, match=r"refused the query with HTTP 404"):
        query_vizier("II/999/none", center, RADIUS)


def test_center_must_be_coordinates(stub):
    with pytest.raises(CatalogError, match="must be a SkyCoord"):
        query_vizier("II/336/apass9", "M 31", RADIUS)
    assert stub.requests == []


# ---------------------------------------------------------------- SIMBAD


def test_simbad_requests_and_table(stub, field, center):
    cat = query_simbad(center, RADIUS)
    paths = [(r["method"], r["path"]) for r in stub.requests]
    assert paths[0] == ("GET", "/simbad/sim-tap/capabilities")
    assert set(paths[1:]) == {("POST", "/simbad/sim-tap/sync")}
    sync = [r["params"] for r in stub.requests if r["path"].endswith("/sync")]
    assert all(p["REQUEST"] == "doQuery" and p["LANG"] == "ADQL" for p in sync)
    adql = stub.simbad_queries()[-1]
    assert adql.startswith("SELECT TOP 20000 ")
    for column in ('basic."main_id"', 'basic."ra"', 'basic."dec"', 'basic."otype"',
                   'allfluxes."B"', 'allfluxes."V"', 'allfluxes."R"', 'allfluxes."I"'):
        assert column in adql
    assert 'JOIN allfluxes ON basic."oid" = allfluxes."oidref"' in adql
    assert (f"CONTAINS(POINT('ICRS', basic.ra, basic.dec), CIRCLE('ICRS', 150.0, 20.0, "
            f"{RADIUS.to_value(u.deg)})) = 1") in adql
    truth = in_cone(field.ra, field.dec, center, RADIUS)
    reference = field.simbad()[truth]
    assert list(cat["id"]) == list(reference["main_id"])
    assert list(cat["otype"]) == list(reference["otype"])
    np.testing.assert_array_equal(cat["variable"], reference["otype"] == "RR*")
    np.testing.assert_array_equal(cat["nonstellar"], reference["otype"] == "G")
    np.testing.assert_allclose(cat["mag_V"], reference["V"], rtol=1e-6)
    assert cat.meta["bands"] == ["B", "V", "R", "I"] and cat.meta["service"] == "simbad"
    assert cat.meta["catalog"] == "simbad"


def test_simbad_recorded_answers(cds_stub, center):
    from catalog_helpers import CDS

    cds_stub.set_simbad((CDS / "simbad_M1.vot").read_bytes())
    cat = query_simbad(center, RADIUS)
    assert list(cat["id"]) == ["M   1"] and cat["ra"][0] == pytest.approx(83.6287)


def test_simbad_empty_answer(cds_stub, center):
    from catalog_helpers import CDS

    cds_stub.set_simbad((CDS / "simbad_TEST.vot").read_bytes())
    with pytest.raises(CatalogError, match="SIMBAD knows no object within 10.00"):
        query_simbad(center, RADIUS)
    empty = query_simbad(center, RADIUS, allow_empty=True)
    assert len(empty) == 0 and "id" in empty.colnames and "variable" in empty.colnames


def test_simbad_row_limit(stub, center):
    with pytest.warns(UserWarning, match="SIMBAD: the answer was cut at 3 rows"):
        cat = query_simbad(center, RADIUS, row_limit=3)
    assert len(cat) == 3 and cat.meta["truncated"]
    assert stub.simbad_queries()[-1].startswith("SELECT TOP 3 ")


@pytest.mark.parametrize("mode, match, message", [
    ("http500", None, r"SIMBAD \(cone search\) failed with HTTP 500"),
    ("http500", "CONTAINS", r"SIMBAD \(cone search\) failed with HTTP 500"),
    ("http429", None, r"SIMBAD \(cone search\) is rate limiting this computer \(HTTP 429"),
    ("http429", "CONTAINS", r"SIMBAD \(cone search\) is rate limiting this computer"),
    ("truncated", "CONTAINS", r"SIMBAD sent a truncated or malformed VOTable"),
    ("truncated", None, r"SIMBAD sent a truncated or malformed"),
    ("garbage", "CONTAINS", r"SIMBAD sent a truncated or malformed VOTable"),
])
def test_simbad_failures(stub, center, mode, match, message):
    stub.fail(mode, service="simbad", match=match)
    with pytest.raises(CatalogServiceError, match=message):
        query_simbad(center, RADIUS)


@pytest.mark.parametrize("match", [None, "CONTAINS"])  # capabilities, or the cone query
def test_simbad_timeout(stub, center, match):
    stub.fail("timeout", service="simbad", delay=300.0, match=match)  # held until released
    with pytest.raises(CatalogServiceError, match=r"SIMBAD \(cone search\) did not answer within"):
        query_simbad(center, RADIUS, timeout=0.5)
    assert stub.held >= 1  # the client gave up while the server still held its answer(s)
    stub.release()


def test_simbad_connection_refused(stub, center):
    stub.stop()
    with pytest.raises(CatalogServiceError, match=r"SIMBAD \(cone search\) could not be reached"):
        query_simbad(center, RADIUS, timeout=2)
