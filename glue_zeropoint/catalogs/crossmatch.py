"""Match measured sources to a normalised reference catalog by sky position.

:func:`crossmatch` propagates the catalog's proper motions to the observation date, matches
every source to its nearest catalog star (astropy ``SkyCoord.match_to_catalog_sky``), and
marks each row ``'ok'``, ``'none'`` or ``'ambiguous'``: a match is ambiguous when a second
catalog star lies within ``ambiguity_factor`` (2) match radii of the source (two catalog stars
that could be the one measured, or both in its aperture), or when another source is closer to
the same catalog star. The zero-point fit leaves ambiguous matches out (reason
``ambiguous``, :mod:`glue_zeropoint.zeropoint.reasons`).

Match radius from the WCS quality
---------------------------------
When no radius is given it is measured: every source is first matched within a generous
search radius (10 arcsec, or 5 pixels if larger, when the pixel scale is known); for
correct pairs the separations follow a Rayleigh distribution whose median is ``1.1774 sigma``
(``sigma`` = per-axis rms of WCS error plus centroid and catalog position errors); the radius is
``5 sigma`` (a true pair falls outside with probability 4e-6), at least 1 arcsec (or 0.5 pixel)
and at most the search radius. The value and how it was found are in ``meta``.
"""

import logging
import math

import numpy as np
from astropy import units as u
from astropy.table import MaskedColumn, Table
from astropy.time import Time

from ..exceptions import CatalogError, InputError
from ..obstime import parse_date

__all__ = ["crossmatch", "add_fit_meta", "propagate_proper_motion", "estimate_match_radius", "MATCH_OK",
           "MATCH_NONE", "MATCH_AMBIGUOUS"]

log = logging.getLogger(__name__)

MATCH_OK = "ok"
MATCH_NONE = "none"
MATCH_AMBIGUOUS = "ambiguous"


def _julian_year(obstime):
    if obstime is None:
        return None
    if isinstance(obstime, Time):
        return float(obstime.jyear)
    if isinstance(obstime, (int, float, np.floating, np.integer)):
        return float(obstime)
    try:
        return float(parse_date(obstime).jyear)
    except ValueError as err:
        raise InputError(f"obstime: cannot read {obstime!r} as a date (use ISO, e.g. "
                         "'2024-07-01T22:00:00', a Julian year or an astropy Time)") from err


def propagate_proper_motion(catalog, obstime):
    """Catalog positions moved from ``ref_epoch`` to ``obstime`` by their proper motions.

    Linear in RA/Dec (``pmra`` includes cos dec), which is accurate to well below a
    milliarcsecond over decades except within a degree of the poles. Stars with unknown
    (NaN) proper motion or epoch keep their catalog position.

    Parameters
    ----------
    catalog : Table
        Normalised: ``ra``, ``dec`` (deg), optional ``pmra``, ``pmdec`` (mas/yr), ``ref_epoch``
        (Julian year).
    obstime : `~astropy.time.Time`, float (Julian year), str (ISO) or None

    Returns
    -------
    ra, dec : ndarray (deg)

    Examples
    --------
    >>> from astropy.table import Table
    >>> cat = Table({'ra': [10.0], 'dec': [0.0], 'pmra': [3600.0], 'pmdec': [0.0],
    ...              'ref_epoch': [2000.0]})
    >>> ra, dec = propagate_proper_motion(cat, 2010.0)  # 3.6 arcsec/yr for 10 years
    >>> round(float((ra[0] - 10.0) * 3600), 6)
    36.0
    """
    ra = np.asarray(catalog["ra"], dtype=float).copy()
    dec = np.asarray(catalog["dec"], dtype=float).copy()
    t = _julian_year(obstime)
    if t is None or "pmra" not in catalog.colnames or "pmdec" not in catalog.colnames:
        return ra, dec
    pmra = _as_float(catalog["pmra"])
    pmdec = _as_float(catalog["pmdec"])
    epoch = (_as_float(catalog["ref_epoch"]) if "ref_epoch" in catalog.colnames
             else np.full(ra.size, 2000.0))
    dt = t - epoch
    ok = np.isfinite(pmra) & np.isfinite(pmdec) & np.isfinite(dt)
    cosd = np.cos(np.deg2rad(dec))
    ra[ok] += pmra[ok] * dt[ok] / 3.6e6 / np.maximum(cosd[ok], 1e-6)
    dec[ok] += pmdec[ok] * dt[ok] / 3.6e6
    return np.mod(ra, 360.0), dec


def _as_float(col):
    values = np.array(col, dtype=float)
    mask = getattr(col, "mask", None)
    if mask is not None and np.any(mask):
        values[np.asarray(mask, bool)] = np.nan
    return values


def estimate_match_radius(sep_arcsec, search_radius, min_radius=1.0):
    """Match radius from the nearest-neighbour separations (see the module notes).

    Returns
    -------
    (radius_arcsec, sigma_arcsec) : (float, float)

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> sep = np.hypot(*rng.normal(0, 0.3, (2, 500)))
    >>> r, s = estimate_match_radius(sep, 10.0)
    >>> 1.3 < r < 1.7
    True
    """
    sep = np.asarray(sep_arcsec, float)
    sep = sep[np.isfinite(sep) & (sep <= search_radius)]
    if sep.size < 3:
        return float(search_radius), float("nan")
    # iterate: the median of pairs inside the current radius (drop chance pairs far out)
    radius = float(search_radius)
    sigma = float("nan")
    for _ in range(5):
        inside = sep[sep <= radius]
        if inside.size < 3:
            break
        sigma = float(np.median(inside)) / 1.1774
        new = float(np.clip(5.0 * sigma, min_radius, search_radius))
        if abs(new - radius) < 1e-3 * radius:
            radius = new
            break
        radius = new
    return radius, sigma


def _unit_vectors(ra_deg, dec_deg):
    ra, dec = np.deg2rad(ra_deg), np.deg2rad(dec_deg)
    cosd = np.cos(dec)
    return np.column_stack([cosd * np.cos(ra), cosd * np.sin(ra), np.sin(dec)])


def _two_nearest(sra, sdec, cra, cdec):
    """For each source: index of the nearest catalog star, its separation and the second
    nearest's (arcsec; inf when the catalog has one star).

    One KD-tree query on unit vectors for both neighbours: what ``match_to_catalog_sky`` does,
    without building SkyCoords and querying twice (a Glue refit per picked star calls this).
    """
    from scipy.spatial import cKDTree

    k = 2 if cra.size > 1 else 1
    chord, index = cKDTree(_unit_vectors(cra, cdec)).query(_unit_vectors(sra, sdec), k=k)
    chord, index = np.atleast_2d(chord.T).T, np.atleast_2d(index.T).T
    arcsec = np.rad2deg(2.0 * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))) * 3600.0
    second = arcsec[:, 1] if k == 2 else np.full(sra.size, np.inf)
    return index[:, 0], arcsec[:, 0], second


def crossmatch(sources, catalog, *, radius=None, obstime=None, ambiguity_factor=2.0,
               pixel_scale=None):
    """Match sources (with ``ra``/``dec``) to a normalised catalog.

    Parameters
    ----------
    sources : `~astropy.table.Table`
        Must have ``ra``, ``dec`` in degrees (e.g. :func:`~glue_zeropoint.photometry.
        measure_stars` output); rows with non-finite positions get ``match='none'``.
    catalog : `~astropy.table.Table`
        A normalised catalog (``id``, ``ra``, ``dec``, ``pmra``, ``pmdec``, ``ref_epoch``,
        ``mag_<band>``...).
    radius : `~astropy.units.Quantity` or float, optional
        Match radius (a float is arcsec). Default: measured from the separations (module notes).
    obstime : `~astropy.time.Time`, float (Julian year) or str, optional
        Observation date; catalog positions are moved there by their proper motions. Default:
        ``sources.meta['date_obs']`` if present, else no propagation.
    ambiguity_factor : float
        A match is ``'ambiguous'`` when a second catalog star lies within ``ambiguity_factor *
        radius`` of the source, or when another source is closer to the same catalog star.
    pixel_scale : float, optional
        Arcsec per pixel (default ``sources.meta['pixel_scale']``): sets the search radius to
        at least 5 pixels and the smallest radius to 0.5 pixel.

    Returns
    -------
    `~astropy.table.Table`
        One row per source, in order: the source columns, the catalog columns prefixed
        ``cat_`` (masked where there is no match), ``cat_index`` (row in ``catalog``, -1 if
        none), ``sep_arcsec``, ``sep2_arcsec`` (the second-nearest catalog star, the one
        that makes a match ambiguous), ``match``. ``meta``: the sources' meta plus ``crossmatch``
        (``radius_arcsec``, ``radius_method``, ``sigma_arcsec``, ``obstime``, ``n_ok``,
        ``n_none``, ``n_ambiguous``, ``offset_ra_arcsec``, ``offset_dec_arcsec``, ``catalog``).

    Raises
    ------
    InputError
        Sources without ``ra``/``dec``, a bad radius or factor.
    CatalogError
        A catalog without ``ra``/``dec`` or without any finite position.

    Examples
    --------
    >>> from astropy.table import Table
    >>> src = Table({'ra': [10.0, 10.01], 'dec': [20.0, 20.0]})
    >>> cat = Table({'id': ['a', 'b'], 'ra': [10.0001, 11.0], 'dec': [20.0, 20.0]})
    >>> [str(v) for v in crossmatch(src, cat, radius=2.0)['match']]
    ['ok', 'none']
    """
    _check_inputs(sources, catalog, ambiguity_factor)
    if obstime is None:
        obstime = sources.meta.get("date_obs") or sources.meta.get("DATE-OBS")
    t = _julian_year(obstime) if obstime is not None else None
    cra, cdec = propagate_proper_motion(catalog, t)
    sra, sdec = _as_float(sources["ra"]), _as_float(sources["dec"])
    idx, sep, d2 = _nearest_pairs(sra, sdec, cra, cdec, catalog)
    pixel_scale = pixel_scale or sources.meta.get("pixel_scale")
    search = 10.0 if not pixel_scale else max(10.0, 5.0 * float(pixel_scale))
    min_radius = 1.0 if not pixel_scale else max(1.0, float(pixel_scale))
    r_arcsec, sigma, method = _match_radius(radius, sep, search, min_radius)
    status = _match_status(idx, sep, d2, r_arcsec, ambiguity_factor)
    sgood = np.isfinite(sra) & np.isfinite(sdec)
    idx[status == MATCH_NONE] = -1
    out = _joined_table(sources, catalog, idx, cra, cdec)
    sep_out = np.where(sgood, sep, np.nan)
    out["cat_index"] = idx
    out["sep_arcsec"] = sep_out
    out["sep2_arcsec"] = np.where(sgood & np.isfinite(d2), d2, np.nan)
    out["sep2_arcsec"].description = ("separation of the second-nearest catalog star (a match "
                                      "is ambiguous when it is within ambiguity_factor radii)")
    out["match"] = status.astype(str)
    okm = status == MATCH_OK
    dra, ddec = _median_offset(sra, sdec, cra, cdec, idx, okm)
    out.meta = dict(sources.meta)
    out.meta["crossmatch"] = {
        "radius_arcsec": r_arcsec, "radius_method": method, "sigma_arcsec": sigma,
        "search_radius_arcsec": search, "obstime": t,
        "ambiguity_factor": float(ambiguity_factor),
        "n_ok": int(okm.sum()), "n_none": int((status == MATCH_NONE).sum()),
        "n_ambiguous": int((status == MATCH_AMBIGUOUS).sum()),
        "median_sep_arcsec": float(np.nanmedian(sep_out)) if np.isfinite(sep_out).any() else float("nan"),
        "offset_ra_arcsec": dra, "offset_dec_arcsec": ddec,
        "catalog": str(catalog.meta.get("catalog", "")), "n_catalog": len(catalog)}
    return out


def _check_inputs(sources, catalog, ambiguity_factor):
    for name in ("ra", "dec"):
        if name not in sources.colnames:
            raise InputError(f"sources: no {name!r} column (columns: {sources.colnames}); "
                             "measure on an image with a WCS, or pass --wcs FILE")
        if name not in catalog.colnames:
            raise CatalogError(f"catalog {catalog.meta.get('catalog', '')!s}: no {name!r} "
                               "column; normalise it first (catalogs.normalize_catalog)")
    if not ambiguity_factor >= 1.0:
        raise InputError(f"ambiguity_factor must be >= 1, got {ambiguity_factor!r}")


def _nearest_pairs(sra, sdec, cra, cdec, catalog):
    """(catalog row, separation, separation of the second nearest) of each source (-1, NaN,
    inf for a source without a finite position)."""
    cgood = np.isfinite(cra) & np.isfinite(cdec)
    if not cgood.any():
        raise CatalogError(f"catalog {catalog.meta.get('catalog', '')!s}: no finite position")
    if not cgood.all():
        log.warning("catalog: %d rows without a finite position ignored", (~cgood).sum())
    cidx = np.nonzero(cgood)[0]
    sgood = np.isfinite(sra) & np.isfinite(sdec)
    n = sra.size
    idx = np.full(n, -1)
    sep = np.full(n, np.nan)
    d2 = np.full(n, np.inf)  # separation to the second-nearest catalog star
    if sgood.any():
        i1, s1, s2 = _two_nearest(sra[sgood], sdec[sgood], cra[cgood], cdec[cgood])
        idx[sgood] = cidx[i1]
        sep[sgood] = s1
        d2[sgood] = s2
    return idx, sep, d2


def _match_radius(radius, sep, search, min_radius):
    """(radius in arcsec, sigma of the separations or NaN, how it was chosen)."""
    if radius is None:
        r_arcsec, sigma = estimate_match_radius(sep, search, min_radius)
        method = (f"5 sigma of the separations (sigma {sigma:.3g} arcsec from their median)"
                  if math.isfinite(sigma) else "search radius (too few pairs to measure)")
        return r_arcsec, sigma, method
    r_arcsec = float(radius.to_value(u.arcsec)) if hasattr(radius, "unit") else float(radius)
    if not (r_arcsec > 0 and math.isfinite(r_arcsec)):
        raise InputError(f"radius must be a positive angle (arcsec), got {radius!r}")
    return r_arcsec, float("nan"), "given"


def _match_status(idx, sep, d2, r_arcsec, ambiguity_factor):
    """``'ok'``, ``'none'`` or ``'ambiguous'`` (a second catalog star within the ambiguity
    radius, or the farther of two sources on one catalog star) per source."""
    n = idx.size
    status = np.full(n, MATCH_NONE, dtype=object)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(sep) & (sep <= r_arcsec)
    status[ok] = MATCH_OK
    amb = ok & (d2 <= ambiguity_factor * r_arcsec)
    matched = np.nonzero(ok)[0]
    if matched.size:
        order = matched[np.lexsort((sep[matched], idx[matched]))]
        dup = np.zeros(n, bool)
        same = idx[order][1:] == idx[order][:-1]
        dup[order[1:][same]] = True
        amb |= dup
    status[amb] = MATCH_AMBIGUOUS
    return status


def _joined_table(sources, catalog, idx, cra, cdec):
    """The sources with the matched catalog row's columns (``cat_<name>``, masked where no
    match) and the catalog position at the observation date."""
    out = Table(sources, copy=True)
    take = np.where(idx >= 0, idx, 0)
    nomatch = idx < 0
    for name in catalog.colnames:
        col = catalog[name]
        values = np.asarray(col)[take] if len(catalog) else np.asarray(col)
        mask = nomatch.copy()
        cmask = getattr(col, "mask", None)
        if cmask is not None:
            mask |= np.asarray(cmask, bool)[take]
        newname = f"cat_{name}"
        if newname in out.colnames:
            newname = f"cat_{name}_2"
        out[newname] = MaskedColumn(values, mask=mask, unit=col.unit,
                                    description=col.info.description)
    out["cat_ra_obs"] = MaskedColumn(cra[take], mask=nomatch, unit=u.deg,
                                     description="catalog RA at the observation date")
    out["cat_dec_obs"] = MaskedColumn(cdec[take], mask=nomatch, unit=u.deg,
                                      description="catalog Dec at the observation date")
    return out


def _median_offset(sra, sdec, cra, cdec, idx, okm):
    """Median (RA cos Dec, Dec) offset in arcsec of the sources from their matches."""
    if not okm.any():
        return float("nan"), float("nan")
    cosd = np.cos(np.deg2rad(sdec[okm]))
    dra = float(np.median((sra[okm] - cra[idx[okm]] + 180.0) % 360.0 - 180.0) * 3600.0
                * np.median(cosd))
    ddec = float(np.median(sdec[okm] - cdec[idx[okm]]) * 3600.0)
    return dra, ddec


def add_fit_meta(matches, catalog, *, name=None, aperture=None):
    """Put into ``matches.meta`` what the zero-point fit reads besides the columns, the same
    way for the headless pipeline and the Glue viewer: the catalog ``name``, the catalog's
    ``zp_systematic`` (unless already there) and, from ``aperture`` (a dict such as a Glue
    stars dataset's ``meta['zp_aperture']``), ``aperture_correction`` and its error (the
    fluxes are aperture-corrected: the fit needs them for the total error). Returns
    ``matches``."""
    if name is not None:
        matches.meta["catalog"] = name
    meta = getattr(catalog, "meta", None) or {}
    if "zp_systematic" in meta and "zp_systematic" not in matches.meta:
        matches.meta["zp_systematic"] = meta["zp_systematic"]
    for key in ("aperture_correction", "aperture_correction_err"):
        if aperture and key in aperture:
            matches.meta[key] = aperture[key]
    return matches
