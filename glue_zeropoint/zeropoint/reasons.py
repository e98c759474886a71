"""Why a star was left out of the zero-point fit: the one vocabulary of rejection reasons.

Every star of :func:`~glue_zeropoint.zeropoint.fit_zeropoint`'s table has a ``reason``: ``''``
for a star the fit used, else the codes of every problem found, in the order of
:data:`REASONS`, joined by commas (``'saturated,crowded'``). The codes are short, stable
strings (``stars.ecsv``, ``stars.reg`` and the Glue viewer show them; scripts may rely on
them); :data:`REASONS` gives each one's group and a sentence for people.

=============== ========== ===================================================================
code            group      the star was left out because
=============== ========== ===================================================================
``no_match``    match      no catalog star within the match radius
``ambiguous``   match      a second catalog star within ``ambiguity_factor`` (2) match radii,
                           or another measured star on the same catalog star
``no_cat_mag``  catalog    the catalog has no magnitude in the band
``variable``    catalog    a catalog variability flag: Gaia ``VarFlag`` /
                           ``phot_variable_flag`` = VARIABLE, Refcat2 ``dupvar`` 1 or 3,
                           SIMBAD object types ``V*`` and children, or ``cat_variable``
``duplicate``   catalog    a catalog duplicate flag: Refcat2 ``dupvar`` 2 or 3, Gaia ``Dup`` /
                           ``duplicated_source``
``nonstellar``  catalog    not a star: galaxy, nebula, cluster (SIMBAD ``otype``,
                           ``cat_nonstellar``)
``cat_flag``    catalog    another catalog quality flag: Gaia synthetic photometry
                           ``<band>Flag`` = 0 (outside the validated colour range), UCAC4
                           ``of`` 1-2 (near an overexposed star, possible streak) or ``db`` > 0
                           (double star)
``cat_err``     catalog    catalog magnitude error above ``max_cat_err``
                           (:data:`MAX_CAT_ERR`, 0.10 mag)
``no_colour``   catalog    no catalog colour while a colour term is fitted
``saturated``   photometry peak at or above saturation (photometry flag ``saturated``)
``nonlinear``   photometry peak above the non-linearity limit (flag ``nonlinear``)
``masked``      photometry masked or non-finite pixels in the aperture (flag ``masked``)
``edge``        photometry aperture off the image edge (flag ``edge``)
``crowded``     photometry a neighbour's light in the aperture: the photometry's ``crowded``
                           flag, or a measured neighbour at least 1% as bright
                           (:data:`APERTURE_NEIGHBOUR_RATIO`) whose centre is within the
                           aperture radius plus half a FWHM
``sky_crowded`` photometry a measured neighbour at least 10 times as bright
                           (:data:`ANNULUS_NEIGHBOUR_RATIO`) centred in the sky annulus
                           (within half a FWHM of it)
``extended``    photometry more of its light outside the aperture than the frame's stars
                           have, beyond the noise: a galaxy or a blend (flag ``extended``)
``bad_sky``     photometry too few usable sky pixels (flag ``bad_sky``)
``no_flux``     photometry no positive flux, so no instrumental magnitude (flag ``negative``)
``excluded``    user       excluded by the user (``exclude=``, a Glue selection)
``clipped``     fit        an outlier: ``|z - median(z)| > clip_sigma`` MAD-scaled sigma in the
                           iterative clipping (:func:`~glue_zeropoint.zeropoint.fit_zeropoint_arrays`)
=============== ========== ===================================================================

``cat_err`` and ``sky_crowded`` are precautionary (:data:`SOFT_REASONS`): when fewer than
:data:`MIN_STARS_STRICT` (5) stars pass every check, the fit does without them and says so.

Photometry flags in :data:`~glue_zeropoint.photometry.flags.EXCLUDE_FROM_FIT` without a code
here (a flag added later) become a code of their own name, group ``photometry``.

Examples
--------
>>> join_reasons(['crowded', 'saturated'])
'saturated,crowded'
>>> split_reasons('saturated,crowded')
['saturated', 'crowded']
>>> reason_group('variable'), reason_group('saturated,crowded'), reason_group('')
('catalog', 'photometry', 'used')
"""

import numpy as np

__all__ = ["REASONS", "REASON_CODES", "GROUPS", "MAX_CAT_ERR", "APERTURE_NEIGHBOUR_RATIO",
           "ANNULUS_NEIGHBOUR_RATIO", "SOFT_REASONS", "MIN_STARS_STRICT", "SEPARATOR", "join_reasons", "split_reasons",
           "reason_group", "reason_groups", "describe", "reason_counts", "flag_reasons",
           "catalog_reasons", "REGION_COLOURS"]

#: code -> (group, description), in the order codes are listed in a star's ``reason``.
REASONS = {
    "no_match": ("match", "no catalog star within the match radius"),
    "ambiguous": ("match", "a second catalog star near the match, or two stars on one "
                           "catalog star"),
    "no_cat_mag": ("catalog", "no catalog magnitude in the band"),
    "variable": ("catalog", "a known or suspected variable (catalog flag or SIMBAD type)"),
    "duplicate": ("catalog", "flagged as a duplicate in the catalog"),
    "nonstellar": ("catalog", "not a star (galaxy, nebula, cluster)"),
    "cat_flag": ("catalog", "a catalog quality flag (outside a validated range, near a bright "
                            "star, double)"),
    "cat_err": ("catalog", "catalog magnitude error too large"),
    "no_colour": ("catalog", "no catalog colour for the colour term"),
    "saturated": ("photometry", "saturated"),
    "nonlinear": ("photometry", "peak in the non-linear range"),
    "masked": ("photometry", "masked (bad) pixels in the aperture"),
    "edge": ("photometry", "aperture off the image edge"),
    "crowded": ("photometry", "a neighbour's light in the aperture"),
    "sky_crowded": ("photometry", "a much brighter neighbour in the sky annulus"),
    "extended": ("photometry", "more extended than the frame's stars (a galaxy, a blend)"),
    "bad_sky": ("photometry", "too few usable sky pixels"),
    "no_flux": ("photometry", "no positive flux (no instrumental magnitude)"),
    "excluded": ("user", "excluded by the user"),
    "clipped": ("fit", "an outlier removed by the clipping"),
}
REASON_CODES = tuple(REASONS)
#: the groups, in the order a star with reasons of several groups is shown under
GROUPS = ("user", "fit", "match", "photometry", "catalog")
SEPARATOR = ","

#: Largest catalog magnitude error (mag) of a star the fit uses (``cat_err`` above it): at
#: 0.1 mag a star weighs 1/25 of one with 0.02 mag, so it adds little, but a catalog error that
#: large usually means a poor or single measurement whose error is itself unreliable.
MAX_CAT_ERR = 0.10
#: A measured neighbour this bright relative to the star (flux ratio), centred inside the
#: aperture radius + FWHM/2, makes the star ``crowded`` (its light would bias the flux by up to
#: this fraction: the photometry's crowding limit).
APERTURE_NEIGHBOUR_RATIO = 0.01
#: A measured neighbour this much brighter, centred in the sky annulus (+- FWHM/2), makes the
#: star ``sky_crowded``: the wings it leaves outside its masked core can lift the local sky of
#: a star ten times fainter by a noticeable fraction of that star's flux.
ANNULUS_NEIGHBOUR_RATIO = 10.0

#: Precautionary reasons: the star is probably fine, only less certain. When fewer than
#: :data:`MIN_STARS_STRICT` stars pass every check they are not applied (a sparse field of a
#: small telescope would otherwise lose its zero point); the fit says so.
SOFT_REASONS = ("cat_err", "sky_crowded")
MIN_STARS_STRICT = 5

#: ds9 colour of a star in stars.reg, by group (used stars green)
REGION_COLOURS = {"used": "green", "fit": "red", "user": "yellow", "match": "white",
                  "photometry": "magenta", "catalog": "cyan"}


def join_reasons(codes):
    """Codes -> one reason string in the vocabulary order (unknown codes last, as given)."""
    codes = [c for c in dict.fromkeys(codes) if c]
    known = [c for c in REASON_CODES if c in codes]
    return SEPARATOR.join(known + [c for c in codes if c not in REASONS])


def split_reasons(reason):
    """A reason string -> its codes (``[]`` for a used star)."""
    return [c for c in str(reason).split(SEPARATOR) if c]


def reason_group(reason):
    """The group a star is shown under: ``'used'`` (no reason) or the first of :data:`GROUPS`
    among its codes' groups (user exclusion and clipping first: they are what the user acts
    on)."""
    groups = {REASONS.get(c, ("photometry",))[0] for c in split_reasons(reason)}
    if not groups:
        return "used"
    for group in GROUPS:
        if group in groups:
            return group
    return "photometry"


def reason_groups(reasons):
    """:func:`reason_group` of every element (one call per distinct string), as a str array."""
    reasons = np.asarray(reasons).astype(str)
    uniq, inverse = np.unique(reasons, return_inverse=True)
    return np.array([reason_group(r) for r in uniq], dtype="U10")[inverse.ravel()] \
        if reasons.size else np.array([], dtype="U10")


def describe(reason):
    """A reason string in words, e.g. for a tooltip (``'used in the fit'`` when empty)."""
    codes = split_reasons(reason)
    if not codes:
        return "used in the fit"
    return "; ".join(f"{c}: {REASONS[c][1]}" if c in REASONS else c for c in codes)


def reason_counts(reasons):
    """``{code: number of stars with it}`` over reason strings, in vocabulary order."""
    counts = {}
    for reason, n in zip(*np.unique(np.asarray(reasons).astype(str), return_counts=True),
                         strict=True):
        for code in split_reasons(reason):
            counts[code] = counts.get(code, 0) + int(n)
    order = {c: i for i, c in enumerate(REASON_CODES)}
    return dict(sorted(counts.items(), key=lambda kv: order.get(kv[0], len(order))))


def flag_reasons(flags):
    """Photometry flag bits -> ``{code: bool array}`` for the flags that exclude a star."""
    from ..photometry.flags import EXCLUDE_FROM_FIT, FLAG_NAMES, FLAG_NEGATIVE

    flags = np.asarray(flags, dtype=np.int64)
    out = {}
    for bit, name in FLAG_NAMES.items():
        if not bit & EXCLUDE_FROM_FIT:
            continue
        code = "no_flux" if bit == FLAG_NEGATIVE else name
        out[code] = out.get(code, np.zeros(flags.shape, bool)) | ((flags & bit) != 0)
    return out


# --------------------------------------------------------------------------- catalog flags

def _column(table, name):
    """``(data, mask)`` of a column as plain arrays (mask True = no value), or None.

    Plain numpy views, not ``np.ma`` arrays: an astropy MaskedColumn wrapped by ``np.ma``
    costs ~0.1 ms a call, and the Glue viewer refits on every click."""
    if name not in table.colnames:
        return None
    col = table[name]
    data = np.asarray(col)
    mask = getattr(col, "mask", None)
    if mask is None or mask is np.ma.nomask or not np.any(mask):
        mask = np.zeros(data.shape, bool)
    else:
        mask = np.asarray(mask, bool)
    return data, mask


def _as_float(col):
    data, mask = col
    if data.dtype.kind in "US":
        with np.errstate(invalid="ignore"):
            try:
                data = data.astype(float)
            except ValueError:
                return np.full(data.shape, np.nan)
    values = data.astype(float)
    values[mask] = np.nan
    return values


def _as_upper_str(col):
    data, mask = col
    uniq, inverse = np.unique(data.astype(str), return_inverse=True)
    text = np.char.upper(np.char.strip(uniq))[inverse.ravel()]
    return np.where(mask, "", text)


def _truthy(col):
    data, mask = col
    if data.dtype.kind == "b":
        out = data.copy()
    elif data.dtype.kind in "US":
        uniq, inverse = np.unique(data.astype(str), return_inverse=True)
        out = np.isin(np.char.lower(np.char.strip(uniq)),
                      ["true", "1", "yes", "t"])[inverse.ravel()]
    else:
        with np.errstate(invalid="ignore"):
            out = np.nan_to_num(data.astype(float), nan=0.0) != 0
    return out & ~mask


def catalog_reasons(matches, band, max_cat_err=MAX_CAT_ERR):
    """Catalog flags of crossmatched stars -> ``{code: bool array}``.

    Reads the normalised ``cat_variable``/``cat_nonstellar`` and, where the catalog kept them,
    its own flag columns (prefixed ``cat_`` by the crossmatch): Gaia ``VarFlag``,
    ``phot_variable_flag``, ``Dup``, ``duplicated_source``, the synthetic-photometry
    ``<band>Flag``; Refcat2 ``dupvar``; SIMBAD ``otype``; UCAC4 ``of`` and ``db``. Rows without
    a match have masked catalog columns and get no catalog reason.

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table({'cat_dupvar': [0, 1, 2, 3], 'cat_err_r': [0.01, 0.02, 0.3, 0.01]})
    >>> r = catalog_reasons(t, 'r')
    >>> r['variable'].tolist(), r['duplicate'].tolist(), r['cat_err'].tolist()
    ([False, True, False, True], [False, False, True, True], [False, False, True, False])
    """
    from ..catalogs.otypes import is_nonstellar, is_variable

    n = len(matches)
    variable = np.zeros(n, bool)
    duplicate = np.zeros(n, bool)
    nonstellar = np.zeros(n, bool)
    flagged = np.zeros(n, bool)
    err_big = np.zeros(n, bool)
    if (col := _column(matches, "cat_variable")) is not None:
        variable |= _truthy(col)
    if (col := _column(matches, "cat_nonstellar")) is not None:
        nonstellar |= _truthy(col)
    for name in ("cat_VarFlag", "cat_phot_variable_flag"):  # Gaia: VARIABLE / NOT_AVAILABLE
        if (col := _column(matches, name)) is not None:
            variable |= _as_upper_str(col) == "VARIABLE"
    for name in ("cat_Dup", "cat_duplicated_source"):  # Gaia duplicated_source
        if (col := _column(matches, name)) is not None:
            duplicate |= _truthy(col)
    if (col := _column(matches, "cat_dupvar")) is not None:  # Refcat2: 1 var, 2 dup, 3 both
        code = np.nan_to_num(_as_float(col), nan=0.0).astype(np.int64)
        variable |= (code & 1) != 0
        duplicate |= (code & 2) != 0
    if (col := _column(matches, "cat_otype")) is not None:  # SIMBAD object type
        otypes = np.where(col[1], "", col[0].astype(str))
        uniq, inverse = np.unique(otypes, return_inverse=True)
        variable |= np.array([bool(t) and is_variable(t) for t in uniq], bool)[inverse.ravel()]
        nonstellar |= np.array([bool(t) and is_nonstellar(t) for t in uniq],
                               bool)[inverse.ravel()]
    if (col := _column(matches, f"cat_{band}Flag")) is not None:  # Gaia GSPC: 1 = validated
        flagged |= np.nan_to_num(_as_float(col), nan=1.0) == 0
    if (col := _column(matches, "cat_of")) is not None:  # UCAC4 object flag
        flagged |= np.isin(np.nan_to_num(_as_float(col), nan=0.0), [1, 2])
    if (col := _column(matches, "cat_db")) is not None:  # UCAC4 double-star flag
        flagged |= np.nan_to_num(_as_float(col), nan=0.0) > 0
    if max_cat_err is not None and (col := _column(matches, f"cat_err_{band}")) is not None:
        err = _as_float(col)
        with np.errstate(invalid="ignore"):
            err_big = np.isfinite(err) & (err > float(max_cat_err))
    return {"variable": variable, "duplicate": duplicate, "nonstellar": nonstellar,
            "cat_flag": flagged, "cat_err": err_big}
