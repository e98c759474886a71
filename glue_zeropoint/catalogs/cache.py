"""On-disk cache of catalog query answers.

One ECSV file per answer, named by a hash of (service, catalog, centre, radius, columns,
row limit, format version). The file holds the normalised table (original columns included)
and, in its meta, where it came from (``service``, ``url``, ``query``) and when (``retrieved``,
ISO UTC). The file's modification time records the last use, which drives the least recently
used eviction when the cache grows past ``max_bytes``. Writes are atomic
(:func:`glue_zeropoint.io.atomic_path`), so an interrupted write never leaves a broken entry;
an unreadable entry is deleted with a warning.
"""

import datetime
import hashlib
import json
import logging
import os
import time
import warnings
from pathlib import Path

from astropy.table import Table

from ..exceptions import CatalogWarning
from ..io import atomic_path
from .config import default_cache_dir

__all__ = ["CatalogCache", "cache_key"]

log = logging.getLogger(__name__)

#: Bump when the normalised form changes, so that old entries are not reused.
FORMAT_VERSION = 1

DEFAULT_MAX_BYTES = 200 * 1024 * 1024


def cache_key(service, catalog, center, radius, columns=(), row_limit=None):
    """The cache key of a cone query (a hex digest).

    ``center`` is a SkyCoord (or ``(ra, dec)`` in degrees), ``radius`` a Quantity (or
    degrees); both are rounded to 1e-6 degrees so that the same field gives the same key.
    """
    if hasattr(center, "icrs"):
        ra, dec = float(center.icrs.ra.deg), float(center.icrs.dec.deg)
    else:
        ra, dec = float(center[0]), float(center[1])
    rad = float(radius.to_value("deg")) if hasattr(radius, "to_value") else float(radius)
    payload = {
        "v": FORMAT_VERSION, "service": str(service), "catalog": str(catalog),
        "ra": round(ra, 6), "dec": round(dec, 6), "radius": round(rad, 6),
        "columns": [str(c) for c in (columns or ())],
        "row_limit": None if row_limit is None else int(row_limit),
    }
    text = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _parse_time(text):
    try:
        value = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value


class CatalogCache:
    """A size-bounded on-disk cache of catalog answers.

    Parameters
    ----------
    directory : str or Path, optional
        Where the entries live; default ``GLUE_ZEROPOINT_CACHE_DIR`` or the user cache folder
        (see :mod:`glue_zeropoint.catalogs.config`). Created on first write.
    max_bytes : int, optional
        Size bound; the least recently used entries are removed after a write that exceeds it.
    max_age : float, optional
        Seconds after which an entry is no longer *fresh*: :func:`get_catalog` then queries
        again, but still falls back to the old entry when the service fails.

    Examples
    --------
    >>> cache = CatalogCache(tmp_path)                              # doctest: +SKIP
    >>> key = cache_key("vizier", "II/336/apass9", center, radius)  # doctest: +SKIP
    >>> cache.put(key, table); table, age = cache.get(key)          # doctest: +SKIP
    """

    suffix = ".ecsv"

    def __init__(self, directory=None, max_bytes=DEFAULT_MAX_BYTES, max_age=30 * 86400.0):
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        if max_bytes is not None and max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self.max_age = max_age

    def __repr__(self):
        return f"CatalogCache({str(self.directory)!r}, max_bytes={self.max_bytes})"

    def path(self, key):
        return self.directory / f"{key}{self.suffix}"

    def entries(self):
        """The entry files, least recently used first."""
        if not self.directory.is_dir():
            return []
        files = [p for p in self.directory.glob(f"*{self.suffix}") if p.is_file()]
        return sorted(files, key=lambda p: p.stat().st_mtime)

    def size_bytes(self):
        """Total size of the entries in bytes."""
        return sum(p.stat().st_size for p in self.entries())

    def __len__(self):
        return len(self.entries())

    def __contains__(self, key):
        return self.path(key).is_file()

    def get(self, key, touch=True):
        """Return ``(table, age_s)`` for ``key``, or None when there is no (readable) entry.

        ``age_s`` is the time since the answer was retrieved from the service. Reading marks
        the entry as recently used unless ``touch`` is False.
        """
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            table = Table.read(path, format="ascii.ecsv")
        except Exception as err:  # a damaged entry: drop it, never fail the caller
            warnings.warn(f"catalog cache entry {path} is unreadable ({err}); removed it",
                          CatalogWarning, stacklevel=2)
            path.unlink(missing_ok=True)
            return None
        retrieved = _parse_time(table.meta.get("retrieved", ""))
        if retrieved is None:
            age = max(0.0, time.time() - path.stat().st_mtime)
        else:
            age = max(0.0, (datetime.datetime.now(datetime.UTC) - retrieved).total_seconds())
        if touch:
            try:
                os.utime(path)  # mark as recently used (LRU)
            except OSError:
                pass
        return table, age

    def put(self, key, table):
        """Store ``table`` under ``key`` (atomically), then enforce the size bound."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(key)
        with atomic_path(path) as tmp:
            table.write(tmp, format="ascii.ecsv", overwrite=True)
        self.evict(keep=path)
        return path

    def evict(self, keep=None):
        """Remove least recently used entries until the cache fits in ``max_bytes``."""
        if self.max_bytes is None:
            return []
        removed = []
        files = self.entries()
        total = sum(p.stat().st_size for p in files)
        for path in files:
            if total <= self.max_bytes:
                break
            if keep is not None and path == keep:
                continue
            size = path.stat().st_size
            path.unlink(missing_ok=True)
            total -= size
            removed.append(path)
            log.info("catalog cache: evicted %s (%d bytes)", path.name, size)
        return removed

    def clear(self):
        """Remove every entry; returns the number removed."""
        files = self.entries()
        for path in files:
            path.unlink(missing_ok=True)
        return len(files)
