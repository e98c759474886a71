"""Reference catalogs: specs, SIMBAD/VizieR cone queries, an on-disk cache, local files.

Everything comes back as a *normalised catalog table* (see
:mod:`glue_zeropoint.catalogs.normalize`): ``id``, ``ra``, ``dec`` (deg, ICRS at
``ref_epoch``), ``pmra``, ``pmdec`` (mas/yr), ``ref_epoch``, ``mag_<band>``/``err_<band>``,
``variable``, ``nonstellar``, ``otype``, the original columns, and ``meta`` with ``catalog``,
``bands``, ``service``, ``query``, ``retrieved``, ``from_cache``, ``cache_age_s``,
``truncated``.

Public functions
----------------
``get_catalog(spec, center, radius, *, band=None, offline=False, cache=None, timeout=None,
progress=None)``
    One cone per field from ``'vizier:<id>'``, ``'simbad'``, ``'default'`` (by band) or a
    local file, cached, with fallback to the cache when the service fails.
``field_of(wcs, shape, margin=1 arcmin)``
    Centre and radius covering an image.
``query_vizier``, ``query_simbad``
    The queries themselves, through astroquery's clients.
``normalize_catalog``, ``crossmatch(sources, catalog, *, radius=None, obstime=None, ...)``
    Match measured sources to a normalised catalog (proper motions to the observation date).
``identify(stars, simbad_table, *, radius=None, obstime=None)``, ``identify_field(stars,
center=None, radius=None, *, offline=False, cache=None, timeout=None)``
    SIMBAD identification of measured stars: ``simbad_id``, ``simbad_otype``,
    ``simbad_sep_arcsec``, ``variable``, ``nonstellar`` (one cached cone query per field).
``read_catalog``, ``write_catalog``, ``catalog_bands``,
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
import inspect
import sys
import types

__all__ = [
    "get_catalog", "field_of", "parse_spec",
    "query_vizier", "query_simbad", "DEFAULT_ROW_LIMIT",
    "normalize_catalog", "catalog_bands", "require_band",
    "read_catalog", "write_catalog",
    "CatalogSpec", "CATALOG_SPECS", "SIMBAD_SPEC", "get_spec", "default_catalogs_for_band",
    "CatalogCache", "cache_key",
    "is_variable_otype", "is_nonstellar_otype",
    "crossmatch", "identify", "identify_field",
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
    "identify": "identify", "identify_field": "identify",
}


class _CallableModule(types.ModuleType):
    """The ``crossmatch`` submodule, callable as its ``crossmatch`` function.

    ``crossmatch`` names both a submodule and the function exported here. Python sets the
    package attribute to the submodule whenever that is imported, so the attribute is the module,
    made callable: ``catalogs.crossmatch(sources, catalog, radius=...)`` and
    ``from glue_zeropoint.catalogs.crossmatch import propagate_proper_motion`` both work.
    """

    def __call__(self, *args, **kwargs):
        return self.crossmatch(*args, **kwargs)


class _Package(types.ModuleType):
    @property
    def crossmatch(self):
        module = importlib.import_module(".crossmatch", __name__)
        if not isinstance(module, _CallableModule):
            module.__class__ = _CallableModule
            module.__signature__ = inspect.signature(module.crossmatch)
        return module

    @crossmatch.setter
    def crossmatch(self, value):
        """The import system sets the submodule here; the property above returns it."""


sys.modules[__name__].__class__ = _Package


def __getattr__(name):
    if name in _WHERE:
        module = importlib.import_module(f".{_WHERE[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
