"""The ``glue-zeropoint measure`` command, through cli.main([...]) on files on disk."""

import json

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from glue_zeropoint.cli import main
from glue_zeropoint.simulate import FilterTruth, reference_catalog, simulate_image
from glue_zeropoint.zeropoint import JSON_KEYS


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("measure")
    filt = FilterTruth(zp=21.5, color_term=0.1)
    ccd, truth = simulate_image(shape=(384, 384), n_stars=150, seed=31, filt=filt)
    product = root / "M13_V_cal.fits"
    ccd.write(product, hdu_uncertainty="UNCERT", hdu_mask="MASK", overwrite=True)
    cat = reference_catalog(truth["field"], style="apass", seed=31)
    csv = root / "apass.csv"
    cat.write(csv, format="ascii.csv")
    ecsv = root / "gaia.ecsv"
    reference_catalog(truth["field"], style="gaia", seed=31).write(ecsv)
    return root, product, csv, ecsv, ccd, truth, filt


def _read_outputs(out):
    d = json.loads((out / "zeropoint.json").read_text())
    stars = Table.read(out / "stars.ecsv")
    return d, stars


def test_measure_calibrated_product(files, output_dir, capsys):
    root, product, csv, _, _, _, filt = files
    code = main(["measure", str(product), "--catalog", str(csv), "--band", "V", "--color",
                 "B-V", "--out", str(output_dir)])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "ZP(V) =" in out.out
    d, stars = _read_outputs(output_dir)
    assert list(d)[: len(JSON_KEYS)] == list(JSON_KEYS)
    assert d["band"] == "V" and d["color"] == "B-V" and d["exptime"] == 30.0
    zp_at_ref = filt.zp + filt.color_term * (d["color_ref"] - filt.color_ref)
    assert abs(d["zp"] - zp_at_ref) < 3 * d["zp_err_total"] + 0.005
    assert abs(d["color_term"] - filt.color_term) < 3 * d["color_term_err"] + 0.01
    assert {"star_id", "x", "y", "ra", "dec", "flux", "mag_inst", "cat_mag_V", "match",
            "used", "reason", "residual"} <= set(stars.colnames)
    assert stars["used"].sum() == d["n_used"]
    png = (output_dir / "zeropoint.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # no temporary files left behind
    assert not [p for p in output_dir.iterdir() if p.name.startswith(".")]


def test_measure_plain_adu_image_with_wcs_file(files, tmp_path, capsys):
    root, product, _, ecsv, ccd, truth, filt = files
    gain = 1.6
    header = fits.Header()
    header["EXPTIME"] = 30.0
    header["DATE-OBS"] = "2024-07-01T22:00:00"
    plain = tmp_path / "plain.fits"
    fits.PrimaryHDU((np.asarray(ccd.data) / gain).astype(np.float32),
                    header).writeto(plain)
    wcsfile = tmp_path / "solution.wcs"
    wh = truth["field"].wcs.to_header()
    wh["IMAGEW"] = 384
    wh["IMAGEH"] = 384
    fits.PrimaryHDU(header=wh).writeto(wcsfile)
    code = main(["measure", str(plain), "--catalog", str(ecsv), "--band", "V", "--wcs",
                 str(wcsfile), "--gain", str(gain), "--read-noise", "8", "--out",
                 str(tmp_path / "out"), "--no-plot"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    d, _ = _read_outputs(tmp_path / "out")
    # no colour term fitted: the ZP is at the stars' mean colour
    assert abs(d["zp"] - filt.zp) < 0.1
    assert not (tmp_path / "out" / "zeropoint.png").exists()


@pytest.mark.parametrize("case,expect", [
    ("band", "no band 'R'; it has: B, V"),
    ("exptime", "EXPTIME"),
    ("wcs_size", "is for a 1000x800 image but the image is 384x384"),
    ("no_wcs", "--wcs"),
    ("nan", "NaN"),
    ("no_file", "no such image file"),
    ("catalog", "no such catalog file"),
])
def test_measure_bad_input_exit_2(files, tmp_path, capsys, case, expect):
    root, product, csv, _, ccd, truth, _ = files
    args = ["measure", str(product), "--catalog", str(csv), "--band", "V", "--out",
            str(tmp_path / "out")]
    if case == "band":
        args[args.index("V")] = "R"
    elif case == "exptime":
        bare = tmp_path / "noexp.fits"
        h = truth["field"].wcs.to_header()
        fits.PrimaryHDU(np.asarray(ccd.data), h).writeto(bare)
        args[1] = str(bare)
    elif case == "wcs_size":
        w = tmp_path / "other.wcs"
        h = truth["field"].wcs.to_header()
        h["IMAGEW"], h["IMAGEH"] = 1000, 800
        fits.PrimaryHDU(header=h).writeto(w)
        args += ["--wcs", str(w)]
    elif case == "no_wcs":
        bare = tmp_path / "nowcs.fits"
        fits.PrimaryHDU(np.asarray(ccd.data), fits.Header({"EXPTIME": 30.0})).writeto(bare)
        args[1] = str(bare)
    elif case == "nan":
        bare = tmp_path / "nan.fits"
        h = truth["field"].wcs.to_header()
        h["EXPTIME"] = 30.0
        fits.PrimaryHDU(np.full(ccd.shape, np.nan, np.float32), h).writeto(bare)
        args[1] = str(bare)
    elif case == "no_file":
        args[1] = str(tmp_path / "missing.fits")
    elif case == "catalog":
        args[3] = str(tmp_path / "missing.csv")
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2
    assert expect in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out" / "zeropoint.json").exists()


def _bright_isolated(truth, n=25, margin=20):
    field = truth["field"]
    ny, nx = field.shape
    x, y = np.asarray(field.stars["x"]), np.asarray(field.stars["y"])
    d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    np.fill_diagonal(d, np.inf)
    ok = (x > margin) & (x < nx - margin) & (y > margin) & (y < ny - margin) & (d.min(1) > 12)
    order = [i for i in np.argsort(np.asarray(field.stars["mag_V"])) if ok[i]]
    return order[:n]


@pytest.mark.parametrize("system", ["image", "sky"])
def test_measure_positions_from_ds9_regions_and_regions_out(files, tmp_path, capsys, system):
    from astropy.coordinates import SkyCoord
    from regions import CirclePixelRegion, PixCoord, Regions

    root, product, csv, _, ccd, truth, filt = files
    chosen = _bright_isolated(truth)
    xs = np.asarray(truth["field"].stars["x"])[chosen]
    ys = np.asarray(truth["field"].stars["y"])[chosen]
    # marked by hand: each a pixel or so off the star, as a click would be
    rng = np.random.default_rng(5)
    regs = [CirclePixelRegion(PixCoord(x + rng.uniform(-1, 1), y + rng.uniform(-1, 1)), 6.0)
            for x, y in zip(xs, ys, strict=True)]
    if system == "sky":
        regs = [r.to_sky(ccd.wcs) for r in regs]
    reg = tmp_path / "my stars.reg"
    Regions(regs).write(str(reg), format="ds9")
    out = tmp_path / "out"
    code = main(["measure", str(product), "--catalog", str(csv), "--band", "V",
                 "--color", "B-V", "--positions", str(reg), "--out", str(out), "--no-plot"])
    err = capsys.readouterr().err
    assert code == 0, err
    d, stars = _read_outputs(out)
    assert d["n_stars"] == len(chosen)
    # recentred onto the stars
    got = np.c_[np.asarray(stars["x"]), np.asarray(stars["y"])]
    for x, y in zip(xs, ys, strict=True):
        assert np.min(np.hypot(got[:, 0] - x, got[:, 1] - y)) < 0.2
    assert abs(d["zp"] - (filt.zp + filt.color_term * (d["color_ref"] - filt.color_ref))) \
        < 3 * d["zp_err_total"] + 0.005
    # the apertures come back as ds9 sky circles: green used, the others coloured and
    # labelled by why they were left out
    back = Regions.read(str(out / "stars.reg"), format="ds9")
    assert len(back) == len(chosen)
    assert all(isinstance(r.center, SkyCoord) for r in back)
    rejected = [r for r in back if "rejected" in r.meta.get("tag", [])]
    assert len(back) - len(rejected) == d["n_used"]
    assert all(r.visual.get("edgecolor") not in (None, "green") for r in rejected)
    assert all(len(str(r.meta["text"]).split()) == 2 for r in rejected)  # "<id> <reasons>"
    bx, by = ccd.wcs.world_to_pixel(SkyCoord([r.center for r in back]))
    for x, y in zip(bx, by, strict=True):
        assert np.min(np.hypot(got[:, 0] - x, got[:, 1] - y)) < 1e-3


def test_measure_positions_bad_files_exit_2(files, tmp_path, capsys):
    root, product, csv, *_ = files
    empty = tmp_path / "lines.reg"
    empty.write_text("# Region file format: DS9\nimage\nline(1,1,20,20)\n")
    table = tmp_path / "pos.csv"
    table.write_text("a,b\n1,2\n")
    sexa = tmp_path / "sexa.csv"
    sexa.write_text("ra,dec\nnot,angles\n")
    (tmp_path / "pos.fits").write_text("not a FITS table")
    cases = [(tmp_path / "missing.reg", "no such file"),
             (sexa, "--positions " + str(sexa) + ": cannot read the positions"),
             (tmp_path / "pos.fits", "--positions " + str(tmp_path / "pos.fits") + ": "),
             (empty, "no region with a centre"),
             (table, "needs x, y (pixels) or ra, dec (degrees) columns; has a, b")]
    for path, message in cases:
        code = main(["measure", str(product), "--catalog", str(csv), "--band", "V",
                     "--positions", str(path), "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert code == 2 and message in err, err


def test_measure_a_colour_camera_image_in_its_green_channel(files, tmp_path, capsys):
    """A colour camera's calibrated mosaic (BAYERPAT=RGGB): measured in its G channel (each
    2x2 cell one pixel, the two greens summed), written beside the results as the image
    stars.ecsv and stars.reg refer to; the zero point is the G channel's (half the light of
    a star lands on green pixels: 2.5 log10(2) below the monochrome frame's)."""
    from astropy.nddata import CCDData, StdDevUncertainty

    root, _product, csv, _, ccd, truth, filt = files
    scale = np.empty(ccd.shape)
    for k, response in enumerate((0.6, 1.0, 1.0, 0.4)):  # R G / G B
        scale[k // 2::2, k % 2::2] = response
    header = ccd.meta.copy()
    header["BAYERPAT"] = "RGGB"
    mosaic = CCDData(np.asarray(ccd.data) * scale, unit=ccd.unit, meta=header, wcs=ccd.wcs,
                     uncertainty=StdDevUncertainty(ccd.uncertainty.array * scale),
                     mask=ccd.mask)
    path = tmp_path / "osc_V_cal.fits"
    mosaic.write(path, hdu_uncertainty="UNCERT", hdu_mask="MASK")
    out = tmp_path / "out"
    code = main(["measure", str(path), "--catalog", str(csv), "--band", "V", "--color",
                 "B-V", "--out", str(out), "--no-plot"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "G channel" in captured.out and "osc_V_cal_G.fits" in captured.out
    d, stars = _read_outputs(out)
    zp_at_ref = filt.zp + filt.color_term * (d["color_ref"] - filt.color_ref)
    assert abs(d["zp"] - (zp_at_ref - 2.5 * np.log10(2.0))) < 3 * d["zp_err_total"] + 0.01
    assert d["measured_image"].endswith("osc_V_cal_G.fits")
    g = CCDData.read(out / "osc_V_cal_G.fits", hdu_uncertainty="UNCERT", hdu_mask="MASK")
    assert g.shape == (192, 192) and g.meta["CFACHAN"] == "G"
    # the stars' pixels are the channel image's: its WCS gives their sky positions
    ra, dec = g.wcs.pixel_to_world_values(np.asarray(stars["x"]), np.asarray(stars["y"]))
    assert np.nanmax(np.abs(ra - np.asarray(stars["ra"]))) < 1e-7
    reg = (out / "stars.reg").read_text()
    assert "circle(" in reg
    # --cfa none measures the mosaic as one image, and says what that means
    code = main(["measure", str(path), "--catalog", str(csv), "--band", "V", "--cfa", "none",
                 "--out", str(tmp_path / "mono"), "--no-plot"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "kept as one image" in captured.out
    assert not list((tmp_path / "mono").glob("*_G.fits"))
