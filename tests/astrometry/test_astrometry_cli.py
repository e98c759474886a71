"""``glue-zeropoint solve`` on files in tmp_path."""

import numpy as np
import pytest
from astrometry_helpers import make_frame, offset_center, rms_vs_truth, strip_wcs
from astropy import units as u
from astropy.io import fits

from glue_zeropoint.astrometry import wcs_from_header
from glue_zeropoint.cli import main
from glue_zeropoint.simulate import make_field, reference_catalog


@pytest.fixture(scope="module")
def frame():
    return make_frame(seed=31, rotation=160.0, flip=True, sip_coeff=5.0)


def _write_image(path, ccd, field, with_pointing=True):
    h = strip_wcs(ccd.meta)
    if with_pointing:
        c = offset_center(field, 6.0)
        h["OBJCTRA"] = c.ra.to_string(u.hourangle, sep=" ", precision=1)
        h["OBJCTDEC"] = c.dec.to_string(sep=" ", precision=0, alwayssign=True)
        h["FOCALLEN"] = 1031.3
        h["XPIXSZ"] = 5.0  # ~1.0 arcsec/pixel
    fits.PrimaryHDU(np.asarray(ccd.data, np.float32), header=h).writeto(path)
    return path


def test_solve_command_writes_a_wcs(tmp_path, frame, capsys):
    ccd, field, cat = frame
    img = _write_image(tmp_path / "m13 light.fits", ccd, field)
    cat_path = tmp_path / "cat.ecsv"
    cat.write(cat_path)
    out = tmp_path / "m13.wcs"
    code = main(["solve", str(img), "--catalog", str(cat_path), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "rms" in captured.out and "arcsec" in captured.out and str(out) in captured.out
    h = fits.getheader(out)
    assert h["CTYPE1"] == "RA---TAN-SIP" and h["IMAGEW"] == 1024
    w = wcs_from_header(out, shape=(1024, 1024))
    assert rms_vs_truth(w, field) < 0.1


def test_solve_command_with_center_and_scale(tmp_path, frame, capsys):
    ccd, field, cat = frame
    img = _write_image(tmp_path / "bare.fits", ccd, field, with_pointing=False)
    cat_path = tmp_path / "cat.ecsv"
    cat.write(cat_path)
    c = offset_center(field, 4.0)
    out = tmp_path / "bare.wcs"
    code = main(["solve", str(img), "--catalog", str(cat_path), "--out", str(out),
                 "--center", c.ra.to_string(u.hourangle, sep=":"),
                 c.dec.to_string(sep=":", alwayssign=True), "--scale", "1.1",
                 "--sip-degree", "3", "--flip", "yes"])
    assert code == 0, capsys.readouterr().err
    assert rms_vs_truth(wcs_from_header(out, shape=(1024, 1024)), field) < 0.1


def test_wrong_field_exits_2_with_one_line(tmp_path, frame, capsys):
    ccd, field, _ = frame
    img = _write_image(tmp_path / "img.fits", ccd, field)
    other = make_field((1024, 1024), n_stars=300, seed=77, mag_range=(10.0, 17.0))
    cat_path = tmp_path / "other.ecsv"
    reference_catalog(other, style="normalised").write(cat_path)
    out = tmp_path / "img.wcs"
    code = main(["solve", str(img), "--catalog", str(cat_path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("glue-zeropoint solve: error: img.fits: no astrometric solution")
    assert err.count("\n") == 1
    assert not out.exists()


def test_bad_inputs_exit_2(tmp_path, frame, capsys):
    ccd, field, cat = frame
    cat_path = tmp_path / "cat.ecsv"
    cat.write(cat_path)
    assert main(["solve", str(tmp_path / "none.fits"), "--catalog", str(cat_path),
                 "--out", str(tmp_path / "x.wcs")]) == 2
    assert "no such image file" in capsys.readouterr().err
    img = _write_image(tmp_path / "bare.fits", ccd, field, with_pointing=False)
    # a catalog query without any idea of the field centre
    assert main(["solve", str(img), "--catalog", "vizier:II/336/apass9", "--offline",
                 "--out", str(tmp_path / "x.wcs")]) == 2
    assert "--center" in capsys.readouterr().err
    assert main(["solve", str(img), "--catalog", str(cat_path), "--center", "abc", "12",
                 "--out", str(tmp_path / "x.wcs")]) == 2
    assert "not a sky position" in capsys.readouterr().err
    assert main(["solve", str(img), "--catalog", str(cat_path), "--out",
                 str(tmp_path / "no" / "x.wcs")]) == 2


def test_southern_sexagesimal_center_is_accepted():
    from glue_zeropoint.cli import build_parser

    args = build_parser().parse_args(["solve", "img.fits", "--catalog", "c.ecsv", "--out",
                                      "o.wcs", "--center", "05:35:17", "-05:23:28"])
    assert args.center == ["05:35:17", "-05:23:28"]
    from glue_zeropoint.commands.solve import parse_center

    c = parse_center(*args.center)
    assert c.dec.deg == pytest.approx(-5.391, abs=1e-3)
    assert parse_center("83.82", "-5.39").ra.deg == pytest.approx(83.82)
