"""Every light of a night: calibrate, measure, tie to the catalog, fit the night's model.

:func:`measure_night` is the one call behind ``glue-zeropoint night`` and the Glue night
loader. Per light frame (in time order): its time, airmass, Sun and Moon
(:mod:`.geometry`); its zero point against the field's catalog (one query per field, reused
for every frame of the field; a frame without WCS is started from the WCS solved for an
earlier frame of the same pointing) with :func:`~glue_zeropoint.zeropoint.measure_image`;
without a catalog, or when that fails (clouds, no match), its stars only. A frame that fails
is recorded with the reason and the night goes on.

Then per field and band the night's own stars give each frame's offset
(:func:`.ensemble.ensemble_offsets`); with a catalog the offsets are tied to the frames'
catalog zero points (one tie per field and band, so catalog errors, common to every frame,
do not scatter the frames), without one ``-offset`` is a relative zero point. The extinction
line per band (:func:`.extinction.fit_extinction`) names the cloudy frames and gives the
transparency per frame; the colour term (and a colour x airmass term when the frames'
colour terms constrain it) comes from the frames' own fits; then the standard magnitude of
every star measured in a clear frame, and the sky brightness per frame.
"""

import contextlib
import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table

from ..calibration.night import colour_channel
from ..exceptions import (
    CalibrationWarning,
    Cancelled,
    CatalogWarning,
    InputError,
    ZeropointError,
)
from ..headers import FILTER_KEYS, header_text
from ..progress import report
from .ensemble import MIN_ENSEMBLE_STARS, ensemble_offsets, group_stars
from .extinction import band_name, colour_airmass_term, fit_extinction, night_verdict
from .geometry import (
    check_longitude_sign,
    check_time_zone,
    frame_geometries,
    parse_site,
    pointing_from_header,
)
from .run_constants import DEFAULT_COLOURS
from .settings import NightSettings

__all__ = ["measure_night", "plan_night", "measure_frame", "fit_night", "NightPlan",
           "FrameOutcome", "NightResult", "DEFAULT_COLOURS"]

log = logging.getLogger(__name__)

#: the ensemble's error cut (mag; :func:`.ensemble.ensemble_offsets` ``max_err`` default)
ENSEMBLE_MAX_ERR = 0.05

#: frames whose pointings are closer than this (deg) are one field
FIELD_RADIUS_DEG = 0.25
#: ``photometry`` of a frame whose light beyond its largest radius is the night's
#: (:func:`_common_tail`); "aperture": the band's common aperture; "total": its own
NIGHT_TAIL = "total/night tail"

FRAME_COLUMNS = (
    "frame", "file", "band", "filter", "field", "time", "mjd", "exptime", "airmass",
    "airmass_source", "airmass_header", "airmass_computed", "altitude", "status", "reason",
    "zp", "zp_err", "zp_err_total", "color", "color_ref", "color_term", "color_term_err", "n_matched", "n_used",
    "n_stars", "fwhm", "ellipticity", "aperture_radius", "apcorr", "apcorr_err", "apcorr_tail",
    "apcorr_tail_err", "ens_offset", "ens_offset_err", "ens_n_stars", "rel_transparency",
    "zp_night", "zp_night_err", "k_residual", "k_residual_err", "transparency", "used_in_fit",
    "cloudy", "outlier", "sky_rate", "sky_inst", "sky_sb", "sky_sb_err", "sun_alt",
    "moon_alt", "moon_illum", "moon_sep", "flags")


@dataclass
class NightResult:
    """What :func:`measure_night` found (see :mod:`.outputs` for the files)."""

    frames: Table
    detections: Table
    standards: Table | None
    fits: dict
    colour_terms: dict
    verdict: str
    verdict_reason: str
    notes: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    wcs: dict = field(default_factory=dict, repr=False)  # frame index -> WCS (regions)

    def to_dict(self):
        from ..io import to_jsonable

        fr = self.frames
        per_frame = []
        for row in fr:
            per_frame.append({c: _py(row[c]) for c in (
                "file", "band", "time", "airmass", "status", "zp", "zp_err", "zp_night",
                "k_residual", "transparency", "rel_transparency", "cloudy", "sky_sb",
                "moon_alt", "sun_alt", "reason")})
        return to_jsonable({
            "verdict": self.verdict, "verdict_reason": self.verdict_reason,
            "bands": {b: f.to_dict() for b, f in self.fits.items()},
            "colour_terms": self.colour_terms,
            "n_frames": len(fr), "n_measured": int(np.sum(fr["status"] != "failed")),
            "n_failed": int(np.sum(fr["status"] == "failed")),
            "cloudy_frames": [str(f) for f in fr["file"][np.asarray(fr["cloudy"], bool)]],
            "failed_frames": {str(r["file"]): str(r["reason"]) for r in fr
                              if r["status"] == "failed"},
            "n_standard_stars": 0 if self.standards is None else len(self.standards),
            "notes": list(self.notes), "provenance": self.provenance, "frames": per_frame})


def _py(v):
    if isinstance(v, (np.floating, float)):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v if not isinstance(v, bytes) else v.decode()


def _lights(raw_dir, out, calibrate, gain, progress, read_noise=None, cfa="G"):
    """(names, CCDData list, report) of the night's lights, calibrated or as they are."""
    if calibrate:
        from ..calibration import calibrate_night

        cal_out = None if out is None else Path(out) / "calibrated"
        # memory-mapped from the products: the night holds a few frames' pixels, not all
        night = calibrate_night(raw_dir, cal_out, gain=gain, read_noise=read_noise,
                                progress=progress, cfa=cfa,
                                memmap=True if cal_out is not None else None)
        names = [r.get("file", f"light{i}") for i, r in enumerate(night.report["lights"])]
        lights = night.lights
        if cal_out is not None:  # one light's pixels (and file) open at a time, not all
            lights = [_LazyProduct(cal_out / r["product"], ccd) if r.get("product") else ccd
                      for r, ccd in zip(night.report["lights"], night.lights, strict=True)]
        return names, lights, {"calibration": "calibrated by glue-zeropoint",
                                     "calibrated_dir": None if cal_out is None else
                                     _absolute(cal_out)}

    from ..calibration.frames import scan_frames

    frames = scan_frames(raw_dir, keep_products=True)
    lights = [f for f in getattr(frames, "frames", frames) if getattr(f, "kind", "") == "light"]
    products = sorted(Path(raw_dir) / p for p in frames.products
                      if _is_light_product(Path(raw_dir) / p))
    if lights:
        if products:  # never both: an output folder inside the raw one would count twice
            warnings.warn(f"{len(products)} calibrated product(s) of glue-zeropoint found "
                          f"below {raw_dir} were left out: the raw lights are measured; point "
                          "to the products' folder to measure them instead", CalibrationWarning,
                          stacklevel=2)
        paths = [Path(f.path) for f in lights]
        return [p.name for p in paths], [
            _LazyLight(p, f.header) for p, f in zip(paths, lights, strict=True)], {
            "calibration": "none: raw lights measured as they are (--no-calibrate)"}
    # the calibrated lights of an earlier run (masters left out), measured as they are with
    # their uncertainty and mask: a night is measured again without calibrating again
    return [p.name for p in products], [_LazyProduct.from_file(p) for p in products], {
        "calibration": "none: calibrated products of glue-zeropoint measured as they are"}


def _is_light_product(path):
    """True for a calibrated light written by glue-zeropoint: a 2-D product with an
    uncertainty plane whose kind is light or unknown (a light keeps its raw frame's IMAGETYP,
    which may be 'OBJECT', or empty where the raw frames were told apart by their file
    names); masters (``IMAGETYP = 'master bias'``...) and any bias, dark or flat product, by
    its header or else its file name, are not."""
    from astropy.io import fits

    from ..calibration.frames import frame_type_from_header, frame_type_from_name

    if path.name.lower().endswith(".json"):
        return False
    try:
        with fits.open(path, memmap=True) as hdul:
            if "UNCERT" not in hdul or hdul[0].header.get("NAXIS") != 2:
                return False
            kind, _ = frame_type_from_header(hdul[0].header)
    except (OSError, ValueError):
        return False
    return (kind or frame_type_from_name(path) or "light") == "light"


class _LazyLight:
    """A raw light whose header is read now and pixels only when measured (so a night of
    hundreds of frames holds one frame's pixels at a time)."""

    def __init__(self, path, header=None):
        from astropy.io import fits

        self.path = path
        if header is not None:  # read already (the frame scan's, its primary's keys added)
            self.meta = header
        else:
            with fits.open(path, memmap=True) as hdul:
                hdu = next(h for h in hdul if h.header.get("NAXIS", 0) == 2)
                self.meta = hdu.header.copy()
        self.shape = (int(self.meta["NAXIS2"]), int(self.meta["NAXIS1"]))
        self.wcs = _wcs_of(self.meta)

    def load(self):
        from astropy.nddata import CCDData

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = _read_raw(self.path, header=False)
        # the header the night was planned with (a multi-extension file's primary keys, e.g.
        # FILTER or DATE-OBS, included), so the frame's band and time are the planned ones
        return CCDData(data, unit="adu", meta=self.meta.copy(), wcs=self.wcs)


class _LazyProduct:
    """A calibrated light known by its product file: header, WCS and shape kept, pixels
    memory-mapped only when it is measured (a night of thousands of lights neither holds
    their pixels nor keeps a file open per light)."""

    def __init__(self, path, ccd):
        self.path = path
        self.meta = ccd.meta
        self.wcs = ccd.wcs
        self.shape = ccd.shape

    @classmethod
    def from_file(cls, path):
        """A product found on disk (``night --no-calibrate`` on a folder of products)."""
        from types import SimpleNamespace

        from astropy.io import fits

        with fits.open(path, memmap=True) as hdul:
            meta = hdul[0].header.copy()
        shape = (int(meta["NAXIS2"]), int(meta["NAXIS1"]))
        return cls(path, SimpleNamespace(meta=meta, wcs=_wcs_of(meta), shape=shape))

    def load(self):
        from ..calibration import read_product

        return read_product(self.path, memmap=True)


def _absolute(path):
    """``path`` as an absolute path string (a relative one is relative to where the night
    ran, not to where its results are opened)."""
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError, TypeError, ValueError):
        return str(path)


def _read_raw(path, header=True):
    """The first 2-D image of a raw file as float32, and a copy of its header (``header``:
    else the pixels alone)."""
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        for hdu in hdul:
            if hdu.data is not None and hdu.data.ndim == 2:
                data = np.asarray(hdu.data, np.float32)
                return (data, hdu.header.copy()) if header else data
    raise ZeropointError(f"{path}: no 2-D image")


def _wcs_of(header):
    """The header's celestial WCS, or None (also when it cannot be read)."""
    from astropy.wcs import WCS

    if not any(str(k).startswith("CTYPE") for k in header.keys()):
        return None  # no axis type: no celestial WCS (astropy took ~7 ms to say so)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            w = WCS(header)
        except Exception:  # noqa: BLE001 - a broken WCS is no WCS
            return None
    return w if w.has_celestial else None


def _cluster_fields(pointings):
    """Field number per frame: pointings within FIELD_RADIUS_DEG are one field."""
    centres, out = [], []
    for p in pointings:
        if p is None:
            out.append(-1)
            continue
        for i, c in enumerate(centres):
            if p.separation(c).deg < FIELD_RADIUS_DEG:
                out.append(i)
                break
        else:
            centres.append(p)
            out.append(len(centres) - 1)
    return out, centres


def _band_of(header, name, band_map, cfa="none"):
    """(filter, band) of a frame: its FILTER (a colour mosaic's: the channel it is measured
    in, :func:`.calibration.cfa.channel_filter`), mapped by ``band_map``."""
    from ..calibration.cfa import channel_filter

    filt = channel_filter(header, cfa) or header_text(header, FILTER_KEYS) or ""
    band = (band_map or {}).get(filt, filt)
    return filt, band


def _catalog_for_field(spec, center, radius, offline, notes):
    from ..catalogs import get_catalog

    try:
        return get_catalog(spec, center, radius, offline=offline)
    except ZeropointError as err:
        notes.append(f"catalog {spec} for the field at {center.to_string('hmsdms')}: {err}")
        warnings.warn(notes[-1], CatalogWarning, stacklevel=3)
        return None


def _colour_for(band, cat, colours):
    colour = (colours or DEFAULT_COLOURS).get(band)
    if colour is None or cat is None:
        return None, None
    a, b = colour.split("-")
    if f"mag_{a}" not in cat.colnames or f"mag_{b}" not in cat.colnames:
        return None, None
    c = np.ma.filled(np.ma.asarray(cat[f"mag_{a}"], float), np.nan) - \
        np.ma.filled(np.ma.asarray(cat[f"mag_{b}"], float), np.nan)
    ref = float(np.nanmedian(c)) if np.isfinite(c).any() else None
    return colour, ref


def _photometry_only(ccd, settings):
    from ..photometry import find_stars, measure_stars, prepare_image

    im = prepare_image(ccd, gain=settings.gain)
    im.require_exptime()
    positions = find_stars(im)
    stars = measure_stars(im, positions, aperture_radius=settings.aperture_radius)
    return stars, im


@dataclass
class NightPlan:
    """What a night is before any pixel is measured (headers, geometry, fields, catalogs).

    Built by :func:`plan_night`; :func:`measure_frame` measures one of its frames and
    :func:`fit_night` fits the rows. The three steps are separate so that a scheduler (the
    archive's Dask tasks) can run the frames anywhere and in any order."""

    raw_dir: str
    names: list
    lights: list
    geoms: list
    order: list
    fields: list
    cats: dict
    notes: list
    provenance: dict

    def frame_kwargs(self, i):
        """The per-frame arguments of :func:`measure_frame` for frame ``i``."""
        return {"index": i, "name": self.names[i], "geometry": self.geoms[i],
                "field": self.fields[i], "catalog": self.cats.get(self.fields[i])}


def plan_night(raw_dir, catalog=None, *, out=None, settings=None, progress=None, lights=None,
               names=None, **keywords):
    """Read a night's headers: times, airmasses, fields and one catalog per field.

    Parameters are those of :func:`measure_night`. Light pixels are not read when
    ``settings.calibrate`` is False (``_LazyLight``); when it is True the lights are calibrated now
    and, with ``out``, kept as their product files (``_LazyProduct``: header, WCS, shape;
    memory-mapped when measured), so the plan holds no frame's pixels.

    Returns
    -------
    NightPlan
    """
    st = NightSettings.from_keywords(settings, **keywords)
    notes = []
    location = parse_site(st.site)
    site_source = "given (--site)" if location is not None else ""
    if lights is None:
        names, lights, prov = _lights(raw_dir, out, st.calibrate, st.gain, progress,
                                      st.read_noise, st.cfa)
    else:
        names = names or [f"light{i}" for i in range(len(lights))]
        prov = {"calibration": "lights given"}
    if not lights:
        raise ZeropointError(f"{raw_dir}: no light frames found (only calibration frames or "
                             "master products); point to the folder holding the night's lights")
    headers = [ccd.meta for ccd in lights]
    pointings = [pointing_from_header(h, ccd.wcs, ccd.shape)[0] for h, ccd in
                 zip(headers, lights, strict=True)]
    loc_for_tz = location
    if loc_for_tz is None:
        from .geometry import site_from_header

        loc_for_tz, _ = site_from_header(headers[0])
    if location is None and loc_for_tz is not None:
        loc_fixed, lon_note = check_longitude_sign(headers, loc_for_tz, pointings)
        if lon_note:
            notes.append(lon_note)
            location, loc_for_tz, site_source = loc_fixed, loc_fixed, "header, sign of " \
                "the longitude corrected"
    offset_h, tz_note = check_time_zone(headers, loc_for_tz, pointings)
    notes.append(tz_note)
    geoms = frame_geometries(headers, names=names, wcs=[c.wcs for c in lights],
                             shapes=[c.shape for c in lights], location=location,
                             site_source=site_source, offset_hours=offset_h)
    order = sorted(range(len(lights)), key=lambda i: (
        geoms[i].time_mid.mjd if geoms[i].time_mid is not None else np.inf, names[i]))
    fields, centres = _cluster_fields(pointings)
    cats = {}
    if catalog is not None:
        for fidx, centre in enumerate(centres):
            first = next(i for i in order if fields[i] == fidx)
            ccd = lights[first]
            if ccd.wcs is not None and ccd.wcs.has_celestial:
                from ..catalogs import field_of

                c, radius = field_of(ccd.wcs, ccd.shape)
            else:
                c, radius = centre, 0.5 * u.deg
            if isinstance(catalog, Table):
                cats[fidx] = catalog
            else:
                cats[fidx] = _catalog_for_field(catalog, c, radius, st.offline, notes)
    else:
        notes.append("no catalog: relative transparency from the night's own stars only; "
                     "give --catalog for zero points and standard magnitudes")
    # absolute: Glue finds a frame's file through it from wherever the results are opened
    prov = dict(prov, raw_dir=_absolute(raw_dir), catalog=None if catalog is None
                else (catalog.meta.get("catalog", "table")
                      if isinstance(catalog, Table) else str(catalog)),
                site=site_source or "headers", time_zone=tz_note,
                time_offset_hours=offset_h,
                settings={k: v if isinstance(v, (str, int, float, bool, dict, type(None)))
                          else str(v) for k, v in st.to_dict().items()})
    return NightPlan(raw_dir=str(raw_dir), names=list(names), lights=list(lights),
                     geoms=geoms, order=order, fields=fields, cats=cats, notes=notes,
                     provenance=prov)


@dataclass
class FrameOutcome:
    """One frame measured by :func:`measure_frame`: its row of the night table, its stars
    (``detections``, small), its WCS, and the WCS it solved (reusable for its field)."""

    row: dict
    detections: Table | None
    wcs: object = None
    solved_wcs: object = None


def measure_frame(ccd, *, index, name, geometry, field, catalog=None, field_wcs=None,
                  settings=None):
    """Measure one light frame of a night: its zero point against ``catalog`` where it can,
    else its stars only; never raises for a frame that fails (the row says why), except
    :class:`~glue_zeropoint.exceptions.Cancelled`.

    Parameters
    ----------
    ccd : CCDData or _LazyLight
        The frame (a lazy light is read here, so its pixels live only in this call).
    index, name : int, str
        The frame's number in the night and its file name.
    geometry : FrameGeometry
        Its time, airmass, Sun and Moon (from :func:`plan_night`).
    field : int
        Its field number; ``catalog`` is that field's catalog (None: stars only).
    field_wcs : WCS, optional
        A WCS solved for another frame of the same pointing, used when this one has none.
    settings : NightSettings, optional
        Its ``band_map``, ``colours``, ``gain``, ``max_stars`` and ``aperture_radius`` apply
        here.

    Returns
    -------
    FrameOutcome
    """
    st = NightSettings() if settings is None else settings
    if isinstance(ccd, (_LazyLight, _LazyProduct)):
        lazy = ccd
        try:
            ccd = lazy.load()
        except (OSError, ValueError, TypeError, ZeropointError) as err:
            # e.g. a file truncated or replaced since its header was read: this frame fails
            filt, band = _band_of(lazy.meta, name, st.band_map, st.cfa)
            row = _frame_row(index, name, band, filt, field, geometry)
            row["status"] = "failed"
            row["reason"] = f"could not read the frame's pixels: {type(err).__name__}: {err}"
            return FrameOutcome(row=row, detections=None)
    filt, band = _band_of(ccd.meta, name, st.band_map, st.cfa)
    row = _frame_row(index, name, band, filt, field, geometry)
    was_channel = bool(ccd.meta.get("CFACHAN"))
    try:  # a colour camera's mosaic (raw lights, --no-calibrate): its colour channel
        ccd = colour_channel(ccd, st.cfa, name)
    except ZeropointError as err:
        row["status"], row["reason"] = "failed", str(err)
        return FrameOutcome(row=row, detections=None)
    row["flags"] = _colour_flags(ccd.meta, mosaic=not was_channel)
    colour, cref = _colour_for(band, catalog, st.colours)
    row["color"], row["color_ref"] = colour or "", np.nan if cref is None else cref
    m = None
    if catalog is not None and band and f"mag_{band}" in catalog.colnames:
        if (ccd.wcs is None or not ccd.wcs.has_celestial) and field_wcs is not None:
            ccd.wcs = field_wcs  # a dither of a solved pointing
        m = _frame_zero_point(ccd, catalog, band, colour, cref, st, row, name)
    elif catalog is not None:
        row["status"], row["reason"] = "no zero point", f"catalog has no band {band!r}"
    if m is not None:
        stars, zps, wcs_out = m.stars, m.zeropoint, m.wcs
        solved = wcs_out if m.astrometry.get("wcs_source") == "solved" else None
        pixel_area = m.astrometry.get("wcs_pixel_scale")
        pixel_area = None if not pixel_area else pixel_area ** 2
    else:
        zps = solved = None
        stars, wcs_out, pixel_area = _frame_stars_only(ccd, st, row, name)
    det = None
    if stars is not None and len(stars):
        _star_columns(row, stars, zps, pixel_area)
        det = _detections(index, band, field, stars, zps)
    return FrameOutcome(row=row, detections=det, wcs=wcs_out, solved_wcs=solved)


def _frame_row(index, name, band, filt, field, g):
    """A frame's row of the night table before it is measured (geometry filled in)."""
    row = {c: np.nan for c in FRAME_COLUMNS}
    row.update({"frame": index, "file": name, "band": band, "filter": filt,
                "field": field, "time": g.time_mid.isot if g.time_mid else "",
                "mjd": g.time_mid.mjd if g.time_mid else np.nan,
                "exptime": g.exptime or np.nan, "airmass": g.airmass,
                "airmass_source": g.airmass_source, "airmass_header": g.airmass_header,
                "airmass_computed": g.airmass_computed, "altitude": g.altitude,
                "sun_alt": g.sun_alt, "moon_alt": g.moon_alt, "moon_illum": g.moon_illum,
                "moon_sep": g.moon_sep, "status": "", "reason": "; ".join(g.notes),
                "flags": "", "n_matched": 0, "n_used": 0, "n_stars": 0,
                "used_in_fit": False, "cloudy": False, "outlier": False})
    return row


def _frame_zero_point(ccd, cat, band, colour, cref, st, row, name):
    """The frame's zero point against its field's catalog (``measure_image``), its columns
    written into ``row``; None when it has none (``row`` says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = measure_one(ccd, cat, band, colour, cref, st)
    except Cancelled:
        raise
    except ZeropointError as err:
        row["status"], row["reason"] = "no zero point", str(err)
        return None
    except Exception as err:  # noqa: BLE001 - one frame's bug must not end the night
        log.debug("traceback of %s", name, exc_info=True)
        row["status"] = "no zero point"
        row["reason"] = f"internal error: {type(err).__name__}: {err}"
        return None
    zps = m.zeropoint
    row.update({"status": "ok", "zp": zps.zp, "zp_err": zps.zp_err,
                "zp_err_total": zps.zp_err_total,
                "color_term": np.nan if zps.color_term is None else zps.color_term,
                "color_term_err": (np.nan if zps.color_term_err is None
                                   else zps.color_term_err),
                "n_matched": zps.n_matched, "n_used": zps.n_used,
                "sky_sb": np.nan if m.sky_sb is None else m.sky_sb,
                "sky_sb_err": np.nan if m.sky_sb_err is None else m.sky_sb_err})
    return m


def _frame_stars_only(ccd, settings, row, name):
    """The frame's stars without a zero point: (stars, WCS, pixel area in arcsec^2), each
    None where it has none; a failure is written into ``row``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stars, im = _photometry_only(ccd, settings)
    except Cancelled:
        raise
    except Exception as err:  # noqa: BLE001 - the frame fails, the night goes on
        if not isinstance(err, ZeropointError):
            log.debug("traceback of %s", name, exc_info=True)
            err = f"internal error: {type(err).__name__}: {err}"
        row["status"] = "failed"
        row["reason"] = "; ".join(dict.fromkeys(r for r in (row["reason"], str(err)) if r))
        return None, None, None
    if not row["status"]:
        row["status"] = "relative"
    if im.calibrated is False:
        row["flags"] = ",".join(f for f in (row["flags"], "raw") if f)
    if ccd.wcs is not None and ccd.wcs.has_celestial:
        from ..stats import pixel_area_arcsec2

        return stars, ccd.wcs, pixel_area_arcsec2(ccd.wcs)
    return stars, None, None


def _star_columns(row, stars, zps, pixel_area):
    """FWHM, aperture and sky columns of a frame's row from its measured stars."""
    row["n_stars"] = len(stars)
    row["fwhm"] = float(stars.meta.get("fwhm") or np.nan)
    e = (stars.meta.get("psf") or {}).get("ellipticity")
    row["ellipticity"] = np.nan if e is None else float(e)
    row["aperture_radius"] = float(stars.meta.get("aperture_radius") or np.nan)
    row["apcorr"] = (float(zps.aperture_correction) if zps is not None
                     else float(stars.meta.get("aperture_correction") or np.nan))
    # the curve of growth's light beyond its largest radius (1 + missing): the extrapolated
    # part of the correction, which the night may take in common (:func:`_common_tail`)
    inside = stars.meta.get("growth_tail")
    cog = stars.meta.get("aperture_correction_method") == "curve of growth"
    row["apcorr_tail"] = 1.0 / float(inside) if cog and inside and float(inside) > 0 else np.nan
    row["apcorr_tail_err"] = float(stars.meta.get("growth_tail_err") or 0.0) if cog else np.nan
    # the curve of growth as fractions of the total light (its own tail included) at radii in
    # pixels: the night takes the light beyond one radius in pixels in common (not a column)
    psf = stars.meta.get("psf") or {}
    row["growth"] = ((tuple(psf["radii"]), tuple(psf["growth"]))
                     if cog and psf.get("radii") and psf.get("growth") else None)
    err = stars.meta.get("aperture_correction_err")
    row["apcorr_err"] = float(err) if err is not None else np.nan
    t = row["exptime"]
    sky = float(np.nanmedian(np.asarray(stars["sky"], float)))
    if "sky_std" in stars.colnames and np.nanmedian(
            np.asarray(stars["sky_std"], float)) <= 1e-9 * max(1.0, abs(sky)):
        # the sky annuli are one value (8 bits, or a sky below the converter's floor): light
        # under that floor is cut off, so fluxes are biased by an amount that follows the sky
        row["flags"] = ",".join(f for f in (row["flags"], "flat_sky") if f)
    if np.isfinite(t) and t > 0:  # a raw frame's sky still holds the bias (flag)
        per = pixel_area if pixel_area else 1.0
        if not pixel_area:  # no WCS: per pixel, not per arcsec^2
            row["flags"] = ",".join(f for f in (row["flags"], "sky_per_pixel") if f)
        row["sky_rate"] = sky / t / per
        row["sky_inst"] = (-2.5 * math.log10(row["sky_rate"])
                           if row["sky_rate"] > 0 else np.nan)


def fit_night(rows, detections, notes=(), exclude=None, provenance=None, wcs=None):
    """The night's model from its measured frames.

    Parameters
    ----------
    rows : list of dict
        :attr:`FrameOutcome.row` of every frame (any order; failed frames included).
    detections : list of Table
        :attr:`FrameOutcome.detections` of the frames that have stars.
    notes : list of str
        The plan's notes (more are appended).
    exclude : sequence of str or int, optional
        Frames left out of the extinction fit.

    Returns
    -------
    NightResult
    """
    notes = list(notes)
    frames = Table(rows=[[r[c] for c in FRAME_COLUMNS] for r in rows], names=FRAME_COLUMNS)
    for c in ("file", "band", "filter", "time", "airmass_source", "status", "reason",
              "flags", "color"):
        frames[c] = np.asarray(frames[c]).astype(str)
    det = _stack([d for d in detections if d is not None])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bands: handled, not news
        frames.meta["growth"] = [r.get("growth") for r in rows]  # for _common_tail only
        result = _fit_night(frames, det, notes, exclude)
        result.frames.meta.pop("growth", None)
    result.notes.extend(flag_trailed(result.frames))
    result.notes.extend(_colour_note(result.frames))
    result.provenance = dict(provenance or {})
    result.wcs = dict(wcs or {})
    return result


def _colour_flags(meta, mosaic):
    """The flags of a frame measured in one colour channel (none for other frames):
    ``colour_G``; ``pattern_from_sky`` when the frame's sky turned its header's pattern;
    ``mosaic_<ox>_<oy>`` when its file is the mosaic (the channel taken here), whose pixel
    is ``2 x + ox, 2 y + oy`` (for its region file)."""
    if not meta.get("CFACHAN"):
        return ""
    flags = [f"colour_{meta['CFACHAN']}"]
    if meta.get("CFANOTE"):
        flags.append("pattern_from_sky")
    if mosaic:
        flags.append(f"mosaic_{float(meta['CFAOFFX']):g}_{float(meta['CFAOFFY']):g}")
    return ",".join(flags)


def _colour_note(frames):
    """A note on the frames of a colour camera measured in one colour channel (flag
    ``colour_G`` ...): what their magnitudes are."""
    flags = [str(f).split(",") for f in frames["flags"]]
    chans = sorted({f[7:] for fl in flags for f in fl if f.startswith("colour_")})
    if not chans:
        return []
    n = sum(any(f.startswith("colour_") for f in fl) for fl in flags)
    notes = [f"{n} frame(s) of a colour camera measured in their {'/'.join(chans)} channel "
             "(each 2x2 cell of the mosaic one pixel: positions and apertures in those pixels, "
             "the region files of mosaic files in the mosaic's; the band is the channel's, e.g. "
             "TG: map it with --band TG=V for a catalog)"]
    turned = sum("pattern_from_sky" in fl for fl in flags)
    if turned:
        notes.append(f"{turned} frame(s): the header's colour pattern puts green on pixels "
                     "whose sky differs while the other two agree; the greens were taken "
                     "from the other diagonal of the cell (the pattern read with its rows the "
                     "other way; a frame stored bottom-up?)")
    if 0 < turned < n:
        notes.append(f"the colour pattern was turned by the sky in {turned} of the {n} colour "
                     "frames only, so their channels may differ (greens in some, red and blue "
                     "in others): set BAYERPAT (or YBAYROFF) right in the headers, or check "
                     "the frames flagged pattern_from_sky")
    return notes


TRAILED_MIN_ELLIPTICITY = 0.25
"""Stars this elongated (1 - minor/major FWHM) or more may mark a trailed frame."""


def flag_trailed(frames):
    """Flag frames whose stars are elongated (tracking errors, wind shake): ellipticity above
    both :data:`TRAILED_MIN_ELLIPTICITY` and the night's median + 5 robust sigma (with fewer
    than 5 measured frames, the fixed limit alone). Adds ``trailed`` to their ``flags``;
    returns the notes naming them."""
    e = np.asarray(frames["ellipticity"], float)
    ok = np.isfinite(e)
    if not ok.any():
        return []
    limit = TRAILED_MIN_ELLIPTICITY
    if ok.sum() >= 5:
        from astropy.stats import mad_std

        limit = max(limit, float(np.median(e[ok]) + 5.0 * mad_std(e[ok])))
    bad = ok & (e > limit)
    if not bad.any():
        return []
    flags = [str(f) for f in frames["flags"]]  # rebuilt: a fixed-width column truncates
    for i in np.flatnonzero(bad):
        flags[i] = ",".join(f for f in (flags[i], "trailed") if f)
    frames["flags"] = np.asarray(flags, dtype=str)
    names = ", ".join(str(f) for f in np.asarray(frames["file"])[bad][:10])
    more = f" and {bad.sum() - 10} more" if bad.sum() > 10 else ""
    return [f"elongated stars (trailing or wind shake) in {int(bad.sum())} frame(s): "
            f"{names}{more} (ellipticity {np.min(e[bad]):.2f}-{np.max(e[bad]):.2f}, night "
            f"median {np.median(e[ok]):.2f}, limit {limit:.2f}); flagged 'trailed'"]


def measure_night(raw_dir, catalog=None, *, out=None, settings=None, exclude=None,
                  progress=None, echo=None, lights=None, names=None, workers=None,
                  **keywords):
    """Measure every light frame of a night and fit the night's photometric model.

    The composition of :func:`plan_night`, :func:`measure_frame` per frame (in time order)
    and :func:`fit_night`.

    Parameters
    ----------
    raw_dir : path
        Raw night folder (calibrated first, products under ``out/calibrated``).
    catalog : str, Path or Table, optional
        Catalog spec (as for ``measure``); None: relative transparency only.
    out : path, optional
        Output folder (calibrated products go to ``out/calibrated``; the night's files are
        written by :func:`.outputs.write_night`).
    settings : `~glue_zeropoint.night.settings.NightSettings`, optional
        Site, band map, colours, calibrate, gain, offline, max_stars, aperture radius.
    **keywords
        Any field of :class:`~glue_zeropoint.night.settings.NightSettings` (``site=...``,
        ``calibrate=False``, ...), applied over ``settings``; an unknown one is a TypeError.
    progress : callable, optional
        ``progress(done, total, message)``.
    echo : callable, optional
        ``echo(line)`` gets one line per frame saying what happened.
    exclude : sequence of str or int, optional
        Frames (file names or indices) left out of the extinction fit (e.g. brushed in Glue).
    lights, names : list of CCDData and names, optional
        Already loaded lights (then ``raw_dir`` is only provenance).
    workers : int, optional
        Measure the frames on this many worker processes of this machine (a Dask
        ``LocalCluster`` of one-thread workers, :mod:`.parallel`); None or 1: in this process.
        The results are those of a serial run; frames that wait for a WCS solved on another
        frame of their pointing are measured afterwards, in this process.

    Returns
    -------
    NightResult
    """
    if workers is not None and (not isinstance(workers, (int, np.integer)) or workers < 1):
        raise InputError(f"workers={workers!r}: give a number of processes, 1 or more")
    st = NightSettings.from_keywords(settings, **keywords)
    with contextlib.ExitStack() as stack:
        cluster = None
        if workers is not None and workers > 1:
            from .parallel import local_cluster

            cluster = stack.enter_context(local_cluster(workers))
            cluster.start()  # its processes start while the night is planned
        plan = plan_night(raw_dir, catalog, out=out, settings=st, progress=progress,
                          lights=lights, names=names)
        outcomes = _measure_frames(plan, st, cluster, progress, echo)
    rows = [outcomes[i].row for i in plan.order]
    dets = [outcomes[i].detections for i in plan.order]
    wcs_of = {i: outcomes[i].wcs for i in plan.order if outcomes[i].wcs is not None}
    report(progress, len(plan.order), len(plan.order), "fitting the night")
    return fit_night(rows, dets, plan.notes + _aperture_notes(rows, st.aperture_radius),
                     exclude, plan.provenance, wcs_of)


def _measure_frames(plan, st, cluster, progress, echo):
    """Every frame of ``plan`` measured: ``{index: FrameOutcome}``. With ``cluster`` (a
    :class:`.parallel.local_cluster`) the frames that wait for no other run on its processes;
    the others (a dither without WCS reuses the WCS solved for its field) here, in time
    order."""
    n = len(plan.order)
    outcomes, solved_for_field = {}, {}

    def finish(i, fo, error=None):
        if fo is None:  # the worker process itself failed (not the frame's measurement)
            fo = _worker_failed(plan, i, error)
        plan.lights[i] = None  # bounded memory: the night keeps stars, not pixels
        outcomes[i] = fo
        if echo is not None:
            echo(_frame_line(len(outcomes) - 1, n, fo.row))

    first = []
    if cluster is not None:
        from .parallel import independent, measure_frames

        first = independent(plan)
    if len(first) > 1:
        report(progress, 0, n, f"measuring {len(first)} frames on {cluster.workers} processes")

        def done(i, fo, error=None):
            finish(i, fo, error)
            report(progress, len(outcomes), n, f"measured {plan.names[i]}")

        measure_frames(plan, first, st, cluster, done)
    for i in plan.order:
        if i in outcomes:
            continue
        report(progress, len(outcomes), n, f"measuring {plan.names[i]}")
        kw = plan.frame_kwargs(i)
        fo = measure_frame(plan.lights[i], field_wcs=solved_for_field.get(kw["field"]),
                           settings=st, **kw)
        if fo.solved_wcs is not None:
            solved_for_field[kw["field"]] = fo.solved_wcs
        finish(i, fo)
    return outcomes


def _worker_failed(plan, i, error):
    """The outcome of a frame whose worker process failed: a failed row saying why."""
    row = _frame_row(i, plan.names[i], "", "", plan.fields[i], plan.geoms[i])
    row["status"] = "failed"
    row["reason"] = f"worker process failed: {type(error).__name__}: {error}"
    return FrameOutcome(row=row, detections=None)


def _aperture_notes(rows, radius):
    """A note when one aperture radius for the night is small for its widest frames: they
    lose more light outside it than the median frame, a bias that follows the seeing (and,
    through it, often the airmass) which the night's median aperture correction does not
    remove."""
    fw = np.array([r.get("fwhm", np.nan) for r in rows], float)
    if radius is None or not np.isfinite(fw).any():
        return []
    widest = float(np.nanmax(fw))
    if radius >= 2.5 * widest:
        return []
    return [f"one aperture of {radius:g} px for the night, but frames reach FWHM "
            f"{widest:.2f} px (median {np.nanmedian(fw):.2f}): the widest lose more light "
            f"outside it, a bias that follows the seeing; a radius of at least "
            f"{2.5 * widest:.1f} px (2.5 FWHM) avoids it"]


def measure_one(ccd, cat, band, colour, cref, settings):
    """One frame's zero point (``measure_image`` with the night's settings)."""
    from ..zeropoint import measure_image

    return measure_image(ccd, cat, band, color=colour, color_ref=cref, gain=settings.gain,
                         max_stars=settings.max_stars,
                         aperture_radius=settings.aperture_radius, solve_wcs="auto")


def _frame_line(step, n, row):
    head = f"[{step + 1}/{n}] {row['file']} {row['band'] or '?'}"
    x = row["airmass"]
    xs = f" X={x:.3f}" if np.isfinite(x) else " X=?"
    if row["status"] == "failed":
        return f"{head}{xs}: FAILED: {row['reason']}"
    parts = [f"{head}{xs}"]
    if row["status"] == "ok":
        parts.append(f"ZP {row['zp']:.3f} +- {row['zp_err']:.3f} ({row['n_used']} of "
                     f"{row['n_matched']} catalog stars)")
    elif row["status"] == "relative":
        parts.append(f"{row['n_stars']} stars (relative photometry: no catalog)")
    else:
        parts.append(f"{row['n_stars']} stars, no zero point"
                     + (f" ({row['reason']})" if row["reason"] else ""))
    if np.isfinite(row["sky_sb"]):
        parts.append(f"sky {row['sky_sb']:.2f} mag/arcsec2")
    if np.isfinite(row["fwhm"]):
        parts.append(f"FWHM {row['fwhm']:.2f} px")
    return ", ".join(parts)


def _detections(i, band, fld, stars, zps):
    n = len(stars)
    t = Table()
    t["frame"] = np.full(n, i)
    t["band"] = np.full(n, band, dtype=object).astype(str)
    t["field"] = np.full(n, fld)
    t["star_id_frame"] = np.asarray(stars["star_id"])
    for c in ("x", "y", "mag_inst", "mag_inst_err"):
        t[c] = np.asarray(stars[c], float)
    texp = float(stars.meta.get("exptime") or np.nan)
    if "flux_aper" in stars.colnames and np.isfinite(texp) and texp > 0:
        fa = np.asarray(stars["flux_aper"], float)
        with np.errstate(all="ignore"):
            t["mag_ap"] = np.where(fa > 0, -2.5 * np.log10(fa / texp), np.nan)
            t["mag_ap_err"] = 1.0857 * np.asarray(stars["flux_aper_err"], float) / fa
    else:
        t["mag_ap"] = np.full(n, np.nan)
        t["mag_ap_err"] = np.full(n, np.nan)
    for c in ("ra", "dec"):
        t[c] = np.asarray(stars[c], float) if c in stars.colnames else np.full(n, np.nan)
    t["flags"] = np.asarray(stars["flags"], np.int64) if "flags" in stars.colnames else 0
    t["mag_cat"] = np.full(n, np.nan)
    t["mag_cat_err"] = np.full(n, np.nan)
    t["colour_cat"] = np.full(n, np.nan)
    t["cat_id"] = np.full(n, "", dtype="U32")
    if zps is not None:
        zs = zps.stars
        pos = {sid: k for k, sid in enumerate(np.asarray(t["star_id_frame"]).tolist())}
        for r in zs:
            k = pos.get(r["star_id"])
            if k is None:
                continue
            t["mag_cat"][k] = r["mag_cat"]
            t["mag_cat_err"][k] = r["mag_cat_err"]
            if "colour" in zs.colnames:
                t["colour_cat"][k] = r["colour"]
            t["cat_id"][k] = str(r["cat_id"])[:32]
    return t


def _stack(dets):
    from astropy.table import vstack

    if not dets:
        return Table(names=("frame", "band", "field", "star_id_frame", "x", "y", "mag_inst",
                            "mag_inst_err", "ra", "dec", "flags", "mag_cat", "mag_cat_err",
                            "colour_cat", "cat_id"),
                     dtype=(int, str, int, int, float, float, float, float, float, float, int,
                            float, float, float, str))
    names = dets[0].colnames
    if all(d.colnames == names and not d.has_masked_columns and not d.meta for d in dets):
        # the frames' tables of :func:`_detections` (plain columns, the same names): joined
        # column by column, as vstack joins them (0.25 s of its generic checks for 142 frames)
        return Table({c: np.concatenate([np.asarray(d[c]) for d in dets]) for c in names},
                     copy=False)
    return vstack(dets, metadata_conflicts="silent")


def _group(det, frames):
    """Night-wide ``star`` id per detection (per field)."""
    from ..photometry.flags import EXCLUDE_FROM_FIT

    star = np.full(len(det), -1, int)
    next_id = 0
    for fld in np.unique(np.asarray(det["field"])):
        in_f = np.flatnonzero(np.asarray(det["field"]) == fld)
        fr = np.unique(np.asarray(det["frame"])[in_f])
        sky = np.all(np.isfinite(np.asarray(det["ra"])[in_f]))
        if sky:
            ra0 = np.nanmedian(np.asarray(det["ra"])[in_f])
            dec0 = np.nanmedian(np.asarray(det["dec"])[in_f])
            c0 = SkyCoord(ra0 * u.deg, dec0 * u.deg)
        positions, members = [], []
        for f in fr:
            k = in_f[np.asarray(det["frame"])[in_f] == f]
            k = k[np.argsort(np.asarray(det["mag_inst"])[k])]
            if sky:
                c = SkyCoord(np.asarray(det["ra"])[k] * u.deg, np.asarray(det["dec"])[k] * u.deg)
                dx, dy = c0.spherical_offsets_to(c)
                p = np.column_stack([dx.to_value(u.arcsec), dy.to_value(u.arcsec)])
            else:
                p = np.column_stack([np.asarray(det["x"])[k], np.asarray(det["y"])[k]])
            positions.append(p)
            members.append(k)
        fwhm = np.nanmedian(np.asarray(frames["fwhm"], float))
        radius = 2.0 if sky else max(2.0, 0.7 * (fwhm if np.isfinite(fwhm) else 3.0))
        ids, _ = group_stars(positions, radius, align=not sky)
        for k, ii in zip(members, ids, strict=True):
            star[k] = ii + next_id
        next_id = star[in_f].max() + 1
    det["star"] = star
    det["usable"] = (np.asarray(det["flags"]) & EXCLUDE_FROM_FIT) == 0
    return det


def _common_aperture(det, frames, fm, rowk):
    """Put the detections of frames ``fm`` (one field and band) on one aperture correction.

    The night compares frames through the stars' aperture fluxes: when every frame used the
    same aperture radius, ``mag_night`` is the aperture magnitude with the band's median
    aperture correction (each frame's own correction, from its own curve of growth, varied by
    ~10% between simulated frames with the same PSF and would scatter the night by as much).
    Returns the shift to add to each frame's ``zp`` to refer it to ``mag_night``, and what
    :func:`_common_tail` says of the common tail (None: no common tail)."""
    radii = np.asarray(frames["aperture_radius"], float)[fm]
    ac = np.asarray(frames["apcorr"], float)[fm]
    shift = np.zeros(len(fm))
    if not len(det) or not np.isfinite(ac).all():
        return shift, None
    if not np.isfinite(radii).all() or np.ptp(radii) > 0.02 * np.median(radii):
        return _common_tail(det, frames, fm, rowk)
    ac_med = float(np.median(ac))
    sel = np.isin(rowk, fm)
    det["mag_night"][sel] = np.asarray(det["mag_ap"], float)[sel] - 2.5 * np.log10(ac_med)
    det["mag_night_err"][sel] = np.asarray(det["mag_ap_err"], float)[sel]
    frames["photometry"][fm] = "aperture"
    return -2.5 * np.log10(ac) + 2.5 * np.log10(ac_med), None


def _common_tail(det, frames, fm, rowk):
    """Put the frames ``fm`` (one field and band, apertures of different radii) on one
    extrapolated tail: each frame's correction is its measured curve of growth out to its
    largest radius (4 FWHM) times the light beyond it, which is extrapolated from the outer
    rings and, on real frames with broad wings, uncertain by as much as it is (MicroObservatory
    HAT-P-32: 1.7-6.9% per frame, the night's frame-to-frame scatter 0.017 mag, r = -0.96
    with the extinction residuals). The light beyond is a property of the optics (a halo
    fixed in pixels) more than of the frame's noise, so the band's median over the night
    replaces each frame's: the light beyond the night's smallest largest radius ``R``
    (pixels), which every frame's curve reaches; out to ``R`` each frame keeps its own
    measured curve, which follows the seeing. (Beyond each frame's own 4 FWHM instead, the
    frames of wide seeing, whose curves reach farther, took the halo's light beyond a larger
    radius as if it were the same: on HAT-P-32, where FWHM grows by 0.44 px per airmass,
    that made the corrections grow by 0.010 mag per airmass and k 0.015 too low, while the
    stars' own light between 6 and 12 px does not change with airmass, -0.005 +- 0.004.)
    Needs each frame's curve (``frames.meta['growth']``: ``(radii, fraction of the total
    inside)`` per frame); without it, the light beyond each frame's own largest radius.
    Frames whose correction is not a curve of growth keep theirs. Returns the shift to add to
    each frame's ``zp`` to refer it to the detections' ``mag_night``, and ``(R or None, the
    light beyond it relative to the light inside, its frame-to-frame spread in mag)`` (None
    when no frame takes the common tail)."""
    tail = np.asarray(frames["apcorr_tail"], float)[fm]
    ok = np.isfinite(tail) & (tail > 0)
    shift = np.zeros(len(fm))
    if ok.sum() < 2:
        return shift, None
    inside, radius = _inside_common_radius(frames, fm, ok)
    if inside is None:  # own largest radii (frames measured before the curves were kept)
        inside = 1.0 / tail[ok]
    ok_in = np.isfinite(inside) & (inside > 0)
    ok[np.flatnonzero(ok)[~ok_in]] = False
    inside = inside[ok_in]
    if ok.sum() < 2:
        return np.zeros(len(fm)), None
    i_med = float(np.median(inside))
    shift[ok] = 2.5 * np.log10(inside / i_med)
    sel = np.isin(rowk, fm)
    mag = np.asarray(det["mag_night"], float)
    mag[sel] = mag[sel] - shift[np.searchsorted(fm, rowk[sel])]
    det["mag_night"] = mag
    frames["photometry"][fm[ok]] = NIGHT_TAIL
    return shift, (radius, 1.0 / i_med - 1.0, 1.0857 * float(np.std(inside)) / i_med)


def _inside_common_radius(frames, fm, ok):
    """Each frame's (``fm[ok]``) fraction of the total light inside the smallest of their
    largest curve-of-growth radii, and that radius (pixels); ``(None, None)`` when a frame's
    curve is not known."""
    curves = frames.meta.get("growth")
    if not curves:
        return None, None
    sel = [curves[i] for i in fm[ok]]
    if any(c is None or len(c[0]) < 2 for c in sel):
        return None, None
    radius = min(float(c[0][-1]) for c in sel)
    inside = np.array([np.interp(radius, np.asarray(c[0], float), np.asarray(c[1], float))
                       for c in sel])
    return inside, radius


def _fit_night(frames, det, notes, exclude):
    """The night's model from the frame table and the stacked detections (the body of
    :func:`fit_night`): star identities, ensemble offsets tied to the catalog, the extinction
    line per band, flags, sky brightness, verdict and standard magnitudes."""
    if len(det):
        det = _group(det, frames)
        fidx = {int(f): k for k, f in enumerate(np.asarray(frames["frame"]))}
        rowk = np.array([fidx[int(f)] for f in det["frame"]])
    else:
        rowk = np.zeros(0, int)
    tie_err, k_sys = _ensemble_zero_points(frames, det, rowk, notes)
    absolute = bool(np.isfinite(np.asarray(frames["zp"], float)).any())
    if not absolute and len(np.unique(np.asarray(frames["field"]))) > 1:
        notes.append("several fields and no catalog: their relative zero points are not tied "
                     "to each other, so k mixes fields (give --catalog)")
    use = _user_use(frames, exclude, notes)
    fits, cterms = _fit_bands(frames, use, tie_err, absolute, notes, k_sys)
    _flag_frames(frames)
    _sky_from_night_zp(frames, absolute)
    verdict, reason = night_verdict(list(fits.values()))
    verdict, reason = _flat_sky_verdict(frames, fits, verdict, reason, notes)
    standards = None
    if absolute and len(det) and fits:
        from .standard import standard_magnitudes

        standards = standard_magnitudes(det, frames, fits, cterms)
    if len(det):
        det["airmass"] = np.asarray(frames["airmass"], float)[rowk]
    return NightResult(frames=frames, detections=det, standards=standards, fits=fits,
                       colour_terms=cterms, verdict=verdict, verdict_reason=reason,
                       notes=notes)


def _ensemble_zero_points(frames, det, rowk, notes):
    """Per field and band: the frames' ensemble offsets from the night's own stars, tied once
    to the frames' catalog zero points (``zp_night``; ``-offset`` without a catalog). Fills
    the ensemble columns of ``frames`` (and ``mag_night`` of ``det``) in place; returns the
    tie's error per (field, band), and the common tail's systematic bound on k per (field,
    band) where it applies (:func:`_core_beyond_common_radius`)."""
    nfr = len(frames)
    for key in ("ens_offset", "ens_offset_err", "rel_transparency", "zp_night",
                "zp_night_err"):
        frames[key] = np.full(nfr, np.nan)
    frames["ens_n_stars"] = np.zeros(nfr, int)
    tie_err, k_sys = {}, {}
    if len(det):
        det["mag_night"] = np.asarray(det["mag_inst"], float)
        det["mag_night_err"] = np.asarray(det["mag_inst_err"], float)
    frames["photometry"] = np.full(nfr, "total", dtype="U16")
    for fld in np.unique(np.asarray(frames["field"])):
        for band in np.unique(np.asarray(frames["band"])):
            fm = np.flatnonzero((np.asarray(frames["field"]) == fld)
                                & (np.asarray(frames["band"]) == band)
                                & (np.asarray(frames["status"]) != "failed"))
            if len(fm) == 0:
                continue
            zp_shift, tail_info = _common_aperture(det, frames, fm, rowk)
            common = np.asarray(frames["photometry"])[fm] == NIGHT_TAIL
            if tail_info is not None and common.any():
                radius, beyond, spread = tail_info
                where = (f"{radius:.1f} px (the frames' smallest curve-of-growth radius)"
                         if radius is not None else "each frame's largest aperture")
                notes.append(f"field {fld} band {band_name(band)}: the light beyond {where} is the "
                             f"band's median over the night ({beyond:.1%}; the "
                             f"{int(common.sum())} frames' own values spread by {spread:.3f} "
                             "mag), so that its extrapolation does not scatter the frames")
                said, bound = _core_beyond_common_radius(frames, fm[common], radius, fld,
                                                         band)
                notes.extend(said)
                if said:
                    k_sys[(fld, band)] = bound
            cut = _ensemble_offsets_of(frames, det, rowk, fm)
            if cut is not None and cut > ENSEMBLE_MAX_ERR:
                notes.append(f"field {fld} band {band_name(band)}: fewer than "
                             f"{MIN_ENSEMBLE_STARS} stars "
                             f"measured to {ENSEMBLE_MAX_ERR} mag; the ensemble uses the best "
                             f"{MIN_ENSEMBLE_STARS} (errors up to {cut:.3f} mag)")
            te = _tie_to_catalog(frames, fm, zp_shift)
            if te is not None:
                tie_err[(fld, band)] = te
    return tie_err, k_sys


#: the common tail is the light beyond R (pixels); a frame whose FWHM is more than R / this
#: has part of its seeing core beyond R (a Moffat beta = 3 core: 0.9% beyond 3 FWHM, 3.8%
#: beyond 2), which the night's median then replaces
CORE_RADII = 3.0


def _core_beyond_common_radius(frames, fm, radius, fld, band):
    """A note when the night's common radius is within :data:`CORE_RADII` FWHM of its widest
    frames (``fm``: the frames under the common tail): their seeing core reaches beyond it, so
    the common tail takes part of it as the night's median, a bias that follows the seeing
    (k too high where the seeing widens with airmass). Its bound comes from the data: the
    light each frame measures between the common radius and its own largest radius, as a
    straight line in airmass (1.0857 x its slope, mag/airmass): all of it would be the bias
    if it were seeing core, none if it were a halo fixed in pixels, which the curves alone
    cannot tell apart. Simulated nights (Moffat beta = 3 cores, a 6% halo fixed in pixels,
    FWHM from 1.5 px growing with airmass; tests/night/test_common_tail.py): k +0.008 for a
    widest FWHM of 2.3 px, +0.022 at 3.0, +0.038 at 3.5, +0.076 at 4.5, against stated
    errors of 0.004-0.016, each inside its bound.

    Returns ``(notes, bound)``: the bound (mag/airmass, >= 0) becomes the band's ``k_sys``,
    part of k's total error (:attr:`.extinction.ExtinctionFit.k_err_total`); NaN when the
    curves do not bound it (then the note says so and k's total error cannot be stated)."""
    if radius is None or not len(fm):
        return [], 0.0
    fw = np.asarray(frames["fwhm"], float)[fm]
    if not np.isfinite(fw).any():
        return [], 0.0
    widest = float(np.nanmax(fw))
    if radius >= CORE_RADII * widest:
        return [], 0.0
    bound = _common_tail_bias_bound(frames, fm, radius)
    n_wide = int(np.sum(fw * CORE_RADII > radius))
    size = (f"by up to {bound:+.3f} mag/airmass (the light the frames measure between "
            f"{radius:.1f} px and their largest radius, against airmass: seeing core or a "
            "halo fixed in pixels, which the curves cannot tell apart)"
            if bound is not None else "by an amount the curves do not bound")
    aperture = math.ceil(2.5 * widest)
    return [f"field {fld} band {band_name(band)}: the common radius {radius:.1f} px is only "
            f"{radius / widest:.1f} FWHM of the widest frame (FWHM {np.nanmin(fw):.2f}-"
            f"{widest:.2f} px; {n_wide} frame(s) wider than {radius / CORE_RADII:.2f} px): "
            "their seeing core beyond it is taken as the night's median, so k may be off, "
            f"{size}; compare with --aperture {aperture}"], \
        (abs(bound) if bound is not None else float("nan"))


def _common_tail_bias_bound(frames, fm, radius):
    """1.0857 x the slope against airmass of each frame's measured light (fraction of its
    total) between ``radius`` and its largest curve-of-growth radius: the most the common
    tail can bias k (:func:`_core_beyond_common_radius`; signed: k too high when positive, as
    when the seeing widens with airmass; conservative, since a halo fixed in pixels also makes
    it grow); None without the curves or with fewer than 3 frames or no airmass range."""
    curves = frames.meta.get("growth") or []
    x = np.asarray(frames["airmass"], float)[fm]
    between = []
    for i in fm:
        c = curves[i] if i < len(curves) else None
        if c is None or len(c[0]) < 2:
            between.append(np.nan)
            continue
        rad, inside = np.asarray(c[0], float), np.asarray(c[1], float)
        between.append(inside[-1] - np.interp(radius, rad, inside))
    between = np.asarray(between)
    ok = np.isfinite(between) & np.isfinite(x)
    if ok.sum() < 3 or np.ptp(x[ok]) <= 0:
        return None
    return 1.0857362047581294 * float(np.polyfit(x[ok], between[ok], 1)[0])


def _ensemble_offsets_of(frames, det, rowk, fm):
    """The ensemble offsets of frames ``fm`` (one field and band) from their usable stars;
    returns the error cut its stars passed (None: no ensemble)."""
    sel = np.isin(rowk, fm) & np.asarray(det["usable"], bool) if len(det) else []
    if len(fm) >= 2 and np.sum(sel) > 0:
        loc = np.searchsorted(fm, rowk[sel])
        ens = ensemble_offsets(loc, np.asarray(det["star"])[sel],
                               np.asarray(det["mag_night"])[sel],
                               np.asarray(det["mag_night_err"])[sel], len(fm))
        frames["ens_offset"][fm] = ens.offset
        frames["ens_offset_err"][fm] = np.hypot(ens.offset_err, _own_correction_err(frames, fm))
        frames["ens_n_stars"][fm] = ens.n_stars
        frames["rel_transparency"][fm] = ens.relative_transparency
        return ens.max_err
    return None


def _own_correction_err(frames, fm):
    """Per frame of ``fm`` (mag): the error of its aperture correction that the night's other
    frames do not share, which the comparison of frames must carry: none in a common aperture
    (the band's correction), the measured part (without the tail) under the night's tail, all
    of it for a frame with its own correction (a profile envelope, whose error covers the PSF
    families: such a frame is not called cloudy for a correction nobody measured)."""
    ac = np.asarray(frames["apcorr"], float)[fm]
    rel = np.asarray(frames["apcorr_err"], float)[fm] / ac
    tail = np.asarray(frames["apcorr_tail_err"], float)[fm]
    how = np.asarray(frames["photometry"])[fm]
    own = np.where(how == NIGHT_TAIL,
                   np.sqrt(np.clip(rel ** 2 - np.nan_to_num(tail) ** 2, 0.0, None)), rel)
    own = np.where(how == "aperture", 0.0, own)
    return 1.0857362047581294 * np.where(np.isfinite(own), own, 0.0)


def _tie_to_catalog(frames, fm, zp_shift):
    """``zp_night`` of frames ``fm``: one weighted tie of the offsets to the catalog zero
    points (the frames share the catalog's errors), else the frame's own ZP, else
    ``-offset`` (no catalog). Returns the tie's error (median frame ZP error) or None."""
    zp = np.asarray(frames["zp"], float)[fm] + zp_shift
    zpe = np.asarray(frames["zp_err_total"], float)[fm]
    d = np.asarray(frames["ens_offset"], float)[fm]
    de = np.asarray(frames["ens_offset_err"], float)[fm]
    both = np.isfinite(zp) & np.isfinite(d)
    if both.sum() >= 1:
        w = 1.0 / np.maximum(zpe[both], 1e-3) ** 2
        tie = float(np.sum(w * (zp[both] + d[both])) / np.sum(w))
        frames["zp_night"][fm] = np.where(np.isfinite(d), tie - d, zp)
        frames["zp_night_err"][fm] = np.where(np.isfinite(d), de, zpe)
        return float(np.median(zpe[both]))
    if np.isfinite(zp).any():
        frames["zp_night"][fm] = zp
        frames["zp_night_err"][fm] = zpe
    elif np.isfinite(d).any():
        frames["zp_night"][fm] = -d  # relative: no catalog
        frames["zp_night_err"][fm] = de
    return None


def _user_use(frames, exclude, notes):
    """Frames the user allows in the extinction fit (``exclude``: file names or indices)."""
    use = np.ones(len(frames), bool)
    if exclude:
        ex = {str(e) for e in exclude}
        use = np.array([str(f) not in ex and str(i) not in ex for f, i in
                        zip(frames["file"], frames["frame"], strict=True)])
        notes.append(f"{int((~use).sum())} frame(s) left out of the extinction fit by the user")
    frames["used_in_fit"] = False
    frames["user_excluded"] = ~use
    return use


def _fit_bands(frames, use, tie_err, absolute, notes, k_sys=None):
    """The extinction line of every band (the catalog tie's error added to ZP0's, the common
    tail's bound ``k_sys[(field, band)]`` as k's systematic error) and the colour x airmass
    term; fills the per-frame fit columns. Returns (fits, colour terms)."""
    nfr = len(frames)
    for key in ("k_residual", "k_residual_err", "transparency"):
        frames[key] = np.full(nfr, np.nan)
    fits, cterms = {}, {}
    for band in np.unique(np.asarray(frames["band"])):
        fm = np.flatnonzero(np.asarray(frames["band"]) == band)
        x = np.asarray(frames["airmass"], float)[fm]
        y = np.asarray(frames["zp_night"], float)[fm]
        e = np.asarray(frames["zp_night_err"], float)[fm]
        try:
            f = fit_extinction(x, y, e, band=band, use=use[fm])
        except ZeropointError as err:
            notes.append(str(err))
            continue
        if not absolute:
            f.notes.append("relative: ZP0 is the ensemble's, not a catalog zero point")
        else:
            te = np.nanmax([tie_err.get((fld, band), 0.0)
                            for fld in np.unique(np.asarray(frames["field"])[fm])])
            f.zp0_err = float(math.hypot(f.zp0_err, te))
            f.notes.append(f"ZP0 error includes the catalog tie ({te:.4f} mag)")
        sys_b = [v for (_fld, b), v in (k_sys or {}).items() if b == band]
        if sys_b:
            f.k_sys = float(np.max(sys_b))  # NaN (not bounded) wins
            f.notes.append(
                f"k may be high by up to {f.k_sys:.3f} mag/airmass (the common tail: the widest "
                "frames' seeing core beyond the common radius); k_err_total "
                f"{f.k_err_total:.3f} includes it" if np.isfinite(f.k_sys) else
                "k may be off by an amount the curves of growth do not bound (the common "
                "tail); compare with --aperture")
        fits[band] = f
        frames["k_residual"][fm] = f.residual
        frames["k_residual_err"][fm] = f.residual_err
        frames["transparency"][fm] = f.transparency
        frames["used_in_fit"][fm] = f.used
        frames["cloudy"][fm] = f.cloudy
        frames["outlier"][fm] = f.outlier
        cterms[band] = colour_airmass_term(
            x[f.used], np.asarray(frames["color_term"], float)[fm][f.used],
            np.asarray(frames["color_term_err"], float)[fm][f.used])
    frames["cloudy"] = np.asarray(frames["cloudy"], bool)
    frames["outlier"] = np.asarray(frames["outlier"], bool)
    return fits, cterms


def _flat_sky_verdict(frames, fits, verdict, reason, notes):
    """No verdict from frames whose sky is flat to the last digit: a sky at (or under) the
    converter's floor cuts off the faint light of every star, by an amount that changes with
    the sky, so the zero points, k and any clouds are not measured. ``(verdict, reason)``,
    with a note naming the bands."""
    flat = np.array(["flat_sky" in str(f).split(",") for f in frames["flags"]], bool)
    if "used_in_fit" in frames.colnames:  # frames left out (by the user, failed) do not count
        flat &= np.asarray(frames["used_in_fit"], bool)
    bands = np.asarray(frames["band"]).astype(str)
    hit = [(b, int(flat[bands == b].sum()), int((bands == b).sum())) for b in fits
           if flat[bands == b].any()]
    if not hit:
        return verdict, reason
    which = ", ".join(f"{b} {n}/{m}" for b, n, m in hit)
    names = ", ".join(str(f) for f in np.asarray(frames["file"])[flat][:5]) \
        if "file" in frames.colnames else ""
    why = (f"the sky is flat to the last digit (8-bit data, or a sky at the converter's "
           f"floor) in frames of {which} used in the fit{f' ({names}...)' if names else ''}: "
           "the light under that floor is cut off, so the zero points, k and the verdict are "
           "biased; k of these bands is not an extinction measurement (take frames with a sky "
           "well above the floor, or leave these out with --exclude)")
    notes.append(why)
    return "undetermined", f"{why}; the fit said: {verdict} ({reason})"


def _flag_frames(frames):
    """Add ``cloudy``, ``above_line``, ``excluded``, ``failed`` to each frame's flags."""
    flags = []
    for r in frames:
        fl = [s for s in str(r["flags"]).split(",") if s]
        if r["cloudy"]:
            fl.append("cloudy")
        if r["outlier"]:
            fl.append("above_line")
        if r["user_excluded"]:
            fl.append("excluded")
        if r["status"] == "failed":
            fl.append("failed")
        flags.append(",".join(fl))
    frames["flags"] = np.asarray(flags, dtype=str)


def _sky_from_night_zp(frames, absolute):
    """Sky brightness of frames without one from their own ZP: from the night's ZP."""
    for k in range(len(frames)):
        if not np.isfinite(frames["sky_sb"][k]) and np.isfinite(frames["sky_rate"][k]) \
                and frames["sky_rate"][k] > 0 and absolute and "raw" not in frames["flags"][k]:
            zpk = frames["zp_night"][k]
            if np.isfinite(zpk):
                frames["sky_sb"][k] = zpk - 2.5 * math.log10(frames["sky_rate"][k])
