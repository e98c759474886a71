"""Small I/O helpers shared by every layer: atomic writes, JSON with numpy types.

Outputs are always written to a temporary file in the destination folder and renamed into
place, so a failed or interrupted step never leaves a half-written product and never touches
earlier results.
"""

import contextlib
import csv
import errno
import gc
import hashlib
import io
import json
import logging
import math
import os
import re
import socket
import tempfile
import time
from pathlib import Path

import numpy as np

from .exceptions import FolderBusyError, InputError, OutputError

__all__ = ["atomic_path", "write_json", "to_jsonable", "ensure_output_dir", "user_cache_dir",
           "human_age", "FITS_SUFFIXES", "fits_stem", "OutputLock", "LOCK_NAME",
           "lock_holder", "clean_tmp_files", "file_sha256", "write_error", "write_ecsv"]

log = logging.getLogger(__name__)


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


_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def write_error(path, err):
    """An :class:`~glue_zeropoint.exceptions.OutputError` naming ``path`` and what to do."""
    reason = err.strerror or str(err) or type(err).__name__
    if getattr(err, "errno", None) in _FULL:
        advice = (f"the disk holding {Path(path).parent} is full (or a file-size limit was "
                  "hit): free some space there or choose another output folder, then run again")
    elif getattr(err, "errno", None) in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = "the folder cannot be written to: choose another output folder"
    else:
        advice = "check the disk and the folder, or choose another output folder"
    return OutputError(f"{path}: could not be written ({reason}); {advice}. Nothing "
                       "half-written was left behind")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left as it was. An
    ``OSError`` while writing (a full disk, no permission) becomes an
    :class:`~glue_zeropoint.exceptions.OutputError` naming ``path`` and what to do.
    The temporary file is ``.<name>.<random>.tmp``; one left by a killed process is removed
    by :func:`clean_tmp_files` on the next run.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise write_error(path, err) from err
    os.close(fd)
    tmp = Path(tmp)
    try:
        try:
            yield tmp
            # mkstemp makes the file 0600; give it the mode any new file of the user would have
            os.chmod(tmp, 0o666 & ~_UMASK)
            os.replace(tmp, path)
        except OSError as err:
            raise write_error(path, err) from err
    finally:
        with contextlib.suppress(OSError):
            if tmp.exists():
                tmp.unlink()


_TMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def write_ecsv(table, path, *, chunk_rows=20000):
    """Write ``table`` to ``path`` as ECSV, atomically, ``chunk_rows`` rows at a time.

    astropy's writer turns the whole table into strings at once: the 240,000 detections of a
    142-frame night took ~600 MB above the night's own memory, and ~8 s (formatting one value
    at a time). Here astropy writes the header (metadata, units, column names) from an empty
    slice, then the data section one slice at a time, formatted as astropy's ECSV writer
    formats it (``str`` of each value, masked values empty, stripped, space-delimited,
    minimal quoting with ``""`` for an empty field) but a column at a time, the numbers by
    Arrow's compiled formatting where it prints what Python prints (:func:`_arrow_strings`):
    the file is byte for byte what ``table.write(path, format='ascii.ecsv')`` writes
    (tests/test_io.py). Other
    tables go through astropy's writer: one slice at a time (multidimensional columns, text
    with a carriage return), or whole (object columns, whose ECSV subtype comes from the
    data; mixins such as Time).
    """
    from astropy.table import Column, MaskedColumn

    path = Path(path)
    chunk_rows = max(int(chunk_rows), 1)
    columns = _plain_columns(table)
    # an object column's ECSV subtype is read from its data, and a mixin (Time, SkyCoord)
    # may be written as several columns: written whole
    whole = columns is None and (len(table) <= chunk_rows or any(
        type(table[c]) not in (Column, MaskedColumn) or table[c].dtype.kind == "O"
        for c in table.colnames))
    with atomic_path(path) as tmp:
        if whole:
            table.write(tmp, format="ascii.ecsv", overwrite=True)
            return path
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            table[:0].write(fh, format="ascii.ecsv")
            for start in range(0, len(table), chunk_rows):
                if columns is not None:
                    _write_plain_rows([(v[start:start + chunk_rows], m if m is None else
                                        m[start:start + chunk_rows]) for v, m in columns], fh)
                    continue
                part = table[start:start + chunk_rows]
                part.meta = {}
                _write_ecsv_rows(part, fh)
                del part
                gc.collect()  # a written slice lives on in reference cycles otherwise
    return path


#: Stands for an empty field while the csv module writes a row (astropy writes ``""``).
_EMPTY = "gzp-empty-field-9f3c1a7e5b0d"


def _plain_columns(table):
    """``[(values, mask or None)]`` of a table whose columns are all one-dimensional numbers,
    booleans or text (what :func:`_write_plain_rows` formats), else None."""
    from astropy.table import Column, MaskedColumn

    out = []
    for name in table.colnames:
        col = table[name]
        if not isinstance(col, (Column, MaskedColumn)) or col.ndim != 1 or \
                col.dtype.kind not in "fiubU":
            return None  # mixins (Time, SkyCoord, Quantity), JSON-written columns
        if col.dtype.kind == "U" and (np.char.find(np.asarray(col), "\r") >= 0).any():
            return None  # astropy's csv writer ends lines with \r\n and quotes a lone \r
        mask = np.asarray(col.mask) if isinstance(col, MaskedColumn) else None
        out.append((np.asarray(col), mask if mask is not None and mask.any() else None))
    return out


def _column_strings(values, mask):
    """The column's values as astropy's ECSV writer writes them: ``str`` of each (numpy)
    value, stripped of blanks; masked values and empty strings empty (marked)."""
    kind = values.dtype.kind
    if values.dtype == np.float64 or kind in "iub":
        # Python's float repr is numpy's float64 str (both shortest round-trip, the same
        # switch to exponents; tested), and ints and bools print alike
        out = list(map(str, values.tolist()))
    elif kind == "U":
        out = [v.strip(" \t") or _EMPTY for v in map(str, values)]
    else:  # float32, float16: their own shortest repr
        out = list(map(str, values))
    if mask is not None:
        for i in np.flatnonzero(mask):
            out[i] = _EMPTY
    return out


#: Where Arrow's shortest round-trip float text is Python's: finite, not integral (Arrow
#: writes ``1234``, Python ``1234.0``), 1e-4 <= |v| < 1e9 (outside, the two switch to
#: exponents at other places); and NaN (``nan`` in both, whatever its sign and payload).
#: Other values are formatted by Python (tests/test_io.py).
_ARROW_FLOAT_RANGE = (1e-4, 1e9)


def _pa_array(values):
    """A 1-D numeric or bool ndarray as an Arrow array over its buffer. ``pa.array`` (and
    ``pa.scalar``) import pandas to look for its types first: 0.27 s of a night's files."""
    import pyarrow as pa

    if not values.dtype.isnative:  # Arrow reads its buffers in this machine's byte order
        values = values.astype(values.dtype.newbyteorder("="))
    if values.dtype == np.bool_:
        return pa.Array.from_buffers(pa.bool_(), values.size, [
            None, pa.py_buffer(np.packbits(values, bitorder="little"))])
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), values.size,
                                 [None, pa.py_buffer(values)])


def _pa_strings(strings):
    """A list of str as an Arrow string array (see :func:`_pa_array`)."""
    import pyarrow as pa

    data = [v.encode("utf-8") for v in strings]
    ends = np.cumsum(np.fromiter(map(len, data), np.int64, len(data)))
    if ends.size and ends[-1] >= 2**31:  # pa.string()'s offsets are 32-bit
        raise ValueError(f"{int(ends[-1])} bytes of text in one Arrow string array")
    offsets = np.zeros(len(data) + 1, np.int32)
    offsets[1:] = ends
    return pa.Array.from_buffers(pa.string(), len(data), [
        None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))])


def _arrow_strings(values, mask):
    """The column's ECSV fields (:func:`_column_strings`, quoted as the csv module quotes
    them, ``""`` for an empty one) as an Arrow string array, the numbers formatted by Arrow's
    C++ (shortest round-trip, as Python's repr where :data:`_ARROW_FLOAT_RANGE` says so; the
    others by Python): ~3x faster than ``str`` of each value for a night's detections. None
    for text with a line break (the csv module's quoting of those is left to it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not values.dtype.isnative:  # e.g. a column read from FITS (big-endian): Arrow takes
        values = values.astype(values.dtype.newbyteorder("="))  # native order only
    kind = values.dtype.kind
    if values.dtype == np.float64:
        lo, hi = _ARROW_FLOAT_RANGE
        with np.errstate(invalid="ignore"):
            a = np.abs(values)
            own = (np.isfinite(values) & (values != np.trunc(values)) & (a >= lo) & (a < hi)
                   | np.isnan(values))
        arr = pc.cast(_pa_array(values), pa.string())
        if not own.all():
            rest = ~own
            arr = pc.replace_with_mask(arr, _pa_array(rest),
                                       _pa_strings(map(str, values[rest].tolist())))
    elif kind in "iu":
        arr = pc.cast(_pa_array(values), pa.string())
    elif kind == "b":
        arr = _pa_strings(["False", "True"]).take(_pa_array(values.astype(np.int8)))
    elif kind == "U":
        uniq, inv = np.unique(values, return_inverse=True)  # few: bands, flags, ids
        fields = []
        for v in map(str, uniq):
            v = v.strip(" \t")
            if "\n" in v or "\r" in v:
                return None  # the csv module's own quoting of line breaks: the caller's
            if not v:
                v = '""'
            elif " " in v or '"' in v:  # csv.QUOTE_MINIMAL
                v = '"' + v.replace('"', '""') + '"'
            fields.append(v)
        arr = _pa_strings(fields).take(_pa_array(inv.ravel().astype(np.int64)))
    else:  # float32, float16: their own shortest repr
        arr = _pa_strings(map(str, values))
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.any():
            arr = pc.replace_with_mask(arr, _pa_array(mask),
                                       _pa_strings(['""'] * int(mask.sum())))
    return arr


def _write_plain_rows(columns, fh):
    """The data lines of an ECSV file for ``[(values, mask)]`` (no header)."""
    if not columns or len(columns[0][0]) == 0:
        return
    fields = []
    for v, m in columns:
        fields.append(_arrow_strings(v, m))
        if fields[-1] is None:
            break
    if fields[-1] is not None:
        import pyarrow as pa
        import pyarrow.compute as pc

        space, eol, none = _pa_strings([" ", os.linesep, ""])  # (a str here is pa.scalar'd)
        lines = pc.binary_join_element_wise(*fields, space)
        lines = pc.binary_join_element_wise(lines, eol, none)
        # the lines are one run of the array's data buffer, from its first offset to its last
        # (32-bit offsets: a chunk of rows, chunk_rows at a time, is far below 2 GB of text)
        if lines.type != pa.string():  # every field is pa.string(): cannot happen
            raise TypeError(f"ECSV rows of type {lines.type}")
        offsets = np.frombuffer(lines.buffers()[1], np.int32)[
            lines.offset:lines.offset + len(lines) + 1]
        data = memoryview(lines.buffers()[2])[offsets[0]:offsets[-1]]
        fh.write(str(data, "utf-8"))
        return
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=" ", quotechar='"', doublequote=True,
                        quoting=csv.QUOTE_MINIMAL, lineterminator=os.linesep)
    writer.writerows(zip(*[_column_strings(v, m) for v, m in columns], strict=True))
    fh.write(buf.getvalue().replace(_EMPTY, '""'))


def _write_ecsv_rows(part, fh):
    """The data lines of an ECSV file for ``part`` (no header), by astropy's ECSV writer."""
    from astropy.io.ascii import ecsv

    writer = ecsv.Ecsv()
    lines = writer.write(part)
    # the writer's lines: the header block (leading comment lines), the column names, rows
    n_head = next(k for k, line in enumerate(lines) if not line.startswith("#")) + 1
    fh.write(os.linesep.join(lines[n_head:]))
    fh.write(os.linesep)


def clean_tmp_files(folder):
    """Remove the temporary files (``.<name>.<random>.tmp``) a killed run left in ``folder``.

    Call it only while holding the folder's :class:`OutputLock` (a live writer's temporary
    files must stay). Returns the names removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if entry.is_file(follow_symlinks=False) and _TMP_NAME.match(entry.name):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(entry.name)
    if removed:
        log.info("%s: removed %d temporary file(s) left by an interrupted run", folder,
                 len(removed))
    return removed


def file_sha256(path, chunk=4 * 2 ** 20):
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# -- one writer per output folder ---------------------------------------------------------------
LOCK_NAME = ".glue-zeropoint.lock"


def _pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError, TypeError):
        return True  # exists (another user's) or unreadable: assume alive
    return True


def _read_lock_info(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _describe(info):
    if not info:
        return "another process"
    started = info.get("started")
    when = f", started {started}" if started else ""
    what = f", running '{info['command']}'" if info.get("command") else ""
    return f"process {info.get('pid', '?')} on host {info.get('host', '?')!r}{when}{what}"


def lock_holder(folder):
    """A description of the live process holding ``folder``'s lock, or None.

    A lock left by a dead process (kill -9, a crash) is not a holder.
    """
    path = Path(folder) / LOCK_NAME
    if not path.exists():
        return None
    info = _read_lock_info(path)
    if info and info.get("flock") is False:  # written where flock does not work: PID check
        if info.get("host") != socket.gethostname() or _pid_alive(info.get("pid")):
            return _describe(info)
        return None
    try:
        import fcntl

        with open(path, "rb") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _describe(info)
    except (ImportError, OSError):
        pass
    return None


class OutputLock:
    """An exclusive lock on an output folder: one writer at a time.

    The lock is a file ``.glue-zeropoint.lock`` in the folder holding the holder's PID, host,
    start time and command, locked with ``flock`` (released by the system when the process
    dies, even by kill -9). A second writer refuses with
    :class:`~glue_zeropoint.exceptions.FolderBusyError` saying who holds it; a lock file left
    by a dead process is taken over (``stale`` then describes it).

    Examples
    --------
    >>> with OutputLock("calibrated", "calibrate"):  # doctest: +SKIP
    ...     write_products()
    """

    def __init__(self, folder, command=""):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.command = command
        self.stale = None
        self._fh = None

    def acquire(self):
        import fcntl

        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": self.command,
                "flock": True}
        for _ in range(20):
            try:
                fh = open(self.path, "a+b")
            except OSError as err:
                raise write_error(self.path, err) from err
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe(_read_lock_info(self.path))
                fh.close()
                raise FolderBusyError(
                    f"{self.folder}: another glue-zeropoint run is writing into this folder "
                    f"({holder}); wait for it to finish or choose another output folder. If "
                    f"no such run is going on, delete {self.path}") from None
            except OSError:  # no flock on this filesystem: the PID check alone
                info["flock"] = False
                previous = _read_lock_info(self.path)
                if previous and previous.get("pid") != os.getpid() and (
                        previous.get("host") != socket.gethostname()
                        or _pid_alive(previous.get("pid"))):
                    fh.close()
                    raise FolderBusyError(
                        f"{self.folder}: another glue-zeropoint run is writing into this "
                        f"folder ({_describe(previous)}); wait for it to finish or choose "
                        f"another output folder. If no such run is going on, delete "
                        f"{self.path}") from None
            # the file may have been removed (and another created) between open and flock
            try:
                same = os.path.samestat(os.fstat(fh.fileno()), os.stat(self.path))
            except OSError:
                same = False
            if not same:
                fh.close()
                continue
            previous = _read_lock_info(self.path)
            if previous and previous.get("pid"):
                self.stale = _describe(previous)
                log.warning("%s: took over the lock left by %s, which is no longer running",
                            self.folder, self.stale)
            try:
                fh.seek(0)
                fh.truncate()
                fh.write(json.dumps(info).encode("utf-8"))
                fh.flush()
            except OSError as err:
                fh.close()
                raise write_error(self.path, err) from err
            self._fh = fh
            return self
        raise FolderBusyError(f"{self.folder}: could not lock the folder; try again")

    def release(self):
        if self._fh is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            self._fh.close()
        self._fh = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


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
