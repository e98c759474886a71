"""``glue-zeropoint measure`` on frames without a WCS: solved from the header's rough pointing
(OBJCTRA/OBJCTDEC + PIXSCALE) or --center/--scale, then measured; clear exit 2 otherwise."""

import json
import re

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits

from glue_zeropoint.astrometry import wcs_from_header
from glue_zeropoint.astrometry.header import strip_wcs_keywords
from glue_zeropoint.cli import main
from glue_zeropoint.simulate import FilterTruth, make_field, reference_catalog, simulate_image

SHAPE = (384, 384)


def _frame(root, name, *, seed, center=(250.4235, 36.4613), rotation=0.0, flip=False,
           pointing=None, pixscale=None):
    """A calibrated product of a simulated field whose WCS was removed from the header, with
    optional mount pointing keywords; returns (path, truth, filter truth, APASS-style
    catalog)."""
    filt = FilterTruth(zp=21.5, color_term=0.1)
    ccd, truth = simulate_image(shape=SHAPE, n_stars=150, seed=seed, filt=filt, center=center,
                                rotation=rotation, flip=flip, mag_range=(10.0, 17.5))
    header = strip_wcs_keywords(fits.Header(ccd.meta))
    if pointing is not None:
        header["OBJCTRA"] = pointing.ra.to_string(u.hourangle, sep=" ", precision=1)
        header["OBJCTDEC"] = pointing.dec.to_string(u.deg, sep=" ", precision=0,
                                                    alwayssign=True)
    if pixscale is not None:
        header["PIXSCALE"] = pixscale
    ccd.wcs = None
    ccd.meta = header
    path = root / name
    ccd.write(path, hdu_uncertainty="UNCERT", hdu_mask="MASK", overwrite=True)
    assert wcs_from_header(fits.getheader(path)) is None
    return path, truth, filt, reference_catalog(truth["field"], style="apass", seed=seed)


def _run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _zp_ok(d, filt):
    zp_true = filt.zp + filt.color_term * (d["color_ref"] - filt.color_ref)
    assert abs(d["zp"] - zp_true) < 3 * d["zp_err_total"], (d["zp"], zp_true,
                                                              d["zp_err_total"])


def _rms_vs_truth(wcs, field):
    """rms (pixels) of the WCS's positions of the true stars on the image."""
    s = field.stars
    ny, nx = field.shape
    on = (s["x"] > 0) & (s["x"] < nx - 1) & (s["y"] > 0) & (s["y"] < ny - 1)
    px, py = wcs.world_to_pixel(SkyCoord(s["ra"][on], s["dec"][on], unit="deg"))
    return float(np.sqrt(np.mean((px - s["x"][on]) ** 2 + (py - s["y"][on]) ** 2)))


@pytest.fixture(scope="module")
def mount_frame(tmp_path_factory):
    """No WCS; OBJCTRA/OBJCTDEC 3 arcmin off the true centre, PIXSCALE 4% off; rotated."""
    root = tmp_path_factory.mktemp("measure_solve")
    true_center = SkyCoord(250.4235 * u.deg, 36.4613 * u.deg)
    pointing = true_center.directional_offset_by(40 * u.deg, 3 * u.arcmin)
    path, truth, filt, apass = _frame(root, "M13_V_cal.fits", seed=43, rotation=30.0,
                                      pointing=pointing, pixscale=1.04)
    return {"path": path, "truth": truth, "filt": filt, "apass": apass,
            "pointing": pointing, "true_center": true_center}


def test_solved_from_header_pointing_then_reused_offline(mount_frame, cds_stub, tmp_path,
                                                         capsys):
    f = mount_frame
    cds_stub.set_vizier("II/336/apass9", f["apass"])
    out = tmp_path / "solved"
    args = ["measure", str(f["path"]), "--catalog", "vizier:II/336/apass9", "--band", "V",
            "--color", "B-V", "--no-plot"]
    code, stdout, stderr = _run(args + ["--out", str(out)], capsys)
    assert code == 0, stderr

    # the catalog was queried around the header's pointing, wide enough for its error
    (sent,) = cds_stub.vizier_requests()
    params = sent["params"]
    assert params["-source"] == "II/336/apass9" and params["-out.max"] == "20000"
    ra, dec = (float(v) for v in re.match(r"\s*([0-9.]+)\s*([+-][0-9.]+)",
                                           params["-c"]).groups())
    assert SkyCoord(ra * u.deg, dec * u.deg).separation(f["pointing"]) < 1 * u.arcsec
    unit = {"-c.rd": u.deg, "-c.rm": u.arcmin, "-c.rs": u.arcsec}
    (key,) = [k for k in unit if k in params]
    radius = float(params[key]) * unit[key]
    half_diag = 0.5 * np.hypot(*SHAPE) * u.arcsec
    assert radius > f["pointing"].separation(f["true_center"]) + 1.25 * half_diag

    d = json.loads((out / "zeropoint.json").read_text())
    _zp_ok(d, f["filt"])
    assert d["wcs_source"] == "solved"
    assert d["wcs_rms_arcsec"] < 0.3 and d["wcs_n_matched"] >= 40
    sol = d["wcs_solution"]
    assert sol["pixel_scale"] == pytest.approx(1.0, abs=0.002)
    assert sol["hints"]["center"] == "header OBJCTRA/OBJCTDEC"
    assert sol["hints"]["scale"] == "header PIXSCALE"
    assert "WCS: solved (" in stdout and "arcsec/pixel" in stdout
    # the solution is written next to the results, good to 0.1 pixel rms on the true stars
    wcs_file = out / "M13_V_cal.wcs"
    assert d["wcs_file"] == str(wcs_file)
    solved = wcs_from_header(wcs_file, SHAPE, require=True)
    assert _rms_vs_truth(solved, f["truth"]["field"]) < 0.1

    # ... and can be given back with --wcs, offline: the cached cone covers the field
    cds_stub.stop()
    out2 = tmp_path / "again"
    code, stdout, stderr = _run(args + ["--out", str(out2), "--wcs", str(wcs_file),
                                        "--offline"], capsys)
    assert code == 0, stderr
    d2 = json.loads((out2 / "zeropoint.json").read_text())
    assert d2["wcs_source"] == "file" and d2["wcs_file"] == str(wcs_file)
    assert "wcs_solution" not in d2
    assert d2["zp"] == pytest.approx(d["zp"], abs=0.3 * d["zp_err"])
    assert d2["wcs_rms_arcsec"] == pytest.approx(d["wcs_rms_arcsec"], abs=0.02)
    assert f"WCS: file {wcs_file}; rms " in stdout


def test_solved_from_center_and_scale_options(tmp_path, capsys):
    """A southern field, mirrored, no pointing keywords: --center (sexagesimal, negative
    declination) and --scale, with a local catalog file."""
    center = SkyCoord(150.1 * u.deg, -12.6 * u.deg)
    path, truth, filt, apass = _frame(tmp_path, "south.fits", seed=47, flip=True,
                                      center=(center.ra.deg, center.dec.deg))
    catalog = tmp_path / "apass.csv"
    apass.write(catalog, format="ascii.csv")
    typed = center.directional_offset_by(200 * u.deg, 2 * u.arcmin)
    out = tmp_path / "out"
    code, stdout, stderr = _run(
        ["measure", str(path), "--catalog", str(catalog), "--band", "V", "--center",
         typed.ra.to_string(u.hourangle, sep=":", precision=1),
         typed.dec.to_string(u.deg, sep=":", precision=0, alwayssign=True), "--scale", "0.97",
         "--color", "B-V", "--out", str(out), "--no-plot"], capsys)
    assert code == 0, stderr
    d = json.loads((out / "zeropoint.json").read_text())
    assert d["wcs_source"] == "solved" and d["wcs_solution"]["flipped"] is True
    assert d["wcs_solution"]["hints"] == {"center": "given", "scale": "given"}
    assert d["wcs_rms_arcsec"] < 0.3
    _zp_ok(d, filt)


@pytest.fixture(scope="module")
def bare_frame(tmp_path_factory):
    root = tmp_path_factory.mktemp("measure_bare")
    path, truth, filt, apass = _frame(root, "bare.fits", seed=45)
    catalog = root / "apass.csv"
    apass.write(catalog, format="ascii.csv")
    return path, catalog


def test_no_wcs_no_pointing_exit_2(bare_frame, cds_stub, tmp_path, capsys):
    path, _ = bare_frame
    code, stdout, stderr = _run(["measure", str(path), "--catalog", "vizier:II/336/apass9",
                                 "--band", "V", "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1
    assert "bare.fits: no celestial WCS in the header and no rough pointing" in stderr
    assert "--center RA DEC" in stderr and "--scale" in stderr and "--wcs FILE" in stderr
    assert cds_stub.requests == []  # nothing to query around
    assert not (tmp_path / "out" / "zeropoint.json").exists()


@pytest.mark.parametrize("extra,expect", [
    (["--solve", "never"], "no celestial WCS in the header; pass --wcs FILE"),
    # a pointing 2 degrees off: the local catalog does not cover it
    (["--center", "250.42", "38.5", "--scale", "1"], "does not cover this field; check --center"),
    (["--center", "250.42", "36.46", "--scale", "-1"], "--scale -1.0: give the pixel scale"),
    (["--center", "25x", "36.46"], "--center 25x 36.46: not a sky position"),
])
def test_solve_bad_input_exit_2(bare_frame, tmp_path, capsys, extra, expect):
    path, catalog = bare_frame
    code, stdout, stderr = _run(["measure", str(path), "--catalog", str(catalog), "--band",
                                 "V", "--out", str(tmp_path / "out")] + extra, capsys)
    assert code == 2
    assert expect in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_wrong_field_is_not_solved(bare_frame, tmp_path, capsys):
    """A catalog of another field at the same coordinates: no WCS is made up."""
    path, _ = bare_frame
    other = reference_catalog(make_field(SHAPE, n_stars=150, seed=99, mag_range=(10.0, 17.5)),
                              style="apass", seed=99)
    catalog = tmp_path / "other.csv"
    other.write(catalog, format="ascii.csv")
    out = tmp_path / "out"
    code, stdout, stderr = _run(["measure", str(path), "--catalog", str(catalog), "--band", "V",
                                 "--center", "250.4235", "36.4613", "--scale", "1.0", "--out",
                                 str(out)], capsys)
    assert code == 2
    assert "bare.fits: no astrometric solution" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert not (out / "zeropoint.json").exists() and not (out / "bare.wcs").exists()


def test_rough_header_wcs_solved_from_unless_never(tmp_path, capsys):
    """A mount's WCS 40 arcsec off: --solve never keeps it and its quality says so; auto and
    --solve always start from it and solve."""
    filt = FilterTruth(zp=21.5, color_term=0.1)
    ccd, truth = simulate_image(shape=SHAPE, n_stars=150, seed=48, filt=filt, rotation=-70.0,
                                mag_range=(10.0, 17.5))
    ccd.wcs.wcs.crval = ccd.wcs.wcs.crval + np.array([0.0, 40.0 / 3600.0])
    path = tmp_path / "rough.fits"
    ccd.write(path, hdu_uncertainty="UNCERT", hdu_mask="MASK", overwrite=True)
    catalog = tmp_path / "apass.csv"
    reference_catalog(truth["field"], style="apass", seed=48).write(catalog, format="ascii.csv")
    args = ["measure", str(path), "--catalog", str(catalog), "--band", "V", "--color", "B-V",
            "--no-plot"]
    code, stdout, stderr = _run(args + ["--out", str(tmp_path / "never"), "--solve", "never"],
                                capsys)
    d = json.loads((tmp_path / "never" / "zeropoint.json").read_text())
    assert code == 0 and d["wcs_source"] == "header" and d["wcs_rms_pix"] > 2
    assert "note: the header WCS looks off:" in stdout and "--solve always" in stdout

    code, stdout, stderr = _run(args + ["--out", str(tmp_path / "auto")], capsys)
    assert code == 0, stderr
    d = json.loads((tmp_path / "auto" / "zeropoint.json").read_text())
    assert d["wcs_source"] == "solved" and d["wcs_rms_arcsec"] < 0.3
    assert "the header WCS looked off" in stdout
    _zp_ok(d, filt)

    code, stdout, stderr = _run(args + ["--out", str(tmp_path / "always"), "--solve",
                                        "always"], capsys)
    assert code == 0, stderr
    d = json.loads((tmp_path / "always" / "zeropoint.json").read_text())
    assert d["wcs_source"] == "solved" and d["wcs_rms_arcsec"] < 0.3
    assert d["wcs_solution"]["hints"] == {"center": "image WCS", "scale": "image WCS"}
    assert "looks off" not in stdout
    _zp_ok(d, filt)
