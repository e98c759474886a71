"""Fit a TAN (optionally TAN-SIP) WCS to matched pixel/sky pairs, and refine it with all stars.

The fit is linear least squares: with CRPIX fixed at the image centre, the standard coordinates
(xi, eta) of a star projected about CRVAL are polynomials in the pixel offsets (u, v) from CRPIX,
whose linear part is the CD matrix and whose higher orders are CD times the SIP polynomials.
The constant term is the offset of CRVAL from the sky position of CRPIX: CRVAL is moved there
and the fit repeated until that offset vanishes (two or three rounds). Outliers are rejected by
iterative clipping on a robust (MAD) scale. When ``sip_degree`` is None the degree (1 = plain
TAN, up to 3) is chosen by the Bayesian information criterion, so distortion terms are only
added when the residuals call for them. The inverse SIP polynomials (AP, BP) are fitted on a
grid, so the WCS round-trips to ~1e-4 pixel in every program that reads the header.
"""

import logging
import warnings

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS, Sip
from scipy.spatial import cKDTree

from ..exceptions import AstrometryError, InputError
from ..stats import robust_sigma_about
from ._geometry import deproject, design_matrix, poly_terms, project

__all__ = ["fit_wcs_from_pairs", "refine_wcs", "fit_tan_sip", "TanSipFit", "match_xy",
           "MAX_AUTO_SIP_DEGREE"]

log = logging.getLogger(__name__)

#: Highest SIP degree chosen automatically (an explicit ``sip_degree`` may go higher).
MAX_AUTO_SIP_DEGREE = 3


def _min_stars(degree):
    """Smallest number of pairs for which a fit of this degree is possible."""
    if degree <= 1:
        return 3
    return 2 * len(poly_terms(degree)) + 5


def _min_auto_stars(degree):
    """Smallest number of pairs for which the automatic choice considers this degree.

    Five stars per polynomial term: with fewer, a high-degree polynomial can bend itself
    through a handful of wrong matches (or run away outside the stars).
    """
    if degree <= 1:
        return 3
    return 5 * len(poly_terms(degree))


class TanSipFit:
    """Result of :func:`fit_tan_sip`.

    Attributes
    ----------
    wcs : `~astropy.wcs.WCS`
        The fitted WCS (TAN or TAN-SIP), CRPIX at the image centre, ``pixel_shape`` set.
    degree : int
        Polynomial degree used (1 = plain TAN).
    inliers : ndarray of bool
        Pairs kept by the clipping.
    residuals : ndarray, shape (N, 2)
        Residuals of every pair in the tangent plane (arcsec, towards east and north).
    rms_arcsec : float
        Root mean square of the radial residual of the inliers.
    bic : dict
        Bayesian information criterion by degree (only when the degree was chosen).
    """

    def __init__(self, wcs, degree, inliers, residuals, bic=None):
        self.wcs = wcs
        self.degree = degree
        self.inliers = inliers
        self.residuals = residuals
        r2 = np.sum(residuals[inliers] ** 2, axis=1)
        self.rms_arcsec = float(np.sqrt(np.mean(r2))) if r2.size else float("nan")
        self.bic = bic or {}

    def __repr__(self):
        return (f"<TanSipFit degree={self.degree} n={int(self.inliers.sum())}/"
                f"{self.inliers.size} rms={self.rms_arcsec:.3f}\">")


def _lsq_solver(M):
    """Least-squares solver for a fixed design matrix (normal equations when well conditioned).

    The columns are monomials of coordinates normalised to [-1, 1], so the normal matrix is
    well conditioned; small dense solves avoid multithreaded BLAS, which is slow on a busy
    machine for these tall, thin matrices.
    """
    G = M.T @ M
    if np.linalg.cond(G) < 1e10:
        return lambda rhs: np.linalg.solve(G, M.T @ rhs)
    return lambda rhs: np.linalg.lstsq(M, rhs, rcond=None)[0]


def _solve_poly(un, vn, xi, eta, terms, crval, ra, dec, use, max_rounds=8):
    """Fit xi, eta (deg) as polynomials; move CRVAL until the constant terms vanish."""
    M = design_matrix(un, vn, terms)
    solve_lsq = _lsq_solver(M[use])  # the design matrix does not change when CRVAL moves
    for _ in range(max_rounds):
        coef = solve_lsq(np.column_stack([xi[use], eta[use]]))
        c0, d0 = coef[0]
        if abs(c0) < 1e-10 and abs(d0) < 1e-10:
            break
        crval = deproject(c0, d0, *crval)
        crval = (float(crval[0]), float(crval[1]))
        xi, eta = project(ra, dec, *crval)
    model = M @ coef
    res = np.column_stack([xi - model[:, 0], eta - model[:, 1]]) * 3600.0
    return coef, crval, res, xi, eta


def _clip(res, use, clip, min_keep):
    """One round of clipping on a robust scale; returns the new mask."""
    sigma = robust_sigma_about(res[use])
    sigma = max(sigma, 1e-4)  # arcsec: never clip below 0.1 mas
    new = np.all(np.abs(res) <= clip * sigma, axis=1)
    if new.sum() < min_keep:
        return use
    return new


def _fit_degree(u0, v0, ra, dec, crval, degree, L, use, clip, n_clip_rounds=6):
    terms = poly_terms(degree)
    un, vn = u0 / L, v0 / L
    xi, eta = project(ra, dec, *crval)
    for _ in range(n_clip_rounds + 1):
        coef, crval, res, xi, eta = _solve_poly(un, vn, xi, eta, terms, crval, ra, dec, use)
        if clip is None or use.sum() < 8:
            break
        new = _clip(res, use, clip, max(len(terms) + 2, 3))
        if np.array_equal(new, use):
            break
        use = new
    return terms, coef, crval, res, use


def _make_wcs(crval, crpix0, shape, terms, coef, L, degree):
    """Build the astropy WCS from the normalised polynomial coefficients."""
    ny, nx = shape
    scaled = {t: coef[k] / L ** (t[0] + t[1]) for k, t in enumerate(terms)}
    cd = np.array([[scaled[(1, 0)][0], scaled[(0, 1)][0]],
                   [scaled[(1, 0)][1], scaled[(0, 1)][1]]])
    if abs(np.linalg.det(cd)) < 1e-30:
        raise AstrometryError("the fitted CD matrix is singular: the matched stars are "
                              "collinear or coincide; use stars spread over the image")
    w = WCS(naxis=2)
    w.wcs.crval = list(crval)
    w.wcs.crpix = [crpix0[0] + 1.0, crpix0[1] + 1.0]
    w.wcs.cd = cd
    w.wcs.radesys = "ICRS"
    w.pixel_shape = (int(nx), int(ny))
    if degree <= 1:
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.set()
        return w
    cdi = np.linalg.inv(cd)
    a = np.zeros((degree + 1, degree + 1))
    b = np.zeros((degree + 1, degree + 1))
    for (p, q), c in scaled.items():
        if p + q >= 2:
            a[p, q], b[p, q] = cdi @ c
    ap, bp = _inverse_sip(a, b, shape, crpix0, degree + 1)
    w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    w.sip = Sip(a, b, ap, bp, w.wcs.crpix)
    w.wcs.set()
    return w


def _sip_eval(coeffs, u, v):
    out = np.zeros_like(u)
    n = coeffs.shape[0]
    for p in range(n):
        for q in range(n - p):
            if coeffs[p, q]:
                out += coeffs[p, q] * u ** p * v ** q
    return out


def _inverse_sip(a, b, shape, crpix0, degree, n_grid=40, margin=0.05):
    """Fit the inverse SIP polynomials AP, BP on a grid covering the image (plus a margin)."""
    ny, nx = shape
    gx = np.linspace(-margin * nx, (1 + margin) * (nx - 1), n_grid) - crpix0[0]
    gy = np.linspace(-margin * ny, (1 + margin) * (ny - 1), n_grid) - crpix0[1]
    uu, vv = (g.ravel() for g in np.meshgrid(gx, gy))
    U = uu + _sip_eval(a, uu, vv)
    V = vv + _sip_eval(b, uu, vv)
    L = max(nx, ny) / 2.0
    terms = poly_terms(degree, min_order=1)
    M = design_matrix(U / L, V / L, terms)
    coef, *_ = np.linalg.lstsq(M, np.column_stack([uu - U, vv - V]), rcond=None)
    ap = np.zeros((degree + 1, degree + 1))
    bp = np.zeros((degree + 1, degree + 1))
    for k, (p, q) in enumerate(terms):
        ap[p, q], bp[p, q] = coef[k] / L ** (p + q)
    resid = np.hypot(*(M @ coef - np.column_stack([uu - U, vv - V])).T)
    if resid.max() > 0.01:
        log.warning("inverse SIP polynomials reproduce the forward distortion only to %.3f "
                    "pixel (the distortion is strong for degree %d)", resid.max(), degree)
    return ap, bp


def _bic(res, use, n_terms):
    n = 2 * int(use.sum())
    rss = float(np.sum(res[use] ** 2))
    return n * np.log(max(rss, 1e-30) / n) + 2 * n_terms * np.log(n)


def fit_tan_sip(x, y, ra, dec, shape, *, degree=None, crval=None, clip=3.0,
                max_auto_degree=MAX_AUTO_SIP_DEGREE, inliers=None):
    """Fit a TAN or TAN-SIP WCS to matched pixel/sky positions by linear least squares.

    Parameters
    ----------
    x, y : array-like
        0-based pixel positions of the stars.
    ra, dec : array-like
        Their sky positions (degrees, ICRS).
    shape : tuple
        Image shape ``(ny, nx)``; CRPIX is put at its centre.
    degree : int or None
        Polynomial degree: 1 (or 0) fits plain TAN, 2 or more adds SIP terms of that degree.
        None chooses between 1 and ``max_auto_degree`` by the Bayesian information criterion,
        considering a degree only with at least 5 stars per polynomial term (30 stars for
        degree 2, 50 for degree 3).
    crval : tuple, optional
        Starting tangent point (degrees); the mean of the stars by default.
    clip : float or None
        Reject pairs whose residual exceeds ``clip`` robust standard deviations (None: keep all).
    inliers : array of bool, optional
        Pairs to start from (all by default).

    Returns
    -------
    TanSipFit

    Raises
    ------
    InputError
        If there are fewer than 3 pairs, or too few for the requested degree.
    """
    x, y, ra, dec = (np.asarray(a, dtype=float).ravel() for a in (x, y, ra, dec))
    if not (x.size == y.size == ra.size == dec.size):
        raise InputError(f"x, y, ra, dec must have the same length "
                         f"(got {x.size}, {y.size}, {ra.size}, {dec.size})")
    good = np.isfinite(x) & np.isfinite(y) & np.isfinite(ra) & np.isfinite(dec)
    use = good if inliers is None else (good & np.asarray(inliers, bool))
    n = int(use.sum())
    if n < 3:
        raise InputError(f"a WCS fit needs at least 3 matched stars with finite positions; "
                         f"got {n}")
    if degree is not None:
        degree = max(int(degree), 1)
        if n < _min_stars(degree) and degree > 1:
            raise InputError(f"sip_degree={degree} needs at least {_min_stars(degree)} matched "
                             f"stars; got {n}: lower sip_degree or match more stars")
    ny, nx = shape
    crpix0 = ((nx - 1) / 2.0, (ny - 1) / 2.0)
    L = max(nx, ny) / 2.0
    u0, v0 = x - crpix0[0], y - crpix0[1]
    if crval is None:
        c = SkyCoord(ra[use] * u.deg, dec[use] * u.deg)
        m = c.cartesian.mean()
        sc = SkyCoord(m, representation_type="cartesian").spherical
        crval = (float(sc.lon.deg), float(sc.lat.deg))
    bic = {}
    if degree is None:
        top = max(d for d in range(1, max_auto_degree + 1) if n >= _min_auto_stars(d))
        _, _, crv, res, use_top = _fit_degree(u0, v0, ra, dec, crval, top, L, use, clip)
        if top == 1:
            degree = 1
        else:
            for d in range(1, top + 1):
                _, _, _, res_d, _ = _fit_degree(u0, v0, ra, dec, crv, d, L, use_top, None)
                bic[d] = _bic(res_d, use_top, len(poly_terms(d)))
            degree = min(bic, key=bic.get)
            log.debug("SIP degree by BIC: %s -> %d", bic, degree)
        use = use_top
        crval = crv
    terms, coef, crval, res, use = _fit_degree(u0, v0, ra, dec, crval, degree, L, use, clip)
    wcs = _make_wcs(crval, crpix0, shape, terms, coef, L, degree)
    return TanSipFit(wcs, degree, use, res, bic)


def _as_xy(xy):
    arr = np.asarray(xy, dtype=float)
    if arr.ndim != 2 or 2 not in arr.shape:
        raise InputError(f"xy must be an (N, 2) array or a pair (x, y) of arrays; got shape "
                         f"{arr.shape}")
    if arr.shape[1] != 2 or (arr.shape[0] == 2 and arr.shape[1] != 2):
        arr = arr.T
    return arr[:, 0], arr[:, 1]


def fit_wcs_from_pairs(xy, skycoords, *, sip_degree=None, shape=None):
    """Fit a WCS from stars whose pixel and sky positions are both known.

    The linear TAN solution comes from :func:`astropy.wcs.utils.fit_wcs_from_points`; it is
    then refined by the linear least-squares fit of :func:`fit_tan_sip` with CRPIX at the image
    centre, SIP terms when asked for (or, with ``sip_degree=None``, when there are enough
    pairs and the residuals call for them), and proper inverse SIP coefficients. To refine the
    result with every detected star, pass it to :func:`refine_wcs`.

    Parameters
    ----------
    xy : array-like
        0-based pixel positions, an ``(N, 2)`` array or a pair ``(x, y)``; N >= 3.
    skycoords : `~astropy.coordinates.SkyCoord`
        The N sky positions.
    sip_degree : int or None
        0 or 1 for plain TAN, >= 2 for SIP of that degree, None to choose.
    shape : tuple, optional
        Image shape ``(ny, nx)``; by default the extent of the pixel positions.

    Returns
    -------
    `~astropy.wcs.WCS`

    Raises
    ------
    InputError
        Fewer than 3 pairs, mismatched lengths, or collinear stars.

    Examples
    --------
    >>> from astropy.coordinates import SkyCoord
    >>> xy = [(10, 10), (500, 40), (60, 700), (800, 900)]
    >>> sky = SkyCoord([250.30, 250.10, 250.29, 250.05], [36.40, 36.41, 36.59, 36.65],
    ...                unit='deg')
    >>> wcs = fit_wcs_from_pairs(xy, sky, shape=(1024, 1024))
    >>> wcs.wcs.ctype[0]
    'RA---TAN'
    """
    x, y = _as_xy(xy)
    if not isinstance(skycoords, SkyCoord):
        raise InputError(f"skycoords must be a SkyCoord, not {type(skycoords).__name__}")
    sky = skycoords.icrs
    if sky.size != x.size:
        raise InputError(f"{x.size} pixel positions but {sky.size} sky positions; give one "
                         "sky position per star")
    if x.size < 3:
        raise InputError(f"a WCS needs at least 3 stars with known pixel and sky positions; "
                         f"got {x.size}: match more stars")
    if shape is None:
        shape = (int(np.ceil(np.nanmax(y))) + 1, int(np.ceil(np.nanmax(x))) + 1)
    ra, dec = sky.ra.deg, sky.dec.deg
    area = abs((x[1:] - x[0])[:, None] * (y[1:] - y[0])[None, :]
               - (y[1:] - y[0])[:, None] * (x[1:] - x[0])[None, :]).max()
    if area < 1.0:
        raise InputError("the stars given are collinear: pick at least 3 stars that form a "
                         "triangle, spread over the image")
    from astropy.wcs.utils import fit_wcs_from_points

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # astropy evaluates its model with origin 0, so 0-based pixels are what it expects
        first = fit_wcs_from_points((x, y), sky, projection="TAN")
    ny, nx = shape
    c = first.pixel_to_world((nx - 1) / 2.0, (ny - 1) / 2.0).icrs
    degree = sip_degree if sip_degree is None else max(int(sip_degree), 1)
    fit = fit_tan_sip(x, y, ra, dec, shape, degree=degree, crval=(c.ra.deg, c.dec.deg),
                      clip=3.0 if x.size >= 8 else None)
    return fit.wcs


def match_xy(src_xy, ref_xy, radius):
    """One-to-one nearest-neighbour match of two point sets within ``radius``.

    Returns ``(i_src, i_ref, dist)``: for each matched source the index of its nearest reference
    point; a reference point claimed by several sources goes to the closest one.
    """
    src_xy = np.asarray(src_xy, float).reshape(-1, 2)
    ref_xy = np.asarray(ref_xy, float).reshape(-1, 2)
    if not len(src_xy) or not len(ref_xy):
        e = np.array([], int)
        return e, e, np.array([], float)
    ok = np.all(np.isfinite(ref_xy), axis=1)
    ref_idx = np.flatnonzero(ok)
    tree = cKDTree(ref_xy[ok])
    good_src = np.all(np.isfinite(src_xy), axis=1)
    dist = np.full(len(src_xy), np.inf)
    idx = np.full(len(src_xy), len(ref_idx))
    if good_src.any():
        dist[good_src], idx[good_src] = tree.query(src_xy[good_src], distance_upper_bound=radius)
    hit = np.isfinite(dist)
    i_src = np.flatnonzero(hit)
    i_ref = ref_idx[idx[hit]]
    d = dist[hit]
    order = np.argsort(d, kind="stable")
    _, first = np.unique(i_ref[order], return_index=True)
    keep = np.sort(order[first])
    return i_src[keep], i_ref[keep], d[keep]


def refine_wcs(wcs, x, y, ra, dec, *, shape=None, sip_degree=None, radius=None, n_iter=6,
               min_radius=1.0):
    """Refine a WCS with every star: match all detected stars to the catalog and refit.

    Each round projects the catalog with the current WCS, matches it one-to-one to the
    detected stars within a radius (pixels) that shrinks to 4 times the residual rms (never
    below ``min_radius``), and refits with :func:`fit_tan_sip`.

    Parameters
    ----------
    wcs : `~astropy.wcs.WCS`
        Starting WCS (e.g. from a few hand-matched pairs).
    x, y : array-like
        Detected star positions (0-based pixels).
    ra, dec : array-like
        Catalog positions (degrees).
    shape : tuple, optional
        Image shape ``(ny, nx)``; taken from ``wcs.pixel_shape`` if not given.
    sip_degree : int or None
        As in :func:`fit_tan_sip` (None: chosen by BIC).
    radius : float, optional
        First matching radius in pixels (default 10).

    Returns
    -------
    fit : TanSipFit
        The final fit; ``fit.wcs`` is the refined WCS.
    i_src, i_cat : ndarray
        Indices of the matched stars and catalog entries (inliers of the final fit).

    Raises
    ------
    AstrometryError
        If fewer than 3 stars match.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ra = np.asarray(ra, float)
    dec = np.asarray(dec, float)
    if shape is None:
        if wcs.pixel_shape is None:
            raise InputError("refine_wcs: give shape=(ny, nx); the WCS has no pixel_shape")
        shape = (wcs.pixel_shape[1], wcs.pixel_shape[0])
    r = 10.0 if radius is None else float(radius)
    src = np.column_stack([x, y])
    fit = None
    prev = None
    degree = None if sip_degree is None else max(int(sip_degree), 1)
    for _ in range(n_iter):
        cur = wcs if fit is None else fit.wcs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cx, cy = cur.all_world2pix(ra, dec, 0, quiet=True) if cur.sip is not None else \
                cur.wcs_world2pix(ra, dec, 0)
        i_src, i_cat, _ = match_xy(src, np.column_stack([cx, cy]), r)
        if i_src.size < 3:
            raise AstrometryError(f"only {i_src.size} stars match the catalog within {r:.1f} "
                                  "pixels of the WCS; the starting WCS is too far off")
        d = degree
        if d is not None and d > 1 and i_src.size < _min_stars(d):
            d = 1
        fit = fit_tan_sip(x[i_src], y[i_src], ra[i_cat], dec[i_cat], shape, degree=d,
                          crval=tuple(cur.wcs.crval))
        scale = np.sqrt(abs(np.linalg.det(fit.wcs.pixel_scale_matrix))) * 3600.0
        rms_pix = fit.rms_arcsec / scale
        key = (i_src[fit.inliers].tobytes(), fit.degree)
        new_r = max(min_radius, min(r, 4.0 * rms_pix))
        if key == prev and new_r >= r * 0.9:
            break
        prev = key
        r = new_r
    return fit, i_src[fit.inliers], i_cat[fit.inliers]
