"""Reference catalogs: specs, SIMBAD/VizieR cone queries, an on-disk cache, local files.

Everything comes back as a *normalised catalog table* (see
:mod:`glue_zeropoint.catalogs.normalize`): ``id``, ``ra``, ``dec`` (deg, ICRS at
``ref_epoch``), ``pmra``, ``pmdec`` (mas/yr), ``ref_epoch``, ``mag_<band>``/``err_<band>``,
``variable``, ``nonstellar``, ``otype``, the original columns, and ``meta`` with ``catalog``,
``bands``, ``service``, ``query``, ``retrieved``, ``from_cache``, ``cache_age_s``,
``truncated``.

Public functions
----------------
``get_catalog(spec, center, radius, *, band=None, offline=False, cache=None, timeout=30,
progress=None)``
    One cone per field from ``'vizier:<id>'``, ``'simbad'``, ``'default'`` (by band) or a
    local file, cached, with fallback to the cache when the service fails.
``field_of(wcs, shape, margin=1 arcmin)``
    Centre and radius covering an image.
``query_vizier``, ``query_simbad``
    The queries themselves, through astroquery's clients.
``normalize_catalog``, ``read_catalog``, ``write_catalog``, ``catalog_bands``,
``require_band``; ``CatalogSpec``, ``CATALOG_SPECS``, ``get_spec``; ``CatalogCache``.

Configuration by environment
----------------------------
``GLUE_ZEROPOINT_VIZIER_URL``
    VizieR base URL (default ``https://vizier.cds.unistra.fr``); may be
    ``http://127.0.0.1:PORT`` (a test stub or a local mirror).
``GLUE_ZEROPOINT_SIMBAD_URL``
    SIMBAD base URL (default ``https://simbad.cds.unistra.fr``); the TAP service is
    ``<base>/simbad/sim-tap``.
``GLUE_ZEROPOINT_CACHE_DIR``
    Folder of the query cache (default ``~/.cache/glue-zeropoint/catalogs``).
``GLUE_ZEROPOINT_OFFLINE=1``
    Never contact a service: only the cache and local files.

astroquery is imported only when a query is made, so importing this package is fast.
"""

import importlib

__all__ = [
    "get_catalog", "field_of", "parse_spec",
    "query_vizier", "query_simbad", "DEFAULT_ROW_LIMIT",
    "normalize_catalog", "catalog_bands", "require_band",
    "read_catalog", "write_catalog",
    "CatalogSpec", "CATALOG_SPECS", "SIMBAD_SPEC", "get_spec", "default_catalogs_for_band",
    "CatalogCache", "cache_key",
    "is_variable_otype", "is_nonstellar_otype",
]

_WHERE = {
    "get_catalog": "api", "field_of": "api", "parse_spec": "api",
    "query_vizier": "services", "query_simbad": "services", "DEFAULT_ROW_LIMIT": "services",
    "normalize_catalog": "normalize", "catalog_bands": "normalize",
    "require_band": "normalize", "is_variable_otype": "normalize",
    "is_nonstellar_otype": "normalize",
    "read_catalog": "files", "write_catalog": "files",
    "CatalogSpec": "specs", "CATALOG_SPECS": "specs", "SIMBAD_SPEC": "specs",
    "get_spec": "specs", "default_catalogs_for_band": "specs",
    "CatalogCache": "cache", "cache_key": "cache",
}


def __getattr__(name):
    if name in _WHERE:
        module = importlib.import_module(f".{_WHERE[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
