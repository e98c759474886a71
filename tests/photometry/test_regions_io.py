"""ds9 region files in and out (astropy-regions), on files on disk."""
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from regions import CirclePixelRegion, PixCoord, PointPixelRegion, Regions

from glue_zeropoint.exceptions import InputError
from glue_zeropoint.photometry.regions_io import read_positions, write_apertures
from glue_zeropoint.simulate import make_field


@pytest.fixture(scope="module")
def wcs():
    return make_field((200, 200), n_stars=5, seed=2).wcs


def test_pixel_regions_round_trip_zero_based(tmp_path):
    stars = Table({"star_id": [7, 8, 9], "x": [10.0, 20.5, 30.25], "y": [5.0, 6.0, 7.5]})
    stars.meta["aperture_radius"] = 4.2
    path = write_apertures(stars, tmp_path / "a b é.reg", used=[True, False, True])
    text = path.read_text()
    assert "circle(11.00000000,6.00000000,4.20000000)" in text  # ds9 pixels are 1-based
    assert "text={8} tag={rejected} color=red" in text
    back = read_positions(path)
    np.testing.assert_allclose(back["x"], stars["x"])
    np.testing.assert_allclose(back["y"], stars["y"])


def test_sky_regions_give_skycoords_and_mixed_need_a_wcs(tmp_path, wcs):
    stars = Table({"x": [50.0, 120.0], "y": [60.0, 130.0]})
    path = write_apertures(stars, tmp_path / "sky.reg", radius=3.0, wcs=wcs)
    sky = read_positions(path)
    assert isinstance(sky, SkyCoord) and len(sky) == 2
    x, y = wcs.world_to_pixel(sky)
    np.testing.assert_allclose(x, [50.0, 120.0], atol=1e-4)
    np.testing.assert_allclose(y, [60.0, 130.0], atol=1e-4)

    mixed = tmp_path / "mixed.reg"
    regs = list(Regions.read(str(path), format="ds9"))
    regs.append(PointPixelRegion(PixCoord(15.0, 25.0)))
    Regions(regs).write(str(mixed), format="ds9")
    with pytest.raises(InputError, match="mixes image and sky regions"):
        read_positions(mixed)
    t = read_positions(mixed, wcs=wcs)
    np.testing.assert_allclose(np.sort(t["x"]), [15.0, 50.0, 120.0], atol=1e-4)


def test_bad_region_files(tmp_path):
    with pytest.raises(InputError, match="no such region file"):
        read_positions(tmp_path / "none.reg")
    junk = tmp_path / "junk.reg"
    junk.write_bytes(b"\x00\x01 not regions at all (((")
    with pytest.raises(InputError, match="junk.reg"):
        read_positions(junk)
    one = tmp_path / "one.reg"
    Regions([CirclePixelRegion(PixCoord(3.0, 4.0), 2.0)]).write(str(one), format="ds9")
    assert len(read_positions(one)) == 1
