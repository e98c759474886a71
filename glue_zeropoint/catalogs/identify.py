"""SIMBAD identification of measured stars: main identifier, object type, variable, non-stellar.

:func:`identify` matches every measured star to the nearest SIMBAD object of a (normalised)
SIMBAD cone answer with :func:`~glue_zeropoint.catalogs.crossmatch.crossmatch` and adds

``simbad_id`` (str)
    SIMBAD ``main_id``; ``''`` when no SIMBAD object is within the match radius.
``simbad_otype`` (str)
    SIMBAD object type (short code, e.g. ``'*'``, ``'RR*'``, ``'G'``); ``''`` when none.
``simbad_sep_arcsec`` (float)
    Distance to that object (NaN when none).
``simbad_match`` (str)
    ``'ok'``, ``'ambiguous'`` (another SIMBAD object within 2 match radii, or another star
    nearer to the same object; the nearest object is still reported) or ``'none'``.
``variable``, ``nonstellar`` (bool)
    The SIMBAD object is a known or suspected variable (otype ``V*`` and its children in
    SIMBAD's object-type hierarchy, eclipsing and cataclysmic binaries, candidates included:
    see :data:`VARIABLE_OTYPES`), or not a star (galaxies, AGN/QSO, clusters, nebulae and
    interstellar matter: :data:`NONSTELLAR_OTYPES`).

:func:`identify_field` makes the one SIMBAD cone query of the field through
:func:`~glue_zeropoint.catalogs.get_catalog` (cached on disk, offline-capable) and calls
:func:`identify`.

Using it in the zero-point fit
------------------------------
:func:`~glue_zeropoint.zeropoint.fit_zeropoint` leaves out the rows whose ``cat_variable`` or
``cat_nonstellar`` (the reference catalog's flags, as prefixed by ``crossmatch``) are true.
Identify the *matches* (the crossmatch output): the SIMBAD flags are then also OR-ed into
``cat_variable``/``cat_nonstellar`` (``mark_catalog=None``, the default, does this whenever
those columns exist), so the fit leaves SIMBAD variables and non-stellar objects out::

    matches = crossmatch(stars, reference_catalog)
    matches = identify_field(matches, center, radius)
    zp = fit_zeropoint(matches, 'V')

Match radius
------------
``radius=None`` lets :func:`crossmatch` measure it from the separations (5 sigma of the WCS
and centroid errors); when there are too few pairs to measure it,
:data:`FALLBACK_RADIUS_ARCSEC` (or one pixel, if larger) is used instead of crossmatch's
10 arcsec search radius, which is too wide for naming a star. SIMBAD's cone answer is asked
without proper motions, so the positions are SIMBAD's (ICRS, J2000): a star moving faster than
about 0.1 arcsec/yr may be left unidentified.
"""

import logging
import math
from dataclasses import dataclass

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Column, MaskedColumn, Table

from ..exceptions import CatalogError, InputError
from .crossmatch import MATCH_NONE, crossmatch
from .otypes import NONSTELLAR_OTYPES, VARIABLE_OTYPES, classify_otype, is_nonstellar, is_variable

__all__ = ["identify", "identify_field", "classify_otype", "is_variable", "is_nonstellar",
           "VARIABLE_OTYPES", "NONSTELLAR_OTYPES", "IDENTIFY_COLUMNS",
           "FALLBACK_RADIUS_ARCSEC"]

log = logging.getLogger(__name__)

#: Columns :func:`identify` adds (or replaces).
IDENTIFY_COLUMNS = ("simbad_id", "simbad_otype", "simbad_sep_arcsec", "simbad_match",
                    "variable", "nonstellar")

#: Match radius when ``radius=None`` and too few pairs to measure one (arcsec).
FALLBACK_RADIUS_ARCSEC = 3.0

# --------------------------------------------------------------------------- identification


def _strings(col, n):
    if col is None:
        return np.array([""] * n, dtype=object)
    values = np.array(col, dtype=object)
    mask = getattr(col, "mask", None)
    out = np.array(["" if v is None or v is np.ma.masked else
                    (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)).strip()
                    for v in values], dtype=object)
    if mask is not None and np.any(mask):
        out[np.asarray(mask, bool)] = ""
    return out


def _bools(col, n):
    if col is None:
        return np.zeros(n, bool)
    values = np.array(col)
    if values.dtype.kind in "USO":
        values = np.isin(np.char.lower(values.astype(str)), ["true", "1", "yes", "t"])
    else:
        values = values.astype(bool)
    mask = getattr(col, "mask", None)
    if mask is not None and np.any(mask):
        values = values.copy()
        values[np.asarray(mask, bool)] = False
    return values


def _as_simbad_table(simbad_table):
    """A normalised SIMBAD table (a raw astroquery answer is normalised here)."""
    if not isinstance(simbad_table, Table):
        raise InputError(f"simbad_table must be an astropy Table, got "
                         f"{type(simbad_table).__name__}")
    if "id" in simbad_table.colnames and "ra" in simbad_table.colnames:
        return simbad_table
    from .normalize import normalize_catalog  # not at import: normalize may import from here

    return normalize_catalog(simbad_table, spec="simbad")


def _set_column(table, name, values, description, unit=None):
    if name in table.colnames:
        table.remove_column(name)
    table[name] = Column(values, description=description, unit=unit)


def _mark(table, name, flags):
    """OR ``flags`` into the (possibly masked) boolean column ``name`` of ``table``."""
    col = table[name]
    old = _bools(col, len(table))
    mask = np.asarray(getattr(col, "mask", np.zeros(len(table), bool)), bool)
    if mask.shape != (len(table),):
        mask = np.zeros(len(table), bool)
    table[name] = MaskedColumn(old | flags, mask=mask & ~flags, dtype=bool,
                               description=col.info.description)
    return int((flags & ~old).sum())


def identify(stars, simbad_table, *, radius=None, obstime=None, mark_catalog=None):
    """Identify measured stars in a SIMBAD cone answer.

    Parameters
    ----------
    stars : `~astropy.table.Table`
        With ``ra``, ``dec`` in degrees (the measured stars, or the crossmatch of them with a
        reference catalog). Rows without a finite position stay unidentified.
    simbad_table : `~astropy.table.Table`
        SIMBAD objects of the field: :func:`~glue_zeropoint.catalogs.get_catalog`
        ``('simbad', ...)`` output (normalised: ``id``, ``ra``, ``dec``, ``otype``,
        ``variable``, ``nonstellar``), or astroquery's raw answer (``main_id``, ``ra``,
        ``dec``, ``otype``), which is normalised first. May be empty.
    radius : `~astropy.units.Quantity` or float, optional
        Match radius (a float is arcsec). Default: measured (see the module notes).
    obstime : `~astropy.time.Time`, float or str, optional
        Observation date, passed to :func:`crossmatch` (default ``stars.meta['date_obs']``).
    mark_catalog : bool or None
        Also OR the flags into ``cat_variable``/``cat_nonstellar`` so that
        :func:`~glue_zeropoint.zeropoint.fit_zeropoint` leaves those stars out. None: when
        those columns exist (a crossmatch output).

    Returns
    -------
    `~astropy.table.Table`
        A copy of ``stars`` with the columns of :data:`IDENTIFY_COLUMNS` (replaced if present)
        and ``meta['identify']``: ``radius_arcsec``, ``radius_method``, ``n_stars``,
        ``n_identified``, ``n_variable``, ``n_nonstellar``, ``n_simbad``, ``simbad_retrieved``,
        ``from_cache``, ``cache_age_s``, ``truncated``, ``marked_catalog``.

    Raises
    ------
    InputError
        ``stars`` without ``ra``/``dec``, or a bad radius.
    CatalogError
        A SIMBAD table without positions.

    Examples
    --------
    >>> from astropy.table import Table
    >>> stars = Table({'ra': [10.0, 10.01, 10.02], 'dec': [20.0, 20.0, 20.0]})
    >>> simbad = Table({'id': ['V* XX Tst', 'LEDA 1'], 'ra': [10.0, 10.0100003],
    ...                 'dec': [20.0, 20.0], 'otype': ['RR*', 'G']})
    >>> out = identify(stars, simbad, radius=2.0)
    >>> out['simbad_id'].tolist(), out['variable'].tolist(), out['nonstellar'].tolist()
    (['V* XX Tst', 'LEDA 1', ''], [True, False, False], [False, True, False])
    """
    for name in ("ra", "dec"):
        if name not in stars.colnames:
            raise InputError(f"stars: no {name!r} column (columns: {stars.colnames}); stars "
                             "are identified by sky position: measure them on an image with a "
                             "WCS, or pass --wcs FILE")
    simbad = _as_simbad_table(simbad_table)
    n = len(stars)
    out = Table(stars, copy=True)
    found = _Identified.empty(n)
    if _usable(simbad, n):
        found = _match_simbad(stars, simbad, radius, obstime)
    _identification_columns(out, found, n)
    if mark_catalog is None:
        mark_catalog = "cat_variable" in out.colnames or "cat_nonstellar" in out.colnames
    marked = {}
    if mark_catalog:
        for name, flags in (("cat_variable", found.variable),
                            ("cat_nonstellar", found.nonstellar)):
            if name not in out.colnames:
                out[name] = MaskedColumn(np.zeros(n, bool), mask=np.ones(n, bool))
            marked[name] = _mark(out, name, flags)
    smeta = simbad.meta or {}
    status, variable, nonstellar = found.status, found.variable, found.nonstellar
    out.meta["identify"] = {
        "radius_arcsec": found.radius_arcsec, "radius_method": found.method, "n_stars": n,
        "n_identified": int(np.sum(status != MATCH_NONE)),
        "n_ambiguous": int(np.sum(status == "ambiguous")),
        "n_variable": int(variable.sum()), "n_nonstellar": int(nonstellar.sum()),
        "n_simbad": len(simbad), "simbad_retrieved": str(smeta.get("retrieved", "")),
        "from_cache": bool(smeta.get("from_cache", False)),
        "cache_age_s": float(smeta.get("cache_age_s", 0.0) or 0.0),
        "truncated": bool(smeta.get("truncated", False)),
        "marked_catalog": marked,
    }
    log.info("SIMBAD identification: %d of %d stars identified (%d variable, %d non-stellar), "
             "radius %.2f arcsec", out.meta["identify"]["n_identified"], n, variable.sum(),
             nonstellar.sum(), found.radius_arcsec)
    return out


@dataclass
class _Identified:
    """Per star: SIMBAD id, object type, separation, match status, variable, non-stellar;
    and the match radius used and how it was chosen."""

    ids: np.ndarray
    otypes: np.ndarray
    sep: np.ndarray
    status: np.ndarray
    variable: np.ndarray
    nonstellar: np.ndarray
    radius_arcsec: float
    method: str

    @classmethod
    def empty(cls, n):
        return cls(ids=np.array([""] * n, dtype=object), otypes=np.array([""] * n, dtype=object),
                   sep=np.full(n, np.nan), status=np.full(n, MATCH_NONE, dtype=object),
                   variable=np.zeros(n, bool), nonstellar=np.zeros(n, bool),
                   radius_arcsec=float("nan"),
                   method="no SIMBAD object in the field" if n else "no stars")


def _usable(simbad, n):
    """True when there are stars and SIMBAD objects (CatalogError: none with a position)."""
    if not (len(simbad) > 0 and n > 0):
        return False
    cra = np.asarray(simbad["ra"], float)
    cdec = np.asarray(simbad["dec"], float)
    if not np.any(np.isfinite(cra) & np.isfinite(cdec)):
        raise CatalogError("SIMBAD answer: no object has a finite position; the answer is "
                           "damaged: query again (refresh) or clear the catalog cache")
    return True


def _match_simbad(stars, simbad, radius, obstime):
    """Crossmatch the stars with the SIMBAD objects (a fallback radius when too few pairs to
    measure one); the :class:`_Identified` of each star."""
    n = len(stars)
    found = _Identified.empty(n)
    positions = Table({"ra": stars["ra"], "dec": stars["dec"]},
                      meta={k: stars.meta[k] for k in ("date_obs", "DATE-OBS", "pixel_scale")
                            if k in stars.meta})
    xm = crossmatch(positions, simbad, radius=radius, obstime=obstime)
    info = xm.meta["crossmatch"]
    if radius is None and not math.isfinite(info["sigma_arcsec"]):
        fallback = max(FALLBACK_RADIUS_ARCSEC, float(positions.meta.get("pixel_scale") or 0.0))
        xm = crossmatch(positions, simbad, radius=fallback, obstime=obstime)
        info = xm.meta["crossmatch"]
        info["radius_method"] = f"{fallback:g} arcsec (too few pairs to measure the radius)"
    found.radius_arcsec, found.method = float(info["radius_arcsec"]), str(info["radius_method"])
    found.status = np.asarray(xm["match"]).astype(object)
    hit = found.status != MATCH_NONE
    rows = np.asarray(xm["cat_index"])[hit]
    m = len(simbad)

    def column(name):
        return simbad[name] if name in simbad.colnames else None

    found.ids[hit] = _strings(simbad["id"], m)[rows]
    found.otypes[hit] = _strings(column("otype"), m)[rows]
    found.sep[hit] = np.asarray(xm["sep_arcsec"], float)[hit]
    otypes = found.otypes[hit]
    found.variable[hit] = _bools(column("variable"), m)[rows] | np.array(
        [is_variable(t) for t in otypes], dtype=bool)
    found.nonstellar[hit] = _bools(column("nonstellar"), m)[rows] | np.array(
        [is_nonstellar(t) for t in otypes], dtype=bool)
    return found


def _identification_columns(out, found, n):
    def text(values):
        return np.array(list(values), dtype=str) if n else np.array([], "<U1")

    _set_column(out, "simbad_id", text(found.ids), "SIMBAD main identifier ('' when none)")
    _set_column(out, "simbad_otype", text(found.otypes), "SIMBAD object type ('' when none)")
    _set_column(out, "simbad_sep_arcsec", found.sep, "distance to the SIMBAD object",
                unit=u.arcsec)
    _set_column(out, "simbad_match", text(found.status), "SIMBAD match: ok, ambiguous or none")
    _set_column(out, "variable", found.variable, "SIMBAD: known or suspected variable")
    _set_column(out, "nonstellar", found.nonstellar,
                "SIMBAD: not a star (galaxy, cluster, nebula)")


def _field_of_stars(stars, margin=1 * u.arcmin):
    ra = np.asarray(stars["ra"], float)
    dec = np.asarray(stars["dec"], float)
    good = np.isfinite(ra) & np.isfinite(dec)
    if not good.any():
        raise InputError("stars: no star has a finite ra/dec, so the field is unknown; give "
                         "the image a WCS (e.g. from a plate solver) first")
    coords = SkyCoord(ra[good], dec[good], unit="deg")
    # centre: the mean direction (safe across RA = 0)
    center = SkyCoord(coords.cartesian.mean(), frame="icrs", representation_type="cartesian")
    center = SkyCoord(center.spherical.lon, center.spherical.lat, frame="icrs")
    radius = coords.separation(center).max().to(u.deg) + u.Quantity(margin).to(u.deg)
    return center, radius


def identify_field(stars, center=None, radius=None, *, match_radius=None, obstime=None,
                   mark_catalog=None, progress=None, settings=None, **keywords):
    """Query SIMBAD once for the field (cached) and :func:`identify` the stars.

    Parameters
    ----------
    stars : `~astropy.table.Table`
        With ``ra``, ``dec`` (deg).
    center : `~astropy.coordinates.SkyCoord`, optional
        Field centre, e.g. from :func:`~glue_zeropoint.catalogs.field_of` (the same cone as a
        SIMBAD catalog fetched for the image, so the cached answer is shared). Default: the
        centre of the stars.
    radius : `~astropy.units.Quantity`, optional
        Cone radius. Default: the stars' extent plus 1 arcmin.
    match_radius, obstime, mark_catalog
        Passed to :func:`identify` (``match_radius`` as its ``radius``).
    progress : callable, optional
        ``progress(done, total, message)``.
    settings : `~glue_zeropoint.catalogs.api.QuerySettings`, optional
        ``offline`` (only the cache, also ``GLUE_ZEROPOINT_OFFLINE=1``; a cached cone of
        SIMBAD that contains this one also answers), ``cache``, ``timeout``, ``refresh``
        (see :func:`~glue_zeropoint.catalogs.get_catalog`).
    **keywords
        Any QuerySettings field, overriding ``settings`` (the keywords this function took).

    Returns
    -------
    `~astropy.table.Table`
        See :func:`identify`; ``meta['identify']`` also has ``center_ra``, ``center_dec``,
        ``field_radius_deg``.

    Raises
    ------
    CatalogError
        Offline with nothing cached (the message says what to run), or the service failed and
        nothing is cached (:class:`~glue_zeropoint.exceptions.CatalogServiceError`).
    InputError
        Stars without positions.
    """
    from .api import get_catalog

    for name in ("ra", "dec"):
        if name not in stars.colnames:
            raise InputError(f"stars: no {name!r} column (columns: {stars.colnames}); stars "
                             "are identified by sky position: measure them on an image with a "
                             "WCS, or pass --wcs FILE")
    if center is None or radius is None:
        auto_center, auto_radius = _field_of_stars(stars)
        center = auto_center if center is None else center
        radius = auto_radius if radius is None else radius
    simbad = get_catalog("simbad", center, radius, allow_empty=True, progress=progress,
                         settings=settings, **keywords)
    out = identify(stars, simbad, radius=match_radius, obstime=obstime,
                   mark_catalog=mark_catalog)
    center = center.icrs
    out.meta["identify"].update({"center_ra": float(center.ra.deg),
                                 "center_dec": float(center.dec.deg),
                                 "field_radius_deg": float(u.Quantity(radius).to_value(u.deg))})
    return out
