"""WCS from headers and solution files, rough pointing, writing a WCS."""

import numpy as np
import pytest
from astrometry_helpers import strip_wcs
from astropy import units as u
from astropy.coordinates import Angle, SkyCoord
from astropy.io import fits

from glue_zeropoint.astrometry import rough_pointing, update_fits_wcs, wcs_from_header, write_wcs
from glue_zeropoint.exceptions import InputError
from glue_zeropoint.simulate import make_wcs


@pytest.fixture
def sip_wcs():
    w = make_wcs((600, 800), rotation=20.0, sip_coeff=5.0, pixel_scale=1.2)
    w.pixel_shape = (800, 600)
    return w


def test_from_header_and_image_file(tmp_path, sip_wcs):
    h = sip_wcs.to_header(relax=True)
    path = tmp_path / "img.fits"
    fits.PrimaryHDU(np.zeros((600, 800), np.float32), header=h).writeto(path)
    gx, gy = np.meshgrid(np.linspace(0, 799, 9), np.linspace(0, 599, 9))
    truth = sip_wcs.pixel_to_world(gx, gy)
    # the distortion is ~5 px at the corners: a WCS read without its SIP terms is far off
    plain = sip_wcs.deepcopy()
    plain.sip = None
    assert np.max(plain.pixel_to_world(gx, gy).separation(truth).arcsec) > 1.0
    for source in (h, path):
        w = wcs_from_header(source, shape=(600, 800))
        assert np.max(w.pixel_to_world(gx, gy).separation(truth).arcsec) < 1e-6
    with pytest.raises(InputError, match=r"img.fits: the WCS is for a 800x600 image but the "
                                         r"image is 400x300"):
        wcs_from_header(path, shape=(300, 400))


def test_write_and_read_solution_file(tmp_path, sip_wcs):
    out = write_wcs(tmp_path / "sol.wcs", sip_wcs, header={"ZP_NMAT": 42})
    h = fits.getheader(out)
    assert h["IMAGEW"] == 800 and h["IMAGEH"] == 600 and h["ZP_NMAT"] == 42
    assert h["A_ORDER"] == 3
    back = wcs_from_header(out, shape=(600, 800))
    gx, gy = np.meshgrid(np.linspace(0, 799, 7), np.linspace(0, 599, 7))
    a = sip_wcs.pixel_to_world(gx, gy)
    b = back.pixel_to_world(gx, gy)
    assert np.max(a.separation(b).arcsec) < 1e-6
    with pytest.raises(InputError, match=r"sol.wcs: the WCS is for a 800x600 image"):
        wcs_from_header(out, shape=(1200, 1600))
    with pytest.raises(InputError, match="does not exist"):
        write_wcs(tmp_path / "nowhere" / "x.wcs", sip_wcs)


def test_astrometry_net_style_file(tmp_path):
    # header-only solution file the way astrometry.net writes it (TAN-SIP, IMAGEW/IMAGEH)
    h = fits.Header()
    h["WCSAXES"] = 2
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
    h["EQUINOX"] = 2000.0
    h["CRVAL1"], h["CRVAL2"] = 250.42, 36.46
    h["CRPIX1"], h["CRPIX2"] = 512.5, 384.0
    h["CD1_1"], h["CD1_2"], h["CD2_1"], h["CD2_2"] = -2.8e-4, 1e-6, -1e-6, -2.8e-4
    h["IMAGEW"], h["IMAGEH"] = 1024, 768
    h["A_ORDER"], h["B_ORDER"] = 2, 2
    h["A_2_0"], h["B_0_2"] = 1e-7, -2e-7
    h["AP_ORDER"], h["BP_ORDER"] = 2, 2
    h["AP_2_0"], h["BP_0_2"] = -1e-7, 2e-7
    path = tmp_path / "field.wcs"
    fits.PrimaryHDU(header=h).writeto(path)
    w = wcs_from_header(path, shape=(768, 1024))
    # the corner (1, 1) by hand: SIP on (u, v) from CRPIX, then the CD matrix, then TAN
    u_, v_ = 1.0 - 512.5, 1.0 - 384.0
    x = u_ + 1e-7 * u_ ** 2
    y = v_ - 2e-7 * v_ ** 2
    xi, eta = -2.8e-4 * x + 1e-6 * y, -1e-6 * x - 2.8e-4 * y
    from astropy.modeling.models import Pix2Sky_TAN, RotateNative2Celestial

    lon, lat = Pix2Sky_TAN()(xi, eta)
    ra, dec = RotateNative2Celestial(250.42, 36.46, 180.0)(lon, lat)
    corner = w.pixel_to_world(0, 0)  # FITS pixel (1, 1) is (0, 0) here
    assert corner.separation(SkyCoord(ra, dec, unit="deg", frame="fk5")).arcsec < 1e-3
    assert corner.separation(SkyCoord(250.42, 36.46, unit="deg")).deg > 0.1  # not trivially
    with pytest.raises(InputError, match="field.wcs: the WCS is for a 1024x768"):
        wcs_from_header(path, shape=(384, 512))


def test_missing_broken_and_non_celestial():
    assert wcs_from_header(fits.Header({"EXPTIME": 3.0})) is None
    with pytest.raises(InputError, match="no WCS"):
        wcs_from_header(fits.Header({"EXPTIME": 3.0}), require=True)
    lin = fits.Header({"CTYPE1": "LINEAR", "CTYPE2": "LINEAR", "CDELT1": 1.0, "CDELT2": 1.0})
    assert wcs_from_header(lin) is None
    with pytest.raises(InputError, match="not celestial"):
        wcs_from_header(lin, require=True)
    sing = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 1.0,
                        "CRVAL2": 2.0, "CD1_1": 0.0, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 0.0})
    with pytest.raises(InputError, match="singular"):
        wcs_from_header(sing)


def test_unreadable_or_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        wcs_from_header(tmp_path / "nope.wcs")
    bad = tmp_path / "bad.wcs"
    bad.write_text("not fits at all" * 100)
    with pytest.raises(InputError, match="bad.wcs: not a readable FITS"):
        wcs_from_header(bad)


def test_rough_pointing_maxim_style():
    c = SkyCoord(250.4235, 36.4613, unit="deg")
    h = fits.Header()
    # exactly as MaxIm DL (and the simulator's 'maxim' style) writes them
    h["OBJCTRA"] = Angle(c.ra).to_string(u.hourangle, sep=" ", precision=1)
    h["OBJCTDEC"] = Angle(c.dec).to_string(sep=" ", precision=0, alwayssign=True)
    h["FOCALLEN"] = 800.0
    h["XPIXSZ"] = 9.0  # binned 2x2 4.5 um pixels: MaxIm writes the binned size
    h["XBINNING"] = 2
    center, scale, source = rough_pointing(h)
    assert center.separation(c).arcsec < 2
    assert scale == pytest.approx(206.265 * 9.0 / 800.0, rel=1e-4)
    assert "OBJCTRA/OBJCTDEC" in source and "XPIXSZ" in source


def test_rough_pointing_variants():
    c, s, how = rough_pointing(fits.Header({"RA": 250.5, "DEC": -12.25, "PIXSCALE": 0.75}))
    assert (c.ra.deg, c.dec.deg, s) == (pytest.approx(250.5), pytest.approx(-12.25), 0.75)
    assert how == "RA/DEC, PIXSCALE"
    c, s, how = rough_pointing({"RA": "16:41:41.6", "DEC": "+36:27:41", "SECPIX": 1.1})
    assert c.ra.deg == pytest.approx(250.4233, abs=1e-3) and s == 1.1
    # INDI style: physical pixel size and binning
    c, s, how = rough_pointing({"FOCALLEN": 1000.0, "PIXSIZE1": 3.76, "XBINNING": 2})
    assert c is None and s == pytest.approx(206.265 * 7.52 / 1000, rel=1e-4)
    assert rough_pointing(fits.Header()) == (None, None, "")
    # a header WCS wins and gives the centre of the image
    w = make_wcs((200, 300), center=(10.0, 20.0), pixel_scale=2.0)
    h = w.to_header()
    h["NAXIS"], h["NAXIS1"], h["NAXIS2"] = 2, 300, 200
    c, s, how = rough_pointing(h)
    assert c.separation(SkyCoord(10.0, 20.0, unit="deg")).arcsec < 1.5
    assert s == pytest.approx(2.0) and how == "WCS"


def test_strip_helper_leaves_no_wcs(sip_wcs):
    h = sip_wcs.to_header(relax=True)
    h["EXPTIME"] = 1.0
    assert wcs_from_header(strip_wcs(h)) is None
    assert strip_wcs(h)["EXPTIME"] == 1.0  # only the WCS keywords go


def test_update_fits_wcs_replaces_the_old_wcs(tmp_path, sip_wcs):
    old = make_wcs((600, 800), center=(10.0, 20.0), pixel_scale=3.0)
    h = old.to_header()
    h["EXPTIME"] = 30.0
    h["PV1_5"] = 0.1  # leftover TPV term of an old solution
    path = tmp_path / "product.fits"
    fits.HDUList([fits.PrimaryHDU(np.ones((600, 800), np.float32), header=h),
                  fits.ImageHDU(np.zeros((600, 800), np.uint8), name="MASK")]).writeto(path)
    update_fits_wcs(path, sip_wcs)
    with fits.open(path) as hdul:
        assert len(hdul) == 2 and hdul["MASK"].data.shape == (600, 800)
        hdr = hdul[0].header
        assert hdr["EXPTIME"] == 30.0 and "PV1_5" not in hdr and hdr["A_ORDER"] == 3
        assert np.all(hdul[0].data == 1)
    w = wcs_from_header(path, shape=(600, 800))
    assert w.pixel_to_world(5, 5).separation(sip_wcs.pixel_to_world(5, 5)).arcsec < 1e-6
    small = sip_wcs.deepcopy()
    small.pixel_shape = (80, 60)
    with pytest.raises(InputError, match="the image is 800x600"):
        update_fits_wcs(path, small)
