"""A night of standard-star photometry through an atmosphere with known extinction and clouds.

The truth is drawn here, independently of the fitting code: per band a zero point above the
atmosphere ``zp0``, an extinction ``k`` (mag/airmass), a colour term ``c``, an optional
colour x airmass term ``k2``; frames spread over an airmass range; a cloud that dims a run of
consecutive frames by a given depth (with a random wisp on each); per-frame "flicker" (the
atmosphere's own frame-to-frame scatter); stars with catalog magnitudes and errors and
instrumental magnitudes with CCD-equation errors (Poisson + sky + read noise).

:func:`simulate_photometry_night` returns per-detection arrays (the level of a frame's
measured stars), fast enough for hundreds of seeds. :func:`write_extinction_night` renders
the same kind of night as raw FITS frames (calibration frames from
:func:`~glue_zeropoint.simulate.night.simulate_night`) for end-to-end runs.
"""

from dataclasses import dataclass, field, replace

import numpy as np

from ._settings import SimSettings

__all__ = ["BandTruth", "simulate_photometry_night", "PhotometryNight", "write_extinction_night",
           "DEFAULT_BANDS", "PhotometryNightSettings", "ExtinctionNightSettings"]


@dataclass
class BandTruth:
    band: str
    zp0: float  # above the atmosphere: mag giving 1 e-/s at colour_ref
    k: float  # mag / airmass
    color_term: float = 0.0
    k2: float = 0.0  # colour x airmass (second order)
    color_ref: float = 0.6


DEFAULT_BANDS = {"B": BandTruth("B", 21.5, 0.30, 0.08), "V": BandTruth("V", 21.9, 0.18, -0.04)}


@dataclass
class PhotometryNight:
    """Per detection: ``frame``, ``star``, ``mag_cat``, ``mag_cat_err``, ``colour``,
    ``colour_err``, ``mag_inst``, ``mag_inst_err``; per frame: ``band``, ``airmass``, ``time``
    (hours from the start), ``cloud`` (mag of dimming), ``zp_true`` (at colour_ref)."""

    detections: dict
    frames: dict
    bands: dict
    cloudy: np.ndarray
    meta: dict = field(default_factory=dict)


@dataclass
class PhotometryNightSettings(SimSettings):
    """The night :func:`simulate_photometry_night` draws.

    Attributes
    ----------
    bands : dict of BandTruth, optional
        Band -> truth (default :data:`DEFAULT_BANDS`).
    n_frames : int
        Frames per band (interleaved in time).
    airmass : (float, float)
        The range the target crosses (one way, rising or setting at random).
    cloud_depth : (float, float) or None
        The cloud's depth range (mag); None: a clear night.
    cloud_frames : (int, int)
        Range of the number of consecutive frames per band the cloud dims.
    n_stars, mag_range : int, (float, float)
        The field's stars and their V range.
    exptime, sky_e, read_noise, fwhm_pix : float
        Exposure (s), sky (e- per pixel), read noise (e-), FWHM (pixels): the CCD equation.
    flicker : float
        The atmosphere's own frame-to-frame scatter (mag).
    cat_err : float
        Catalog magnitude error (mag).
    """

    bands: dict | None = None
    n_frames: int = 20
    airmass: tuple = (1.0, 2.5)
    cloud_depth: tuple | None = (0.1, 0.5)
    cloud_frames: tuple = (3, 6)
    n_stars: int = 60
    mag_range: tuple = (10.0, 16.5)
    exptime: float = 30.0
    sky_e: float = 2000.0
    read_noise: float = 10.0
    fwhm_pix: float = 3.0
    flicker: float = 0.005
    cat_err: float = 0.01


def simulate_photometry_night(seed=0, *, settings=None, **keywords):
    """Draw a night (see the module docstring).

    ``settings`` is a :class:`PhotometryNightSettings`; ``keywords`` are any of its fields
    (they override it: the keywords this function always took, e.g. ``n_frames=12``,
    ``cloud_depth=None`` for a clear night).
    """
    s = PhotometryNightSettings.from_keywords(settings, **keywords)
    bands, n_frames, airmass = s.bands, s.n_frames, s.airmass
    cloud_depth, cloud_frames, n_stars, mag_range = (s.cloud_depth, s.cloud_frames,
                                                     s.n_stars, s.mag_range)
    exptime, sky_e, read_noise, fwhm_pix = s.exptime, s.sky_e, s.read_noise, s.fwhm_pix
    flicker, cat_err = s.flicker, s.cat_err
    rng = np.random.default_rng(seed)
    bands = dict(DEFAULT_BANDS if bands is None else bands)
    # the target rises or sets through the airmass range, bands interleaved
    n_tot = n_frames * len(bands)
    t = np.linspace(0.0, 6.0, n_tot)
    x_lo, x_hi = airmass
    # secant-like path: airmass = 1/cos(z), z linear in time (plus jitter)
    z = np.arccos(1 / x_lo) + (np.arccos(1 / x_hi) - np.arccos(1 / x_lo)) * t / t[-1]
    if rng.random() < 0.5:
        z = z[::-1]
    X = 1.0 / np.cos(z)
    band_of = np.array([list(bands)[i % len(bands)] for i in range(n_tot)])
    cloud = np.zeros(n_tot)
    if cloud_depth is not None:
        n_c = int(rng.integers(cloud_frames[0], cloud_frames[1] + 1)) * len(bands)
        start = int(rng.integers(0, n_tot - n_c))
        depth = rng.uniform(*cloud_depth)
        cloud[start:start + n_c] = depth * rng.uniform(0.7, 1.0, n_c)
    cloudy = cloud > 0
    m_cat_true = {b: None for b in bands}
    mag_v = rng.uniform(*mag_range, n_stars)
    col = rng.uniform(-0.1, 1.5, n_stars)
    flick = rng.normal(0.0, flicker, n_tot)
    det = {k: [] for k in ("frame", "star", "mag_cat", "mag_cat_err", "colour", "colour_err",
                           "mag_inst", "mag_inst_err")}
    zp_true = np.zeros(n_tot)
    cat_colour = col + rng.normal(0, cat_err * np.sqrt(2), n_stars)
    for b in bands:
        m_cat_true[b] = mag_v + (0.0 if b == "V" else (col if b == "B" else -0.5 * col))
    cat_mag = {b: m_cat_true[b] + rng.normal(0, cat_err, n_stars) for b in bands}
    npix = np.pi * (1.5 * fwhm_pix) ** 2
    for j in range(n_tot):
        bt = bands[band_of[j]]
        zp_j = bt.zp0 - bt.k * X[j] - cloud[j] + flick[j]
        zp_true[j] = zp_j
        dc = col - bt.color_ref
        m_inst_true = m_cat_true[bt.band] - zp_j - (bt.color_term - bt.k2 * X[j]) * dc
        flux = 10 ** (-0.4 * m_inst_true) * exptime  # e-
        var = flux + npix * (sky_e + read_noise ** 2)
        f_obs = flux + rng.normal(0.0, np.sqrt(var))
        good = f_obs > 3 * np.sqrt(var)
        m_obs = -2.5 * np.log10(np.where(good, f_obs, np.nan) / exptime)
        m_err = 1.0857 * np.sqrt(var) / np.where(good, f_obs, np.nan)
        idx = np.flatnonzero(good)
        det["frame"].extend([j] * len(idx))
        det["star"].extend(idx.tolist())
        det["mag_cat"].extend(cat_mag[bt.band][idx].tolist())
        det["mag_cat_err"].extend([cat_err] * len(idx))
        det["colour"].extend(cat_colour[idx].tolist())
        det["colour_err"].extend([cat_err * np.sqrt(2)] * len(idx))
        det["mag_inst"].extend(m_obs[idx].tolist())
        det["mag_inst_err"].extend(m_err[idx].tolist())
    det = {k: np.asarray(v) for k, v in det.items()}
    frames = {"band": band_of, "airmass": X, "time": t, "cloud": cloud, "zp_true": zp_true}
    return PhotometryNight(det, frames, bands, cloudy,
                           meta={"seed": seed, "flicker": flicker, "true_mag": m_cat_true})


@dataclass
class ExtinctionNightSettings(SimSettings):
    """The raw night :func:`write_extinction_night` writes.

    Attributes
    ----------
    bands : dict of BandTruth, optional
        Band -> truth (default :data:`DEFAULT_BANDS`).
    n_per_band : int
        Lights per band.
    shape : (int, int)
        Image shape.
    airmass : (float, float)
        The lights run from ``airmass[1]`` down to ``airmass[0]``.
    cloud : (int, float) or None
        Index of the first dimmed light in each band and the depth (mag); None: clear.
    site : (float, float, float)
        Latitude, longitude (deg, east-positive) and height (m).
    date : str
        The night's reference time (ISO, UTC).
    exptime : float
        Seconds per light.
    n_stars : int
        Stars in the field.
    write_airmass : bool
        Write ``AIRMASS`` in the light headers.
    """

    bands: dict | None = None
    n_per_band: int = 6
    shape: tuple = (256, 256)
    airmass: tuple = (1.05, 2.3)
    cloud: tuple | None = (2, 0.4)
    site: tuple = (31.96, -111.6, 2100.0)
    date: str = "2024-07-02T10:30:00"
    exptime: float = 20.0
    n_stars: int = 120
    write_airmass: bool = True


def write_extinction_night(root, *, seed=0, settings=None, **keywords):
    """Raw FITS frames of a night through the atmosphere (module docstring).

    ``settings`` is an :class:`ExtinctionNightSettings`; ``keywords`` are any of its fields
    (they override it: the keywords this function always took, e.g. ``n_per_band=4``).

    ``cloud`` = (index of the first dimmed light in each band, depth mag) or None; the
    cloud dims that light and the next one of every band. Light headers carry ``DATE-OBS``,
    ``SITELAT``/``SITELONG``/``SITEELEV``, the pointing and (``write_airmass``) ``AIRMASS``
    computed here with astropy for the frame's start. The field's RA is placed so that the
    target crosses the requested airmasses at the site. Returns ``(NightTruth, frames)`` with
    per-light dicts (path, band, airmass, cloud, zp).
    """
    from pathlib import Path

    from astropy import units as u
    from astropy.coordinates import AltAz, EarthLocation, SkyCoord
    from astropy.io import fits
    from astropy.time import Time

    from .field import FilterTruth
    from .night import simulate_night

    s = ExtinctionNightSettings.from_keywords(settings, **keywords)
    bands, n_per_band, shape, airmass, cloud = (s.bands, s.n_per_band, s.shape, s.airmass,
                                                s.cloud)
    site, date, exptime, n_stars, write_airmass = (s.site, s.date, s.exptime, s.n_stars,
                                                   s.write_airmass)
    bands = dict(DEFAULT_BANDS if bands is None else bands)
    root = Path(root)
    loc = EarthLocation.from_geodetic(site[1] * u.deg, site[0] * u.deg, site[2] * u.m)
    t0 = Time(date)
    dec = site[0] - 20.0  # transits at z = 20 deg: X ~ 1.064
    lst = t0.sidereal_time("mean", longitude=loc.lon).deg
    filters = {b: FilterTruth(band=b, zp=bt.zp0, color_term=bt.color_term, color=("B", "V"),
                              color_ref=bt.color_ref, sky_sb=20.5 if b == "V" else 21.3)
               for b, bt in bands.items()}
    truth = simulate_night(root, style="maxim", shape=shape, seed=seed, filters=filters,
                           lights=tuple((b, exptime, 0) for b in bands), n_bias=5, n_dark=3,
                           dark_exptimes=(exptime,), n_flat=3, cosmic_rays=0,
                           field_kwargs={"n_stars": n_stars, "center": (lst % 360, dec),
                                         "mag_range": (11.0, 17.0)}, date=date)
    # recentre the field so that it rises from X ~ airmass[1] through transit region
    rng = np.random.default_rng([seed, 99])
    target = SkyCoord(truth.field.wcs.wcs.crval[0] * u.deg, truth.field.wcs.wcs.crval[1] * u.deg)
    # times at which the target is at the wanted airmasses (hour angle from the east)
    t_frames = _frame_times(target, loc, t0, airmass, n_per_band * len(bands))
    lights = []
    maps = truth.maps
    for i, tf in enumerate(t_frames):
        b = list(bands)[i % len(bands)]
        bt = bands[b]
        with np.errstate(all="ignore"):
            a = target.transform_to(AltAz(obstime=tf, location=loc)).alt.deg
        x_true = float(1 / np.cos(np.radians(90 - a)))
        j = i // len(bands)
        dim = cloud[1] if cloud is not None and j in (cloud[0], cloud[0] + 1) else 0.0
        zp = bt.zp0 - bt.k * x_true - dim
        f = replace(filters[b], zp=zp, color_term=bt.color_term - bt.k2 * x_true,
                    sky_sb=filters[b].sky_sb - dim)  # sky dims with the cloud too
        adu = _raw_adu(truth, f, maps.flats[b], exptime, rng)
        h = _light_header(truth, b, exptime, tf, site, target,
                          round(x_true, 4) if write_airmass else None)
        path = root / f"SIMFIELD-{b}-{j + 1:03d}.fit"
        fits.PrimaryHDU(adu, header=h).writeto(path, overwrite=True)
        lights.append({"path": path, "band": b, "airmass": x_true, "cloud": dim, "zp": zp,
                       "time": tf.isot})
    return truth, lights


def _frame_times(target, loc, t0, airmass, n):
    """``n`` times after ``t0`` at which ``target`` rises from ``airmass[1]`` to
    ``airmass[0]`` at ``loc`` (hour angles -4.5 h to transit)."""
    from astropy import units as u
    from astropy.coordinates import AltAz

    hours = np.linspace(-4.5, 0.0, 200)
    with np.errstate(all="ignore"):
        alt = target.transform_to(AltAz(obstime=t0 + hours * u.hour, location=loc)).alt
    xs = 1 / np.cos(np.radians(90 - alt.deg))
    wanted = np.linspace(airmass[1], airmass[0], n)
    # xs decreases with hours: interpolate on -X (increasing)
    return [t0 + np.interp(-w, -xs[::-1][::-1], hours) * u.hour for w in wanted]


def _raw_adu(truth, filt, flat, exptime, rng):
    """One raw light in ADU (uint16): the field through ``filt``, the flat, dark current,
    Poisson and read noise, the bias, and the overscan strip where the camera has one."""
    maps, cam = truth.maps, truth.camera
    shape = flat.shape
    electrons = truth.field.expected_electrons(filt, exptime) * flat \
        + maps.dark_rate * exptime
    sig = rng.poisson(np.clip(electrons, 0, None)).astype(float)
    sig += rng.normal(0.0, cam.read_noise, shape)
    adu = sig / cam.gain + maps.bias
    if cam.overscan:
        over = cam.bias_level + rng.normal(0.0, cam.read_noise / cam.gain,
                                           (shape[0], cam.overscan))
        adu = np.hstack([adu, over])
    return np.clip(np.round(adu), 0, cam.saturation_adu).astype(np.uint16)


def _light_header(truth, band, exptime, t, site, target, airmass):
    """A MaxIm-style light header: time, site, pointing, WCS, overscan sections and
    (``airmass`` not None) AIRMASS."""
    from astropy import units as u
    from astropy.io import fits

    cam = truth.camera
    shape = truth.maps.flats[band].shape
    h = fits.Header()
    h["EXPTIME"] = exptime
    h["DATE-OBS"] = t.isot
    h["IMAGETYP"] = "Light Frame"
    h["EGAIN"] = cam.gain
    h["FILTER"] = band
    h["OBJECT"] = "SIMFIELD"
    h["SITELAT"] = site[0]
    h["SITELONG"] = site[1]
    h["SITEELEV"] = site[2]
    h["OBJCTRA"] = target.ra.to_string(u.hourangle, sep=":", precision=1)
    h["OBJCTDEC"] = target.dec.to_string(sep=":", precision=0, alwayssign=True)
    if airmass is not None:
        h["AIRMASS"] = airmass
    h.update(truth.field.wcs.to_header(relax=True))
    if cam.overscan:
        nx = shape[1]
        first = nx + 1 + min(2, cam.overscan - 1)
        h["BIASSEC"] = f"[{first}:{nx + cam.overscan},1:{shape[0]}]"
        h["TRIMSEC"] = f"[1:{nx},1:{shape[0]}]"
    return h
