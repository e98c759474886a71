"""The zero-point fit: weighted, iteratively clipped, intrinsic scatter, optional colour term.

Model (docs/architecture.md section 5): ``y_i = m_cat,i - m_inst,i = ZP + c (colour_i - colour_ref)``,
``m_inst = -2.5 log10(F / t)`` with F the total (aperture-corrected) flux in electrons.

Weights and the per-star floor
------------------------------
Each star's error is ``e_i = max(sqrt(sigma_inst^2 + sigma_cat^2), floor)``: the floor
(default 0.01 mag) is a *minimum*, not added in quadrature, so one star with a tiny stated error
cannot dominate while stars whose errors are already above the floor are not inflated (adding
the floor in quadrature to everyone would overstate the ZP error when the catalog errors are
honest). The weights are ``1 / (e_i^2 + sigma_int^2)`` with the intrinsic scatter
``sigma_int >= 0`` solved so that chi^2/dof = 1 (``sigma_int = 0`` when the stated errors
already explain the scatter; the errors are then not scaled down).

Clipping
--------
Residuals are normalised, ``z_i = r_i / sqrt(e_i^2 + sigma_int^2)``, and stars with
``|z_i - median(z)| > clip_sigma * 1.4826 MAD(z)`` are left out; the fit, sigma_int and the
clipping are repeated (clipped stars may come back) until the set of stars does not change or
``maxiter`` is reached. The first pass starts from the median of ``y`` and a robust intrinsic
scatter (the one that makes the MAD-scaled normalised residuals of unit width): without it, when
bright stars have errors at the floor and the field a real extra scatter, their ``z`` is
inflated and good bright stars were clipped before sigma_int was ever solved.

Which stars enter
-----------------
:func:`fit_zeropoint` leaves a star out, before the fit, for every problem it finds: no or an
ambiguous match, catalog flags (variable, duplicate, non-stellar, quality flags), a catalog
error above ``max_cat_err``, photometry flags (saturated, masked, crowded...), a measured
neighbour in the aperture or a much brighter one in the sky annulus, a user exclusion; then
the clipping removes outliers. Each star's ``reason`` lists all its codes; the vocabulary and
the thresholds are in :mod:`glue_zeropoint.zeropoint.reasons`.

Colour term
-----------
Fitted only when a colour is given, ``fit_color`` is not False, and the data support it: at
least ``MIN_STARS_COLOR`` (10) stars and a colour spread (5-95 percentiles) of at least
``MIN_COLOR_RANGE`` (0.3 mag). Otherwise the result says why (``color_term_reason``).
``colour_ref`` defaults to the weighted mean colour of the stars (then ZP and c are
uncorrelated).

Errors
------
``zp_err`` is the statistical error of the ZP from the weighted fit (~ scatter / sqrt(N));
``zp_err_total`` adds the aperture-correction error (in magnitudes) and a catalog systematic
(``catalog_systematic``, default from the catalog's ``meta['zp_systematic']``, else 0) in
quadrature. ``scatter`` is the rms of the used stars' residuals.
"""

import json
import logging
import math
from dataclasses import dataclass, field

import numpy as np
from astropy.table import Table

from ..exceptions import FitError, InputError
from ..stats import MAD_TO_SIGMA, mad_std, solve_excess_variance
from .reasons import (
    MIN_STARS_STRICT,
    REASON_CODES,
    SEPARATOR,
    SOFT_REASONS,
    catalog_reasons,
    flag_reasons,
    reason_counts,
)
from .settings import fit_settings

__all__ = ["fit_zeropoint", "fit_zeropoint_arrays", "ZeroPoint", "ArrayFit",
           "parse_color", "MIN_STARS", "MIN_STARS_COLOR", "MIN_COLOR_RANGE", "JSON_KEYS"]

log = logging.getLogger(__name__)

MIN_STARS = 3
MIN_STARS_COLOR = 10
MIN_COLOR_RANGE = 0.3

#: The keys of zeropoint.json required by docs/architecture.md section 4, in order.
JSON_KEYS = ("zp", "zp_err", "zp_err_total", "scatter", "n_matched", "n_used", "band", "color",
             "color_term", "color_term_err", "aperture_correction", "sky_sb", "sky_sb_err",
             "exptime", "catalog")


@dataclass
class ArrayFit:
    """Result of :func:`fit_zeropoint_arrays`.

    Attributes
    ----------
    zp, zp_err : float
    color_term, color_term_err : float
        0 and NaN when no colour term was fitted.
    color_ref : float or None
    sigma_int : float
    scatter : float
        rms of the used stars' residuals.
    chi2_dof : float
        At the solved sigma_int (1 unless sigma_int = 0).
    used : ndarray of bool
    clipped : ndarray of bool
        Candidates removed by the clipping.
    residual : ndarray
        ``y - model`` for every star (NaN where y is not finite).
    err : ndarray
        Per-star error with the floor (without sigma_int).
    n_used : int
    fit_color : bool
    color_term_reason : str
        Why the colour term was not fitted ('' if it was).
    iterations : int
    """

    zp: float
    zp_err: float
    color_term: float
    color_term_err: float
    color_ref: float | None
    sigma_int: float
    scatter: float
    chi2_dof: float
    used: np.ndarray
    clipped: np.ndarray
    residual: np.ndarray
    err: np.ndarray
    n_used: int
    fit_color: bool
    color_term_reason: str = ""
    iterations: int = 0


def _wls(y, e2, s2, col, vx=None, cxy=None):
    """Weighted least squares of y = a (+ b col) with variance e2 + s2.

    With the colour's error variance ``vx`` and its error covariance with y ``cxy`` (errors in
    both variables): the weights use the variance of ``y - a - b col``,
    ``e2 + s2 + b^2 vx - 2 b cxy``, and the second moments are corrected for the errors,
    ``S_xx - sum(w vx)``, ``S_xy - sum(w cxy)`` (a BCES-style moment correction), iterated on b.
    Without it the slope is attenuated by the colour errors and, as ``y = m_cat - m_inst``
    shares the catalog error of the band with the colour, pulled further down.
    Returns (a, b, cov, residuals, weights)."""
    if col is None:
        w = 1.0 / (e2 + s2)
        sw = w.sum()
        a = float((w @ y) / sw)
        return a, 0.0, np.array([[1.0 / sw, 0.0], [0.0, np.nan]]), y - a, w
    b = 0.0
    eiv = vx is not None
    for _ in range(4 if eiv else 1):
        var = e2 + s2
        if eiv:
            var = np.maximum(var + b * b * vx - 2.0 * b * cxy, 0.25 * (e2 + s2))
        w = 1.0 / var
        sw = w.sum()
        sy = w @ y
        wc = w * col
        sx = wc.sum()
        sxx = wc @ col
        sxy = wc @ y
        if eiv:
            sxx_c, sxy_c = sxx - w @ vx, sxy - w @ cxy
            # a correction eating most of the colour spread is no estimate: keep the plain one
            if sxx_c * sw - sx * sx > 0.25 * (sxx * sw - sx * sx):
                sxx, sxy = sxx_c, sxy_c
        det = sw * sxx - sx * sx
        if not det > 0:
            a = float(sy / sw)
            return a, 0.0, np.array([[1.0 / sw, 0.0], [0.0, np.nan]]), y - a, w
        a = (sxx * sy - sx * sxy) / det
        b_new = (sw * sxy - sx * sy) / det
        done = abs(b_new - b) < 1e-7
        b = b_new
        if done:
            break
    cov = np.array([[sxx, -sx], [-sx, sw]]) / det
    return float(a), float(b), cov, y - a - b * col, w


def _solve_sigma_int(y, e2, col, npar, vx=None, cxy=None):
    """sigma_int^2 >= 0 with chi2/dof = 1 (Brent's method; 0 if chi2/dof <= 1 already)."""
    dof = y.size - npar
    if dof <= 0:
        return 0.0

    def chi2(s2):
        _, _, _, r, w = _wls(y, e2, s2, col, vx, cxy)
        return float((r * r) @ w)

    hi = max(float(np.var(y)) * 4.0, float(np.max(e2)), 1e-8)
    return solve_excess_variance(chi2, dof, hi, xtol=1e-10, rtol=1e-6, grow_until=1e4)


def _robust_sigma_int(r, e2):
    """sigma_int^2 >= 0 with ``1.4826 * median(|r - median(r)| / sqrt(e2 + s2)) = 1``
    (bisection; 0 when the stated errors already cover the robust scatter)."""
    r = np.abs(r - np.median(r))

    def scale(s2):
        return MAD_TO_SIGMA * float(np.median(r / np.sqrt(e2 + s2)))

    if r.size < 3 or scale(0.0) <= 1.0:
        return 0.0
    # bisection on sigma (a starting value for the clipping: 1% is plenty)
    lo, hi = 0.0, max(2.0 * MAD_TO_SIGMA * float(np.median(r)), 1e-4)
    while scale(hi * hi) > 1.0 and hi < 100.0:
        hi *= 2.0
    while hi - lo > 0.01 * hi + 1e-5:
        mid = 0.5 * (lo + hi)
        if scale(mid * mid) > 1.0:
            lo = mid
        else:
            hi = mid
    return hi * hi


@dataclass
class _Problem:
    """The arrays of one zero-point fit: ``y``, its variance ``e2`` (floored), and for a
    colour term the centred colour ``c``, its variance ``vx`` and covariance with y ``cxy``."""

    y: np.ndarray
    e2: np.ndarray
    c: np.ndarray | None = None
    vx: np.ndarray | None = None
    cxy: np.ndarray | None = None

    @property
    def npar(self):
        return 1 if self.c is None else 2

    def subset(self, used):
        """(y, e2, c, vx, cxy) of the ``used`` stars, for :func:`_wls`."""
        def pick(a):
            return None if a is None else a[used]

        return self.y[used], self.e2[used], pick(self.c), pick(self.vx), pick(self.cxy)

    def variance(self, s2, b, rows=slice(None)):
        """Each star's residual variance with intrinsic variance ``s2`` and colour term ``b``."""
        var = self.e2[rows] + s2
        if self.vx is not None:
            var = np.maximum(var + b * b * self.vx[rows] - 2.0 * b * self.cxy[rows], 0.25 * var)
        return var

    def model(self, a, b):
        return a + (b * self.c if self.c is not None else 0.0)


def _candidates(y, y_err, use):
    """Finite stars with a non-negative error (and in ``use``)."""
    if y.shape != y_err.shape:
        raise InputError(f"y and y_err differ in shape: {y.shape} vs {y_err.shape}")
    cand = np.isfinite(y) & np.isfinite(y_err) & (y_err >= 0)
    if use is not None:
        use = np.asarray(use, dtype=bool)
        if use.shape != y.shape:
            raise InputError(f"use has shape {use.shape}, y has {y.shape}")
        cand &= use
    return cand


def _colour_decision(col, cand, fit_color):
    """(fit the colour term?, candidates, reason if not): at least MIN_STARS_COLOR stars with
    a colour spanning MIN_COLOR_RANGE (5-95 percentiles)."""
    if col is None:
        return False, cand, "no colour given"
    if fit_color is False:
        return False, cand, "not asked (fit_color=False)"
    cc = cand & np.isfinite(col)
    nc = int(cc.sum())
    span = (float(np.subtract(*np.percentile(col[cc], [95, 5]))) if nc >= 2 else 0.0)
    reason = ""
    if nc < MIN_STARS_COLOR:
        reason = f"too few stars with a colour ({nc} < {MIN_STARS_COLOR})"
    elif span < MIN_COLOR_RANGE:
        reason = (f"colour range too small ({span:.2f} mag between the 5th and 95th "
                  f"percentiles < {MIN_COLOR_RANGE})")
    if reason:
        # the result says why (``color_term_reason``; the CLI's notes, Glue's zero-point
        # viewer): a log warning on stderr would repeat it at every brushing update
        log.info("colour term not fitted: %s", reason)
        return False, cand, reason
    return True, cc, reason


def _colour_terms(col, cand, e2, color_ref, colour_err, colour_cov):
    """(centred colour, colour variance, y-colour covariance, color_ref); the reference
    defaults to the weighted mean colour of the candidates."""
    if color_ref is None:
        w0 = 1.0 / e2[cand]
        color_ref = float(np.sum(w0 * col[cand]) / np.sum(w0))
    vx = cxy = None
    if colour_err is not None or colour_cov is not None:
        zeros = np.zeros(col.size)

        def clean(a):
            return zeros if a is None else np.nan_to_num(np.asarray(a, float), nan=0.0,
                                                          posinf=0.0)

        vx, cxy = clean(colour_err) ** 2, clean(colour_cov)
    return col - color_ref, vx, cxy, color_ref


def _first_clip(p, cand, clip_sigma, min_stars):
    """Start from the median and a robust intrinsic scatter (the MAD of the normalised
    residuals made 1), so that bright stars with tiny errors are not clipped for a scatter
    the errors miss. Returns (used, starting zero point)."""
    used = cand.copy()
    zp0 = float(np.median(p.y[cand]))
    if clip_sigma is None:
        return used, zp0
    r0 = p.y - zp0
    s2_0 = _robust_sigma_int(r0[cand], p.e2[cand])
    z = r0 / np.sqrt(p.e2 + s2_0)
    zc = z[cand]
    mad = mad_std(zc)
    if mad > 0:
        used = cand & (np.abs(z - np.median(zc)) <= clip_sigma * mad)
    if used.sum() < min_stars:
        used = cand.copy()
    return used, zp0


def _fit_and_clip(p, cand, used, zp0, clip_sigma, maxiter, min_stars):
    """Solve sigma_int and the weighted fit, clip on the MAD scale of the normalised
    residuals, repeat until the set does not change. Returns (used, s2, a, b, cov, rounds)."""
    it, s2, a, b = 0, 0.0, zp0, 0.0
    cov = np.full((2, 2), np.nan)
    for _ in range(int(maxiter)):
        it += 1
        yu, e2u, cu, vu, xu = p.subset(used)
        s2 = _solve_sigma_int(yu, e2u, cu, p.npar, vu, xu)
        a, b, cov, _, _ = _wls(yu, e2u, s2, cu, vu, xu)
        if clip_sigma is None:
            break
        z = (p.y - p.model(a, b)) / np.sqrt(p.variance(s2, b))
        zc = z[used]
        med = float(np.median(zc))
        mad = mad_std(zc)
        if not mad > 0:
            break
        new = cand & (np.abs(z - med) <= clip_sigma * mad)
        if new.sum() < min_stars or np.array_equal(new, used):
            break
        used = new
    return used, s2, a, b, cov, it


def fit_zeropoint_arrays(y, y_err, colour=None, *, use=None, colour_err=None, colour_cov=None,
                         min_stars=MIN_STARS, settings=None, **keywords):
    """The zero-point fit on plain arrays (fast; used by the Glue viewer on brushed subsets).

    Parameters
    ----------
    y : array
        ``m_cat - m_inst`` per star.
    y_err : array
        ``sqrt(sigma_inst^2 + sigma_cat^2)`` per star (the floor is applied here).
    colour : array, optional
        Catalog colour per star (NaN = unknown; such stars are left out only when the colour
        term is fitted).
    use : array of bool, optional
        Candidates (False = excluded before the fit, e.g. flagged or brushed away).
    colour_err : array, optional
        Error of each star's colour (mag; NaN = 0). The colour term is then fitted with
        errors in both variables (:func:`_wls`), so that catalog colour errors do not bias it
        low (by ~0.7 of its error over the injection-recovery seeds without this).
    colour_cov : array, optional
        Covariance of the errors of ``y`` and of the colour (mag^2): ``-err_V^2`` for
        ``y = V_cat - m_inst`` with the colour ``B - V`` (the V error is in both).
    min_stars : int
        Fewest stars for a fit.
    settings : FitSettings, optional
        ``color_ref`` (default the weighted mean colour of the candidates), ``clip_sigma``
        (on the MAD scale of the normalised residuals; None or inf: none), ``floor`` (minimum
        per-star error, mag), ``maxiter`` (clipping rounds), ``fit_color`` (None: fit the
        colour term when a colour is given and supported; True: the same but log a warning
        when not supported; False: never).
    **keywords
        Any :class:`~glue_zeropoint.zeropoint.settings.FitSettings` field, overriding
        ``settings`` (the keywords this function always took).

    Returns
    -------
    ArrayFit

    Raises
    ------
    FitError
        Fewer than ``min_stars`` usable stars.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = 21.5 + rng.normal(0, 0.02, 100)
    >>> fit = fit_zeropoint_arrays(y, np.full(100, 0.02))
    >>> abs(fit.zp - 21.5) < 3 * fit.zp_err, fit.n_used
    (True, 100)
    """
    s = fit_settings(settings, **keywords)
    y = np.asarray(y, dtype=float)
    y_err = np.asarray(y_err, dtype=float)
    cand = _candidates(y, y_err, use)
    col = None if colour is None else np.asarray(colour, dtype=float)
    want_color, cand, reason = _colour_decision(col, cand, s.fit_color)
    if cand.sum() < min_stars:
        raise FitError(f"only {int(cand.sum())} usable star(s) for the zero point (need "
                       f"{min_stars}); check the matches, flags and exclusions")
    err = np.maximum(np.where(np.isfinite(y_err), y_err, np.inf), float(s.floor))
    p = _Problem(y=y, e2=err * err)
    color_ref = s.color_ref
    if want_color:
        p.c, p.vx, p.cxy, color_ref = _colour_terms(col, cand, p.e2, color_ref, colour_err,
                                                    colour_cov)
    clip = s.clip_sigma if s.clip_sigma is not None and math.isfinite(s.clip_sigma) else None
    used, zp0 = _first_clip(p, cand, clip, min_stars)
    used, s2, a, b, cov, it = _fit_and_clip(p, cand, used, zp0, clip, s.maxiter, min_stars)
    resid = np.where(np.isfinite(y), y - p.model(a, b), np.nan)
    if p.c is not None:
        resid = np.where(np.isfinite(p.c), resid, np.nan)
    ru = resid[used]
    dof = max(int(used.sum()) - p.npar, 1)
    chi2 = float(np.sum(ru * ru / p.variance(s2, b, used))) / dof
    return ArrayFit(
        zp=a, zp_err=float(math.sqrt(cov[0, 0])),
        color_term=b if want_color else 0.0,
        color_term_err=float(math.sqrt(cov[1, 1])) if want_color else float("nan"),
        color_ref=color_ref, sigma_int=float(math.sqrt(s2)),
        scatter=float(np.sqrt(np.mean(ru * ru))), chi2_dof=chi2, used=used,
        clipped=cand & ~used, residual=resid, err=err, n_used=int(used.sum()),
        fit_color=bool(want_color), color_term_reason=reason, iterations=it)


def parse_color(color):
    """``'B-V'`` -> ``('B', 'V')``; None -> None.

    Examples
    --------
    >>> parse_color('B-V'), parse_color("g-r")
    (('B', 'V'), ('g', 'r'))
    """
    if color is None or color == "":
        return None
    if isinstance(color, (tuple, list)) and len(color) == 2:
        return str(color[0]), str(color[1])
    parts = str(color).split("-")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise InputError(f"color must look like 'B-V' (two bands and a minus), got {color!r}")
    return parts[0].strip(), parts[1].strip()


def _float_col(table, name):
    if name not in table.colnames:
        return None
    col = table[name]
    values = np.array(col, dtype=float)
    mask = getattr(col, "mask", None)
    if mask is not None and np.any(mask):
        values[np.asarray(mask, bool)] = np.nan
    return values


def _catalog_bands(table, prefix="cat_mag_"):
    return sorted(c[len(prefix):] for c in table.colnames if c.startswith(prefix))


@dataclass
class ZeroPoint:
    """A zero point with its errors, colour term and the per-star table behind it.

    Attributes
    ----------
    zp, zp_err, zp_err_total : float
        The ZP (mag giving 1 e-/s at ``color_ref``), its statistical error and the total error
        (adds the aperture-correction and catalog systematic errors in quadrature).
    scatter : float
        rms of the used stars' residuals (mag).
    sigma_int : float
        Intrinsic scatter solved so that chi^2/dof = 1.
    n_matched, n_used : int
    band : str
    color : str or None
        E.g. ``'B-V'``.
    color_term, color_term_err : float or None
        None when no colour term was fitted.
    color_ref : float or None
    color_term_reason : str
    aperture_correction : float
        Multiplicative factor applied to the aperture fluxes (``aperture_correction_mag`` is
        the same in magnitudes) and ``aperture_correction_err`` (mag).
    catalog_systematic : float
    sky_sb, sky_sb_err : float or None
        Sky surface brightness (mag/arcsec^2), filled by :func:`measure_image`.
    exptime : float or None
    catalog : str
    stars : `~astropy.table.Table`
        Per star: ``star_id``, ``x_image``, ``y_image``, ``ra``, ``dec``, ``cat_id``,
        ``mag_cat``, ``mag_cat_err``, ``mag_inst``, ``mag_inst_err``, ``colour``, ``y``,
        ``y_err``, ``residual``, ``used``, ``reason`` (``''`` for a used star, else the
        codes of :data:`glue_zeropoint.zeropoint.reasons.REASONS`, comma-separated).
    rejected : dict
        Number of stars per reason code (a star with two reasons counts under both).
    """

    zp: float
    zp_err: float
    zp_err_total: float
    scatter: float
    sigma_int: float
    n_matched: int
    n_used: int
    band: str
    color: str | None = None
    color_term: float | None = None
    color_term_err: float | None = None
    color_ref: float | None = None
    color_term_reason: str = ""
    aperture_correction: float = 1.0
    aperture_correction_mag: float = 0.0
    aperture_correction_err: float = 0.0
    catalog_systematic: float = 0.0
    sky_sb: float | None = None
    sky_sb_err: float | None = None
    exptime: float | None = None
    catalog: str = ""
    chi2_dof: float = float("nan")
    n_clipped: int = 0
    rejected: dict = field(default_factory=dict)
    stars: Table = field(default=None, repr=False)

    def to_dict(self):
        """The zeropoint.json content: docs/architecture.md section-4 keys first, then extras.

        Examples
        --------
        >>> zp = ZeroPoint(zp=21.5, zp_err=0.003, zp_err_total=0.004, scatter=0.02,
        ...                sigma_int=0.0, n_matched=50, n_used=48, band='V')
        >>> list(zp.to_dict())[:4]
        ['zp', 'zp_err', 'zp_err_total', 'scatter']
        """
        d = {key: getattr(self, key) for key in JSON_KEYS}
        d.update({"sigma_int": self.sigma_int, "color_ref": self.color_ref,
                  "color_term_reason": self.color_term_reason,
                  "aperture_correction_mag": self.aperture_correction_mag,
                  "aperture_correction_err": self.aperture_correction_err,
                  "catalog_systematic": self.catalog_systematic,
                  "chi2_dof": self.chi2_dof, "n_clipped": self.n_clipped,
                  "rejected": dict(self.rejected or {})})
        return {k: _plain(v) for k, v in d.items()}

    def to_json(self, **kwargs):
        """JSON text of :meth:`to_dict` (NaN -> null)."""
        from ..io import to_jsonable

        kwargs.setdefault("indent", 2)
        return json.dumps(to_jsonable(self.to_dict()), **kwargs)

    @classmethod
    def from_dict(cls, d, stars=None):
        """Rebuild from :meth:`to_dict` output (null -> None or NaN); ``stars`` optional."""
        names = set(cls.__dataclass_fields__) - {"stars"}
        kwargs = {k: v for k, v in d.items() if k in names}
        for key in ("zp", "zp_err", "zp_err_total", "scatter", "sigma_int"):
            if kwargs.get(key) is None:
                kwargs[key] = float("nan")
        kwargs.setdefault("sigma_int", float("nan"))
        for key in ("n_matched", "n_used", "band"):
            if key not in kwargs:
                raise InputError(f"zero point: key {key!r} missing from the dictionary")
        return cls(**kwargs, stars=stars)

    @classmethod
    def from_json(cls, text, stars=None):
        return cls.from_dict(json.loads(text), stars=stars)

    def to_table(self):
        """A one-row table of :meth:`to_dict` (None -> masked/NaN)."""
        d = self.to_dict()
        return Table({k: [np.nan if v is None else v] for k, v in d.items()
                      if not isinstance(v, (dict, list))})

    def residual_model(self, colour):
        """Model ``ZP + c (colour - colour_ref)``."""
        c = self.color_term or 0.0
        ref = self.color_ref or 0.0
        return self.zp + c * (np.asarray(colour, float) - ref)


def _plain(v):
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _reason_strings(codes, n):
    """``{code: bool array}`` -> one reason string per star, codes in vocabulary order."""
    reason = np.full(n, "", dtype=object)
    order = [c for c in REASON_CODES if c in codes] + [c for c in codes if c not in REASON_CODES]
    for code in order:
        _add_reason(reason, codes[code], code)
    return reason


def _add_reason(reason, cond, code):
    """Append ``code`` to the reason strings (object array, in place) where ``cond``."""
    cond = np.asarray(cond, bool)
    if not cond.any():
        return
    empty = reason == ""
    reason[cond & empty] = code
    more = cond & ~empty
    if more.any():
        reason[more] = reason[more] + (SEPARATOR + code)


def _aperture_geometry(meta):
    """``(aperture_radius, (r_in, r_out), fwhm)`` from a stars/matches meta, or None."""
    glue_meta = meta.get("zp_aperture") or {}

    def value(*names):
        for source, name in names:
            try:
                v = float(source.get(name))
            except (TypeError, ValueError):
                continue
            if math.isfinite(v):
                return v
        return None

    r_ap = value((meta, "aperture_radius"), (glue_meta, "r"))
    if r_ap is None or not r_ap > 0:
        return None
    r_in = value((meta, "annulus_in"), (glue_meta, "r_in"))
    r_out = value((meta, "annulus_out"), (glue_meta, "r_out"))
    fwhm = value((meta, "fwhm"), (glue_meta, "fwhm")) or 0.0
    annulus = (r_in, r_out) if r_in is not None and r_out is not None else None
    return r_ap, annulus, fwhm


def _neighbours(matches, m_inst):
    """(in_aperture, in_annulus) of every row, or all False when positions/radii are unknown."""
    from ..photometry.flags import neighbours

    n = len(matches)
    none = np.zeros(n, bool), np.zeros(n, bool)
    geometry = _aperture_geometry(matches.meta or {})
    if geometry is None or "x" not in matches.colnames or "y" not in matches.colnames:
        return none
    flux = None
    for name in ("flux", "flux_aper"):
        if name in matches.colnames:
            flux = _float_col(matches, name)
            break
    if flux is None:
        flux = 10.0 ** (-0.4 * m_inst)
    r_ap, annulus, fwhm = geometry
    return neighbours(_float_col(matches, "x"), _float_col(matches, "y"), flux, r_ap, annulus,
                      fwhm)


def _colour_columns(matches, color, band_names):
    """(pair, colour, colour error) of a ``'B-V'`` colour from the catalog columns."""
    from ..exceptions import CatalogError

    pair = parse_color(color)
    if pair is None:
        return None, None, None
    missing = [b for b in pair if f"cat_mag_{b}" not in matches.colnames]
    if missing:
        raise CatalogError(f"colour {color!r}: catalog has no band "
                           f"{', '.join(missing)} (bands: {', '.join(band_names)})")
    colour = _float_col(matches, f"cat_mag_{pair[0]}") - _float_col(matches, f"cat_mag_{pair[1]}")
    e1 = _float_col(matches, f"cat_err_{pair[0]}")
    e2 = _float_col(matches, f"cat_err_{pair[1]}")
    colour_err = (np.hypot(e1, e2) if e1 is not None and e2 is not None
                  else np.full(len(matches), np.nan))
    return pair, colour, colour_err


@dataclass
class _Mags:
    """Catalog and instrumental magnitudes of the matches, and ``y = m_cat - m_inst``."""

    m_cat: np.ndarray
    e_cat: np.ndarray
    e_cat_used: np.ndarray  # NaN -> 0 (the floor then covers it)
    m_inst: np.ndarray
    e_inst: np.ndarray

    @property
    def y(self):
        return self.m_cat - self.m_inst

    @property
    def y_err(self):
        return np.hypot(self.e_inst, self.e_cat_used)


def _require_band(matches, band):
    from ..exceptions import CatalogError

    if f"cat_mag_{band}" not in matches.colnames:
        bands = _catalog_bands(matches)
        raise CatalogError(f"catalog has no band {band!r} (bands: "
                           f"{', '.join(bands) if bands else 'none'}); choose one of those "
                           "with --band or another catalog")


def _magnitudes(matches, band, floor):
    """:class:`_Mags` of the matches in ``band`` (a missing catalog error: the floor, logged)."""
    n = len(matches)
    m_cat = _float_col(matches, f"cat_mag_{band}")
    e_cat = _float_col(matches, f"cat_err_{band}")
    if e_cat is None:
        e_cat = np.full(n, np.nan)
    m_inst = _float_col(matches, "mag_inst")
    e_inst = _float_col(matches, "mag_inst_err")
    if m_inst is None or e_inst is None:
        raise InputError("matches: no mag_inst / mag_inst_err columns; measure the stars with "
                         "photometry.measure_stars first")
    no_err = np.isfinite(m_cat) & ~np.isfinite(e_cat)
    if no_err.any():
        log.info("%d catalog stars have no %s error; the %.3f mag floor is used",
                 no_err.sum(), band, floor)
    return _Mags(m_cat=m_cat, e_cat=e_cat, e_cat_used=np.where(np.isfinite(e_cat), e_cat, 0.0),
                 m_inst=m_inst, e_inst=e_inst)


def _user_exclusion(matches, exclude):
    """Boolean array of the stars the user excluded (a mask, or star ids)."""
    n = len(matches)
    user = np.zeros(n, bool)
    if exclude is None:
        return user
    ex = np.asarray(exclude)
    if ex.dtype == bool:
        if ex.shape != (n,):
            raise InputError(f"exclude: a boolean array must have {n} elements, got "
                             f"{ex.shape}")
        return ex.copy()
    if ex.size:
        if "star_id" not in matches.colnames:
            raise InputError("exclude: star ids given but matches has no star_id column")
        user = np.isin(np.asarray(matches["star_id"]), ex)
    return user


def _match_and_flags(matches):
    n = len(matches)
    match = (np.array(matches["match"]).astype(str) if "match" in matches.colnames
             else np.full(n, "ok"))
    flags = (np.array(matches["flags"]).astype(np.int64) if "flags" in matches.colnames
             else np.zeros(n, np.int64))
    return match, flags


def _reason_codes(matches, band, mags, match, flags, user, s):
    """Every reason (zeropoint/reasons.py is the vocabulary) -> boolean array."""
    n = len(matches)
    matched = match != "none"
    codes = {"no_match": ~matched, "ambiguous": match == "ambiguous",
             "no_cat_mag": matched & ~np.isfinite(mags.m_cat)}
    for code, cond in catalog_reasons(matches, band, s.max_cat_err).items():
        codes[code] = cond & matched
    codes.update(flag_reasons(flags))
    no_flux = ~np.isfinite(mags.m_inst) | ~np.isfinite(mags.e_inst)
    codes["no_flux"] = codes.get("no_flux", np.zeros(n, bool)) | no_flux
    if s.check_neighbours:
        in_ap, in_an = _neighbours(matches, mags.m_inst)
        codes["crowded"] = codes.get("crowded", np.zeros(n, bool)) | in_ap
        codes["sky_crowded"] = in_an
    codes["excluded"] = user
    return codes


def _candidate_reasons(codes, n):
    """(reason strings, candidates, relaxed codes): in a sparse field (fewer than
    MIN_STARS_STRICT pass) the precautionary reasons give way rather than leave no fit."""
    reason = _reason_strings(codes, n)
    cand = reason == ""
    relaxed = []
    if cand.sum() < MIN_STARS_STRICT:
        hard = {k: v for k, v in codes.items() if k not in SOFT_REASONS}
        loose = _reason_strings(hard, n)
        if (loose == "").sum() > cand.sum():
            relaxed = [c for c in SOFT_REASONS if np.any(codes.get(c, False) & (loose == ""))]
            log.warning("only %d star(s) pass every check; %s not applied (%d stars more)",
                        int(cand.sum()), " and ".join(relaxed),
                        int((loose == "").sum() - cand.sum()))
            reason, cand = loose, loose == ""
    return reason, cand, relaxed


def _require_stars(reason, cand, n, band):
    if cand.sum() < MIN_STARS:
        summary = ", ".join(f"{v} {k}" for k, v in sorted(
            reason_counts(reason).items(), key=lambda kv: -kv[1]))
        raise FitError(f"only {int(cand.sum())} usable star(s) of {n} for the {band} zero "
                       f"point (need {MIN_STARS}); left out: {summary or 'none'}")


def _systematics(meta, zp_err, catalog_systematic):
    """(aperture correction, its error in mag, catalog systematic, total ZP error)."""
    ac = float(meta.get("aperture_correction", 1.0) or 1.0)
    ac_err = meta.get("aperture_correction_err", 0.0)
    ac_err_mag = (1.0857362047581294 * float(ac_err) / ac
                  if ac_err is not None and math.isfinite(float(ac_err)) else 0.0)
    if catalog_systematic is None:
        catalog_systematic = float(meta.get("zp_systematic", 0.0) or 0.0)
    total = math.sqrt(zp_err ** 2 + ac_err_mag ** 2 + float(catalog_systematic) ** 2)
    return ac, ac_err_mag, float(catalog_systematic), total


def _stars_table(matches, mags, colour, colour_err, fit, reason, flags, match):
    """The per-star table of the result (inputs, residual, used, reason)."""
    n = len(matches)
    stars = Table()
    stars["star_id"] = (np.asarray(matches["star_id"]) if "star_id" in matches.colnames
                        else np.arange(1, n + 1))
    for src, dst in (("x", "x_image"), ("y", "y_image"), ("ra", "ra"), ("dec", "dec")):
        if src in matches.colnames:
            stars[dst] = np.asarray(matches[src], float)
    if "cat_id" in matches.colnames:
        stars["cat_id"] = np.asarray(matches["cat_id"].filled("") if hasattr(
            matches["cat_id"], "filled") else matches["cat_id"]).astype(str)
    stars["mag_cat"] = mags.m_cat
    stars["mag_cat_err"] = mags.e_cat
    stars["mag_inst"] = mags.m_inst
    stars["mag_inst_err"] = mags.e_inst
    if colour is not None:
        stars["colour"] = colour
        stars["colour_err"] = colour_err
    stars["y"] = mags.y
    stars["y_err"] = mags.y_err
    stars["residual"] = fit.residual
    stars["used"] = fit.used
    stars["reason"] = reason.astype(str)
    stars["reason"].description = ("why the fit left the star out: codes of "
                                   "glue_zeropoint.zeropoint.reasons.REASONS, comma-separated")
    stars["flags"] = flags
    stars["match"] = match
    return stars


def fit_zeropoint(matches, band, *, color=None, exclude=None, exptime=None, catalog=None,
                  settings=None, **keywords):
    """Fit the zero point of crossmatched stars.

    Parameters
    ----------
    matches : `~astropy.table.Table`
        :func:`~glue_zeropoint.catalogs.crossmatch.crossmatch` output of
        :func:`~glue_zeropoint.photometry.measure_stars` stars: ``mag_inst``,
        ``mag_inst_err``, ``flags``, ``match``, ``cat_mag_<band>``, ``cat_err_<band>``,
        ``cat_variable``, ``cat_nonstellar``; ``meta`` with ``exptime`` and the aperture
        correction.
    band : str
        Catalog band (``'V'``, ``'r'``...).
    color : str, optional
        ``'B-V'``-style colour from catalog bands; enables the colour term.
    exclude : array of bool or sequence of star ids, optional
        Stars the user excluded (e.g. brushed in Glue): a boolean array as long as
        ``matches`` or values of its ``star_id`` column.
    exptime : float, optional
        Default ``matches.meta['exptime']``.
    catalog : str, optional
        Catalog name for the result; default from ``matches.meta['crossmatch']['catalog']``.
    settings : `~glue_zeropoint.zeropoint.settings.FitSettings`, optional
        ``color_ref``, ``clip_sigma``, ``floor``, ``maxiter``, ``fit_color`` (see
        :func:`fit_zeropoint_arrays` and the module notes); ``catalog_systematic`` (mag, added
        to ``zp_err_total``; default ``matches.meta['zp_systematic']`` or 0);
        ``max_cat_err`` (stars whose catalog error in ``band`` is larger are left out,
        ``cat_err``; None: no limit; default
        :data:`~glue_zeropoint.zeropoint.reasons.MAX_CAT_ERR`, 0.1); ``check_neighbours``
        (also leave out stars with a measured neighbour in the aperture, ``crowded``, or a
        much brighter one in the sky annulus, ``sky_crowded``, from the radii in the meta;
        see :func:`glue_zeropoint.photometry.flags.neighbours`).
    **keywords
        Any FitSettings field, overriding ``settings`` (the keywords this function took).

    When fewer than :data:`~glue_zeropoint.zeropoint.reasons.MIN_STARS_STRICT` (5) stars pass
    every check, the precautionary reasons (``cat_err``, ``sky_crowded``) are not applied
    (a warning, and ``stars.meta['relaxed']`` lists them) rather than leave too few stars.

    Returns
    -------
    ZeroPoint
        Its ``stars`` table has a ``reason`` per star: ``''`` if used, else the codes of
        :data:`glue_zeropoint.zeropoint.reasons.REASONS` (every one that applies, comma-
        separated); ``rejected`` counts the stars per code.

    Raises
    ------
    CatalogError
        The band (or a colour band) is not in the catalog columns (the message lists those
        there are).
    FitError
        Too few usable stars (the message counts why stars were left out).

    Examples
    --------
    >>> from glue_zeropoint.simulate import simulate_image, reference_catalog
    >>> from glue_zeropoint.photometry import find_stars, measure_stars
    >>> from glue_zeropoint.catalogs.crossmatch import crossmatch
    >>> ccd, truth = simulate_image(shape=(512, 512), n_stars=150, seed=1)
    >>> cat = reference_catalog(truth['field'], style='normalised')
    >>> stars = measure_stars(ccd, find_stars(ccd))
    >>> zp = fit_zeropoint(crossmatch(stars, cat), 'V')
    >>> abs(zp.zp - truth['filter'].zp) < 0.05
    True
    """
    s = fit_settings(settings, **keywords)
    n = len(matches)
    _require_band(matches, band)
    pair, colour, colour_err = _colour_columns(matches, color, _catalog_bands(matches))
    mags = _magnitudes(matches, band, s.floor)
    match, flags = _match_and_flags(matches)
    user = _user_exclusion(matches, exclude)
    codes = _reason_codes(matches, band, mags, match, flags, user, s)
    reason, cand, relaxed = _candidate_reasons(codes, n)
    _require_stars(reason, cand, n, band)
    colour_cov = None
    if pair is not None:
        # y = m_cat(band) - m_inst shares the band's catalog error with the colour
        sign = 1.0 if band == pair[0] else (-1.0 if band == pair[1] else 0.0)
        colour_cov = sign * mags.e_cat_used ** 2
    fit = fit_zeropoint_arrays(mags.y, mags.y_err, colour, use=cand, colour_err=colour_err,
                               colour_cov=colour_cov, settings=s)
    if fit.fit_color:
        _add_reason(reason, cand & ~np.isfinite(colour), "no_colour")
    _add_reason(reason, fit.clipped, "clipped")
    meta = matches.meta or {}
    ac, ac_err_mag, systematic, total = _systematics(meta, fit.zp_err, s.catalog_systematic)
    if catalog is None:
        catalog = (meta.get("crossmatch") or {}).get("catalog") or meta.get("catalog", "")
    stars = _stars_table(matches, mags, colour, colour_err, fit, reason, flags, match)
    rejected = reason_counts(reason)
    stars.meta.update({"band": band, "color": color, "zp": fit.zp, "rejected": rejected,
                       "relaxed": relaxed})
    fitted = fit.fit_color
    return ZeroPoint(
        zp=fit.zp, zp_err=fit.zp_err, zp_err_total=total, scatter=fit.scatter,
        sigma_int=fit.sigma_int, n_matched=int((match == "ok").sum()), n_used=fit.n_used,
        band=band, color=color if pair is not None else None,
        color_term=fit.color_term if fitted else None,
        color_term_err=fit.color_term_err if fitted else None,
        color_ref=fit.color_ref if fitted else s.color_ref,
        color_term_reason=fit.color_term_reason, aperture_correction=ac,
        aperture_correction_mag=-2.5 * math.log10(ac), aperture_correction_err=ac_err_mag,
        catalog_systematic=systematic,
        exptime=exptime if exptime is not None else meta.get("exptime"),
        catalog=str(catalog), chi2_dof=fit.chi2_dof, n_clipped=int(fit.clipped.sum()),
        rejected=rejected, stars=stars)
