"""Plate solving against a reference catalog: asterism match, significance test, TAN-SIP fit.

Steps: detect stars (or take a table of them); project the catalog on the tangent plane about
the rough centre; find candidate similarity transforms from matching triangles
(:mod:`.match`); check each candidate against the brightest stars and accept it only when the
false-alarm probability of its matches is below ``false_alarm`` (default 1e-9, counting every
candidate considered); fit a TAN WCS to the matches, then refine it with every detected star
and every catalog star, adding SIP terms when the residuals call for them; finally re-check the
significance with the final WCS. A wrong field gives an :class:`AstrometryError`, never a WCS.
"""

import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from scipy.spatial import ConvexHull, QhullError, cKDTree

from .._settings import Settings
from ..exceptions import AstrometryError, AstrometryWarning, InputError
from ..progress import report
from ..stats import pixel_scale_arcsec as _pix_scale
from ._geometry import project
from .detect import detect_sources
from .fit import fit_tan_sip, match_xy, refine_wcs
from .header import as_pixel_scale, as_sky_center, read_image, rough_pointing
from .match import false_alarm_log10, propose
from .quality import WCSQuality, catalog_radec, wcs_quality

__all__ = ["solve", "Solution", "SolveSettings"]

log = logging.getLogger(__name__)

_STEPS = 5


@dataclass
class Solution:
    """An astrometric solution.

    Attributes
    ----------
    wcs : `~astropy.wcs.WCS`
        TAN or TAN-SIP WCS of the image (``pixel_shape`` set).
    quality : WCSQuality
        Residuals of all detected stars matched to the catalog with this WCS.
    matches : `~astropy.table.Table`
        The pairs used in the final fit: ``source_index``, ``catalog_index`` (row in the
        catalog given), ``x``, ``y``, ``ra``, ``dec``, ``dx``, ``dy`` (pixel residual, star
        minus catalog), ``resid_arcsec``.
    n_matched : int
        Number of pairs in the final fit.
    sip_degree : int
        Degree of the distortion polynomial (1 = plain TAN).
    pixel_scale : float
        Arcsec per pixel at the image centre.
    rotation : float
        Position angle of the image +y axis, degrees east of north.
    flipped : bool
        True when the image is mirrored (determinant of the CD matrix > 0).
    log10_false_alarm : float
        log10 of the probability that a wrong solution lines up this many stars by chance.
    center : `~astropy.coordinates.SkyCoord`
        Sky position of the image centre.
    hints : dict
        Where the rough centre and scale came from.
    elapsed : float
        Seconds spent.
    """

    wcs: WCS
    quality: WCSQuality
    matches: Table
    n_matched: int
    sip_degree: int
    pixel_scale: float
    rotation: float
    flipped: bool
    log10_false_alarm: float
    center: SkyCoord
    hints: dict = field(default_factory=dict)
    elapsed: float = 0.0

    def to_dict(self):
        """JSON-ready summary (no WCS object; see :meth:`header`)."""
        return {"center_ra": float(self.center.ra.deg), "center_dec": float(self.center.dec.deg),
                "pixel_scale": self.pixel_scale, "rotation": self.rotation,
                "flipped": self.flipped, "sip_degree": self.sip_degree,
                "n_matched": self.n_matched, "log10_false_alarm": self.log10_false_alarm,
                "quality": self.quality.to_dict(), "hints": dict(self.hints),
                "elapsed": self.elapsed}

    def to_table(self):
        """The matched pairs (same as :attr:`matches`)."""
        return self.matches

    def header(self):
        """FITS header of the WCS (SIP included) with the quality as comment-bearing cards."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            h = self.wcs.to_header(relax=True)
        if self.wcs.pixel_shape is not None:
            h["IMAGEW"] = (int(self.wcs.pixel_shape[0]), "image width (pixels)")
            h["IMAGEH"] = (int(self.wcs.pixel_shape[1]), "image height (pixels)")
        h["ZP_NMAT"] = (self.n_matched, "stars matched in the astrometric fit")
        h["ZP_ARMS"] = (round(self.quality.rms_arcsec, 4), "[arcsec] rms of matched stars")
        h["ZP_PRMS"] = (round(self.quality.rms_pix, 4), "[pixel] rms of matched stars")
        h["ZP_LGFA"] = (round(self.log10_false_alarm, 1), "log10 false-alarm probability")
        h["HISTORY"] = "WCS solved by glue-zeropoint astrometry.solve"
        return h

    def __str__(self):
        c = self.center.to_string("hmsdms", precision=1)
        sip = f", SIP degree {self.sip_degree}" if self.sip_degree > 1 else ""
        return (f"solved: centre {c}, {self.pixel_scale:.4f} arcsec/pixel, rotation "
                f"{self.rotation:.2f} deg{' (mirrored)' if self.flipped else ''}{sip}; "
                f"{self.quality}")


# --------------------------------------------------------------------------- inputs


def _sources_and_header(obj, shape, fwhm):
    """(name, sources table sorted by flux, shape, header, wcs or None)."""
    if isinstance(obj, (str, Path)):
        data, header = read_image(obj)
        src = detect_sources(data, fwhm=fwhm)
        from .header import wcs_from_header

        try:
            w = wcs_from_header(header, data.shape)
        except InputError:
            w = None
        return Path(obj).name, src, data.shape, header, w
    if isinstance(obj, Table):
        names = obj.colnames
        xn, yn = next(((a, b) for a, b in (("x", "y"), ("xcentroid", "ycentroid"),
                                           ("x_centroid", "y_centroid"))
                       if a in names and b in names), (None, None))
        if xn is None:
            raise InputError(f"the sources table has no x/y columns (has {', '.join(names)})")
        t = Table()
        t["x"] = np.asarray(obj[xn], float)
        t["y"] = np.asarray(obj[yn], float)
        if "flux" in names:
            t["flux"] = np.asarray(obj["flux"], float)
            t["_row"] = np.arange(len(t))
            t.sort(["flux"], reverse=True)
        else:
            t["_row"] = np.arange(len(t))
        shape = shape or obj.meta.get("shape")
        if shape is None:
            shape = (int(np.ceil(np.nanmax(t["y"]))) + 1, int(np.ceil(np.nanmax(t["x"]))) + 1)
            warnings.warn(f"solve: no image shape given with the sources table; assuming "
                          f"{shape[1]}x{shape[0]} from the positions (pass shape=(ny, nx))",
                          AstrometryWarning, stacklevel=3)
        return "sources", t, tuple(int(s) for s in shape), obj.meta.get("header"), None
    data = getattr(obj, "data", obj)
    data = np.asarray(data)
    if data.ndim != 2:
        raise InputError(f"solve needs a 2-D image, a FITS path or a table of sources; got "
                         f"{type(obj).__name__} with shape {data.shape}")
    src = detect_sources(obj, fwhm=fwhm)
    header = getattr(obj, "meta", None) or getattr(obj, "header", None)
    if header is not None and not isinstance(header, fits.Header):
        try:
            header = fits.Header(dict(header))
        except Exception:  # noqa: BLE001 - meta may hold anything; we only want the keywords
            header = None
    w = getattr(obj, "wcs", None)
    if w is not None and not (isinstance(w, WCS) and w.has_celestial):
        w = None
    return "image", src, data.shape, header, w


def _obs_epoch(header):
    from ..obstime import observation_time

    t = observation_time(header)
    return None if t is None else float(t.jyear)


def _catalog_positions(catalog, header):
    """ra, dec (deg) at the observation epoch when the catalog has proper motions."""
    ra, dec = catalog_radec(catalog)
    if not isinstance(catalog, Table) or "pmra" not in catalog.colnames \
            or "pmdec" not in catalog.colnames:
        return ra, dec
    epoch = _obs_epoch(header)
    if epoch is None:
        return ra, dec
    ref = catalog["ref_epoch"] if "ref_epoch" in catalog.colnames else \
        np.full(len(catalog), float(catalog.meta.get("epoch", 2000.0)))
    ref = np.asarray(np.ma.filled(np.ma.asarray(ref, float), np.nan))
    pmra = np.nan_to_num(np.asarray(np.ma.filled(np.ma.asarray(catalog["pmra"], float),
                                                 np.nan)))
    pmdec = np.nan_to_num(np.asarray(np.ma.filled(np.ma.asarray(catalog["pmdec"], float),
                                                  np.nan)))
    dt = np.nan_to_num(epoch - ref)
    cosd = np.cos(np.deg2rad(dec))
    with np.errstate(invalid="ignore", divide="ignore"):
        ra2 = ra + pmra * dt / 3.6e6 / np.where(cosd > 1e-6, cosd, 1e-6)
    return ra2 % 360.0, dec + pmdec * dt / 3.6e6


def _catalog_mags(catalog, band, header):
    """Magnitudes used to rank catalog stars by brightness (NaN where unknown)."""
    if not isinstance(catalog, Table):
        return None
    cols = [c for c in catalog.colnames if c.startswith("mag_")]
    if band is not None:
        if f"mag_{band}" not in cols:
            raise InputError(f"catalog has no mag_{band} column (bands: "
                             f"{', '.join(c[4:] for c in cols) or 'none'})")
        name = f"mag_{band}"
    elif not cols:
        return None
    else:
        filt = str(header.get("FILTER", "")).strip() if header is not None else ""
        if f"mag_{filt}" in cols:
            name = f"mag_{filt}"
        else:
            counts = [np.isfinite(np.ma.filled(np.ma.asarray(catalog[c], float), np.nan)).sum()
                      for c in cols]
            name = cols[int(np.argmax(counts))]
    return np.asarray(np.ma.filled(np.ma.asarray(catalog[name], float), np.nan))


def _wcs_hints(w, shape):
    ny, nx = shape
    c = w.pixel_to_world((nx - 1) / 2.0, (ny - 1) / 2.0)
    c = c.icrs if isinstance(c, SkyCoord) else None
    s = float(np.sqrt(abs(np.linalg.det(w.celestial.pixel_scale_matrix))) * 3600.0)
    return c, s


def _hull_area(xy):
    if len(xy) < 3:
        return 0.0
    try:
        return float(ConvexHull(xy).volume)
    except QhullError:
        return 0.0


# --------------------------------------------------------------------------- core


class _Catalog:
    """The catalog around the rough centre, projected on the tangent plane (arcsec)."""

    def __init__(self, ra, dec, mags, center, radius_arcsec):
        xi, eta = project(ra, dec, center.ra.deg, center.dec.deg)
        xi, eta = xi * 3600.0, eta * 3600.0
        ok = np.isfinite(xi) & np.isfinite(eta)
        if radius_arcsec is not None:
            ok &= np.hypot(xi, eta) <= radius_arcsec
        idx = np.flatnonzero(ok)
        if mags is not None:
            m = mags[idx]
            order = np.lexsort((np.nan_to_num(m, nan=99.0), ~np.isfinite(m)))
            idx = idx[order]
        self.index = idx  # rows of the original catalog, brightest first
        self.xy = np.column_stack([xi[idx], eta[idx]])
        self.ra = ra[idx]
        self.dec = dec[idx]
        area = _hull_area(self.xy)
        if radius_arcsec is not None:
            area = min(area, math.pi * radius_arcsec ** 2) if area > 0 else \
                math.pi * radius_arcsec ** 2
        self.area = max(area, 1e-6)

    def __len__(self):
        return len(self.index)


def _verify(sim, src_xy, tri_src, cat_sub, density, scale_hint, n_trials, r0_pix=3.0,
            growth=0.004):
    """Count the stars a candidate lines up; refine with an affine map; return the verdict."""
    w = np.column_stack(sim.apply(src_xy[:, 0], src_xy[:, 1]))
    s = sim.scale
    tri_c = src_xy[tri_src].mean(axis=0)
    dist = np.hypot(src_xy[:, 0] - tri_c[0], src_xy[:, 1] - tri_c[1])
    r_i = (r0_pix + growth * dist) * s
    tree = cKDTree(cat_sub)
    d, j = tree.query(w, distance_upper_bound=r_i.max())
    hit = d <= r_i
    n1 = int(np.unique(j[hit]).size)
    lam1 = float(np.sum(1.0 - np.exp(-density * math.pi * r_i ** 2)))
    fa1 = false_alarm_log10(n1, lam1, n_trials)
    if n1 < 4:
        return None, fa1, n1
    # refine with an affine map on the matches, shrinking the radius
    i_s = np.flatnonzero(hit)
    i_c = j[hit]
    r = r_i.max()
    A = None
    for _ in range(5):
        M = np.column_stack([src_xy[i_s], np.ones(i_s.size)])
        keep = np.ones(i_s.size, bool)
        for _clip in range(3):  # robust affine: wrong pairs must not drag the fit
            A, *_ = np.linalg.lstsq(M[keep], cat_sub[i_c][keep], rcond=None)
            d = np.hypot(*(M @ A - cat_sub[i_c]).T)
            cut = max(3.0 * np.median(d[keep]) / 1.1774, 0.3 * s)
            new = d <= cut
            if new.sum() < 4 or np.array_equal(new, keep):
                break
            keep = new
        rms = float(np.sqrt(np.mean(d[keep] ** 2)))
        r = float(np.clip(3.0 * rms, 1.5 * s, r))
        wa = np.column_stack([src_xy, np.ones(len(src_xy))]) @ A
        i_s, i_c, _ = match_xy(wa, cat_sub, r)
        if i_s.size < 4:
            return None, fa1, n1
    lam2 = len(src_xy) * (1.0 - math.exp(-density * math.pi * r ** 2))
    fa2 = false_alarm_log10(int(i_s.size), lam2, n_trials)
    return (i_s, i_c, r / s), fa2, int(i_s.size)


def _finish(result, src_v, src_xy_all, cat, cat_table, center, shape, degree, n_trials,
            false_alarm, min_matches, max_rms_pix):
    """Fit and refine the WCS of an accepted candidate; check it is tight and significant.

    The plain TAN solution must be significant on its own (distortion terms may only polish a
    solution, never create one), then SIP terms are added when asked for or when the residuals
    call for them, and the final solution is tested again. In both tests the number of matches
    is reduced by the number of fitted parameters.

    Returns ``((fit, i_src, i_cat, quality, log10 FA), None)`` or ``(None, reason)``.
    """
    from ._geometry import poly_terms

    i_s, i_c, r_pix = result
    thr = math.log10(false_alarm)
    dens = len(cat) / cat.area
    n_src = len(src_xy_all)

    def significance(fit):
        scale = _pix_scale(fit.wcs)
        r_q = max(3.0 * fit.rms_arcsec / scale, 1.0) * scale
        quality = wcs_quality(fit.wcs, src_xy_all, cat_table, radius=r_q * u.arcsec,
                              shape=shape)
        lam = n_src * (1.0 - math.exp(-dens * math.pi * r_q ** 2))
        n_par = 2 * len(poly_terms(max(fit.degree, 1)))
        return quality, false_alarm_log10(quality.n_matched - n_par, lam, n_trials), r_q

    try:
        first = fit_tan_sip(src_v[i_s, 0], src_v[i_s, 1], cat.ra[i_c], cat.dec[i_c], shape,
                            degree=1, crval=(center.ra.deg, center.dec.deg))
        tan, f_src, f_cat = refine_wcs(first.wcs, src_xy_all[:, 0], src_xy_all[:, 1], cat.ra,
                                       cat.dec, shape=shape, sip_degree=1,
                                       radius=max(3.0, min(r_pix, 10.0)), min_radius=1.0)
    except (AstrometryError, InputError) as err:
        return None, f"refinement failed: {err}"
    quality, fa, r_q = significance(tan)
    if fa > thr:
        return None, (f"the TAN fit lines up {quality.n_matched} stars within {r_q:.2f} "
                      f"arcsec, false-alarm probability 10^{fa:.1f}")
    fit = tan
    if degree != 1:
        tan_rms = tan.rms_arcsec / _pix_scale(tan.wcs)
        try:
            fit, f_src, f_cat = refine_wcs(tan.wcs, src_xy_all[:, 0], src_xy_all[:, 1],
                                           cat.ra, cat.dec, shape=shape, sip_degree=degree,
                                           radius=max(2.0, 4.0 * tan_rms), min_radius=1.0)
        except (AstrometryError, InputError) as err:
            return None, f"refinement with distortion terms failed: {err}"
        quality, fa, r_q = significance(fit)
        if fa > thr:
            return None, (f"{quality.n_matched} stars within {r_q:.2f} arcsec, false-alarm "
                          f"probability 10^{fa:.1f}")
    rms_pix = fit.rms_arcsec / _pix_scale(fit.wcs)
    if not rms_pix <= max_rms_pix:
        return None, f"residual rms {rms_pix:.2f} pixel > {max_rms_pix:.2f}"
    if int(fit.inliers.sum()) < min(min_matches, 6):
        return None, f"only {int(fit.inliers.sum())} stars in the final fit"
    return (fit, f_src, f_cat, quality, fa), None


@dataclass
class SolveSettings(Settings):
    """How :func:`solve` searches (serialisable: :meth:`to_dict`/:meth:`from_dict`).

    Attributes
    ----------
    scale_range : (float, float)
        The true scale lies within ``scale * scale_range``.
    flip : bool or None
        True if the image is mirrored (CD determinant > 0), False if not, None to try both.
    sip_degree : int or None
        None chooses plain TAN or SIP up to degree 3 from the residuals; 0 or 1 forces plain
        TAN; >= 2 fits SIP of that degree.
    search_radius : float or Quantity, optional
        How far (degrees) the true centre may be from ``center``; default the larger of the
        field's half-diagonal and 10 arcmin.
    fwhm : float, optional
        PSF FWHM in pixels for detection (measured by default).
    false_alarm : float
        Largest accepted probability that the solution is a chance alignment.
    min_matches : int
        Fewest matched stars accepted.
    """

    scale_range: tuple = (0.8, 1.25)
    flip: bool | None = None
    sip_degree: int | None = None
    search_radius: object = None
    fwhm: float | None = None
    false_alarm: float = 1e-9
    min_matches: int = 8


def _pointing_hints(center, scale, img_wcs, header, shape):
    """(center, scale, hints): given, else from the image WCS, else from the header."""
    hints = {}
    center = as_sky_center(center)
    scale = as_pixel_scale(scale)
    if center is not None:
        hints["center"] = "given"
    if scale is not None:
        hints["scale"] = "given"
    if (center is None or scale is None) and img_wcs is not None:
        c, s = _wcs_hints(img_wcs, shape)
        if center is None and c is not None:
            center, hints["center"] = c, "image WCS"
        if scale is None:
            scale, hints["scale"] = s, "image WCS"
    if (center is None or scale is None) and header is not None:
        c, s, how = rough_pointing(header)
        if center is None and c is not None:
            center, hints["center"] = c, f"header {how}"
        if scale is None and s is not None:
            scale, hints["scale"] = s, f"header {how}"
    return center, scale, hints


def _catalog_centre(ra, dec):
    c = SkyCoord(ra * u.deg, dec * u.deg)
    m = SkyCoord(c.cartesian.mean(), representation_type="cartesian")
    return SkyCoord(m.spherical.lon, m.spherical.lat, frame="icrs")


def _search_region(shape, scale, hi, search_radius):
    """Radius (arcsec) of the catalog region searched, or None (no scale, no radius)."""
    ny, nx = shape
    if scale is None:
        return None if search_radius is None else \
            u.Quantity(search_radius, u.deg).to_value(u.arcsec)
    half_diag = 0.5 * math.hypot(nx, ny) * scale * hi
    if search_radius is None:
        uncert = max(half_diag, 600.0)
    else:
        uncert = u.Quantity(search_radius, u.deg).to_value(u.arcsec)
    return half_diag + uncert


def _attempts(n_all, n_cat, scale, cat_area, img_area):
    """(number of stars, number of catalog stars) to try, at matched surface density."""
    attempts = []
    for n_s in (40, 80, 20):
        n_s = min(n_s, n_all)
        if scale is not None:
            n_c = [int(np.clip(round(n_s * cat_area / img_area), n_s // 2, 2000))]
        else:
            n_c = [n_s, 3 * n_s, 10 * n_s]
        for nc in n_c:
            key = (n_s, min(nc, n_cat))
            if key not in attempts:
                attempts.append(key)
    return attempts


@dataclass
class _Search:
    """One plate-solving search: its inputs and what it has found so far."""

    src_xy: np.ndarray
    cat: object  # _Catalog
    center: SkyCoord
    shape: tuple
    scale: float | None
    bounds: tuple | None
    parity: int | None
    degree: int | None
    max_rms_pix: float
    settings: SolveSettings
    n_trials: int = 0
    best: tuple = (0.0, 0)  # (log10 FA, n matched) of the best rejected candidate
    rejected: list = field(default_factory=list)  # why candidates failed the final checks

    @property
    def img_area(self):
        ny, nx = self.shape
        return nx * ny * (self.scale ** 2 if self.scale else 1.0)


def _try_attempt(search, n_s, n_c, progress):
    """Propose similarity transforms from the brightest ``n_s`` stars and ``n_c`` catalog
    stars, verify each; returns the final fit (see :func:`_finish`) or None."""
    s, cat = search.settings, search.cat
    proposals, n_pairs = propose(search.src_xy[:n_s], cat.xy[:n_c], scale_bounds=search.bounds,
                                 parity=search.parity, max_proposals=60)
    search.n_trials += max(n_pairs, 1)
    if not proposals:
        return None
    n_v = min(len(search.src_xy), 200)
    src_v = search.src_xy[:n_v]
    n_cv = (int(np.clip(round(2 * n_v * cat.area / search.img_area), n_v, len(cat)))
            if search.scale is not None else len(cat))
    density = n_cv / cat.area
    cat_table = Table({"ra": cat.ra, "dec": cat.dec})
    for sim, _votes, tri_src, _tri_cat in proposals:
        result, fa, n_m = _verify(sim, src_v, tri_src, cat.xy[:n_cv], density,
                                  search.scale or sim.scale, search.n_trials)
        if result is None or fa > math.log10(s.false_alarm) or n_m < s.min_matches:
            if fa < search.best[0] or (fa == search.best[0] and n_m > search.best[1]):
                search.best = (fa, n_m)
            continue
        report(progress, 3, _STEPS, "fitting the WCS")
        final, why = _finish(result, src_v, search.src_xy, cat, cat_table, search.center,
                             search.shape, search.degree, search.n_trials, s.false_alarm,
                             s.min_matches, search.max_rms_pix)
        if final is not None:
            return final
        search.rejected.append(why)
        if len(search.rejected) >= 8:
            return None
    return None


def _no_solution(name, search, where, hints):
    s, scale = search.settings, search.scale
    lo, hi = (float(v) for v in s.scale_range)
    s_txt = (f"scale {scale * lo:.3g}-{scale * hi:.3g} arcsec/pixel ({hints['scale']})"
             if scale else "any scale")
    rejected = search.rejected
    extra = (f"; {len(rejected)} candidate(s) matched the patterns but failed the final "
             f"fit ({rejected[0]})" if rejected else "")
    flip = s.flip
    return AstrometryError(
        f"{name}: no astrometric solution: {len(search.src_xy)} stars detected, "
        f"{len(search.cat)} catalog stars {where}; tried {search.n_trials} pattern matches at "
        f"{s_txt}, "
        f"{'either parity' if flip is None else ('mirrored' if flip else 'not mirrored')}; "
        f"the best lined up {search.best[1]} stars (false-alarm probability "
        f"10^{search.best[0]:.1f}, need < {s.false_alarm:g}){extra}. Check that the catalog "
        "covers this field (--center / header RA DEC), the pixel scale (--scale) and that the "
        "image shows stars")


def _solution(name, final, src, search, hints, t0):
    """The :class:`Solution` of the final fit (its scale checked against the range asked)."""
    fit, f_src, f_cat, quality, fa_final = final
    w = fit.wcs
    scale = search.scale
    if scale is not None:
        lo, hi = (float(v) for v in search.settings.scale_range)
        s_fit = _pix_scale(w)
        if not (scale * lo * 0.98 <= s_fit <= scale * hi * 1.02):
            raise AstrometryError(f"{name}: the solution's scale {s_fit:.4f} arcsec/pixel is "
                                  f"outside the range asked for ({scale * lo:.4f}-"
                                  f"{scale * hi:.4f}); widen scale_range")
    matches = _matches_table(w, src, search.src_xy, f_src, search.cat, f_cat)
    cd = w.wcs.cd if w.wcs.has_cd() else w.pixel_scale_matrix
    flipped = bool(np.linalg.det(cd) > 0)
    # position angle of +y: direction of (CD[0,1], CD[1,1]) in (east, north)
    rotation = float(np.degrees(np.arctan2(cd[0, 1], cd[1, 1])) % 360.0)
    ny, nx = search.shape
    c = w.pixel_to_world((nx - 1) / 2.0, (ny - 1) / 2.0)
    return Solution(wcs=w, quality=quality, matches=matches, n_matched=len(matches),
                    sip_degree=fit.degree, pixel_scale=_pix_scale(w), rotation=rotation,
                    flipped=flipped, log10_false_alarm=fa_final, center=c.icrs, hints=hints,
                    elapsed=time.perf_counter() - t0)


def solve(ccd_or_sources, catalog, *, center=None, scale=None, band=None, shape=None,
          name=None, progress=None, settings=None, **keywords):
    """Find the WCS of an image by matching its stars to a reference catalog.

    Parameters
    ----------
    ccd_or_sources : `~astropy.nddata.CCDData`, 2-D array, FITS path, or `~astropy.table.Table`
        The image (stars are detected) or a table of detected stars with ``x``, ``y``
        (0-based) and preferably ``flux`` (then also give ``shape``).
    catalog : `~astropy.table.Table`
        Normalised catalog: ``ra``, ``dec`` (degrees), ``mag_<band>``; optional ``pmra``,
        ``pmdec`` (mas/yr) and ``ref_epoch`` (positions are moved to the image's DATE-OBS).
    center : `~astropy.coordinates.SkyCoord` or (ra, dec) in degrees, optional
        Rough image centre. Default: the image's WCS, else the header's RA/DEC or
        OBJCTRA/OBJCTDEC (:func:`rough_pointing`), else the catalog's centre.
    scale : float or Quantity, optional
        Approximate pixel scale in arcsec/pixel. Default: the image's WCS or header (FOCALLEN
        and pixel size); without any, every scale is tried (slower, less robust).
    band : str, optional
        Catalog band used to rank stars by brightness (default: the FILTER keyword's band if
        the catalog has it, else the best-filled ``mag_`` column).
    shape : tuple, optional
        ``(ny, nx)`` when a table of sources is given.
    name : str, optional
        Name of the image in messages (default: the file name, or 'image').
    progress : callable, optional
        ``progress(done, total, message)``; may raise Cancelled.
    settings : SolveSettings, optional
        ``scale_range``, ``flip``, ``sip_degree``, ``search_radius``, ``fwhm``,
        ``false_alarm``, ``min_matches`` (see :class:`SolveSettings`).
    **keywords
        Any SolveSettings field, overriding ``settings`` (the keywords this function took).

    Returns
    -------
    Solution

    Raises
    ------
    AstrometryError
        No significant solution (wrong field, wrong scale, too few stars): the message says
        what was tried and what to check.
    InputError
        Unusable arguments (no stars, catalog without ra/dec, bad scale).
    """
    t0 = time.perf_counter()
    s = SolveSettings.from_keywords(settings, **keywords)
    lo, hi = (float(v) for v in s.scale_range)
    if not (0 < lo <= 1 <= hi):
        raise InputError(f"scale_range must be (low <= 1, high >= 1); got {s.scale_range!r}")
    report(progress, 0, _STEPS, "detecting stars")
    auto_name, src, shape, header, img_wcs = _sources_and_header(ccd_or_sources, shape, s.fwhm)
    name = name or auto_name
    if len(src) < 4:
        raise AstrometryError(f"{name}: only {len(src)} stars detected; at least 4 (better 20) "
                              "are needed to solve: check the exposure or lower the threshold")
    report(progress, 1, _STEPS, f"{len(src)} stars; reading catalog")
    center, scale, hints = _pointing_hints(center, scale, img_wcs, header, shape)
    ra, dec = _catalog_positions(catalog, header)
    mags = _catalog_mags(catalog, band, header)
    good = np.isfinite(ra) & np.isfinite(dec)
    if good.sum() < 4:
        raise InputError(f"the catalog has {int(good.sum())} stars with finite positions; at "
                         "least 4 are needed")
    if center is None:
        center, hints["center"] = _catalog_centre(ra[good], dec[good]), "catalog centre"
    if scale is None:
        hints["scale"] = "unknown (all scales tried)"
    region = _search_region(shape, scale, hi, s.search_radius)
    cat = _Catalog(ra, dec, mags, center, region)
    where = (f"within {region / 60:.0f} arcmin of {center.to_string('hmsdms', precision=0)}"
             f" ({hints['center']})" if region else "")
    if len(cat) < 4:
        raise AstrometryError(
            f"{name}: the catalog has {len(cat)} stars {where}: it does not cover this field; "
            "check --center (or the header RA/DEC) and query the catalog around it")
    fwhm = float(src.meta.get("fwhm", 3.0) or 3.0) if hasattr(src, "meta") else 3.0
    search = _Search(
        src_xy=np.column_stack([np.asarray(src["x"], float), np.asarray(src["y"], float)]),
        cat=cat, center=center, shape=shape, scale=scale,
        bounds=None if scale is None else (scale * lo, scale * hi),
        parity=None if s.flip is None else (1 if s.flip else -1),
        degree=s.sip_degree if s.sip_degree is None else max(int(s.sip_degree), 1),
        max_rms_pix=max(1.0, 0.4 * fwhm), settings=s)
    report(progress, 2, _STEPS, "matching star patterns")
    final = None
    for n_s, n_c in _attempts(len(search.src_xy), len(cat), scale, cat.area, search.img_area):
        final = _try_attempt(search, n_s, n_c, progress)
        if final is not None or len(search.rejected) >= 8:
            break
    if final is None:
        raise _no_solution(name, search, where, hints)
    report(progress, 4, _STEPS, "refined with all stars")
    sol = _solution(name, final, src, search, hints, t0)
    report(progress, 5, _STEPS, "solved")
    log.info("%s: %s (%.2f s)", name, sol, sol.elapsed)
    return sol


def _matches_table(w, src, src_xy, f_src, cat, f_cat):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if w.sip is not None:
            cx, cy = w.all_world2pix(cat.ra[f_cat], cat.dec[f_cat], 0, quiet=True)
        else:
            cx, cy = w.wcs_world2pix(cat.ra[f_cat], cat.dec[f_cat], 0)
    t = Table()
    rows = np.asarray(src["_row"])[f_src] if "_row" in src.colnames else f_src
    t["source_index"] = np.asarray(rows, int)
    t["catalog_index"] = cat.index[f_cat]
    t["x"] = src_xy[f_src, 0]
    t["y"] = src_xy[f_src, 1]
    t["ra"] = cat.ra[f_cat]
    t["dec"] = cat.dec[f_cat]
    t["dx"] = t["x"] - cx
    t["dy"] = t["y"] - cy
    t["resid_arcsec"] = np.hypot(t["dx"], t["dy"]) * _pix_scale(w)
    return t
