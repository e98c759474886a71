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
    assert "circle(11.0000,6.0000,4.2000)" in path.read_text()  # ds9 pixels are 1-based
    back = read_positions(path)
    np.testing.assert_allclose(back["x"], stars["x"])
    np.testing.assert_allclose(back["y"], stars["y"])
    # what regions itself reads from our file: the same circles, labels, colours and tags
    regs = Regions.read(str(path), format="ds9")
    assert [str(r.meta["text"]) for r in regs] == ["7", "8", "9"]
    assert [r.radius for r in regs] == pytest.approx([4.2] * 3)
    assert [r.visual.get("edgecolor", r.visual.get("color")) for r in regs] == \
        ["green", "red", "green"]
    assert [r.meta.get("tag", []) for r in regs] == [[], ["rejected"], []]


def test_text_labels_and_excluded_regions_are_not_stars(tmp_path):
    path = tmp_path / "marked.reg"
    path.write_text("# Region file format: DS9 version 4.1\nimage\n"
                    "circle(10,10,5)\ncircle(30,40,5) # text={a label on a star}\n"
                    "# text(50,50) text={just a label}\n-circle(60,60,5)\n"
                    "point(70,80) # point=cross\n")
    t = read_positions(path)
    np.testing.assert_allclose(np.c_[t["x"], t["y"]], [[9, 9], [29, 39], [69, 79]])


def test_sky_regions_in_several_frames_are_one_icrs_set(tmp_path):
    path = tmp_path / "frames.reg"
    path.write_text("# Region file format: DS9 version 4.1\n"
                    "fk5\ncircle(250.4,36.4,3\")\n"
                    "galactic\ncircle(59.0,40.9,3\")\n"
                    "icrs\npoint(250.5,36.5)\n")
    sky = read_positions(path)
    assert isinstance(sky, SkyCoord) and len(sky) == 3 and sky.frame.name == "icrs"
    assert sky[0].ra.deg == pytest.approx(250.4, abs=1e-4)


def test_writing_many_sky_circles(tmp_path, wcs):
    rng = np.random.default_rng(1)
    stars = Table({"x": rng.uniform(0, 200, 2000), "y": rng.uniform(0, 200, 2000)})
    path = write_apertures(stars, tmp_path / "many.reg", radius=3.0, wcs=wcs)
    sky = read_positions(path)
    x, y = wcs.world_to_pixel(sky)
    np.testing.assert_allclose(x, stars["x"], atol=1e-4)
    np.testing.assert_allclose(y, stars["y"], atol=1e-4)


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


def test_labels_with_control_characters_and_background_regions(tmp_path):
    stars = Table({"star_id": ["a\rb", "c}\nd"], "x": [10.0, 20.0], "y": [5.0, 6.0]})
    path = write_apertures(stars, tmp_path / "labels.reg", radius=3.0, used=[False, True])
    regs = Regions.read(str(path), format="ds9")
    assert [str(r.meta["text"]) for r in regs] == ["a b", "c) d"]
    assert regs[0].meta.get("tag") == ["rejected"]
    bg = tmp_path / "bg.reg"
    bg.write_text("# Region file format: DS9 version 4.1\nimage\ncircle(10,10,5)\n"
                  "annulus(10,10,8,12) # source=0\n")
    assert len(read_positions(bg)) == 1


def test_unparsed_lines_are_warned_by_regions_itself(tmp_path):
    """read_positions may run in a worker thread, so it does not catch warnings (a process-wide
    swap); regions' own warning about a line it cannot parse reaches the user."""
    path = tmp_path / "some junk.reg"
    path.write_text("# Region file format: DS9 version 4.1\nimage\ncircle(10,10,5)\nnot a line\n")
    with pytest.warns(UserWarning, match="not a line"):
        t = read_positions(path)
    assert len(t) == 1


def test_labels_colours_tags_and_comments(tmp_path):
    stars = Table({"star_id": [1, 2, 3], "x": [10.0, 20.0, 30.0], "y": [5.0, 6.0, 7.0]})
    path = write_apertures(
        stars, tmp_path / "why.reg", radius=3.0, used=[True, False, False],
        labels=["1", "2 saturated,crowded", "3 clipped"], colors=["green", "magenta", "red"],
        tags=[[], ["saturated", "crowded"], ["clipped"]],
        comments=["magenta: photometry (saturated, crowded...)", "red: clipped"])
    text = path.read_text()
    assert "# magenta: photometry (saturated, crowded...)\n" in text
    regs = Regions.read(str(path), format="ds9")
    assert [str(r.meta["text"]) for r in regs] == ["1", "2 saturated,crowded", "3 clipped"]
    assert [r.visual.get("edgecolor", r.visual.get("color")) for r in regs] == \
        ["green", "magenta", "red"]
    assert [r.meta.get("tag", []) for r in regs] == \
        [[], ["rejected", "saturated", "crowded"], ["rejected", "clipped"]]
    with pytest.raises(InputError, match="labels has 1 entries for 3 stars"):
        write_apertures(stars, tmp_path / "bad.reg", labels=["x"])
