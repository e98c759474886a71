"""``glue-zeropoint measure --catalog vizier:... / simbad``: the real astroquery clients over HTTP
to the CDS stub (tests/cds_stub.py) serving the simulated field of the image, then offline from
the cache once the stub is stopped."""

import json
import re

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table

from glue_zeropoint.catalogs import DEFAULT_ROW_LIMIT, field_of
from glue_zeropoint.cli import main
from glue_zeropoint.simulate import FilterTruth, reference_catalog, simulate_image

SHAPE = (384, 384)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A calibrated product of a simulated field with a known ZP and colour term, and the
    field's catalogs as APASS (VizieR columns) and SIMBAD (B/V/R/I fluxes, no errors) give
    them."""
    root = tmp_path_factory.mktemp("measure_services")
    filt = FilterTruth(zp=21.5, color_term=0.1)
    ccd, truth = simulate_image(shape=SHAPE, n_stars=150, seed=41, filt=filt)
    product = root / "field_V_cal.fits"
    ccd.write(product, hdu_uncertainty="UNCERT", hdu_mask="MASK", overwrite=True)
    apass = reference_catalog(truth["field"], style="apass", seed=41)
    norm = reference_catalog(truth["field"], bands=("B", "V", "R", "I"), style="normalised",
                             seed=41)
    simbad = Table()
    simbad["main_id"] = np.array([f"TYC {1000 + k}-{k % 97}-1" for k in range(len(norm))])
    simbad["ra"] = np.asarray(norm["ra"]) * u.deg
    simbad["dec"] = np.asarray(norm["dec"]) * u.deg
    simbad["coo_err_maj"] = np.full(len(norm), 10.0, dtype=np.float32)
    simbad["otype"] = np.array(["*"] * len(norm), dtype="<U8")
    simbad["otype"][3] = "RR*"  # a known variable: SIMBAD marks it, the fit leaves it out
    for band in ("B", "V", "R", "I"):
        simbad[band] = np.round(np.asarray(norm[f"mag_{band}"]), 3).astype(np.float32)
    return {"product": product, "ccd": ccd, "truth": truth, "filt": filt, "apass": apass,
            "simbad": simbad, "variable_id": str(simbad["main_id"][3])}


def _run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _check_zp(d, filt):
    """zeropoint.json's ZP (at its reference colour) within 3 stated total errors of the
    truth."""
    zp_true = filt.zp + filt.color_term * (d["color_ref"] - filt.color_ref)
    assert abs(d["zp"] - zp_true) < 3 * d["zp_err_total"], (d["zp"], zp_true,
                                                              d["zp_err_total"])
    return zp_true


def _field(sim):
    w = sim["truth"]["field"].wcs
    center, radius = field_of(w, SHAPE)
    return w, center, radius


def _inside_image(w, ra, dec):
    x, y = w.world_to_pixel(SkyCoord(ra * u.deg, dec * u.deg))
    return -0.5 < x < SHAPE[1] - 0.5 and -0.5 < y < SHAPE[0] - 0.5


def test_measure_vizier_apass_then_offline_from_cache(sim, cds_stub, tmp_path, capsys):
    cds_stub.set_vizier("II/336/apass9", sim["apass"])
    out = tmp_path / "online"
    args = ["measure", str(sim["product"]), "--catalog", "vizier:II/336/apass9", "--band",
            "V", "--color", "B-V", "--no-plot"]
    code, stdout, stderr = _run(args + ["--out", str(out)], capsys)
    assert code == 0, stderr

    # what astroquery's VizieR client sent: one cone of APASS over the image, row limit set
    sent = cds_stub.vizier_requests()
    assert len(sent) == 1
    params = sent[0]["params"]
    assert params["-source"] == "II/336/apass9"
    ra, dec = (float(v) for v in re.match(r"\s*([0-9.]+)\s*([+-][0-9.]+)",
                                           params["-c"]).groups())
    w, center, radius = _field(sim)
    assert _inside_image(w, ra, dec)
    assert SkyCoord(ra * u.deg, dec * u.deg).separation(center) < 1 * u.arcsec
    unit = {"-c.rd": u.deg, "-c.rm": u.arcmin, "-c.rs": u.arcsec}
    (key,) = [k for k in unit if k in params]
    sent_radius = float(params[key]) * unit[key]
    assert abs(sent_radius - radius) < 0.01 * radius
    assert sent_radius > 0.5 * np.hypot(*SHAPE) * u.arcsec  # covers the corners (1"/pixel)
    assert params["-out.max"] == str(DEFAULT_ROW_LIMIT)
    assert {"Vmag", "e_Vmag", "Bmag", "e_Bmag"} <= set(params["-out"].split(","))

    d = json.loads((out / "zeropoint.json").read_text())
    zp_true = _check_zp(d, sim["filt"])
    assert d["catalog"] == "vizier:II/336/apass9" and d["n_used"] >= 40
    assert abs(d["color_term"] - sim["filt"].color_term) < 3 * d["color_term_err"] + 0.01
    # the header WCS is used as is, and its quality reported
    assert d["wcs_source"] == "header"
    assert 0 < d["wcs_rms_arcsec"] < 0.3 and d["wcs_n_matched"] >= 40
    assert "ZP(V) =" in stdout and "WCS: header; rms " in stdout

    # the service goes away: --offline measures from the cache, without a request
    cds_stub.stop()
    n_sent = len(cds_stub.requests)
    out2 = tmp_path / "offline"
    code, stdout, stderr = _run(args + ["--out", str(out2), "--offline"], capsys)
    assert code == 0, stderr
    assert len(cds_stub.requests) == n_sent
    d2 = json.loads((out2 / "zeropoint.json").read_text())
    assert d2["zp"] == pytest.approx(d["zp"], abs=1e-9)
    assert d2["n_used"] == d["n_used"]
    assert abs(d2["zp"] - zp_true) < 3 * d2["zp_err_total"]


def test_measure_offline_without_cache_exit_2(sim, cds_stub, tmp_path, capsys):
    cds_stub.set_vizier("II/336/apass9", sim["apass"])
    code, stdout, stderr = _run(["measure", str(sim["product"]), "--catalog",
                                 "vizier:II/336/apass9", "--band", "V", "--offline",
                                 "--out", str(tmp_path / "out"), "--no-plot"], capsys)
    assert code == 2
    assert "offline: no cached answer of VizieR II/336/apass9" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert cds_stub.requests == []


def test_measure_service_failure_without_cache_exit_1(sim, cds_stub, tmp_path, capsys):
    """A service that fails (HTTP 500, nothing cached) is not the user's input: exit 1, and
    the message names the service; nothing is written."""
    cds_stub.fail("http500", service="vizier")
    out = tmp_path / "out"
    code, stdout, stderr = _run(["measure", str(sim["product"]), "--catalog",
                                 "vizier:II/336/apass9", "--band", "V", "--out", str(out),
                                 "--no-plot"], capsys)
    assert code == 1, stderr
    assert "failed:" in stderr and "VizieR" in stderr and "500" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert len(cds_stub.requests) >= 1
    assert not (out / "zeropoint.json").exists()


def test_measure_color_ref_quotes_the_zp_at_that_colour(sim, tmp_path, capsys):
    cat = tmp_path / "apass.ecsv"
    sim["apass"].write(cat)
    outs = {}
    for ref in (0.0, 1.0):
        out = tmp_path / f"ref{ref}"
        code, _stdout, stderr = _run(["measure", str(sim["product"]), "--catalog", str(cat),
                                      "--band", "V", "--color", "B-V", "--color-ref", str(ref),
                                      "--out", str(out), "--no-plot"], capsys)
        assert code == 0, stderr
        outs[ref] = json.loads((out / "zeropoint.json").read_text())
        assert outs[ref]["color_ref"] == ref
        _check_zp(outs[ref], sim["filt"])
    # same fit, quoted one colour unit apart: the ZPs differ by the colour term
    assert outs[1.0]["zp"] - outs[0.0]["zp"] == pytest.approx(outs[0.0]["color_term"], abs=1e-9)
    code, _stdout, stderr = _run(["measure", str(sim["product"]), "--catalog", str(cat),
                                  "--band", "V", "--color-ref", "0.5", "--out",
                                  str(tmp_path / "bad")], capsys)
    assert code == 2 and "--color-ref needs --color" in stderr


def test_measure_simbad(sim, cds_stub, tmp_path, capsys):
    cds_stub.set_simbad(sim["simbad"])
    out = tmp_path / "simbad"
    code, stdout, stderr = _run(["measure", str(sim["product"]), "--catalog", "simbad",
                                 "--band", "V", "--color", "B-V", "--out", str(out),
                                 "--no-plot"], capsys)
    assert code == 0, stderr
    # what astroquery's SIMBAD (TAP) client sent: a cone over the image with a row limit
    adql = [q for q in cds_stub.simbad_queries() if "CONTAINS" in q]
    assert len(adql) == 1
    circle = re.search(r"CIRCLE\('ICRS',\s*([-+0-9.eE]+),\s*([-+0-9.eE]+),\s*([-+0-9.eE]+)\)",
                       adql[0])
    ra, dec, r = (float(v) for v in circle.groups())
    w, center, radius = _field(sim)
    assert _inside_image(w, ra, dec)
    assert SkyCoord(ra * u.deg, dec * u.deg).separation(center) < 1 * u.arcsec
    assert r == pytest.approx(radius.to_value(u.deg), rel=0.01)
    assert re.match(rf"SELECT\s+TOP\s+{DEFAULT_ROW_LIMIT}\s", adql[0])
    assert "otype" in adql[0] and re.search(r"\bV\b", adql[0])

    d = json.loads((out / "zeropoint.json").read_text())
    _check_zp(d, sim["filt"])
    assert d["catalog"] == "simbad" and d["n_used"] >= 40 and d["wcs_source"] == "header"
    stars = Table.read(out / "stars.ecsv")
    var = stars[stars["cat_id"] == sim["variable_id"]]  # SIMBAD says RR*: left out
    assert len(var) == 1 and not var["used"][0] and var["reason"][0] == "variable"
