"""Small I/O helpers shared by every layer: atomic writes, JSON with numpy types.

Outputs are always written to a temporary file in the destination folder and renamed into
place, so a failed or interrupted step never leaves a half-written product and never touches
earlier results.
"""

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from .exceptions import InputError

__all__ = ["atomic_path", "write_json", "to_jsonable", "ensure_output_dir", "user_cache_dir",
           "human_age", "FITS_SUFFIXES", "fits_stem"]


#: File name endings read as FITS (plain, gzipped, fpack-compressed).
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.fz", ".fz")


def fits_stem(name):
    """File name without its FITS suffix (``M13_001.fits.gz`` -> ``M13_001``)."""
    name = Path(name).name
    for suffix in sorted(FITS_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def user_cache_dir(name, env_var):
    """``$env_var`` if set, else ``$XDG_CACHE_HOME/glue-zeropoint/<name>`` (``~/.cache``)."""
    value = os.environ.get(env_var, "").strip()
    if value:
        return Path(value).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return root / "glue-zeropoint" / name


def human_age(seconds):
    """``42 s``, ``17 min``, ``5.2 h``, ``3.0 days``."""
    seconds = float(seconds or 0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def ensure_output_dir(path):
    """Create ``path`` (and parents) if needed and check that it is writable.

    Raises
    ------
    InputError
        If the folder cannot be created or written to.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{path}: cannot create the output folder ({err.strerror}); "
                         "choose another --out") from err
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"{path}: the output folder is not writable; choose another --out")
    return path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp makes the file 0600; give it the mode any new file of the user would have
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _read_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# read once at import: os.umask can only be read by setting it, which is not thread-safe
# (products are written from a worker thread)
_UMASK = _read_umask()


def to_jsonable(obj):
    """Convert numpy scalars/arrays, Paths, Quantities and NaN to JSON-safe values."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "unit") and hasattr(obj, "value"):  # astropy Quantity
        return to_jsonable(obj.value)
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return None if not math.isfinite(value) else value
    return obj


def write_json(path, obj):
    """Write ``obj`` as indented JSON to ``path`` atomically (NaN becomes null)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n",
                       encoding="utf-8")
    return Path(path)
