"""Local catalog files (ECSV, CSV, VOTable, FITS) read into the normalised form."""

import datetime
import warnings
from pathlib import Path

from astropy.table import Table

from ..exceptions import CatalogError
from .normalize import normalize_catalog

__all__ = ["read_catalog", "read_table", "write_catalog", "FORMATS"]

#: File suffix -> astropy format name.
FORMATS = {
    ".ecsv": "ascii.ecsv",
    ".csv": "ascii.csv",
    ".tsv": "ascii.tab",
    ".txt": None,
    ".dat": None,
    ".vot": "votable",
    ".votable": "votable",
    ".xml": "votable",
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
}


def _format_of(path):
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz" and len(suffixes) > 1:
        suffix = suffixes[-2]
    else:
        suffix = suffixes[-1] if suffixes else ""
    if suffix not in FORMATS:
        raise CatalogError(f"{path}: unknown catalog file type {suffix!r}; use ECSV (.ecsv), "
                           f"CSV (.csv), VOTable (.vot/.xml) or FITS (.fits)")
    return FORMATS[suffix]


def _read_table(path, fmt):
    if fmt == "votable":
        from astropy.io.votable import parse

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            votable = parse(str(path))
        tables = [t for t in votable.iter_tables()]
        if not tables:
            raise CatalogError(f"{path}: the VOTable holds no table (an error answer?); "
                               f"save a VizieR answer with rows, or use another file")
        best = max(tables, key=lambda t: len(t.array))
        return best.to_table(use_names_over_ids=True)
    if fmt == "fits":
        from astropy.io import fits

        with fits.open(path) as hdul:
            for index, hdu in enumerate(hdul):
                if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
                    return Table.read(hdul, hdu=index)
        raise CatalogError(f"{path}: the FITS file has no table extension; a catalog must be "
                           f"a FITS table (BINTABLE)")
    kwargs = {"format": fmt} if fmt else {"format": "ascii"}
    return Table.read(path, **kwargs)


def read_table(path):
    """A plain table file (ECSV, CSV, VOTable, FITS) as it is, not normalised.

    Raises CatalogError for an unknown type or a file that cannot be read."""
    path = Path(path)
    fmt = _format_of(path)
    try:
        return _read_table(path, fmt)
    except CatalogError:
        raise
    except Exception as err:  # noqa: BLE001 - astropy readers raise many kinds
        raise CatalogError(f"{path}: cannot be read as a table ({err})") from err


def read_catalog(path):
    """Read a catalog file and return it normalised, exactly like a query result.

    Parameters
    ----------
    path : str or Path
        ECSV, CSV, VOTable or FITS table with VizieR-style columns (``RAJ2000``/``DEJ2000``
        or ``ra``/``dec`` in degrees or sexagesimal, ``Vmag``/``V``/``r'mag``/``mag_V`` with
        ``e_``-prefixed errors, colours like ``B-V``), or a file written by
        :func:`write_catalog`.

    Returns
    -------
    `~astropy.table.Table`
        Normalised (see :func:`~glue_zeropoint.catalogs.normalize_catalog`), with
        ``meta['catalog']`` = the path and ``meta['service']`` = ``'local'``.

    Raises
    ------
    CatalogError
        Missing or unreadable file, or no position/magnitude columns (the message lists the
        columns found).
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: no such catalog file; give a table file (ECSV, CSV, "
                           f"VOTable, FITS), 'vizier:<catalog id>' or 'simbad'")
    fmt = _format_of(path)
    try:
        table = _read_table(path, fmt)
    except CatalogError:
        raise
    except Exception as err:
        raise CatalogError(f"{path}: cannot be read as a {fmt or 'text'} table ({err}); check "
                           f"the file") from err
    mtime = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.UTC)
    meta = dict(table.meta)
    origin = meta.get("catalog")
    table.meta.clear()
    table.meta.update({k: v for k, v in meta.items() if k not in ("catalog", "service")})
    table.meta["retrieved"] = meta.get("retrieved") or mtime.strftime("%Y-%m-%dT%H:%M:%SZ")
    table.meta["service"] = "local"
    if origin:
        table.meta["catalog"] = origin
    result = normalize_catalog(table, spec=None, name=str(path))
    if origin and origin != str(path):
        result.meta["origin_catalog"] = origin
    return result


def write_catalog(table, path, *, overwrite=True):
    """Write a normalised table to ``path`` (format from the suffix), atomically.

    ECSV keeps everything (meta included) and is the recommended format for offline reuse.
    """
    from ..io import atomic_path

    path = Path(path)
    fmt = _format_of(path)
    if fmt is None:
        fmt = "ascii.ecsv"
    out = table.copy()
    if fmt in ("votable", "fits", "ascii.csv", "ascii.tab"):
        for key, value in list(out.meta.items()):  # these writers need flat, simple meta
            if isinstance(value, dict):
                out.meta[key] = repr(value)
            elif isinstance(value, list):
                out.meta[key] = ",".join(map(str, value))
    if path.exists() and not overwrite:
        raise CatalogError(f"{path}: exists; choose another file or allow overwriting")
    with atomic_path(path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.write(tmp, format=fmt, overwrite=True)
    return path
