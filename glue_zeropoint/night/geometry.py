"""Where and when a frame was taken: site, pointing, mid-exposure time, airmass, Sun and Moon.

Everything here is plain astropy (``EarthLocation``, ``AltAz``, ``get_body``); no Qt, no glue.

* Site: ``SITELAT``/``SITELONG``/``SITEELEV`` (MaxIm: longitude east-positive, sexagesimal or
  degrees), ``LATITUDE``/``LONGITUD``/``ALTITUDE``, ``LAT-OBS``/``LONG-OBS``/``ALT-OBS``,
  ``OBSGEO-X/Y/Z`` (geocentric metres) or ``OBSGEO-B/L/H``, or the caller's ``site``
  (``"lat,lon[,height_m]"`` or an ``EarthLocation``; the caller wins).
* Pointing: the WCS at the image centre, else ``RA``/``DEC`` or ``OBJCTRA``/``OBJCTDEC``.
* Time: ``DATE-OBS`` (start) plus half ``EXPTIME``. A ``DATE-OBS`` in local time is detected
  for the whole night by :func:`check_time_zone`: with header airmasses, the UTC offset whose
  computed airmasses agree with them; without, the Sun's altitude at the stated times (a night
  frame taken in daylight is not UTC). What was decided is always said.
* Airmass: header ``AIRMASS`` (or ``SECZ``) when it lies in [1, 10] and, where it can be
  computed, agrees with the computed one to :data:`AIRMASS_TOLERANCE`; else the computed one
  (Young 1994, geometric zenith distance).
"""

import hashlib
import logging
import math
import os
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import AltAz, Angle, EarthLocation, SkyCoord, get_body
from astropy.time import Time

from ..exceptions import InputError
from ..headers import header_value
from ..io import atomic_path, user_cache_dir
from ..obstime import observation_time

__all__ = ["site_from_header", "parse_site", "pointing_from_header", "airmass_young",
           "FrameGeometry", "frame_geometry", "frame_geometries", "check_time_zone", "sun_moon",
           "sun_altitude",
           "AIRMASS_TOLERANCE", "moon_illumination", "check_longitude_sign"]

#: a header airmass further than this from the computed one is not used (it is reported)
AIRMASS_TOLERANCE = 0.05
#: Sun altitude (deg) above which a night-time light frame is suspicious
DAYLIGHT_SUN_ALT = -6.0

_LAT_KEYS = ("SITELAT", "LATITUDE", "LAT-OBS", "OBSLAT", "OBS-LAT")
_LON_KEYS = ("SITELONG", "LONGITUD", "LONG-OBS", "OBSLONG", "OBS-LONG")
_ELEV_KEYS = ("SITEELEV", "ALTITUDE", "ALT-OBS", "OBSALT", "OBS-ELEV", "HEIGHT")


def _angle(value, unit=u.deg):
    """A header angle: a number (degrees) or sexagesimal text ('+46:52:00.41', '-96 27 11')."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    text = str(value).strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return float(Angle(text.replace(" ", ":"), unit=unit).to_value(u.deg))
    except (ValueError, u.UnitsError):
        return None


def parse_site(site):
    """``EarthLocation`` from ``"lat,lon[,height_m]"`` (degrees, east-positive), a tuple or an
    ``EarthLocation``.

    >>> round(float(parse_site("46.8668,-96.4533,311.8").lat.deg), 4)
    46.8668
    """
    if site is None or isinstance(site, EarthLocation):
        return site
    parts = site if isinstance(site, (tuple, list)) else str(site).replace(";", ",").split(",")
    try:
        values = [float(p) for p in parts]
    except (TypeError, ValueError) as err:
        raise InputError(f"--site {site!r}: give 'LAT,LON[,HEIGHT_M]' in degrees (longitude "
                         "east-positive), e.g. --site 46.867,-96.453,312") from err
    if len(values) not in (2, 3) or not -90 <= values[0] <= 90:
        raise InputError(f"--site {site!r}: give 'LAT,LON[,HEIGHT_M]' with -90 <= LAT <= 90")
    height = values[2] if len(values) == 3 else 0.0
    return EarthLocation.from_geodetic(values[1] * u.deg, values[0] * u.deg, height * u.m)


def site_from_header(header):
    """``(EarthLocation or None, source text)`` from the header keywords (module docstring)."""
    if not header:
        return None, ""
    for keys in (("OBSGEO-X", "OBSGEO-Y", "OBSGEO-Z"),):
        vals = [header_value(header, (k,))[0] for k in keys]
        if all(v is not None for v in vals) and np.hypot(vals[0], vals[1]) > 1e6:
            return EarthLocation.from_geocentric(*vals, unit=u.m), "header OBSGEO-X/Y/Z"
    lat = lon = None
    src = []
    for key in _LAT_KEYS:
        if key in header and (lat := _angle(header[key])) is not None:
            src.append(key)
            break
    for key in _LON_KEYS:
        if key in header and (lon := _angle(header[key])) is not None:
            src.append(key)
            break
    if lat is None or lon is None:
        b, lkey = header_value(header, ("OBSGEO-B",))
        l_, _ = header_value(header, ("OBSGEO-L",))
        if b is not None and l_ is not None:
            lat, lon, src = b, l_, ["OBSGEO-B", "OBSGEO-L"]
    if lat is None or lon is None or not -90 <= lat <= 90:
        return None, ""
    height, hkey = header_value(header, _ELEV_KEYS + ("OBSGEO-H",))
    if height is None or not -500 < height < 6000:
        height, hkey = 0.0, None
    if hkey:
        src.append(hkey)
    return (EarthLocation.from_geodetic(lon * u.deg, lat * u.deg, height * u.m),
            "header " + "/".join(src) + ("" if hkey else " (height taken as 0 m)"))


def pointing_from_header(header, wcs=None, shape=None):
    """``(SkyCoord or None, source)``: the WCS at the image centre, else RA/DEC keywords."""
    if wcs is not None and getattr(wcs, "has_celestial", False) and shape is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c = wcs.celestial.pixel_to_world((shape[1] - 1) / 2, (shape[0] - 1) / 2)
        if isinstance(c, SkyCoord) and np.isfinite(c.icrs.ra.deg):
            return c.icrs, "WCS"
    if header:
        for rk, dk in (("OBJCTRA", "OBJCTDEC"), ("RA", "DEC"), ("RA_OBJ", "DEC_OBJ")):
            if rk in header and dk in header:
                rv, dv = header[rk], header[dk]
                if isinstance(rv, str) and not _is_number(rv):
                    ra = _angle(rv, unit=u.hourangle)
                else:
                    ra = _angle(rv)
                dec = _angle(dv)
                if ra is not None and dec is not None and -90 <= dec <= 90:
                    return SkyCoord(ra * u.deg, dec * u.deg), f"header {rk}/{dk}"
    return None, ""


_ZONE = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:.]+)\s*([+-])(\d\d):?(\d\d)$")


def obs_time(header, name=None):
    """``(Time or None, note)``: :func:`~glue_zeropoint.obstime.observation_time`, except that
    a ``DATE-OBS`` carrying its zone (``2017-12-19T18:33:43.317-0700``: local time with its
    offset, as MicroObservatory writes it) is converted to UTC and said so."""
    if header:
        text = str(header.get("DATE-OBS", "")).strip()
        m = _ZONE.match(text)
        if m:
            sign = 1 if m.group(2) == "+" else -1
            offset = sign * (int(m.group(3)) + int(m.group(4)) / 60.0)
            t = Time(m.group(1), format="isot", scale="utc") - offset * u.hour
            return t, f"DATE-OBS is local time with its zone (UTC{offset:+g} h): converted"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return observation_time(header, name), ""


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def airmass_young(alt_deg):
    """Airmass from the geometric (true) altitude, Young (1994, Appl. Opt. 33, 1108); NaN for
    a target below the horizon.

    >>> round(float(airmass_young(90.0)), 4), round(float(airmass_young(30.0)), 3)
    (1.0, 1.992)
    """
    alt = np.asarray(alt_deg, float)
    c = np.cos(np.radians(90.0 - alt))
    x = ((1.002432 * c ** 2 + 0.148386 * c + 0.0096467)
         / (c ** 3 + 0.149864 * c ** 2 + 0.0102963 * c + 0.000303978))
    return np.where(alt > 0, x, np.nan)


def moon_illumination(time, location=None, *, sun=None, moon=None):
    """Illuminated fraction of the Moon (0-1) from the Sun-Moon phase angle (``sun`` and
    ``moon``: their ``get_body`` positions at ``time`` when already computed)."""
    sun = get_body("sun", time, location) if sun is None else sun
    moon = get_body("moon", time, location) if moon is None else moon
    elong = sun.separation(moon)
    phase = np.arctan2(sun.distance * np.sin(elong), moon.distance - sun.distance * np.cos(elong))
    return np.asarray((1.0 + np.cos(phase)) / 2.0, float)


def _iers_cache_path(iers):
    """Where this machine keeps astropy's parsed Earth-orientation table: a file named by the
    astropy and astropy-iers-data versions and the bundled files' sizes and times, so that
    any change to them reads the files afresh."""
    import astropy

    try:
        import astropy_iers_data

        data_version = astropy_iers_data.__version__
    except (ImportError, AttributeError):
        data_version = ""
    parts = [astropy.__version__, data_version]
    for name in (iers.IERS_A_FILE, iers.IERS_B_FILE):
        st = os.stat(name)
        parts += [str(Path(name).resolve()), str(st.st_size), str(st.st_mtime_ns)]
    key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]
    return user_cache_dir("iers", "GLUE_ZEROPOINT_IERS_CACHE_DIR") / f"iers-auto-{key}.pickle"


def _private(path):
    """True when ``path`` and its folder belong to this user and nobody else may write them
    (a pickle runs code as it loads: only one this user wrote is loaded)."""
    if not hasattr(os, "getuid"):
        return False
    uid = os.getuid()
    for p in (path, path.parent):
        st = os.stat(p)
        if st.st_uid != uid or st.st_mode & 0o022:
            return False
    return True


def load_earth_orientation():
    """astropy's default Earth-orientation table (``IERS_Auto.open()``: UT1-UTC and polar
    motion, which every alt-az transform needs), read once per machine instead of once per
    process: parsing its two bundled text files takes ~1 s (most of a 142-frame night's
    planning, tests/benchmarks/README.md); the parsed table is kept in the user cache
    (``GLUE_ZEROPOINT_IERS_CACHE_DIR``, else ``glue-zeropoint/iers`` in ``$XDG_CACHE_HOME``
    or ``~/.cache``) and loads in milliseconds.

    The table is astropy's own whatever happens: a ``finals2000A.all`` in the working folder
    (which astropy reads instead), a table already opened, or a cache that cannot be read,
    written or trusted (a file or folder another user owns or may write) leave the reading
    to astropy. Writing it removes the files of earlier versions."""
    from astropy.utils import iers

    if iers.IERS_Auto.iers_table is not None or os.path.exists("finals2000A.all"):
        return
    log = logging.getLogger(__name__)
    try:
        path = _iers_cache_path(iers)
    except Exception as err:  # noqa: BLE001 - no home folder, no bundled file: astropy's way
        log.info("IERS cache not used (%s)", err)
        path = None
    if path is not None:
        try:
            if _private(path):
                with open(path, "rb") as fh:
                    table = pickle.load(fh)
                if type(table) is iers.IERS_Auto and len(table):
                    iers.IERS_Auto.iers_table = table
                    return
        except FileNotFoundError:
            pass
        except Exception as err:  # noqa: BLE001 - damaged or foreign: astropy reads its own
            log.info("IERS cache %s not used (%s)", path, err)
    table = iers.IERS_Auto.open()
    if path is None:
        return
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            pickle.dump(table, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(path, 0o600)
        for old in path.parent.glob("iers-auto-*.pickle"):
            if old != path:
                old.unlink(missing_ok=True)
    except Exception as err:  # noqa: BLE001 - the next process parses the files again
        log.info("IERS cache %s not written (%s)", path, err)


def sun_altitude(time, location):
    """The Sun's altitude (deg, array like ``time``): what the site and time-zone checks need,
    without the Moon's ephemeris (``sun_moon(...)['sun_alt']``, at half the cost)."""
    load_earth_orientation()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # IERS/ERFA "dubious year" warnings
        sun = get_body("sun", time, location)
        return np.asarray(sun.transform_to(AltAz(obstime=time, location=location)).alt.deg,
                          float)


def sun_moon(time, location, target=None):
    """Sun altitude, Moon altitude, Moon illumination and (with ``target``) the Moon's
    separation from it, in degrees/fraction (arrays like ``time``)."""
    load_earth_orientation()
    frame = AltAz(obstime=time, location=location)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # IERS/ERFA "dubious year" warnings
        sun = get_body("sun", time, location)
        moon = get_body("moon", time, location)
        out = {"sun_alt": np.asarray(sun.transform_to(frame).alt.deg, float),
               "moon_alt": np.asarray(moon.transform_to(frame).alt.deg, float),
               "moon_illum": moon_illumination(time, location, sun=sun, moon=moon)}
        if target is not None:
            out["moon_sep"] = np.asarray(moon.separation(target).deg, float)
    return out


def target_airmass(time, location, target):
    load_earth_orientation()
    frame = AltAz(obstime=time, location=location)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alt = target.transform_to(frame).alt.deg
    return airmass_young(alt), np.asarray(alt, float)


@dataclass
class FrameGeometry:
    """Time, airmass and the Sun and Moon of one frame (see :func:`frame_geometry`)."""

    name: str
    time_start: object = None  # Time (UTC) after any time-zone correction
    time_mid: object = None
    exptime: float | None = None
    airmass: float = float("nan")
    airmass_source: str = ""
    airmass_header: float = float("nan")
    airmass_computed: float = float("nan")  # at mid-exposure
    airmass_computed_start: float = float("nan")  # at DATE-OBS, to compare with the header
    altitude: float = float("nan")
    sun_alt: float = float("nan")
    moon_alt: float = float("nan")
    moon_illum: float = float("nan")
    moon_sep: float = float("nan")
    site_source: str = ""
    pointing_source: str = ""
    notes: list = field(default_factory=list)

    def to_dict(self):
        d = {k: getattr(self, k) for k in (
            "name", "exptime", "airmass", "airmass_source", "airmass_header", "airmass_computed",
            "airmass_computed_start", "altitude", "sun_alt", "moon_alt", "moon_illum",
            "moon_sep", "site_source", "pointing_source")}
        d["time_start"] = None if self.time_start is None else self.time_start.isot
        d["time_mid"] = None if self.time_mid is None else self.time_mid.isot
        d["notes"] = list(self.notes)
        return d


def _header_airmass(header):
    x, key = header_value(header, ("AIRMASS", "SECZ", "AIRMAS"))
    if x is None:
        return float("nan"), None
    return float(x), key


def _altitudes(headers):
    out = []
    for h in headers:
        a, _ = header_value(h, ("ALT-OBJ", "TELALT", "OBJCTALT", "ALTITUDE_OBJ"))
        out.append(np.nan if a is None or not 0 < a <= 90 else a)
    return np.array(out)


def check_longitude_sign(headers, location, targets):
    """Some software writes the longitude west-positive. Returns ``(location, note)``: the
    location with the longitude's sign flipped when only then the header's target altitudes
    (``ALT-OBJ``/``TELALT``) agree with the computed ones, or (without altitudes) when only
    then the Sun is down at the frames' times (taken as UTC from ``MJD-OBS``/``DATE-OBS``);
    ``note`` is '' when nothing was changed."""
    if location is None:
        return location, ""
    times, tg, alts = [], [], []
    hdr_alt = _altitudes(headers)
    for h, t, a in zip(headers, targets, hdr_alt, strict=True):
        tt, _ = obs_time(h)
        if tt is not None:
            times.append(tt.utc.isot)
            tg.append(t)
            alts.append(a)
    if not times:
        return location, ""
    t = Time(times, format="isot", scale="utc")
    flipped = EarthLocation.from_geodetic(-location.lon, location.lat, location.height)
    alts = np.array(alts)
    if np.isfinite(alts).any() and all(x is not None for x in tg):
        k = int(np.flatnonzero(np.isfinite(alts))[0])

        def alt_at(loc):
            load_earth_orientation()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return float(tg[k].transform_to(AltAz(obstime=t[k], location=loc)).alt.deg)

        d0, d1 = abs(alt_at(location) - alts[k]), abs(alt_at(flipped) - alts[k])
        if d1 < 2.0 < d0:
            return flipped, (f"the header longitude {location.lon.deg:+.3f} is west-positive: "
                             f"only at {flipped.lon.deg:+.3f} (east-positive) does the target's "
                             f"computed altitude match the header's ({alts[k]:.1f} deg)")
        return location, ""
    sun0 = float(np.nanmedian(sun_altitude(t, location)))
    sun1 = float(np.nanmedian(sun_altitude(t, flipped)))
    if sun0 > DAYLIGHT_SUN_ALT and sun1 < -12:
        return flipped, (f"the header longitude {location.lon.deg:+.3f} is probably "
                         f"west-positive: there the Sun would be up (altitude {sun0:.0f} deg), "
                         f"at {flipped.lon.deg:+.3f} it is down ({sun1:.0f} deg); assumption")
    return location, ""


def check_time_zone(headers, location, targets):
    """Decide whether the night's ``DATE-OBS`` are UTC.

    Parameters
    ----------
    headers : list of header mappings (light frames)
    location : EarthLocation or None
    targets : list of SkyCoord or None (pointings, same order)

    Returns
    -------
    offset_hours : float
        Hours to *subtract* from the stated times to get UTC (0 when they are UTC).
    note : str
        What was decided and on what evidence (always filled).
    """
    times, zone_notes = [], set()
    for h in headers:
        t, zn = obs_time(h)
        times.append(t)
        if zn:
            zone_notes.add(zn)
    if zone_notes:
        return 0.0, "; ".join(sorted(zone_notes))
    ok = [i for i, t in enumerate(times) if t is not None]
    if not ok:
        return 0.0, "no DATE-OBS: no time, so airmass only from the headers"
    if location is None:
        return 0.0, ("DATE-OBS taken as UTC (assumption: no site known to check it against "
                     "the Sun or the header airmass)")
    t = Time([times[i].utc.isot for i in ok], format="isot", scale="utc")
    zone = round(location.lon.deg / 15.0)
    candidates = sorted({0, zone, zone + 1}, key=lambda h: (h != 0, abs(h)))
    xh = np.array([_header_airmass(headers[i])[0] for i in ok])
    have_x = np.isfinite(xh) & (xh >= 1.0) & (xh < 10)
    tgt_ok = [i for i in ok if targets[i] is not None]
    if have_x.sum() >= 1 and tgt_ok:
        scores = {}
        for h in candidates:
            diffs = []
            for j, i in enumerate(ok):
                if have_x[j] and targets[i] is not None:
                    xc, _ = target_airmass(t[j] - h * u.hour, location, targets[i])
                    diffs.append(abs(float(xc) - xh[j]))
            diffs = [d for d in diffs if np.isfinite(d)]
            scores[h] = float(np.median(diffs)) if diffs else np.inf
        best = min(scores, key=scores.get)
        if scores[best] < AIRMASS_TOLERANCE:
            if best == 0:
                return 0.0, (f"DATE-OBS is UTC: the airmass computed from it, the site and the "
                             f"pointing agrees with the header's (median |dX| "
                             f"{scores[0]:.3f})")
            return float(best), (f"DATE-OBS is local time (UTC{best:+d} h): only with "
                                 f"{-best:+d} h does the computed airmass agree with the "
                                 f"header's (median |dX| {scores[best]:.3f}; as UTC "
                                 f"{scores[0]:.2f})")
    sun = sun_altitude(t, location)
    if np.nanmedian(sun) < DAYLIGHT_SUN_ALT:
        return 0.0, (f"DATE-OBS taken as UTC: the Sun is then below the horizon (median "
                     f"altitude {np.nanmedian(sun):.0f} deg); local time cannot be excluded "
                     "when it would be night too (assumption)")
    good = []
    for h in candidates[1:]:
        s = sun_altitude(t - h * u.hour, location)
        if np.nanmedian(s) < DAYLIGHT_SUN_ALT:
            good.append((h, float(np.nanmedian(s))))
    if not good:
        return 0.0, (f"DATE-OBS taken as UTC although the Sun would then be up (median "
                     f"altitude {np.nanmedian(sun):.0f} deg) and no local time zone puts it "
                     "down: check DATE-OBS and the site")
    h, s = good[0]
    more = (f" (UTC{good[1][0]:+d} h, summer time, would also put the Sun down: "
            "assumption)" if len(good) > 1 else "")
    return float(h), (f"DATE-OBS looks like local time: as UTC the Sun would be up (median "
                      f"altitude {np.nanmedian(sun):.0f} deg); taken as UTC{h:+d} h (Sun at "
                      f"{s:.0f} deg){more}")


def _time_array(times):
    """One `~astropy.time.Time` of scalar times, UTC, built from their two-part Julian dates
    (``Time(list)`` guesses the format, keeping its failed guesses in a reference cycle)."""
    utc = [t.utc for t in times]
    return Time([t.jd1 for t in utc], [t.jd2 for t in utc], format="jd", scale="utc")


def frame_geometries(headers, *, names, wcs, shapes, location=None, site_source="",
                     offset_hours=0.0):
    """:func:`frame_geometry` of every light of a night, with the airmass, the Sun and the
    Moon computed for all the frames of a site at once (one transform per quantity, not one
    per frame: per-frame transforms were most of the time a night spent on its headers)."""
    parts = [_frame_basics(h, name=n, wcs=w, shape=sh, location=location,
                           site_source=site_source, offset_hours=offset_hours)
             for h, n, w, sh in zip(headers, names, wcs, shapes, strict=True)]
    by_site = {}
    for k, (g, site, target, _xh) in enumerate(parts):
        if site is not None and target is not None and g.time_mid is not None:
            key = tuple(float(v) for v in site.to_value(u.m))
            by_site.setdefault(key, (site, []))[1].append(k)
    computed = {}
    for site, members in by_site.values():
        times = _time_array([parts[k][0].time_mid for k in members])
        starts = _time_array([parts[k][0].time_start for k in members])
        targets = SkyCoord([parts[k][2].icrs for k in members])
        x_mid, alt = target_airmass(times, site, targets)
        x_start = target_airmass(starts, site, targets)[0]
        values = sun_moon(times, site, targets)
        for j, k in enumerate(members):
            computed[k] = (float(x_mid[j]), float(alt[j]), float(x_start[j]))
            parts[k][0].__dict__.update({name: float(v[j]) for name, v in values.items()})
    return [_choose_airmass(g, site, target, xh, computed.get(k))
            for k, (g, site, target, xh) in enumerate(parts)]


def frame_geometry(header, *, name="", wcs=None, shape=None, location=None, site_source="",
                   offset_hours=0.0):
    """:class:`FrameGeometry` of one light frame.

    ``location`` (with its ``site_source``) overrides the header's site; ``offset_hours``
    (from :func:`check_time_zone`) is subtracted from the stated time.
    """
    return frame_geometries([header], names=[name], wcs=[wcs], shapes=[shape],
                            location=location, site_source=site_source,
                            offset_hours=offset_hours)[0]


def _frame_basics(header, *, name, wcs, shape, location, site_source, offset_hours):
    """The header's part of a frame's geometry: (geometry with its times, site, target,
    (header airmass, its keyword))."""
    g = FrameGeometry(name=name)
    g.exptime = header_value(header, ("EXPTIME", "EXPOSURE"))[0]
    if location is None:
        location, site_source = site_from_header(header)
    g.site_source = site_source
    target, g.pointing_source = pointing_from_header(header, wcs, shape)
    t0, zone_note = obs_time(header, name)
    if zone_note:
        g.notes.append(zone_note)
    if t0 is not None:
        t0 = t0 - offset_hours * u.hour
        g.time_start = t0
        g.time_mid = t0 + 0.5 * (g.exptime or 0.0) * u.s
        if not g.exptime:
            g.notes.append("no EXPTIME: the time is DATE-OBS, not mid-exposure")
    return g, location, target, _header_airmass(header)


def _choose_airmass(g, location, target, header_airmass, from_site):
    """The frame's airmass: the header's where plausible and consistent with the one
    computed from time, site and pointing (``from_site``: mid-exposure airmass, altitude,
    airmass at the start; None when it cannot be computed), else the computed one."""
    xh, xkey = header_airmass
    g.airmass_header = xh
    if from_site is not None:
        g.airmass_computed, g.altitude, g.airmass_computed_start = from_site
    plausible = np.isfinite(xh) and 1.0 <= xh < 10.0
    computed = np.isfinite(g.airmass_computed)
    if plausible and (not computed
                      or abs(xh - g.airmass_computed_start) <= AIRMASS_TOLERANCE):
        g.airmass, g.airmass_source = xh, f"header {xkey}"
        if computed and g.exptime and g.exptime > 0:
            # the header's is usually at the start: move it to mid-exposure
            shift = g.airmass_computed - g.airmass_computed_start
            g.airmass = xh + shift
            if abs(shift) > 1e-4:
                g.airmass_source += " moved to mid-exposure"
    elif computed:
        g.airmass, g.airmass_source = g.airmass_computed, "computed (time, site, pointing)"
        if np.isfinite(xh):
            g.notes.append(f"header {xkey} = {xh:g} not used: computed {g.airmass_computed:.3f}"
                           f" at DATE-OBS")
    else:
        missing = [w for w, ok in (("site", location is not None),
                                   ("pointing", target is not None),
                                   ("time", g.time_mid is not None)) if not ok]
        g.airmass_source = "unknown"
        g.notes.append(("no usable AIRMASS keyword" if not np.isfinite(xh) else
                        f"implausible {xkey} = {xh:g}") + " and no "
                       + ", no ".join(missing) + " to compute it (give --site LAT,LON)")
    return g
