"""The one entry point for reference stars of a field: :func:`get_catalog`, and :func:`field_of`."""

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord

from .._settings import Settings
from ..exceptions import CatalogError, CatalogServiceError, CatalogWarning
from ..io import human_age
from ..progress import report
from .cache import CatalogCache, cache_key
from .config import offline_from_env
from .files import read_catalog
from .specs import default_catalogs_for_band, spec_for

__all__ = ["get_catalog", "field_of", "parse_spec", "QuerySettings"]

log = logging.getLogger(__name__)


def parse_spec(spec):
    """Split a catalog spec into ``(kind, value)``.

    ``kind`` is ``'vizier'`` (value: the catalog id), ``'simbad'``, ``'default'`` or
    ``'file'`` (value: a Path).

    Raises
    ------
    CatalogError
        An empty spec, ``vizier:`` without an id, or a file that does not exist.
    """
    if isinstance(spec, Path):
        text = str(spec)
    elif isinstance(spec, str):
        text = spec.strip()
    else:
        raise CatalogError(f"catalog spec must be a string or a path, got {spec!r}")
    if not text:
        raise CatalogError("empty catalog spec; use 'vizier:<catalog id>', 'simbad', 'default' "
                           "or a table file")
    low = text.lower()
    if low.startswith("vizier:"):
        catalog_id = text[7:].strip()
        if not catalog_id:
            raise CatalogError("'vizier:' needs a catalog id, e.g. vizier:II/336/apass9")
        return "vizier", catalog_id
    if low == "simbad":
        return "simbad", "simbad"
    if low == "default":
        return "default", None
    path = Path(text).expanduser()
    if not path.is_file():
        raise CatalogError(f"{text}: no such catalog file; a catalog is 'vizier:<catalog id>' "
                           f"(e.g. vizier:II/336/apass9), 'simbad', 'default' or a table file "
                           f"(ECSV, CSV, VOTable, FITS)")
    return "file", path


def _resolve_cache(cache):
    if cache is False:
        return None
    if cache is None or cache is True:
        return CatalogCache()
    if isinstance(cache, (str, Path)):
        return CatalogCache(cache)
    return cache


def _mark_cached(table, age):
    table.meta["from_cache"] = True
    table.meta["cache_age_s"] = float(age)
    return table


def _cut_to_cone(table, center, radius):
    if len(table) == 0:
        return table
    coords = SkyCoord(np.asarray(table["ra"], float), np.asarray(table["dec"], float),
                      unit="deg")
    return table[coords.separation(center) <= radius]


def _find_covering(cache, service, catalog, center, radius):
    """A cached answer of the same service and catalog whose cone contains the asked one."""
    best = None
    for path in reversed(cache.entries()):  # most recently used first
        hit = cache.get(path.stem, touch=False)
        if hit is None:
            continue
        table, age = hit
        query = table.meta.get("query") or {}
        if table.meta.get("service") != service:
            continue
        if service == "vizier" and query.get("catalog") != catalog:
            continue
        try:
            qcenter = SkyCoord(float(query["ra"]), float(query["dec"]), unit="deg")
            qradius = float(query["radius"]) * u.deg
        except (KeyError, TypeError, ValueError):
            continue
        if qcenter.separation(center) + radius <= qradius * (1 + 1e-9):
            if best is None or age < best[1]:
                best = (table, age)
    if best is None:
        return None
    table, age = best
    return _cut_to_cone(table, center, radius), age


def _one(service, catalog, center, radius, *, offline, cache, timeout, row_limit, refresh,
         allow_empty, progress, step, steps):
    from .services import query_simbad, query_vizier

    what = "SIMBAD" if service == "simbad" else f"VizieR {catalog}"
    columns = spec_for(catalog).request_columns() if service == "vizier" else ["simbad-basic"]
    key = cache_key(service, catalog, center, radius, columns, row_limit)
    if cache is not None and not refresh:
        hit = cache.get(key)
        if hit is None and offline:
            hit = _find_covering(cache, service, catalog, center, radius)
        if hit is not None:
            table, age = hit
            if offline or cache.max_age is None or age <= cache.max_age:
                log.info("%s: using the cached answer (%s old)", what, human_age(age))
                report(progress, step + 1, steps, f"{what}: from cache")
                return _mark_cached(table, age)
    if offline:
        where = f"{center.to_string('hmsdms', precision=0)} radius {radius.to(u.arcmin):.1f}"
        raise CatalogError(
            f"offline: no cached answer of {what} for {where}; run the same query once online "
            f"(e.g. glue-zeropoint catalog IMAGE --catalog "
            f"{'simbad' if service == 'simbad' else 'vizier:' + catalog} --out FILE) or give "
            f"a local catalog file")
    report(progress, step, steps, f"querying {what}")
    try:
        if service == "simbad":
            table = query_simbad(center, radius, timeout=timeout, row_limit=row_limit,
                                 allow_empty=allow_empty)
        else:
            table = query_vizier(catalog, center, radius, columns=columns, row_limit=row_limit,
                                 timeout=timeout)
    except CatalogServiceError as err:
        hit = None
        if cache is not None:
            hit = cache.get(key) or _find_covering(cache, service, catalog, center, radius)
        if hit is None:
            raise
        table, age = hit
        warnings.warn(f"{what} failed ({err}); using the cached answer from "
                      f"{human_age(age)} ago (retrieved {table.meta.get('retrieved', '?')})",
                      CatalogWarning, stacklevel=3)
        return _mark_cached(table, age)
    if cache is not None:
        try:
            cache.put(key, table)
        except OSError as err:
            warnings.warn(f"could not write the catalog cache in {cache.directory} ({err}); "
                          f"the answer is used but not kept for offline work", CatalogWarning,
                          stacklevel=3)
    report(progress, step + 1, steps, f"{what}: {len(table)} rows")
    return table


@dataclass
class QuerySettings(Settings):
    """How catalogs are queried (serialisable with :meth:`to_dict`/:meth:`from_dict`).

    Attributes
    ----------
    offline : bool
        Use only the cache and local files (also set by ``GLUE_ZEROPOINT_OFFLINE=1``). An
        offline query is also answered by a cached cone of the same catalog that contains the
        asked one.
    cache : `CatalogCache`, path, None or False
        None: the default cache (``GLUE_ZEROPOINT_CACHE_DIR``); False: no cache.
    timeout : float, optional
        Seconds per HTTP request before giving up. Default: ``GLUE_ZEROPOINT_TIMEOUT`` or
        30 s (:func:`glue_zeropoint.catalogs.config.default_timeout`; the command line's
        ``--timeout``).
    row_limit : int, optional
        Row limit of the query (default :data:`~glue_zeropoint.catalogs.services.DEFAULT_ROW_LIMIT`).
    refresh : bool
        Query even when a fresh cached answer exists.
    """

    offline: bool = False
    cache: object = None
    timeout: float | None = None
    row_limit: int | None = None
    refresh: bool = False


def get_catalog(spec, center, radius, *, band=None, allow_empty=False, progress=None,
                settings=None, **keywords):
    """The reference stars of a field as a normalised table.

    Parameters
    ----------
    spec : str or Path
        ``'vizier:<catalog id>'`` (e.g. ``'vizier:II/336/apass9'``), ``'simbad'``,
        ``'default'`` (chosen by ``band``: BVRI -> Gaia DR3 synthetic photometry
        ``I/360/syntphot`` then APASS ``II/336/apass9``; griz -> ATLAS-Refcat2
        ``J/ApJ/867/105``) or a local table file (ECSV, CSV, VOTable, FITS).
    center : `~astropy.coordinates.SkyCoord`
        Field centre (see :func:`field_of`).
    radius : `~astropy.units.Quantity`
        Cone radius.
    band : str, optional
        Needed for ``'default'``; when given, the result must have the band (a default
        catalog without it is skipped).
    allow_empty : bool
        Return an empty table instead of raising when SIMBAD knows no object in the cone.
    progress : callable, optional
        ``progress(done, total, message)``.
    settings : QuerySettings, optional
        ``offline``, ``cache``, ``timeout``, ``row_limit``, ``refresh`` (see
        :class:`QuerySettings`).
    **keywords
        Any QuerySettings field, overriding ``settings`` (the keywords this function took).

    Returns
    -------
    `~astropy.table.Table`
        Normalised table; ``meta['from_cache']`` and ``meta['cache_age_s']`` tell whether it
        came from the cache. A fresh cached answer (younger than ``cache.max_age``) is used
        without querying. When the service fails and a cached answer exists, it is used and a
        warning names the service and the age.

    Raises
    ------
    CatalogServiceError
        The service failed and nothing is cached.
    CatalogError
        Bad spec, offline with nothing cached, empty answer, or the band is missing.
    """
    from .normalize import require_band
    from .services import DEFAULT_ROW_LIMIT

    s = QuerySettings.from_keywords(settings, **keywords)
    offline = bool(s.offline) or offline_from_env()
    row_limit = DEFAULT_ROW_LIMIT if s.row_limit is None else int(s.row_limit)
    kind, value = parse_spec(spec)
    if kind == "file":
        report(progress, 0, 1, f"reading {value.name}")
        table = read_catalog(value)
        if band is not None:
            require_band(table, band)
        report(progress, 1, 1, f"{value.name}: {len(table)} rows")
        return table
    if not isinstance(center, SkyCoord):
        raise CatalogError("the field centre must be a SkyCoord (names are not resolved)")
    center = center.icrs
    radius = u.Quantity(radius).to(u.deg)
    cache = _resolve_cache(s.cache)
    timeout = s.timeout
    if timeout is None:
        from .config import default_timeout

        timeout = default_timeout()
    common = dict(offline=offline, cache=cache, timeout=timeout, row_limit=row_limit,
                  refresh=s.refresh, allow_empty=allow_empty, progress=progress)
    if kind == "simbad":
        table = _one("simbad", "simbad", center, radius, step=0, steps=1, **common)
        if band is not None:
            require_band(table, band)
        return table
    if kind == "vizier":
        table = _one("vizier", value, center, radius, step=0, steps=1, **common)
        if band is not None:
            require_band(table, band)
        return table
    return _default_catalog(band, center, radius, common)


def _default_catalog(band, center, radius, common):
    """The best default catalog for the band, falling back to the next one (a service that
    failed answers the rest only from the cache)."""
    from .normalize import require_band

    candidates = default_catalogs_for_band(band)
    failures = []
    service_error = None  # the service is down or slow: only cached answers for the rest
    any_service_error = False
    for step, catalog in enumerate(candidates):
        try:
            if service_error is not None:  # the same service failed: only a cached answer
                common = dict(common, offline=True)
            table = _one("vizier", catalog, center, radius, step=step, steps=len(candidates),
                         **common)
            require_band(table, band)
            if step:
                warnings.warn(f"default catalog for band {band}: using {catalog} because "
                              f"{'; '.join(failures)}", CatalogWarning, stacklevel=3)
            table.meta["default_for_band"] = band
            return table
        except CatalogServiceError as err:
            any_service_error = True
            if getattr(err, "service_down", True):
                service_error = err
            failures.append(f"{catalog}: {err}")
            log.info("default catalog %s failed: %s", catalog, err)
        except CatalogError as err:
            failures.append(f"{catalog}: {err}")
            log.info("default catalog %s failed: %s", catalog, err)
    # a service that is down or slow is a failed step (exit 1), not bad input
    cls = CatalogServiceError if any_service_error else CatalogError
    raise cls(f"no default catalog could give band {band!r} for this field: "
              + " | ".join(failures))


def field_of(wcs, shape, margin=1 * u.arcmin):
    """Centre and radius of the cone that covers an image, plus a margin.

    Parameters
    ----------
    wcs : `~astropy.wcs.WCS`
        The image WCS (only its celestial part is used).
    shape : tuple
        Image shape in numpy order ``(ny, nx)``.
    margin : `~astropy.units.Quantity`, optional
        Added to the radius so that stars moving by proper motion (or a slightly wrong WCS)
        are not lost at the edges. The default 1 arcmin covers 2 arcsec/yr over 30 years.

    Returns
    -------
    center : `~astropy.coordinates.SkyCoord` (ICRS)
    radius : `~astropy.units.Quantity` (deg)

    Raises
    ------
    CatalogError
        The WCS has no celestial axes or does not give finite positions for the image.
    """
    celestial = getattr(wcs, "celestial", None)
    if celestial is None or not celestial.has_celestial or celestial.naxis != 2:
        raise CatalogError("the image WCS has no celestial (RA/Dec) axes; give a WCS, e.g. "
                           "from a plate solver (--wcs)")
    if len(shape) < 2:
        raise CatalogError(f"image shape must be (ny, nx), got {shape!r}")
    ny, nx = int(shape[-2]), int(shape[-1])
    if nx <= 0 or ny <= 0:
        raise CatalogError(f"image shape must be positive, got {shape!r}")
    xs = np.array([(nx - 1) / 2, -0.5, nx - 0.5, -0.5, nx - 0.5, (nx - 1) / 2, (nx - 1) / 2,
                   -0.5, nx - 0.5])
    ys = np.array([(ny - 1) / 2, -0.5, -0.5, ny - 0.5, ny - 0.5, -0.5, ny - 0.5,
                   (ny - 1) / 2, (ny - 1) / 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        points = celestial.pixel_to_world(xs, ys)
    points = points.icrs
    if not np.all(np.isfinite(points.ra.deg) & np.isfinite(points.dec.deg)):
        raise CatalogError("the image WCS gives no sky position for part of the image; check "
                           "the WCS (projection, CRPIX, CD matrix)")
    center = points[0]
    radius = points[1:].separation(center).max().to(u.deg)
    margin = u.Quantity(margin).to(u.deg)
    return SkyCoord(ra=center.ra, dec=center.dec, frame="icrs"), radius + margin
