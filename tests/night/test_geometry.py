"""Time, site, airmass, Sun and Moon of a frame (glue_zeropoint.night.geometry)."""

import gzip
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from astropy.io import fits
from astropy.time import Time

from glue_zeropoint.exceptions import InputError
from glue_zeropoint.night.geometry import (
    airmass_young,
    check_time_zone,
    frame_geometry,
    parse_site,
    pointing_from_header,
    site_from_header,
    sun_moon,
)

#: the primary headers of the 40 lights of the real SA112 night (reducer 0.9.4, BSD;
#: tests/data/MANIFEST.md), as header cards
SA112_HEADERS = Path(__file__).parent.parent / "data" / "raw" / "sa112_light_headers.txt.gz"
SITE = EarthLocation.from_geodetic(-96.4533 * u.deg, 46.8668 * u.deg, 311.8 * u.m)
TARGET = SkyCoord("20h42m25s", "+00d08m11s")


def _header(time, airmass=True, **extra):
    h = fits.Header()
    h["DATE-OBS"] = time
    h["EXPTIME"] = 60.0
    h["SITELAT"] = "+46:52:00.41"
    h["SITELONG"] = "-96:27:11.80"
    h["ALTITUDE"] = 311.8
    h["OBJCTRA"] = "20:42:25"
    h["OBJCTDEC"] = "+00:08:11"
    if airmass:
        alt = TARGET.transform_to(AltAz(obstime=Time(time), location=SITE)).alt.deg
        h["AIRMASS"] = round(1 / np.cos(np.radians(90 - alt)), 3)
    h.update(extra)
    return h


def test_young_airmass_limits():
    assert airmass_young(90.0) == pytest.approx(1.0, abs=1e-4)
    # close to sec z away from the horizon, finite at it, NaN below
    assert airmass_young(41.8) == pytest.approx(1 / np.cos(np.radians(48.2)), abs=0.005)
    assert 30 < airmass_young(0.01) < 40
    assert np.isnan(airmass_young(-5.0))


def test_parse_site_and_errors():
    loc = parse_site("46.8668,-96.4533,311.8")
    assert loc.lat.deg == pytest.approx(46.8668)
    assert loc.lon.deg == pytest.approx(-96.4533)
    with pytest.raises(InputError, match="LAT,LON"):
        parse_site("north")
    with pytest.raises(InputError, match="-90 <= LAT"):
        parse_site("123,4")


def test_site_from_maxim_and_obsgeo_headers():
    loc, src = site_from_header(_header("2013-07-04T05:42:02"))
    assert loc.lat.deg == pytest.approx(46.86678, abs=1e-4)
    assert loc.lon.deg == pytest.approx(-96.45328, abs=1e-4)
    assert "SITELAT" in src
    x, y, z = SITE.to_geocentric()
    h = fits.Header({"OBSGEO-X": x.to_value(u.m), "OBSGEO-Y": y.to_value(u.m),
                     "OBSGEO-Z": z.to_value(u.m)})
    loc2, src2 = site_from_header(h)
    assert loc2.lat.deg == pytest.approx(46.8668, abs=1e-4)
    assert "OBSGEO" in src2
    assert site_from_header(fits.Header({"SITELAT": "somewhere"}))[0] is None


def test_pointing_from_header_sexagesimal():
    c, src = pointing_from_header(_header("2013-07-04T05:42:02"))
    assert c.separation(TARGET).arcsec < 1
    assert "OBJCTRA" in src


def test_header_airmass_checked_and_moved_to_mid_exposure():
    g = frame_geometry(_header("2013-07-04T05:42:02"), name="a.fit")
    assert g.airmass_source.startswith("header AIRMASS")
    assert abs(g.airmass_computed_start - g.airmass_header) < 0.01
    # mid-exposure: the target was rising, so a little lower airmass than at the start
    assert g.airmass < g.airmass_header + 0.001
    assert g.time_mid.isot.startswith("2013-07-04T05:42:32")
    assert g.sun_alt < -12 and 0 <= g.moon_illum <= 1


def test_wrong_header_airmass_is_replaced_by_computed():
    g = frame_geometry(_header("2013-07-04T05:42:02", AIRMASS=1.0), name="b.fit")
    assert g.airmass_source.startswith("computed")
    assert g.airmass == pytest.approx(1.87, abs=0.02)
    assert any("not used" in n for n in g.notes)


def test_no_site_no_airmass_says_what_is_missing():
    h = fits.Header({"DATE-OBS": "2013-07-04T05:42:02", "EXPTIME": 60.0})
    g = frame_geometry(h, name="c.fit")
    assert np.isnan(g.airmass)
    assert "site" in g.notes[0] and "pointing" in g.notes[0]


def test_time_zone_from_header_airmass():
    # the same night written in local time (CDT = UTC-5): the airmass decides
    utc = [Time("2013-07-04T05:42:02") + i * 10 * u.min for i in range(5)]
    headers = []
    for t in utc:
        h = _header(t.isot)
        h["DATE-OBS"] = (t - 5 * u.hour).isot
        headers.append(h)
    off, note = check_time_zone(headers, SITE, [TARGET] * 5)
    assert off == -5 and "local time" in note
    off0, note0 = check_time_zone([_header(t.isot) for t in utc], SITE, [TARGET] * 5)
    assert off0 == 0 and "is UTC" in note0


def test_time_zone_from_the_sun_without_airmass():
    # 00:42 local (CDT) written as if UTC: the Sun would be up at 00:42 UTC in July there
    utc = [Time("2013-07-04T05:42:02") + i * 10 * u.min for i in range(5)]
    headers = [_header((t - 5 * u.hour).isot, airmass=False) for t in utc]
    off, note = check_time_zone(headers, SITE, [TARGET] * 5)
    assert off in (-6, -5)  # standard or summer time: either puts the Sun down
    assert "local time" in note and "Sun" in note
    off0, note0 = check_time_zone([_header(t.isot, airmass=False) for t in utc], SITE,
                                  [TARGET] * 5)
    assert off0 == 0 and "assumption" in note0


def test_moon_illumination_new_and_full():
    new = sun_moon(Time("2024-07-05T22:57"), SITE)["moon_illum"]
    full = sun_moon(Time("2024-07-21T10:17"), SITE)["moon_illum"]
    assert float(new) < 0.02 and float(full) > 0.98


def _sa112_headers():
    """``(names, headers)`` of the SA112 night's lights, in file-name order."""
    with gzip.open(SA112_HEADERS, "rt") as f:
        text = f.read()
    names, headers = [], []
    for block in text.split("# FILE ")[1:]:
        name, cards = block.split("\n", 1)
        names.append(name.strip())
        headers.append(fits.Header.fromstring(cards, sep="\n"))
    return names, headers


def test_sa112_airmass_from_time_and_site_agrees_with_header():
    """Issue 13: the real SA112 night's airmass computed from DATE-OBS, SITELAT/SITELONG and
    the pointing agrees with the header's to 0.01 (the header's is at the exposure's start,
    so the computed value at the start is compared; measure_night uses mid-exposure)."""
    names, headers = _sa112_headers()
    assert len(headers) == 40 and names[0] == "SA112-SF1-001B1.fit"
    assert {h["FILTER"].strip() for h in headers} == {"B", "V", "R", "I"}
    off, note = check_time_zone(headers, site_from_header(headers[0])[0],
                                [pointing_from_header(h)[0] for h in headers])
    assert off == 0 and "is UTC" in note
    diffs = []
    for name, h in zip(names, headers, strict=True):
        g = frame_geometry(h, name=name)
        diffs.append(g.airmass_computed_start - g.airmass_header)
    diffs = np.array(diffs)
    assert np.all(np.abs(diffs) < 0.01), diffs
    xs = [h["AIRMASS"] for h in headers]
    assert max(xs) == pytest.approx(1.896, abs=0.01) and min(xs) == pytest.approx(1.576, abs=0.01)


def test_microobservatory_style_header_zone_and_west_positive_longitude():
    """DATE-OBS in local time with its zone, LONGITUD west-positive, TELALT (as the
    MicroObservatory HAT-P-32 frames have them)."""
    from glue_zeropoint.night.geometry import check_longitude_sign, obs_time

    whipple = EarthLocation.from_geodetic(-110.88 * u.deg, 31.68 * u.deg)
    target = SkyCoord(31.312099 * u.deg, 46.769087 * u.deg)
    utc = Time("2017-12-20T01:33:43.317")
    alt = target.transform_to(AltAz(obstime=utc, location=whipple)).alt.deg
    h = fits.Header({"DATE-OBS": "2017-12-19T18:33:43.317-0700", "EXPTIME": 60.0,
                     "RA": 31.312099, "DEC": 46.769087, "TELALT": round(alt, 3),
                     "LATITUDE": 31.68, "LONGITUD": 110.88})
    t, note = obs_time(h)
    assert t.isot == utc.isot and "UTC-7" in note
    loc, src = site_from_header(h)
    fixed, lon_note = check_longitude_sign([h], loc, [target])
    assert fixed.lon.deg == pytest.approx(-110.88) and "west-positive" in lon_note
    g = frame_geometry(h, name="m.fits", location=fixed)
    assert g.altitude == pytest.approx(alt, abs=0.3)  # at mid-exposure, 30 s later
    assert g.sun_alt < -12


def test_earth_orientation_table_parsed_once_per_machine(tmp_path, monkeypatch):
    """astropy's IERS table (parsed from text in ~1 s per process) is kept parsed in the
    cache folder: a later process loads that file and gets the same UT1-UTC and polar motion
    without reading the text. A damaged file, or one another user could have written, is
    not loaded (astropy parses its own again and the file is written anew); a file of an
    earlier version is removed."""
    import os

    from astropy.utils import iers

    from glue_zeropoint.night.geometry import load_earth_orientation

    folder = tmp_path / "iers"
    monkeypatch.setenv("GLUE_ZEROPOINT_IERS_CACHE_DIR", str(folder))
    folder.mkdir(mode=0o700)
    (folder / "iers-auto-0123456789abcdef0123.pickle").write_bytes(b"an older version")
    monkeypatch.setattr(iers.IERS_Auto, "iers_table", None)
    t = Time("2017-12-20T03:00:00", scale="utc")
    load_earth_orientation()
    parsed = iers.IERS_Auto.iers_table
    files = list(folder.glob("iers-auto-*.pickle"))
    assert parsed is not None and len(files) == 1 and files[0].stat().st_size > 1e6
    assert files[0].stat().st_mode & 0o777 == 0o600

    def parsed_again(cls, *a, **k):
        raise AssertionError("the IERS text files were parsed again")

    # a new process: the table comes from the file, astropy's text reader is not called
    with monkeypatch.context() as m:
        m.setattr(iers.IERS_Auto, "iers_table", None)
        m.setattr(iers.IERS_Auto, "read", classmethod(parsed_again))
        load_earth_orientation()
        cached = iers.IERS_Auto.iers_table
    assert cached is not parsed and type(cached) is iers.IERS_Auto
    assert cached.ut1_utc(t).to_value(u.s) == parsed.ut1_utc(t).to_value(u.s)
    assert [c.to_value(u.arcsec) for c in cached.pm_xy(t)] == \
        [c.to_value(u.arcsec) for c in parsed.pm_xy(t)]
    # damaged, or writable by others: astropy's own reading, and the file written again
    for spoil in (lambda f: f.write_bytes(b"not a pickle"), lambda f: os.chmod(f, 0o666)):
        spoil(files[0])
        calls = []
        real_read = iers.IERS_Auto.read.__func__
        with monkeypatch.context() as m:
            m.setattr(iers.IERS_Auto, "iers_table", None)
            m.setattr(iers.IERS_Auto, "read", classmethod(
                lambda cls, *a, _c=calls, _r=real_read, **k: _c.append(1) or _r(cls, *a, **k)))
            load_earth_orientation()
            again = iers.IERS_Auto.iers_table
        assert calls and again.ut1_utc(t).to_value(u.s) == parsed.ut1_utc(t).to_value(u.s)
        assert files[0].stat().st_size > 1e6 and files[0].stat().st_mode & 0o777 == 0o600
