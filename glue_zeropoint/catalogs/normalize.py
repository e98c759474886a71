"""Turn any catalog table (a VizieR or SIMBAD answer, a local file) into one normalised form.

A *normalised catalog table* is an :class:`astropy.table.Table` with

* ``id`` (str: the catalog's own identifier, never VizieR's ``recno`` row number; made from
  the position, ``Jddd.ddddd+dd.ddddd``, when the catalog has none), ``ra``, ``dec`` (float64
  degrees, ICRS, at ``ref_epoch``), ``pmra`` (mas/yr, includes cos dec), ``pmdec`` (mas/yr),
  NaN where unknown, ``ref_epoch`` (float64 Julian year; 2000.0 when the catalog gives none);
* for every band the catalog has, ``mag_<band>`` and ``err_<band>`` (float64, NaN where
  missing). Band names are Johnson-Cousins upper case (``U B V R I``), Sloan lower case
  (``u g r i z``; ``r'mag`` gives ``r``), plus ``y``, ``J H K``, Gaia ``G BP RP``;
* ``variable`` (bool), ``nonstellar`` (bool), ``otype`` (str, ``''`` when unknown);
* all original columns under their original names; an original column whose name collides
  with one of the above is renamed ``<name>_orig`` unless it was itself the source of that
  column (SIMBAD's ``ra``, a re-read normalised file);
* ``meta``: ``catalog`` (spec string or file path), ``bands`` (list), ``service``, ``query``
  (dict: ``ra``, ``dec``, ``radius`` in degrees, ``columns``, ``row_limit``), ``retrieved``
  (ISO UTC), ``from_cache`` (bool), ``cache_age_s``, ``truncated`` (bool).

Magnitudes outside [-5, 40] (e.g. 99.999 "no data" markers) become NaN, as do negative
errors. Colours (``B-V``, ``V-R``, ``U-B``, ``R-I``, ``V-I``) are combined with a known band to
give a missing one (B = V + (B-V), ...), with errors added in quadrature (the colour and the
band are treated as independent, which slightly overestimates the error for catalogs like
Landolt's where they are correlated).
"""

import datetime
import logging
import re

import numpy as np
from astropy import units as u
from astropy.table import Column, Table

from ..exceptions import CatalogError
from .otypes import is_nonstellar, is_variable
from .specs import CatalogSpec, get_spec, spec_for

__all__ = ["normalize_catalog", "catalog_bands", "require_band", "parse_sexagesimal",
           "BAND_ORDER", "is_variable_otype", "is_nonstellar_otype"]

log = logging.getLogger(__name__)

#: Canonical order of bands (the one list; :mod:`glue_zeropoint.glue.viewer_state` uses it too):
#: ``meta['bands']``, the column order, and colours ``X-Y`` with X before Y. Within each
#: system the bands run blue to red (Gaia: BP, G, RP), so "X before Y" means "X bluer".
BAND_ORDER = ("U", "B", "V", "R", "I", "u", "g", "r", "i", "z", "y", "BP", "G", "RP",
              "J", "H", "K", "Ks")
_BAND_RE = "|".join(sorted(BAND_ORDER, key=len, reverse=True))

NORMALISED = ("id", "ra", "dec", "pmra", "pmdec", "ref_epoch", "variable", "nonstellar", "otype")

_RA_NAMES = ("ra", "RAJ2000", "_RAJ2000", "RA_ICRS", "RAICRS", "RAdeg", "RA_deg", "ra_deg",
             "RA", "Ra", "RA_J2000", "RAJ2000_deg", "ALPHA_J2000", "ra_icrs", "raj2000",
             "RA_d", "_RA")
_DEC_NAMES = ("dec", "DEJ2000", "_DEJ2000", "DE_ICRS", "DEICRS", "DEdeg", "DE_deg", "dec_deg",
              "DEC", "Dec", "DE", "DEC_J2000", "DEJ2000_deg", "DELTA_J2000", "de_icrs",
              "dej2000", "DE_d", "_DE")
_GLON_NAMES = ("_Glon", "GLON", "glon")
_GLAT_NAMES = ("_Glat", "GLAT", "glat")
# never VizieR's ``recno``: a row number of one table version, not a name of a star
_ID_NAMES = ("id", "main_id", "MAIN_ID", "Source", "source_id", "objID", "UCAC4",
             "Star", "Name", "name", "ID", "Seq", "designation", "Designation")
_PMRA_NAMES = ("pmra", "pmRA", "PMRA", "pm_ra", "pmRAcosDE", "pmra_cosdec", "pmRA*")
_PMDEC_NAMES = ("pmdec", "pmDE", "PMDEC", "pm_dec", "pmDEC", "pmde")

_MAG_PATTERNS = [  # (regex, priority: lower wins)
    (re.compile(rf"^mag_(?P<b>{_BAND_RE})$"), 0),
    (re.compile(rf"^(?P<b>{_BAND_RE})mag$"), 1),
    (re.compile(rf"^(?P<b>{_BAND_RE})'mag$"), 1),
    (re.compile(rf"^(?P<b>{_BAND_RE})_mag$"), 2),
    (re.compile(rf"^(?P<b>{_BAND_RE})MAG$"), 3),
    (re.compile(rf"^(?P<b>{_BAND_RE})'?$"), 4),
]
_COLOUR_RE = re.compile(rf"^\(?(?P<a>{_BAND_RE})-(?P<b>{_BAND_RE})\)?(?:mag)?$")

# SIMBAD object types: one classification for the package (see .otypes)
is_variable_otype = is_variable
is_nonstellar_otype = is_nonstellar


# --------------------------------------------------------------------------- helpers


def _find(table, names):
    """First of ``names`` present in ``table`` (exact, then case-insensitive)."""
    for name in names:
        if name and name in table.colnames:
            return name
    lower = {c.lower(): c for c in table.colnames}
    for name in names:
        if name and name.lower() in lower:
            return lower[name.lower()]
    return None


def _is_string(col):
    return col.dtype.kind in "USO"


def _float(col, unit=None):
    """Column -> float64 ndarray, NaN where masked or not a number; optional unit conversion."""
    if col.dtype.kind == "O":
        values = np.array([_to_float(v) for v in col], dtype=float)
    elif col.dtype.kind in "US":
        values = np.array([_to_float(v) for v in col], dtype=float)
    elif col.dtype.kind == "b":
        values = np.asarray(col, dtype=float)
    else:
        values = np.array(col, dtype=float)
    mask = getattr(col, "mask", None)
    if mask is not None and np.any(mask):
        values = values.copy()
        values[np.asarray(mask, dtype=bool)] = np.nan
    if unit is not None and col.unit is not None:
        try:
            values = (values * col.unit).to_value(unit)
        except (u.UnitConversionError, ValueError, TypeError):
            pass
    return values


def _to_float(value):
    if value is None or value is np.ma.masked:
        return np.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        text = str(value).strip()
        try:
            return float(text) if text else np.nan
        except ValueError:
            return np.nan


def _strings(col):
    out = []
    mask = np.asarray(getattr(col, "mask", np.zeros(len(col), bool)), dtype=bool)
    for value, bad in zip(col, mask if mask.shape else np.zeros(len(col), bool), strict=False):
        if bad or value is None or value is np.ma.masked:
            out.append("")
        elif isinstance(value, bytes):
            out.append(value.decode("utf-8", "replace").strip())
        else:
            out.append(str(value).strip())
    return np.array(out, dtype=str) if out else np.array([], dtype="<U1")


_SEXA_RE = re.compile(
    r"^\s*(?P<sign>[+-]?)\s*(?P<a>\d{1,3})(?:[\s:hd°]+)(?P<b>\d{1,2})(?:[\s:m']+)"
    r"(?P<c>\d{1,2}(?:\.\d*)?)\s*[s\"]?\s*$")
_PAIR_RE = re.compile(
    r"^\s*(?P<ra>\d{1,2}[\s:h]+\d{1,2}[\s:m]+\d{1,2}(?:\.\d*)?)\s*s?\s*[,;]?\s*"
    r"(?P<dec>[+-]\s*\d{1,2}[\s:d°]+\d{1,2}[\s:m']+\d{1,2}(?:\.\d*)?)\s*\"?\s*$")


def parse_sexagesimal(text, hours):
    """Parse one sexagesimal angle (``'20 29 24.9'``, ``'-46:31:22'``, ``'- 46 31 22'``) to degrees.

    Plain decimal numbers are taken as degrees (or hours when ``hours``). Returns NaN when the
    text cannot be read.
    """
    if text is None:
        return np.nan
    text = str(text).strip()
    if not text:
        return np.nan
    match = _SEXA_RE.match(text)
    if match is None:
        try:
            value = float(text)
        except ValueError:
            return np.nan
        return value * 15.0 if hours else value
    value = (float(match["a"]) + float(match["b"]) / 60.0 + float(match["c"]) / 3600.0)
    if match["sign"] == "-":
        value = -value
    return value * 15.0 if hours else value


def _angle_column(col, hours):
    if _is_string(col):
        values = np.array([parse_sexagesimal(v, hours) for v in _strings(col)], dtype=float)
        return values
    unit = col.unit
    values = _float(col)
    if unit is not None:
        try:
            return (values * unit).to_value(u.deg)
        except (u.UnitConversionError, ValueError, TypeError):
            return values
    return values


def _combined_position_column(table):
    """A string column holding both RA and Dec (e.g. Landolt's 'RA_DE_J2000_hms_dms')."""
    for name in table.colnames:
        col = table[name]
        if not _is_string(col) or len(col) == 0:
            continue
        low = name.lower()
        if not (("ra" in low and "de" in low) or low in ("coord", "coords", "coordinates",
                                                          "position", "radec")):
            continue
        sample = [s for s in _strings(col)[:20] if s]
        if sample and all(_PAIR_RE.match(s) for s in sample):
            return name
    return None


def _split_pairs(col):
    ra, dec = [], []
    for text in _strings(col):
        match = _PAIR_RE.match(text)
        if match is None:
            ra.append(np.nan)
            dec.append(np.nan)
        else:
            ra.append(parse_sexagesimal(match["ra"], hours=True))
            dec.append(parse_sexagesimal(match["dec"], hours=False))
    return np.array(ra, dtype=float), np.array(dec, dtype=float)


def _band_key(band):
    try:
        return (BAND_ORDER.index(band), band)
    except ValueError:
        return (len(BAND_ORDER), band)


def _error_column(table, magcol, band):
    names = [f"err_{band}", f"e_{magcol}", f"e_{band}", f"{magcol}_err", f"{magcol}_error",
             f"e{magcol}", f"{band}_err", f"{band}err", f"e_{band}mag", f"sigma_{band}",
             f"{magcol}err", f"{band}magerr", f"{band}_error", f"{magcol}_e", f"{band}mag_err"]
    for name in names:
        if name in table.colnames:
            return name
    return None


def _detect_bands(table, skip=(), bare=True):
    """Generic detection: ``band -> (mag column, error column)`` from column names.

    A bare band letter (``V``, ``B``) is a magnitude only when ``bare`` and its column holds
    floats: VizieR catalogs use such names for integer flags (UCAC4's ``H``, ``B``, ``Z``).
    """
    found = {}
    for name in table.colnames:
        col = table[name]
        if col.dtype.kind not in "fiu" and col.dtype.kind != "O":
            continue
        if name in NORMALISED:
            continue
        for regex, priority in _MAG_PATTERNS:
            match = regex.match(name)
            if match is None:
                continue
            band = match["b"]
            if band in skip:
                break
            if priority == 4 and (not bare or col.dtype.kind != "f"):
                break
            if band not in found or priority < found[band][0]:
                found[band] = (priority, name)
            break
    return {band: (name, _error_column(table, name, band))
            for band, (_, name) in found.items()}


def _detect_colours(table):
    colours = []
    for name in table.colnames:
        match = _COLOUR_RE.match(name)
        if match is None or table[name].dtype.kind not in "fiu":
            continue
        err = None
        for cand in (f"e_{name}", f"e_({match['a']}-{match['b']})", f"{name}_err",
                     f"err_{name}", f"e{name}"):
            if cand in table.colnames:
                err = cand
                break
        colours.append((match["a"], match["b"], name, err))
    return colours


def _clean_mag(values):
    values = np.array(values, dtype=float)
    with np.errstate(invalid="ignore"):
        values[(values < -5) | (values > 40)] = np.nan
    return values


def _clean_err(values):
    values = np.array(values, dtype=float)
    with np.errstate(invalid="ignore"):
        values[values < 0] = np.nan
    return values


def _variable_from(table, column, rule):
    col = table[column]
    n = len(col)
    if rule == "gaia_varflag":
        return np.array([s.upper() == "VARIABLE" for s in _strings(col)], dtype=bool)
    if rule == "refcat2":
        # dupvar = Gaia flag CONSTANT (0), VARIABLE (1), NOT_AVAILABLE (2), + 4 if DUPLICATE
        values = _float(col)
        with np.errstate(invalid="ignore"):
            return np.isfinite(values) & (np.nan_to_num(values, nan=0.0) % 4 == 1)
    if rule == "simbad_otype":
        return np.array([is_variable_otype(s) for s in _strings(col)], dtype=bool)
    if rule == "nonzero":
        values = _float(col)
        return np.isfinite(values) & (values != 0)
    return np.zeros(n, dtype=bool)


def _resolve_spec(spec):
    if spec is None or isinstance(spec, CatalogSpec):
        return spec
    return get_spec(spec) if get_spec(spec) is not None else spec_for(spec)


def _bool_column(col):
    if col.dtype.kind == "b":
        return np.array(col, dtype=bool)
    out = []
    for s in _strings(col):
        out.append(s.lower() in ("true", "1", "yes", "y", "t"))
    return np.array(out, dtype=bool)


# --------------------------------------------------------------------------- public


def normalize_catalog(table, spec=None, name=None):
    """Return the normalised form of a catalog table (see the module docstring).

    Parameters
    ----------
    table : `~astropy.table.Table`
        A VizieR or SIMBAD answer, or a table read from a file. Not modified.
    spec : `CatalogSpec`, str or None
        The catalog's spec or its string (``'vizier:II/336/apass9'``, ``'simbad'``). None
        (or an unknown catalog) means: find the columns from their names.
    name : str, optional
        What to call the catalog in messages and in ``meta['catalog']`` when there is no spec
        (e.g. the file path).

    Returns
    -------
    `~astropy.table.Table`
        A new table.

    Raises
    ------
    CatalogError
        If no position or no magnitude column can be found; the message names the catalog
        (or file) and lists the columns it has.
    """
    spec = _resolve_spec(spec)
    label = name or (spec.spec_string if spec is not None else "catalog")
    src = Table(table, copy=True, masked=False) if not isinstance(table, Table) else table.copy()
    n = len(src)
    columns_found = ", ".join(src.colnames) or "(none)"
    used = {}  # normalised name -> original column it was made from
    ra, dec = _positions(src, spec, label, columns_found, used)
    ids = _identifiers(src, spec, ra, dec, used)
    pmra, pmdec, epoch = _proper_motions(src, spec, used)
    mags, errs, sources = _magnitudes(src, spec)
    if not mags and not (spec is not None and spec.service == "simbad"):
        raise CatalogError(
            f"{label}: no magnitude columns found (looked for e.g. V, Vmag, r'mag, rmag, mag_V "
            f"or colours like B-V with a V column); columns found: {columns_found}")
    bands = sorted(mags, key=_band_key)
    variable, nonstellar, otype = _object_flags(src, spec, used)

    out = Table(meta={})
    out["id"] = Column(ids, dtype=str)
    out["ra"] = Column(np.asarray(ra, dtype=np.float64), unit=u.deg)
    out["dec"] = Column(np.asarray(dec, dtype=np.float64), unit=u.deg)
    out["pmra"] = Column(np.asarray(pmra, dtype=np.float64), unit=u.mas / u.yr)
    out["pmdec"] = Column(np.asarray(pmdec, dtype=np.float64), unit=u.mas / u.yr)
    out["ref_epoch"] = Column(np.asarray(epoch, dtype=np.float64), unit=u.yr)
    for band in bands:
        out[f"mag_{band}"] = Column(np.asarray(mags[band], dtype=np.float64), unit=u.mag)
        err = errs.get(band, np.full(n, np.nan))
        out[f"err_{band}"] = Column(np.asarray(err, dtype=np.float64), unit=u.mag)
        used.setdefault(f"mag_{band}", sources[band])
        if f"err_{band}" in src.colnames:
            used[f"err_{band}"] = f"err_{band}"
    out["variable"] = Column(variable, dtype=bool)
    out["nonstellar"] = Column(nonstellar, dtype=bool)
    out["otype"] = Column(otype, dtype=str)
    _keep_original_columns(out, src, used)
    _catalog_meta(out, src, spec, name, bands, sources)
    return out


def _positions(src, spec, label, columns_found, used):
    """(ra, dec) in degrees (ICRS, RA in [0, 360)) from the spec's columns, RA/Dec-like
    names, galactic coordinates or one sexagesimal 'RA Dec' column."""
    if spec is not None and spec.ra_column and spec.ra_column in src.colnames \
            and spec.dec_column in src.colnames:
        ra_name, dec_name = spec.ra_column, spec.dec_column
    else:
        ra_name, dec_name = _find(src, _RA_NAMES), _find(src, _DEC_NAMES)
    if ra_name is not None and dec_name is not None:
        ra = _angle_column(src[ra_name], hours=_is_string(src[ra_name]))
        dec = _angle_column(src[dec_name], hours=False)
        used["ra"], used["dec"] = ra_name, dec_name
        position = f"{ra_name}, {dec_name}"
    elif (_find(src, _GLON_NAMES) is not None) and (_find(src, _GLAT_NAMES) is not None):
        lon_name, lat_name = _find(src, _GLON_NAMES), _find(src, _GLAT_NAMES)
        from astropy.coordinates import SkyCoord

        coords = SkyCoord(_angle_column(src[lon_name], hours=False),
                          _angle_column(src[lat_name], hours=False), unit="deg",
                          frame="galactic").icrs
        ra, dec = coords.ra.deg, coords.dec.deg
        position = f"{lon_name}, {lat_name}"
    else:
        pair = _combined_position_column(src)
        if pair is None:
            raise CatalogError(
                f"{label}: no position columns found (looked for RA/Dec such as RAJ2000, "
                f"RA_ICRS, ra, galactic _Glon/_Glat, or one sexagesimal 'RA Dec' column); "
                f"columns found: "
                f"{columns_found}")
        ra, dec = _split_pairs(src[pair])
        position = pair
    if len(src) and not np.any(np.isfinite(ra) & np.isfinite(dec)):
        raise CatalogError(f"{label}: the position columns ({position}) could not be read as angles; columns found: "
                           f"{columns_found}")
    return np.mod(ra, 360.0), dec


def _identifiers(src, spec, ra, dec, used):
    """Star identifiers: the spec's or an id-like column, else ``J<ra><dec>``."""
    if spec is not None and spec.id_column and spec.id_column in src.colnames:
        id_name = spec.id_column
    elif spec is not None and spec.id_column is None and get_spec(spec.id) is spec:
        id_name = None  # a known catalog without star identifiers: ids from the position
    else:
        id_name = _find(src, _ID_NAMES)
    if id_name is not None:
        ids = _strings(src[id_name])
        used["id"] = id_name
    else:
        ids = np.array([f"J{r:09.5f}{d:+09.5f}" for r, d in zip(ra, dec, strict=True)],
                       dtype=str)
    if len(src) == 0:
        ids = np.array([], dtype="<U1")
    return ids


def _proper_motions(src, spec, used):
    """(pmra, pmdec) in mas/yr (NaN when unknown) and the reference epoch (Julian year; MJD
    values converted) of each star."""
    n = len(src)
    pmra = np.full(n, np.nan)
    pmdec = np.full(n, np.nan)
    pmra_name = (spec.pmra_column if spec is not None and spec.pmra_column in src.colnames
                 else _find(src, _PMRA_NAMES))
    pmdec_name = (spec.pmdec_column if spec is not None and spec.pmdec_column in src.colnames
                  else _find(src, _PMDEC_NAMES))
    if pmra_name and pmdec_name:
        pmra = _float(src[pmra_name], unit=u.mas / u.yr)
        pmdec = _float(src[pmdec_name], unit=u.mas / u.yr)
        used["pmra"], used["pmdec"] = pmra_name, pmdec_name
    default_epoch = spec.epoch if spec is not None else 2000.0
    epoch = np.full(n, float(default_epoch))
    epoch_name = None
    if spec is not None and spec.epoch_column and spec.epoch_column in src.colnames:
        epoch_name = spec.epoch_column
    elif "ref_epoch" in src.colnames:
        epoch_name = "ref_epoch"
    if epoch_name is not None:
        values = _float(src[epoch_name])
        with np.errstate(invalid="ignore"):
            mjd = values > 3000
        values[mjd] = 2000.0 + (values[mjd] - 51544.5) / 365.25
        epoch = np.where(np.isfinite(values), values, float(default_epoch))
        used["ref_epoch"] = epoch_name
    return pmra, pmdec, epoch


def _spec_magnitudes(src, spec, mags, errs, sources):
    """The bands a catalog spec names (errors from flux errors when needed; quality flags)."""
    for band, (magcol, errcol) in spec.bands.items():
        if magcol not in src.colnames:
            continue
        mags[band] = _clean_mag(_float(src[magcol]))
        sources[band] = magcol
        if errcol and errcol in src.colnames:
            errs[band] = _clean_err(_float(src[errcol]))
        elif band in spec.flux_errors and all(c in src.colnames
                                              for c in spec.flux_errors[band]):
            flux = _float(src[spec.flux_errors[band][0]])
            eflux = _float(src[spec.flux_errors[band][1]])
            with np.errstate(invalid="ignore", divide="ignore"):
                errs[band] = _clean_err(2.5 / np.log(10) * eflux / flux)
        if band in spec.band_flags and spec.band_flags[band][0] in src.colnames:
            flag_col, good = spec.band_flags[band]
            flags = _float(src[flag_col])
            mags[band] = np.where(flags == good, mags[band], np.nan)


def _bands_from_colours(src, mags, errs, sources):
    """Missing bands from colour columns (``B-V`` with V gives B), repeated until no more."""
    n = len(src)
    colours = _detect_colours(src)
    changed = True
    while changed:
        changed = False
        for a, b, cname, ecname in colours:
            colour = _float(src[cname])
            ecolour = _float(src[ecname]) if ecname else np.full(n, np.nan)
            if a not in mags and b in mags:
                mags[a] = _clean_mag(mags[b] + colour)
                errs[a] = np.hypot(errs.get(b, np.full(n, np.nan)), ecolour)
                sources[a] = f"{b} + ({cname})"
                changed = True
            elif b not in mags and a in mags:
                mags[b] = _clean_mag(mags[a] - colour)
                errs[b] = np.hypot(errs.get(a, np.full(n, np.nan)), ecolour)
                sources[b] = f"{a} - ({cname})"
                changed = True


def _magnitudes(src, spec):
    """(mags, errs, sources) by band: the spec's bands, bands found by column name, then
    bands from colours; ``sources`` says which column (or sum) each came from."""
    mags, errs, sources = {}, {}, {}
    if spec is not None:
        _spec_magnitudes(src, spec, mags, errs, sources)
    known = spec is not None and get_spec(spec.id) is spec  # a registry catalog or SIMBAD
    for band, (magcol, errcol) in _detect_bands(src, skip=tuple(mags), bare=not known).items():
        mags[band] = _clean_mag(_float(src[magcol]))
        sources[band] = magcol
        if errcol is not None:
            errs[band] = _clean_err(_float(src[errcol]))
    _bands_from_colours(src, mags, errs, sources)
    return mags, errs, sources


def _object_flags(src, spec, used):
    """(variable, nonstellar, otype) per star from the object type, the catalog's variability
    columns (Gaia VarFlag, Refcat2 dupvar...) and existing ``variable``/``nonstellar``."""
    n = len(src)
    variable = np.zeros(n, dtype=bool)
    nonstellar = np.zeros(n, dtype=bool)
    otype = np.array([""] * n, dtype=str) if n else np.array([], dtype="<U1")
    otype_name = (spec.otype_column if spec is not None and spec.otype_column in src.colnames
                  else _find(src, ("otype", "OTYPE", "otype_s", "main_type")))
    if otype_name is not None and _is_string(src[otype_name]):
        otype = _strings(src[otype_name])
        variable |= np.array([is_variable_otype(s) for s in otype], dtype=bool)
        nonstellar |= np.array([is_nonstellar_otype(s) for s in otype], dtype=bool)
        used["otype"] = otype_name
    rules = list(spec.variable) if spec is not None else []
    if not rules:
        if "VarFlag" in src.colnames:
            rules.append(("VarFlag", "gaia_varflag"))
        if "dupvar" in src.colnames:
            rules.append(("dupvar", "refcat2"))
    for column, rule in rules:
        if column in src.colnames and column != otype_name:
            variable |= _variable_from(src, column, rule)
    if "variable" in src.colnames:
        variable |= _bool_column(src["variable"])
        used["variable"] = "variable"
    if "nonstellar" in src.colnames:
        nonstellar |= _bool_column(src["nonstellar"])
        used["nonstellar"] = "nonstellar"
    return variable, nonstellar, otype


def _keep_original_columns(out, src, used):
    """Every original column goes along (``<name>_orig`` when a normalised column took its
    name and was not made from it)."""
    for colname in src.colnames:
        col = src[colname]
        if col.dtype.kind == "O":  # e.g. SIMBAD strings: plain str so every writer copes
            col = Column(_strings(col), name=colname, unit=col.unit,
                         description=col.description, meta=col.meta)
        if colname in out.colnames:
            if used.get(colname) == colname:
                continue  # the original was the source of the normalised column
            newname = f"{colname}_orig"
            while newname in out.colnames or newname in src.colnames:
                newname += "_"
            out[newname] = col
        else:
            out[colname] = col


def _catalog_meta(out, src, spec, name, bands, sources):
    """The normalised table's meta: the source's meta plus the catalog facts (section 6)."""
    meta = dict(src.meta) if src.meta else {}
    meta.pop("bands", None)
    out.meta.update({k: v for k, v in meta.items()
                     if k not in ("catalog", "service", "query", "retrieved", "from_cache",
                                  "cache_age_s", "truncated")})
    if spec is not None:
        out.meta["catalog"] = spec.spec_string
    else:
        out.meta["catalog"] = name or meta.get("catalog") or "catalog"
        if name and meta.get("catalog") and meta.get("catalog") != name:
            out.meta["origin_catalog"] = meta["catalog"]
    out.meta["bands"] = list(bands)
    out.meta["service"] = meta.get("service", spec.service if spec is not None else "local")
    out.meta["query"] = dict(meta.get("query") or {})
    out.meta["retrieved"] = meta.get("retrieved") or _now_iso()
    out.meta["from_cache"] = bool(meta.get("from_cache", False))
    out.meta["cache_age_s"] = float(meta.get("cache_age_s", 0.0) or 0.0)
    out.meta["truncated"] = bool(meta.get("truncated", False))
    out.meta["band_sources"] = {b: sources[b] for b in bands}


def _now_iso():
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def catalog_bands(table):
    """The bands a normalised table has (``meta['bands']``, else its ``mag_<band>`` columns)."""
    bands = table.meta.get("bands") if table.meta else None
    if bands:
        return [b for b in bands if f"mag_{b}" in table.colnames]
    return sorted((c[4:] for c in table.colnames if c.startswith("mag_")), key=_band_key)


def require_band(table, band):
    """Check that a normalised table has ``band`` with at least one magnitude.

    Raises
    ------
    CatalogError
        ``"catalog X has no band 'Q'; it has: B, V, ..."``.
    """
    name = (table.meta or {}).get("catalog", "catalog")
    band = str(band).strip()
    if band.endswith("'"):
        band = band[:-1]
    bands = catalog_bands(table)
    if band not in bands:
        raise CatalogError(f"catalog {name} has no band {band!r}; it has: "
                           f"{', '.join(bands) or 'none'}")
    values = np.asarray(table[f"mag_{band}"], dtype=float)
    if len(values) and not np.any(np.isfinite(values)):
        raise CatalogError(f"catalog {name} has a column for band {band!r} but no star has a "
                           f"value in it; bands with values: "
                           f"{', '.join(b for b in bands if np.any(np.isfinite(table[f'mag_{b}'])))}")
    return band
