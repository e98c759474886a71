"""Configuration of the catalog layer from the environment.

Read at call time (never cached at import), so that tests, the command line and the Glue
application can point the layer at a stub server or another cache folder by setting
environment variables before a query:

``GLUE_ZEROPOINT_VIZIER_URL``
    Base URL of the VizieR server, e.g. ``https://vizier.cds.unistra.fr`` (default) or
    ``http://127.0.0.1:8123``. Requests go to ``<base>/viz-bin/votable``.
``GLUE_ZEROPOINT_SIMBAD_URL``
    Base URL of the SIMBAD server, e.g. ``https://simbad.cds.unistra.fr`` (default). The TAP
    service is ``<base>/simbad/sim-tap``.
``GLUE_ZEROPOINT_CACHE_DIR``
    Folder of the on-disk query cache (default: ``~/.cache/glue-zeropoint/catalogs`` or
    ``$XDG_CACHE_HOME/glue-zeropoint/catalogs``).
``GLUE_ZEROPOINT_TIMEOUT``
    Seconds to wait for a service when the caller gives no timeout (default 30; the command
    line's ``--timeout`` sets it for one command, :func:`timeout_override`).
``GLUE_ZEROPOINT_OFFLINE``
    ``1`` (or ``true``/``yes``) to never contact a service: only the cache and local files are
    used.
"""

import contextlib
import os

from ..io import user_cache_dir

__all__ = ["vizier_base_url", "simbad_base_url", "default_cache_dir", "offline_from_env",
           "DEFAULT_VIZIER_URL", "DEFAULT_SIMBAD_URL", "default_timeout", "timeout_override",
           "DEFAULT_TIMEOUT"]

#: Seconds a catalog query waits for a service by default.
DEFAULT_TIMEOUT = 30.0
_timeout = None

DEFAULT_VIZIER_URL = "https://vizier.cds.unistra.fr"
DEFAULT_SIMBAD_URL = "https://simbad.cds.unistra.fr"


def _base(name, default):
    value = os.environ.get(name, "").strip()
    return (value or default).rstrip("/")


def vizier_base_url():
    """Base URL of the VizieR server (``GLUE_ZEROPOINT_VIZIER_URL`` or the CDS main site)."""
    return _base("GLUE_ZEROPOINT_VIZIER_URL", DEFAULT_VIZIER_URL)


def simbad_base_url():
    """Base URL of the SIMBAD server (``GLUE_ZEROPOINT_SIMBAD_URL`` or the CDS main site)."""
    return _base("GLUE_ZEROPOINT_SIMBAD_URL", DEFAULT_SIMBAD_URL)


def default_cache_dir():
    """Folder of the query cache (``GLUE_ZEROPOINT_CACHE_DIR`` or the user cache folder)."""
    return user_cache_dir("catalogs", "GLUE_ZEROPOINT_CACHE_DIR")


def offline_from_env():
    """True when ``GLUE_ZEROPOINT_TIMEOUT``
    Seconds to wait for a service when the caller gives no timeout (default 30; the command
    line's ``--timeout`` sets it for one command, :func:`timeout_override`).
``GLUE_ZEROPOINT_OFFLINE`` asks for offline work."""
    return os.environ.get("GLUE_ZEROPOINT_OFFLINE", "").strip().lower() in (
        "1", "true", "yes", "on")


def default_timeout():
    """Seconds a query waits when its caller gives no timeout: the innermost
    :func:`timeout_override`, else ``GLUE_ZEROPOINT_TIMEOUT``, else 30."""
    if _timeout is not None:
        return _timeout
    try:
        value = float(os.environ.get("GLUE_ZEROPOINT_TIMEOUT", "") or DEFAULT_TIMEOUT)
    except ValueError:
        value = DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


@contextlib.contextmanager
def timeout_override(seconds):
    """Within this block queries without an explicit timeout wait at most ``seconds``
    (the command line's ``--timeout``, for layers that do not pass one down)."""
    global _timeout
    previous, _timeout = _timeout, float(seconds)
    try:
        yield
    finally:
        _timeout = previous
