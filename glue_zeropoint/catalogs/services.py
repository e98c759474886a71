"""Cone queries to VizieR and SIMBAD through astroquery's own clients.

How the service URL is overridden
---------------------------------
astroquery 0.4.11 hard-codes ``https://`` in its URL builders and checks servers against its
mirror lists, so a plain ``conf.server = '127.0.0.1:8000'`` cannot point it at a test stub or a
private mirror. Instead of serving TLS with a throwaway certificate, this module subclasses the
two clients minimally and cleanly:

* :class:`VizierClass` subclass whose ``_server_to_url`` (the one place astroquery builds the
  VizieR URL) returns ``<GLUE_ZEROPOINT_VIZIER_URL>/viz-bin/<return type>``; everything else
  (the ``-source``/``-c``/``-c.r*``/``-out``/``-out.max`` body, parsing) is astroquery's.
* :class:`SimbadClass` subclass whose ``tap`` property builds pyvo's ``TAPService`` on
  ``<GLUE_ZEROPOINT_SIMBAD_URL>/simbad/sim-tap`` (astroquery builds it from ``conf.server``);
  the ADQL, ``add_votable_fields`` and ``query_region`` are astroquery's.

Both default to the CDS main sites, so without the environment variables the behaviour is
astroquery's. See :mod:`glue_zeropoint.catalogs.config`.

Timeouts
--------
VizieR requests pass ``timeout`` to requests. pyvo (under SIMBAD) sends its requests without a
timeout, so the SIMBAD client gets a ``requests.Session`` whose requests default to
``timeout`` seconds: a silent server raises after that time instead of hanging.

Errors
------
Every failure (timeout, refused connection, HTTP 429/5xx, a VizieR error VOTable, a truncated or
malformed VOTable, an empty answer) becomes a :class:`CatalogServiceError` or
:class:`CatalogError` whose message names the service, the catalog and what to try. VizieR
drops an ``-out`` column it does not know without a word, so an answer lacking a column asked
for by name is a :class:`~glue_zeropoint.catalogs.specs.MissingColumnsError` (never a quiet
fallback; see :func:`~glue_zeropoint.catalogs.specs.check_answer_columns`).
astroquery's own download cache is never used (``cache=False``); answers are cached by
:class:`~glue_zeropoint.catalogs.cache.CatalogCache` instead.
"""

import datetime
import functools
import logging
import re
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import requests
from astropy import units as u
from astropy.coordinates import SkyCoord

from ..exceptions import CatalogError, CatalogServiceError, CatalogWarning
from .config import simbad_base_url, vizier_base_url
from .normalize import normalize_catalog
from .specs import SIMBAD_SPEC, MissingColumnsError, check_answer_columns, spec_for

__all__ = ["query_vizier", "query_simbad", "DEFAULT_ROW_LIMIT", "make_vizier", "make_simbad"]

log = logging.getLogger(__name__)

#: Default row limit of a cone query: far above any small-telescope field of a
#: calibration catalog, still bounded so a wrong radius cannot ask for millions of rows.
DEFAULT_ROW_LIMIT = 20000

SIMBAD_BANDS = ("B", "V", "R", "I")


class TimeoutSession(requests.Session):
    """A requests session whose requests time out after ``timeout`` seconds by default."""

    def __init__(self, timeout):
        super().__init__()
        self.default_timeout = timeout

    def request(self, method, url, *args, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)


@functools.cache
def _vizier_class():
    from astroquery.vizier import VizierClass

    class ConfiguredVizier(VizierClass):
        """astroquery's VizierClass sending its requests to a configurable base URL."""

        def __init__(self, *, base_url, **kwargs):
            super().__init__(**kwargs)
            self.base_url = base_url.rstrip("/")

        def _server_to_url(self, return_type="votable"):
            super()._server_to_url(return_type=return_type)  # astroquery's checks of the type
            return f"{self.base_url}/viz-bin/{return_type}"

    return ConfiguredVizier


@functools.cache
def _simbad_class():
    from astroquery.simbad import SimbadClass
    from pyvo.dal import TAPService

    class ConfiguredSimbad(SimbadClass):
        """astroquery's SimbadClass whose TAP service lives at a configurable base URL."""

        def __init__(self, *, base_url, timeout):
            self.base_url = base_url.rstrip("/")
            self._session = TimeoutSession(timeout)  # kept by astroquery's BaseVOQuery
            super().__init__()

        @property
        def tap(self):
            tap_url = f"{self.base_url}/simbad/sim-tap"
            if (not self._tap) or (self._tap.baseurl != tap_url):
                self._tap = TAPService(baseurl=tap_url, session=self._session)
            return self._tap

    return ConfiguredSimbad


def make_vizier(*, columns, row_limit, timeout, catalog=None, column_filters=None,
                base_url=None):
    """An astroquery Vizier instance for ``base_url`` (default: the configured VizieR)."""
    base = base_url or vizier_base_url()
    host = base.split("://", 1)[-1]
    return _vizier_class()(base_url=base, columns=list(columns), row_limit=int(row_limit),
                           timeout=timeout, catalog=catalog, vizier_server=host,
                           column_filters=dict(column_filters or {}))


def make_simbad(*, timeout, row_limit, base_url=None):
    """An astroquery Simbad (TAP) instance for ``base_url`` (default: the configured SIMBAD)."""
    simbad = _simbad_class()(base_url=base_url or simbad_base_url(), timeout=timeout)
    simbad.ROW_LIMIT = int(row_limit)
    return simbad


# --------------------------------------------------------------------------- errors


def _short(err):
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:200]


def _translate(err, service, catalog, url, timeout):
    """Map a low-level exception onto a CatalogServiceError with advice.

    Its ``service_down`` attribute is True when the service itself failed (no answer in time,
    unreachable, rate limiting, a server error), so that no other query of the same service
    is waited for; False when only this query was refused (HTTP 4xx).
    """
    result = _translate_message(err, service, catalog, url, timeout)
    result.service_down = not (result.args and "refused the query with HTTP" in result.args[0])
    return result


def _translate_message(err, service, catalog, url, timeout):
    what = f"{service} ({catalog})" if catalog else service
    offline = "or work from a cached answer with --offline"
    cause = err
    code = getattr(err, "code", None)
    response = getattr(err, "response", None)
    if response is not None and getattr(response, "status_code", None):
        code = response.status_code
    # pyvo wraps requests' exceptions: look inside
    inner = getattr(err, "cause", None)
    if isinstance(inner, BaseException):
        cause = inner
        inner_resp = getattr(inner, "response", None)
        if code in (None, 0) and inner_resp is not None:
            code = inner_resp.status_code
    text = str(err)
    timed_out = isinstance(cause, requests.exceptions.Timeout) or isinstance(err, TimeoutError)
    refused = isinstance(cause, requests.exceptions.ConnectionError) and not timed_out
    if code in (None, 0):  # pyvo's endpoint errors only say it in words
        match = re.search(r"HTTP Code: (\d{3})", text)
        if match:
            code = int(match.group(1))
        elif "timed out" in text:
            timed_out = True
        elif "Connection failed" in text:
            refused = True
    if timed_out:
        return CatalogServiceError(
            f"{what} did not answer within {timeout:g} s ({url}); the service may be slow or "
            f"down: try again later, allow it more time (--timeout), {offline}")
    if refused:
        reason = _short(cause) if cause is not err else "connection failed"
        return CatalogServiceError(
            f"{what} could not be reached at {url} ({reason}); check the network "
            f"connection (and GLUE_ZEROPOINT_{service.upper()}_URL if set), try again later, "
            f"{offline}")
    if code == 429:
        retry = None
        if response is not None:
            retry = response.headers.get("Retry-After")
        retry = (retry or getattr(err, "retry_after_raw", None) or "").strip()
        if retry.isdigit():
            wait = f"wait {retry} s"
        elif retry:
            wait = f"wait until {retry}"
        else:
            wait = "wait a minute or two"
        return CatalogServiceError(
            f"{what} is rate limiting this computer (HTTP 429 Too Many Requests); {wait} "
            f"before querying again (and avoid many queries in a row), {offline}")
    if code is not None and int(code) >= 500:
        return CatalogServiceError(
            f"{what} failed with HTTP {code} (a server-side problem at {url}); try again "
            f"later, {offline}")
    if code is not None and int(code) >= 400:
        return CatalogServiceError(
            f"{what} refused the query with HTTP {code} ({url}); check the catalog id and "
            f"the query parameters")
    return CatalogServiceError(f"{what} query failed ({_short(err)}); try again later, "
                               f"{offline}")


def _network_cause(err):
    """The requests exception behind a wrapped error (pyvo wraps read timeouts), or None."""
    seen = set()
    todo = [err]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, requests.exceptions.RequestException):
            return current
        for attr in ("cause", "reason", "__cause__", "__context__"):
            value = getattr(current, attr, None)
            if isinstance(value, BaseException):
                todo.append(value)
        for arg in getattr(current, "args", ()):
            if isinstance(arg, BaseException):
                todo.append(arg)
    return None


def _info_elements(content):
    """(name, value, text) of every INFO element of a VOTable; raises ET.ParseError."""
    root = ET.fromstring(content)
    infos = []
    for elem in root.iter():
        if isinstance(elem.tag, str) and elem.tag.rsplit("}", 1)[-1] == "INFO":
            infos.append((elem.get("name") or elem.get("ID") or "", elem.get("value") or "",
                          (elem.text or "").strip()))
    return infos


def _check_vizier_answer(content, catalog, url):
    """Raise on a VizieR error VOTable or a malformed answer; return True when overflowed."""
    head = content[:200].lstrip()
    if not head:
        raise CatalogServiceError(f"VizieR ({catalog}) sent an empty answer ({url}); try "
                                  f"again later or use a cached answer with --offline")
    if not (head.startswith(b"<?xml") or head.startswith(b"<VOTABLE")
            or head.startswith(b"<ns0:VOTABLE")):
        snippet = head[:60].decode("utf-8", "replace")
        raise CatalogServiceError(
            f"VizieR ({catalog}) did not send a VOTable ({url}; it starts with {snippet!r}); "
            f"the server may be misconfigured: check GLUE_ZEROPOINT_VIZIER_URL or try later")
    try:
        infos = _info_elements(content)
    except ET.ParseError as err:
        raise CatalogServiceError(
            f"VizieR ({catalog}) sent a truncated or malformed VOTable ({url}: {err}); the "
            f"transfer was probably cut: try again, or query a smaller field") from err
    status = [value for name, value, _ in infos if name == "QUERY_STATUS"]
    if "ERROR" in status:
        messages = [value.strip() or text for name, value, text in infos
                    if name in ("Error", "QUERY_STATUS") and (value.strip() or text)]
        messages = [m for m in messages if m and m != "ERROR"]
        reason = messages[0] if messages else "no reason given"
        raise CatalogServiceError(
            f"VizieR ({catalog}) answered with an error: {reason}; check the catalog id, "
            f"try again later or use another VizieR mirror (GLUE_ZEROPOINT_VIZIER_URL)")
    return "OVERFLOW" in status


def _now_iso():
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_center(center):
    if not isinstance(center, SkyCoord):
        raise CatalogError(f"the field centre must be a SkyCoord, got {type(center).__name__}; "
                           "names are not resolved (that would need a network lookup)")
    if not center.isscalar:
        raise CatalogError("the field centre must be a single position")
    return center.icrs


def _as_radius(radius):
    try:
        radius = u.Quantity(radius).to(u.deg)
    except (u.UnitsError, TypeError) as err:
        raise CatalogError(f"the search radius must be an angle, got {radius!r}") from err
    if not np.isfinite(radius.value) or radius.value <= 0:
        raise CatalogError(f"the search radius must be positive, got {radius}")
    return radius


def _query_meta(service, catalog, center, radius, columns, row_limit, url):
    return {
        "service": service, "url": url, "retrieved": _now_iso(), "from_cache": False,
        "cache_age_s": 0.0, "truncated": False,
        "query": {"ra": float(center.ra.deg), "dec": float(center.dec.deg),
                  "radius": float(radius.to_value(u.deg)), "columns": list(columns),
                  "row_limit": int(row_limit), "catalog": catalog},
    }


# --------------------------------------------------------------------------- VizieR


def _vizier_raw(catalog_id, center, radius, *, columns, row_limit, timeout,
                column_filters=None):
    """One VizieR cone query -> (astropy Table or None when empty, overflowed, url)."""
    vizier = make_vizier(columns=columns, row_limit=row_limit, timeout=timeout,
                         catalog=catalog_id, column_filters=column_filters)
    url = vizier._server_to_url()
    try:
        response = vizier.query_region_async(center, radius=radius, catalog=catalog_id,
                                             cache=False)
        response.raise_for_status()
    except requests.exceptions.RequestException as err:
        raise _translate(err, "VizieR", catalog_id, url, timeout) from err
    finally:
        vizier._session.close()
    overflow = _check_vizier_answer(response.content, catalog_id, url)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tables = vizier._parse_result(response, verbose=False, invalid="exception")
    except Exception as err:
        raise CatalogServiceError(
            f"VizieR ({catalog_id}) sent a VOTable that cannot be read ({_short(err)}); try "
            f"again, or report it if it persists") from err
    if tables is None or len(tables) == 0:
        return None, overflow, url
    keys = list(tables.keys())
    chosen = keys[0]
    for key in keys:
        if key == catalog_id or str(key).startswith(catalog_id):
            chosen = key
            break
    if len(keys) > 1:
        log.info("VizieR %s returned tables %s; using %s", catalog_id, keys, chosen)
    table = tables[chosen]
    if len(table) == 0:
        return None, overflow, url
    check_answer_columns(table, catalog_id, columns)  # VizieR drops unknown -out names
    return table, overflow, url


def query_vizier(catalog_id, center, radius, *, columns=None, row_limit=DEFAULT_ROW_LIMIT,
                 timeout=30, column_filters=None):
    """Query one VizieR catalog in a cone and return the normalised table.

    Parameters
    ----------
    catalog_id : str
        VizieR catalog or table id, e.g. ``'II/336/apass9'`` (a ``'vizier:'`` prefix is
        accepted).
    center : `~astropy.coordinates.SkyCoord`
        Field centre (never a name: names would need a network lookup).
    radius : `~astropy.units.Quantity`
        Cone radius.
    columns : list of str, optional
        VizieR columns to return; default: what the catalog's :class:`CatalogSpec` needs
        (``'*'`` plus its position, magnitude, error and flag columns).
    row_limit : int, optional
        Set on the astroquery instance that sends the query (``-out.max``); ``-1`` for no
        limit. An answer that reaches it sets ``meta['truncated']`` and warns.
    timeout : float, optional
        Seconds before a silent server is given up.
    column_filters : dict, optional
        VizieR column constraints, e.g. ``{'Vmag': '<16'}``.

    Returns
    -------
    `~astropy.table.Table`
        Normalised (see :func:`~glue_zeropoint.catalogs.normalize_catalog`).

    Raises
    ------
    CatalogServiceError
        The service failed (timeout, refused, HTTP error, error VOTable, malformed answer).
    CatalogError
        The answer is empty (no star of that catalog in the cone), or lacks a column asked
        for by name (:class:`~glue_zeropoint.catalogs.specs.MissingColumnsError`).
    """
    catalog_id = str(catalog_id)
    if catalog_id.lower().startswith("vizier:"):
        catalog_id = catalog_id[7:]
    center, radius = _as_center(center), _as_radius(radius)
    spec = spec_for(catalog_id)
    columns = list(columns) if columns else spec.request_columns()
    source = spec.vizier_table if catalog_id == spec.id else catalog_id  # e.g. .../refcat2
    table, overflow, url = _vizier_raw(source, center, radius, columns=columns,
                                       row_limit=row_limit, timeout=timeout,
                                       column_filters=column_filters)
    if table is None:
        raise CatalogError(
            f"VizieR ({catalog_id}) has no stars within {radius.to(u.arcmin):.2f} of "
            f"{center.to_string('hmsdms', precision=1)}; check the image WCS and the radius, "
            f"or choose another catalog")
    truncated = bool(overflow or (row_limit > 0 and len(table) >= row_limit))
    if spec.companion:
        table = _join_companion(table, spec, center, radius, row_limit, timeout)
    table.meta.clear()
    table.meta.update(_query_meta("vizier", catalog_id, center, radius, columns, row_limit,
                                  url))
    table.meta["truncated"] = truncated
    if truncated:
        warnings.warn(
            f"VizieR ({catalog_id}): the answer was cut at row_limit={row_limit} rows, so the "
            f"field has more stars than returned; use a smaller radius or a larger row_limit",
            CatalogWarning, stacklevel=2)
    return normalize_catalog(table, spec=spec)


def _join_companion(table, spec, center, radius, row_limit, timeout):
    """Add the companion catalog's columns (matched on the key column) to ``table``."""
    cat_id, key, columns = spec.companion
    if key not in table.colnames:
        return table
    try:
        other, _, _ = _vizier_raw(cat_id, center, radius, columns=list(columns),
                                  row_limit=max(row_limit, 4 * len(table)) if row_limit > 0
                                  else row_limit, timeout=timeout,
                                  column_filters={"Gmag": "<18"} if cat_id == "I/355/gaiadr3"
                                  else None)
    except MissingColumnsError:
        raise  # a wrong column name is a bug to report, not a service failure to work around
    except CatalogError as err:
        warnings.warn(f"{spec.id}: could not add {', '.join(c for c in columns if c != key)} "
                      f"from {cat_id} ({err}); proper motions and variability flags are "
                      f"unknown", CatalogWarning, stacklevel=3)
        return table
    if other is None or key not in other.colnames:
        return table
    index = {str(k): i for i, k in enumerate(other[key])}
    rows = np.array([index.get(str(k), -1) for k in table[key]], dtype=int)
    found = rows >= 0
    for name in columns:
        if name == key or name not in other.colnames or name in table.colnames:
            continue
        src = other[name]
        if src.dtype.kind in "fiu":
            values = np.full(len(table), np.nan)
            values[found] = np.asarray(src, dtype=float)[rows[found]]
            if hasattr(src, "mask"):
                mask = np.zeros(len(table), bool)
                mask[found] = np.asarray(src.mask, dtype=bool)[rows[found]]
                values[mask] = np.nan
            table[name] = values
            table[name].unit = src.unit
        else:
            values = np.array([""] * len(table), dtype=object)
            values[found] = np.array([str(v) for v in src], dtype=object)[rows[found]]
            table[name] = values.astype(str)
    return table


# --------------------------------------------------------------------------- SIMBAD


def query_simbad(center, radius, *, timeout=30, row_limit=DEFAULT_ROW_LIMIT, allow_empty=False):
    """Query SIMBAD (TAP, through astroquery) in a cone; return the normalised table.

    The instance asks for ``otype`` and the fluxes ``B V R I`` with
    ``add_votable_fields('otype', 'B', 'V', 'R', 'I')`` and sends one ``query_region`` with
    the SkyCoord (ADQL ``CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', ...)) = 1``,
    ``TOP row_limit``). The normalised table has ``id`` = ``main_id``, ``otype``,
    ``variable`` (V* and children), ``nonstellar`` and ``mag_B`` ... ``mag_I``.

    Parameters
    ----------
    center : `~astropy.coordinates.SkyCoord`
    radius : `~astropy.units.Quantity`
    timeout : float
        Seconds for each HTTP request.
    row_limit : int
        ``TOP`` of the ADQL query; a full answer sets ``meta['truncated']`` and warns.
    allow_empty : bool
        Return an empty table (instead of raising CatalogError) when SIMBAD knows no object
        in the cone: a normal answer for identification.

    Raises
    ------
    CatalogServiceError, CatalogError
    """
    from astroquery.exceptions import NoResultsWarning
    from pyvo.dal import DALFormatError, DALQueryError, DALServiceError

    center, radius = _as_center(center), _as_radius(radius)
    simbad = make_simbad(timeout=timeout, row_limit=row_limit)
    url = f"{simbad.base_url}/simbad/sim-tap"
    truncated = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            simbad.add_votable_fields("otype", *SIMBAD_BANDS)
            table = simbad.query_region(center, radius=radius)
        for warning in caught:
            if "overflow" in type(warning.message).__name__.lower():
                truncated = True
            elif not issubclass(warning.category, NoResultsWarning) and \
                    not issubclass(warning.category, ResourceWarning):
                log.debug("SIMBAD: %s", warning.message)
    except (requests.exceptions.RequestException, DALServiceError) as err:
        raise _translate(err, "SIMBAD", "cone search", url, timeout) from err
    except DALQueryError as err:
        raise CatalogServiceError(f"SIMBAD rejected the query ({_short(err)}); this is a "
                                  f"bug in the query or a change of the service: report it"
                                  ) from err
    except DALFormatError as err:
        network = _network_cause(err)
        if network is not None:
            raise _translate(network, "SIMBAD", "cone search", url, timeout) from err
        raise CatalogServiceError(
            f"SIMBAD sent a truncated or malformed VOTable ({url}: {_short(err)}); try again "
            f"later, or work from a cached answer with --offline") from err
    except ValueError as err:
        if "accepted options" in str(err) or "votable field" in str(err):
            raise CatalogServiceError(f"SIMBAD at {url} does not offer the fields needed "
                                      f"({_short(err)}); check GLUE_ZEROPOINT_SIMBAD_URL"
                                      ) from err
        raise CatalogServiceError(
            f"SIMBAD sent a truncated or malformed VOTable ({url}: {_short(err)}); try again "
            f"later, or work from a cached answer with --offline") from err
    except Exception as err:  # e.g. expat errors of a cut capabilities document
        if type(err).__module__.startswith(("xml", "pyexpat", "astropy.io.votable")):
            raise CatalogServiceError(
                f"SIMBAD sent a truncated or malformed answer ({url}: {_short(err)}); try "
                f"again later, or work from a cached answer with --offline") from err
        raise
    finally:
        simbad._session.close()
    columns = simbad.get_votable_fields()
    if len(table) == 0 and not allow_empty:
        raise CatalogError(
            f"SIMBAD knows no object within {radius.to(u.arcmin):.2f} of "
            f"{center.to_string('hmsdms', precision=1)}; check the image WCS and the radius")
    if row_limit > 0 and len(table) >= row_limit:
        truncated = True
    table.meta.clear()
    table.meta.update(_query_meta("simbad", "simbad", center, radius, columns, row_limit, url))
    table.meta["truncated"] = truncated
    if truncated:
        warnings.warn(f"SIMBAD: the answer was cut at {row_limit} rows, so the field has more "
                      f"objects than returned; use a smaller radius", CatalogWarning, stacklevel=2)
    return normalize_catalog(table, spec=SIMBAD_SPEC)
