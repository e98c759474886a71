"""Aperture photometry with a local sky, CCD-equation errors, flags and an aperture correction.

The hot path is compiled (:mod:`._kernels`): exact circle-pixel overlap weights (the same as
photutils' ``method='exact'``), a sigma-clipped annulus mean or median (the same as photutils'
``ApertureStats(..., sigma_clip=SigmaClip(sigma, maxiters=10)).mean`` / ``.median`` on the
annulus; the mean by default, see :class:`AnnulusSky` for why, clipped at 5 sigma for the
stars' fluxes, :data:`FLUX_SKY_SIGMA`) and Gaussian-windowed centroids. Strategies are
objects passed in, photutils style:

- ``sky=AnnulusSky(...)`` (and ``flux_sky=``): how the local sky is estimated;
- ``aperture_correction=CurveOfGrowth(...)`` (or a float, or None): how aperture fluxes become
  total fluxes.

Error model
-----------
With an uncertainty image: ``sigma_F^2 = sum(w_i sigma_i^2) + k n_ap^2 sigma_sky^2 / n_sky``,
``w_i`` the exact overlap weights (photutils' ``aperture_sum_err`` convention), ``sigma_sky^2``
the mean variance of the annulus pixels, ``k = 1`` for a mean and ``pi/2`` for a median sky. Without one, the CCD
equation ``sigma_F^2 = F + n_ap (1 + k n_ap / n_sky) sigma_pix^2`` with ``sigma_pix^2 = sky +
RN^2`` when the read noise is known (and agrees within a factor 2 with the measured annulus
variance; otherwise, e.g. for a frame with its bias still in, the measured variance is used and
a warning says so), else the measured, clipping-corrected annulus variance. Fluxes and errors
are multiplied by the aperture correction; its own error is kept apart (in ``meta``) because it
is common to all stars.
"""

import copy
import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.stats import mad_std
from astropy.table import Table
from scipy.spatial import cKDTree
from scipy.stats import chi2 as scipy_chi2

from ..exceptions import InputError, PhotometryError, PhotometryWarning
from ..stats import GAUSS_FWHM, solve_excess_variance
from . import _kernels as K
from .detection import _positions_xy
from .flags import (
    FLAG_BAD_SKY,
    FLAG_CENTROID,
    FLAG_CROWDED,
    FLAG_EDGE,
    FLAG_EXTENDED,
    FLAG_MASKED,
    FLAG_NEGATIVE,
    FLAG_NONLINEAR,
    FLAG_SATURATED,
    flag_texts,
)
from .flags import neighbours as neighbours_in
from .image import PreparedImage, prepare_image
from .psf import (
    PSF,
    fit_power_tail,
    growth_curves,
    law_missing,
    measure_psf,
    propagated_variance,
    tail_annulus_mean,
)
from .settings import ApertureSettings

__all__ = ["AnnulusSky", "CurveOfGrowth", "ApertureCorrection", "Growth", "measure_stars",
           "aperture_fluxes", "default_radii", "phase_safe_radius", "envelope_correction",
           "GrowthCurveWarning", "MEDIAN_SKY_K", "FLUX_SKY_SIGMA", "clipped_std_ratio"]

log = logging.getLogger(__name__)

#: Variance factor of a median relative to a mean of Gaussian values (k in the CCD equation).
MEDIAN_SKY_K = math.pi / 2.0
#: The clip (sigma) of the sky :func:`measure_stars` subtracts from the stars' fluxes by
#: default: the stars too faint to detect are in every aperture as in every annulus, and a
#: 3-sigma clip took their brighter pixels out of the sky only (zero points too bright where
#: they are dense); cosmic rays, hot pixels and detected stars are far beyond 5 sigma.
FLUX_SKY_SIGMA = 5.0


def clipped_std_ratio(sigma):
    """Standard deviation of a Gaussian clipped at +-``sigma`` over the unclipped one.

    >>> round(clipped_std_ratio(3.0), 4), round(clipped_std_ratio(5.0), 5)
    (0.9866, 0.99999)
    """
    k = float(sigma)
    inside = math.erf(k / math.sqrt(2.0))
    phi = math.exp(-0.5 * k * k) / math.sqrt(2.0 * math.pi)
    return math.sqrt(max(1.0 - 2.0 * k * phi / inside, 1e-12))


def default_radii(fwhm):
    """Provisional aperture radius and sky annulus for a FWHM (pixels).

    Aperture ``1.5 FWHM``, never below :func:`phase_safe_radius` (the curve of growth then
    chooses the final radius, :meth:`CurveOfGrowth.choose_radius`); annulus
    ``max(3 FWHM, r_ap + 2)`` to ``max(5 FWHM, r_in + 5)``.

    Examples
    --------
    >>> default_radii(4.0)
    (6.0, (12.0, 20.0))
    """
    fwhm = float(fwhm)
    r_ap = max(1.5 * fwhm, phase_safe_radius(fwhm))
    r_in = max(3.0 * fwhm, r_ap + 2.0)
    r_out = max(5.0 * fwhm, r_in + 5.0)
    return r_ap, (r_in, r_out)


class AnnulusSky:
    """Local sky: the sigma-clipped mean (or median) of an annulus, with other stars masked.

    Why the mean by default: a star's flux is ``sum(data) - area * E[sky]``, so the sky
    estimator must estimate the *mean* sky per pixel. The sky of a calibrated frame in
    electrons is Poisson (skewness ``1/sqrt(sky)``) plus read noise, and the median of a skewed
    distribution lies below its mean by ``~ mu_3 / (6 sigma^2)`` = ``sky / (6 (sky + RN^2))``
    electrons: 0.11 e- for a 120 e- sky with 8 e- read noise. Tiny per pixel, but it is
    multiplied by the aperture area (~90 pixels) and made every flux too high -- by 5 mmag at
    2000 e- -- and the large apertures of the curve of growth even more (the zero point came
    out ~+3 mmag high, tests/benchmarks/diagnose_zp_bias.py). The mean of the 3-sigma-clipped
    pixels (the clip bounds about the median, astropy ``SigmaClip`` semantics) keeps the
    robustness against stars and cosmics and is unbiased to ~0.02 e- for such a sky; its
    variance is that of a mean (``k = 1`` in the CCD equation instead of pi/2).
    ``statistic='median'`` gives photutils' ``ApertureStats(...).median`` exactly.

    Parameters
    ----------
    sigma : float
        Clipping threshold (astropy ``SigmaClip(sigma=...)`` semantics, median centre,
        population standard deviation).
    maxiters : int
        Maximum clipping iterations.
    mask_radius : float or None
        Radius (in FWHM) around every *other* listed star masked out of the annulus; None or 0
        disables star masking (photutils' ApertureStats does not mask). Default 2.5 FWHM.
    min_pixels : int
        Fewer usable annulus pixels than this: the star masking is dropped for that star (flag
        ``crowded``); still fewer: flag ``bad_sky``.
    statistic : {'mean', 'median'}
        Centre of the clipped annulus pixels (see above). ``k`` (the variance of the sky
        estimate relative to a plain mean) is 1 for the mean and pi/2 for the median.
    wing_sigma : float or None
        With star masking: the wings of bright stars are masked out to where their
        profile (the frame's own, :class:`~.psf.PSF`) falls below ``wing_sigma`` times the sky noise, when that is beyond
        ``mask_radius`` (:meth:`wing_disks`; not in a star's own annulus). A mean, unlike a
        median, follows the ~2-sigma wing light a fixed 2.5-FWHM mask leaves in the
        neighbours' annuli: in a field of bright stars (V 10-15.5) the fluxes came out
        ~0.5 mmag and the curve-of-growth correction ~1 mmag too faint without it.

    Examples
    --------
    >>> AnnulusSky(sigma=3.0, mask_radius=None)
    AnnulusSky(sigma=3.0, maxiters=10, mask_radius=None, min_pixels=20, statistic='mean', wing_sigma=0.1)
    >>> AnnulusSky(statistic='median').k == MEDIAN_SKY_K
    True
    """

    def __init__(self, sigma=3.0, maxiters=10, mask_radius=2.5, min_pixels=20,
                 statistic="mean", wing_sigma=0.1):
        if not sigma > 0:
            raise InputError(f"AnnulusSky: sigma must be > 0, got {sigma!r}")
        if int(maxiters) < 1:
            raise InputError(f"AnnulusSky: maxiters must be >= 1, got {maxiters!r}")
        if mask_radius is not None and mask_radius < 0:
            raise InputError(f"AnnulusSky: mask_radius must be >= 0 or None, got {mask_radius!r}")
        if statistic not in ("mean", "median"):
            raise InputError(f"AnnulusSky: statistic must be 'mean' or 'median', got "
                             f"{statistic!r}")
        self.sigma = float(sigma)
        self.maxiters = int(maxiters)
        self.mask_radius = None if not mask_radius else float(mask_radius)
        self.min_pixels = int(min_pixels)
        self.statistic = statistic
        self.wing_sigma = None if not wing_sigma else float(wing_sigma)

    @property
    def k(self):
        """Variance of the sky estimate relative to a plain mean of the same pixels."""
        return 1.0 if self.statistic == "mean" else MEDIAN_SKY_K

    @property
    def std_ratio(self):
        """A Gaussian sky's clipped std over its true std (:func:`clipped_std_ratio`):
        divide a measured ``std`` by it."""
        return clipped_std_ratio(self.sigma)

    def __repr__(self):
        return (f"AnnulusSky(sigma={self.sigma}, maxiters={self.maxiters}, "
                f"mask_radius={self.mask_radius}, min_pixels={self.min_pixels}, "
                f"statistic={self.statistic!r}, wing_sigma={self.wing_sigma})")

    def star_mask(self, shape, xs, ys, fwhm):
        """Boolean image of the pixels within ``mask_radius * fwhm`` of the stars (or None)."""
        if not self.mask_radius:
            return None
        r = np.full(len(xs), self.mask_radius * fwhm)
        return K.paint_disks(shape[0], shape[1], np.ascontiguousarray(xs, float),
                             np.ascontiguousarray(ys, float), r)

    def wing_disks(self, xs, ys, peaks, psf, noise):
        """Disks over the wings of bright stars: out to where the frame's PSF profile
        (:class:`~.psf.PSF`, its empirical curve of growth once measured) scaled to the given
        ``peaks`` (e-/pixel above the sky) falls below ``wing_sigma * noise``, where that is
        beyond the fixed ``mask_radius * fwhm`` (at most 30 FWHM). Returns ``(x, y, r,
        index)`` of those stars (empty arrays when ``wing_sigma`` is None)."""
        xs = np.asarray(xs, float)
        ys = np.asarray(ys, float)
        empty = (np.empty(0), np.empty(0), np.empty(0), np.empty(0, np.int64))
        if not self.mask_radius or not self.wing_sigma or not (noise > 0) or xs.size == 0:
            return empty
        psf = as_psf(psf)
        fwhm = psf.fwhm
        level = self.wing_sigma * noise
        r_mask = self.mask_radius * fwhm
        peaks = np.nan_to_num(np.asarray(peaks, float), nan=0.0)
        sb0 = float(psf.surface_brightness(0.0))
        rel_mask = float(psf.surface_brightness(r_mask)) / sb0 if sb0 > 0 else 0.0
        cand = (peaks * rel_mask > level) & np.isfinite(xs) & np.isfinite(ys)
        idx = np.nonzero(cand)[0]
        if idx.size == 0:
            return empty
        r = psf.wing_radius(peaks[idx], level, 30.0 * fwhm)
        big = r > r_mask
        idx, r = idx[big], r[big]
        return (np.ascontiguousarray(xs[idx]), np.ascontiguousarray(ys[idx]),
                np.ascontiguousarray(r.astype(float)), idx.astype(np.int64))

    def __call__(self, im, xs, ys, r_in, r_out, starmask=None, wings=None, self_index=None):
        """Sky per pixel at (xs, ys): dict of arrays ``sky``, ``std``, ``n``, ``mean_var``,
        ``unmasked`` (True where the star masking had to be dropped).

        ``wings``: :meth:`wing_disks` output, left out of the annuli too (with the star
        masking); ``self_index[i]``: the index (in the list the disks were made from) of the
        star measured at ``(xs[i], ys[i])``, whose own wing disk is not applied to its own
        annulus (-1 or None: none)."""
        n = len(xs)
        rin = np.broadcast_to(np.asarray(r_in, float), (n,)).copy()
        rout = np.broadcast_to(np.asarray(r_out, float), (n,)).copy()
        var = im.variance if im.variance is not None else im.data
        use = starmask is not None
        sm = starmask if use else im.bad
        xs = np.ascontiguousarray(xs, float)
        ys = np.ascontiguousarray(ys, float)
        mean = self.statistic == "mean"
        e0 = np.empty(0)
        if use and wings is not None and len(wings[0]):
            # sorted by x, as the kernel looks for the disks reaching an annulus
            by_x = np.argsort(wings[0], kind="stable")
            wx, wy, wr, widx = (np.ascontiguousarray(np.asarray(w)[by_x]) for w in wings)
            self_idx = np.full(n, -1, np.int64)
            if self_index is not None:
                pos = np.full(int(max(np.max(self_index, initial=-1), np.max(widx)) + 1), -1,
                              np.int64)
                pos[widx] = np.arange(widx.size)
                si = np.asarray(self_index, np.int64)
                ok = si >= 0
                self_idx[ok] = pos[si[ok]]
        else:
            wx, wy, wr, self_idx = e0, e0, e0, np.full(n, -1, np.int64)
        med, std, nused, ncand, mvar = K.annulus_sky(
            im.data, var, im.bad, sm, xs, ys, rin, rout, self.sigma, self.sigma,
            self.maxiters, im.variance is not None, use, mean, wx, wy, wr, self_idx)
        unmasked = np.zeros(n, bool)
        if use:
            redo = nused < self.min_pixels
            if redo.any():
                m2, s2, n2, _, v2 = K.annulus_sky(
                    im.data, var, im.bad, im.bad, xs[redo], ys[redo], rin[redo], rout[redo],
                    self.sigma, self.sigma, self.maxiters, im.variance is not None, False,
                    mean, e0, e0, e0, np.full(int(redo.sum()), -1, np.int64))
                med[redo], std[redo], nused[redo], mvar[redo] = m2, s2, n2, v2
                unmasked[redo] = True
        return {"sky": med, "std": std, "n": nused, "mean_var": mvar, "unmasked": unmasked}


@dataclass
class ApertureCorrection:
    """Result of an aperture correction: total flux = aperture flux * ``value``.

    Attributes
    ----------
    value, err : float
        The multiplicative correction and its standard error (the tail's included).
    n_stars : int
        Stars it rests on.
    method : str
        ``'curve of growth'``, ``'profile envelope'`` (too few stars to measure it: see
        :func:`envelope_correction`), ``'fixed'`` or ``'none'``.
    radii, growth : list of float
        The median curve of growth (fraction of the flux at the largest radius).
    tail : float
        Fraction of the total flux inside the largest radius (from the power-law tail fitted
        to the outer rings, :func:`~.psf.fit_power_tail`).
    tail_err : float
        The relative error of the light beyond the largest radius (its share of ``err`` is
        ``value * tail_err``; common to every star of the frame).
    """

    value: float = 1.0
    err: float = 0.0
    n_stars: int = 0
    method: str = "none"
    radii: list = None
    growth: list = None
    tail: float = 1.0
    tail_err: float = 0.0

    @property
    def mag(self):
        """The correction in magnitudes (negative: the total is brighter)."""
        return -2.5 * math.log10(self.value)

    @property
    def mag_err(self):
        return 1.0857362047581294 * self.err / self.value


def _gaussian_inside(r, fwhm):
    """Fraction of a pixel-integrated Gaussian core of ``fwhm`` inside radius ``r``."""
    return float(PSF(fwhm=fwhm).encircled(r))


def _r4_halo_inside(r, fwhm):
    """Fraction inside ``r`` of a pixel-integrated profile of the same FWHM whose wings fall
    as r**-4 (the broadest halos seen in real seeing and optics; continuous enclosed light
    ``1 - 1 / (1 + (rho/a)^2)``, ``a = fwhm / (2 sqrt(sqrt(2) - 1))``), the pixel's
    integration included as the Gaussian core's is (:func:`_gaussian_inside`): the star's
    centre averaged over 8 x 8 offsets inside a pixel, each the exact fraction of the ring of
    radius rho about it that lies inside the circle, integrated over the enclosed light (4,000
    midpoints). Without the pixel, an undersampled star's halo bound was too tight (FWHM
    0.5 px, r = 2.26 px: 2.87% beyond r instead of 3.06%) and a correct curve of growth of
    Moffat beta = 2 stars was rejected for the envelope's midpoint."""
    a = fwhm / (2.0 * math.sqrt(math.sqrt(2.0) - 1.0))
    d, w = _PIXEL_OFFSETS
    t = (np.arange(4000) + 0.5) / 4000
    rho = a * np.sqrt(t / (1.0 - t))[None, :]
    c = (rho * rho + d * d - r * r) / (2.0 * rho * d)
    inside = np.arccos(np.clip(c, -1.0, 1.0)) / math.pi
    return float(np.sum(w * np.mean(inside, axis=1)))


def _pixel_offsets(n=8):
    """The distances of ``n x n`` star centres spread over a pixel from its centre (the
    midpoints of an n x n grid; n even, so none is 0), each once, with its share of the
    grid: a quarter of the grid, by symmetry, and (i, j) with (j, i)."""
    off = (np.arange(n // 2) + 0.5) / n
    d, w = [], []
    for i in range(n // 2):
        for j in range(i + 1):
            d.append(math.hypot(off[i], off[j]))
            w.append((1.0 if i == j else 2.0) * 4.0 / (n * n))
    return np.array(d)[:, None], np.array(w)


_PIXEL_OFFSETS = _pixel_offsets()


#: the families' bound on a measured correction is taken at this many times the measured FWHM:
#: the r**-4 halo's light beyond r grows as FWHM^2, and the FWHM of undersampled or blended
#: stars is measured to a few percent (the injection families: 0.99-1.06 of the truth, 0.92
#: for trailed stars, which 1.1 x 0.92 still covers)
FWHM_TOLERANCE = 1.1


def envelope_correction(r_ap, fwhm, why):
    """The correction when the frame's own stars cannot give one: the middle of what the
    profile families allow (from a Gaussian core with no wings to an r**-4 halo, at the
    measured FWHM) with half that range as its error, and a warning, so the zero point's total
    error honestly carries the unknown wings instead of treating aperture fluxes as totals."""
    lo = 1.0 / _gaussian_inside(r_ap, fwhm)
    hi = 1.0 / _r4_halo_inside(r_ap, fwhm)
    value, err = 0.5 * (lo + hi), 0.5 * abs(hi - lo)
    warnings.warn(f"aperture correction: {why}; using the range the PSF families allow "
                  f"instead ({-2.5 * math.log10(value):+.3f} +/- {1.0857 * err / value:.3f} "
                  f"mag for FWHM {fwhm:.2f} px in a {r_ap:.2f} px aperture)",
                  GrowthCurveWarning, stacklevel=4)
    return ApertureCorrection(value, err, 0, "profile envelope")


class GrowthCurveWarning(PhotometryWarning):
    """The aperture correction rests on few stars or on the profile envelope."""


def phase_safe_radius(fwhm):
    """Smallest aperture radius (pixels) whose captured light does not depend on where the
    star falls inside its pixel: every pixel holding core light lies wholly inside it
    (``FWHM + 1.75`` px, the core plus a pixel diagonal) up to 4 px, and never below one FWHM.

    Examples
    --------
    >>> phase_safe_radius(0.5), phase_safe_radius(4.0)
    (2.25, 4.0)
    """
    fwhm = float(fwhm)
    return max(fwhm, min(fwhm + 1.75, 4.0))


@dataclass
class Growth:
    """The curves of growth of the aperture-correction stars (:meth:`CurveOfGrowth.measure`).

    ``idx``: the stars (rows of the table); ``radii``; ``curves`` (sky-subtracted fluxes,
    stars x radii); ``var_big``, ``sig2``: variance of the largest aperture and of a sky
    pixel per star; ``tail``: :func:`~.psf.fit_power_tail` result; ``psf``: the PSF with its
    empirical curve of growth."""

    idx: np.ndarray
    radii: np.ndarray
    curves: np.ndarray
    var_big: np.ndarray
    sig2: np.ndarray
    tail: dict
    psf: PSF
    median: np.ndarray


#: sky annuli of :func:`outer_light`, in units of the far annulus' outer radius; the last
#: pair is the reference, where a star's own light is taken as negligible
OUTER_EDGES = (1.0, 1.5, 2.25, 3.0)
OUTER_REFERENCE = (3.0, 4.5)
#: at most this many of the brightest stars measure the outer light (its cost is their
#: wide annuli; fainter stars add almost no weight)
OUTER_MAX_STARS = 30


def _slope_through_origin(x, y, err):
    """Weighted slope of ``y = h x`` over stars, with its error scaled by the scatter where
    that exceeds the noise, and never below the jackknife error over the stars; (nan, nan)
    without usable stars. Stars more than 4 sigma of
    their own noise off the line (a nebulous patch, a bright neighbour's halo) are dropped
    one at a time, worst first, while at least half the stars remain."""
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(err) & (err > 0) & (x > 0)
    n0 = int(ok.sum())
    if n0 < 2:
        return math.nan, math.nan
    while True:
        w = x[ok] ** 2 / err[ok] ** 2
        h = float(np.sum(x[ok] * y[ok] / err[ok] ** 2) / np.sum(w))
        z = np.where(ok, (y - h * x) / err, 0.0)
        worst = int(np.argmax(np.abs(z)))
        if abs(z[worst]) <= 4.0 or ok.sum() - 1 < max(2, (n0 + 1) // 2):
            break
        ok[worst] = False
    chi2 = float(np.sum(z[ok] ** 2) / max(ok.sum() - 1, 1))
    h_err = math.sqrt(max(chi2, 1.0) / float(np.sum(w)))
    # jackknife over the stars: a slope that rests on one star (a halo that is really a
    # patch of nebulosity around it) gets the error of that dependence
    xs, ys, es = x[ok], y[ok], err[ok]
    sxy, sxx = np.sum(xs * ys / es ** 2), np.sum(xs ** 2 / es ** 2)
    loo = (sxy - xs * ys / es ** 2) / np.maximum(sxx - xs ** 2 / es ** 2, 1e-300)
    n = xs.size
    jack = math.sqrt((n - 1) / n * float(np.sum((loo - loo.mean()) ** 2)))
    return h, max(h_err, jack)


def outer_light(im, table, sky, starmask, wings, ap_fraction, r_big, far_in, far_out, tail):
    """Add the light beyond the curve of growth that the far sky annulus hides.

    The curves of growth are sky-subtracted with a far annulus (``far_in``-``far_out``); a
    broad halo (scattered light, an aureole) is nearly flat there, so it is subtracted as
    sky and the rings never see it. Here each of the (up to :data:`OUTER_MAX_STARS`)
    brightest unflagged stars with S/N >= 10 gets the sky of wider annuli
    (:data:`OUTER_EDGES` times ``far_out``) and of a reference annulus
    (:data:`OUTER_REFERENCE`), other stars masked as for any sky; the excess of each annulus
    over the reference, regressed on the stars' fluxes through the origin (bright stars
    weigh most; outliers such as a nebulous patch are clipped), is the profile's surface
    brightness per unit flux out to the reference. No profile family is assumed.

    Where the excess over the tail law falls with radius (by more than its error from the
    far annulus to the last one; a flat excess is the sky's own structure), the stars whose
    sky is lopsided about them (:func:`_lopsidedness`: a cluster's or a nebula's light,
    not their own halo) are left out if the halo rests on them (the rounder stars, at least
    half, see less by 3 sigma) and it must still be seen around the others; then the far
    annulus' excess was subtracted as sky inside the largest aperture, and the halo's light
    out to the last annulus where it is still seen (2 sigma) was never counted: both are
    added. Beyond, the halo is taken to fall at most as r**-4: half that light is added,
    and as much is the error. Where no halo is seen, the tail law's result stands. Nothing
    is done on a frame smaller than ~3 reference radii.

    Returns the tail dict, with ``missing`` and ``missing_err`` updated when a halo was
    added (the tail law's extrapolation error is then replaced by the measured profile's),
    and ``outer`` (the profile: r_in, r_out, excess, its error, excess over the tail law),
    ``outer_extra`` and ``outer_extra_err``."""
    flags = np.asarray(table["flags"], int)
    f = np.asarray(table["flux_aper"], float)
    ferr = np.asarray(table["flux_aper_err"], float)
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = f / ferr
    use = (flags == 0) & np.isfinite(snr) & (snr >= 10.0) & (f > 0)
    if use.sum() < 3 or not ap_fraction > 0:
        return tail
    ref_in, ref_out = (v * far_out for v in OUTER_REFERENCE)
    if ref_out > 0.3 * min(im.shape):
        return tail  # the frame is too small to reach a reference annulus
    x_all = np.asarray(table["x"], float)
    y_all = np.asarray(table["y"], float)
    idx = np.nonzero(use)[0]
    idx = idx[np.argsort(-f[idx])][:OUTER_MAX_STARS]  # the bright ones carry the weight
    xs, ys = x_all[idx], y_all[idx]
    flux_big = f[idx] / ap_fraction  # flux inside the largest radius
    annuli = [(far_in, far_out)] + [(a * far_out, b * far_out)
                                    for a, b in zip(OUTER_EDGES[:-1], OUTER_EDGES[1:], strict=True)]
    measured = _outer_profile(im, sky, starmask, wings, (xs, ys, idx), flux_big, annuli,
                              (ref_in, ref_out), r_big, tail)
    if measured is None:
        return tail
    rows, profile = measured
    out = dict(tail, outer=profile, outer_extra=0.0, outer_extra_err=0.0)
    if not _halo_seen(rows):
        # no excess that falls with radius: no halo (a flat excess is the sky's own
        # structure, not a star's light); the tail law's result stands
        return out
    # a star's halo is round; the glow of a cluster (or a nebula) around a star is not
    mask = im.bad if starmask is None else (starmask | im.bad)
    score = _lopsidedness(im, mask, xs, ys, annuli + [(ref_in, ref_out)], wings, idx)
    if np.any(score > 1.0):
        # the rounder stars: every round one, and at least the rounder half (in a crowded
        # field the light of faint neighbours makes nearly every sky lopsided)
        rounder = score <= 1.0
        rounder[np.argsort(score, kind="stable")[:max(3, (score.size + 1) // 2)]] = True
        measured = _outer_profile(im, sky, starmask, wings,
                                  (xs[rounder], ys[rounder], idx[rounder]), flux_big[rounder],
                                  annuli, (ref_in, ref_out), r_big, tail)
        # the lopsided stars are left out only where they made the halo: where the rounder
        # stars' first excess lies below all the stars' by more than 3 of its errors (a
        # neighbour's halo on one side of a fainter star, a crowded field's faint stars
        # change nothing)
        if measured is not None and \
                rows[0][3] - measured[0][0][3] > 3.0 * measured[0][0][4]:
            log.info("%s: %d of %d stars measuring the outer light sit on sky that is not "
                     "round about them (a cluster's or a nebula's light) and made the halo; "
                     "left out", getattr(im, "name", "image"), int((~rounder).sum()),
                     score.size)
            rows, profile = measured
            out = dict(tail, outer=profile, outer_extra=0.0, outer_extra_err=0.0)
            if not _halo_seen(rows):
                return out
    # the halo out to where it is still seen (2 sigma), then at most an r**-4 fall beyond
    used = 1
    while used < len(rows) and rows[used][3] > 2.0 * rows[used][4]:
        used += 1
    areas = [(r1, r2, ar) for r1, r2, ar, _, _ in rows[:used]]
    extra = float(sum(x * ar for _, _, ar, x, _ in rows[:used]))
    var = float(sum((he * ar) ** 2 for _, _, ar, _, he in rows[:used]))
    r_last, x_last = rows[used - 1][1], rows[used - 1][3]
    beyond = math.pi * max(x_last, 0.0) * r_last ** 2
    extra += 0.5 * beyond  # halfway between no light beyond and an r**-4 fall
    tail_var = _halo_tail_variance(tail, areas, ref_in, ref_out)
    err = math.sqrt(var + (0.5 * beyond) ** 2 + tail_var)
    out.update(missing=float(tail["missing"] + extra), missing_err=float(err),
               outer_extra=float(extra), outer_extra_err=float(math.sqrt(var)))
    return out


def _halo_seen(rows):
    """True when the excess over the tail law falls from the first annulus to the last by
    more than its error."""
    x0, e0, xl, el = rows[0][3], rows[0][4], rows[-1][3], rows[-1][4]
    return bool(x0 - xl > math.hypot(e0, el))


#: :func:`_lopsidedness`: sectors per annulus, and the chance that a star on a round sky is
#: called lopsided
ROUND_SECTORS = 4
ROUND_FALSE_ALARM = 1e-3


def _sky_plane(data, bad):
    """A plane fitted to the frame's sky (robust: medians of blocks of good pixels, blocks
    more than 3 MAD-std off the plane dropped), as a function of (x, y) arrays; a flat zero
    when the frame gives too few blocks."""
    ny, nx = data.shape
    step = max(1, min(ny, nx) // 256)  # at most ~256 samples a side
    sub = data[::step, ::step]
    sub = np.where(bad[::step, ::step] | ~np.isfinite(sub), np.nan, sub)
    b = 8
    my, mx = sub.shape[0] // b, sub.shape[1] // b
    if my < 2 or mx < 2:
        return lambda x, y: 0.0
    blocks = sub[:my * b, :mx * b].reshape(my, b, mx, b).transpose(0, 2, 1, 3).reshape(
        my, mx, b * b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks
        med = np.nanmedian(blocks, axis=2)
    yy, xx = np.mgrid[0:my, 0:mx]
    xc = (xx.ravel() + 0.5) * b * step
    yc = (yy.ravel() + 0.5) * b * step
    v = med.ravel()
    ok = np.isfinite(v)
    coef = np.zeros(3)
    for _ in range(5):
        if ok.sum() < 6:
            return lambda x, y: 0.0
        a = np.c_[np.ones(ok.sum()), xc[ok], yc[ok]]
        coef = np.linalg.lstsq(a, v[ok], rcond=None)[0]
        res = v - (coef[0] + coef[1] * xc + coef[2] * yc)
        scale = 1.4826 * float(np.nanmedian(np.abs(res[ok])))
        keep = np.isfinite(v) & (np.abs(res) <= 3.0 * max(scale, 1e-300))
        if np.array_equal(keep, ok):
            break
        ok = keep
    return lambda x, y: coef[0] + coef[1] * x + coef[2] * y


def _sector_mean(v):
    """3-sigma-clipped mean of ``v`` and its error (clipped std / sqrt(n)), by the annulus
    sky's own clipping (:func:`._kernels._clipped_mean`); a mean, not a median, so that
    integer (quantised) data give continuous values."""
    mean, std, n = K._clipped_mean(np.array(v, dtype=np.float64), v.size, 3.0, 3.0, 10)
    return float(mean), float(std) / math.sqrt(max(n, 1))


def _lopsidedness(im, mask, xs, ys, annuli, wings=None, index=None):
    """Per star, how lopsided the sky about it is, beyond its noise and beyond what the
    star's own light could be: above 1 when lopsided (the chi-square over its false-alarm
    threshold), 0 when round or when the star's own excess outweighs the asymmetry.

    The frame's sky plane (:func:`_sky_plane`: a gradient is not lopsidedness) is taken
    out; then in each annulus (the last one the reference) the 3-sigma-clipped means of
    :data:`ROUND_SECTORS` equal sectors are compared (pixels ``mask`` left out, and the
    wing disks ``wings`` of other stars, ``index[i]`` being star i's own index among them).
    A star is not round when the chi-square of its sector means, summed over the annuli, is
    above its 1 - :data:`ROUND_FALSE_ALARM` quantile *and* the largest spread (std) of an
    annulus' sector means is more than half the star's excess in the first annulus over the
    reference (taken as 0 when either ring is empty). A star's own halo is round and, for
    the bright stars that carry the outer light, larger than the halos of its neighbours; a
    cluster's or a nebula's light about a star is lopsided and not the star's. An annulus
    with a sector of fewer than 10 usable pixels, or no noise, does not count (a star with
    none left is kept). The noise assumes independent pixels: resampled frames are called
    lopsided more often (the spread test still keeps stars whose own halo dominates)."""
    from scipy.stats import chi2 as chi2_dist

    data = np.asarray(im.data, float)
    mask = np.asarray(mask, bool)  # non-finite pixels: left out where they are read below
    ny, nx = data.shape
    plane = _sky_plane(data, mask)
    n_sec = ROUND_SECTORS
    out = np.zeros(xs.size)
    r_max = max(r2 for _, r2 in annuli)
    wx, wy, wr, widx = wings if wings is not None and len(wings[0]) else (
        np.empty(0), np.empty(0), np.empty(0), np.empty(0, np.int64))
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        x0, x1 = max(int(math.floor(x - r_max)), 0), min(int(math.ceil(x + r_max)) + 1, nx)
        y0, y1 = max(int(math.floor(y - r_max)), 0), min(int(math.ceil(y + r_max)) + 1, ny)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        d = np.hypot(xx - x, yy - y)
        sector = ((np.arctan2(yy - y, xx - x) % (2.0 * math.pi)) //
                  (2.0 * math.pi / n_sec)).astype(int)
        good = ~mask[y0:y1, x0:x1] & np.isfinite(data[y0:y1, x0:x1])
        own = index[i] if index is not None else -1
        for k in np.flatnonzero((np.abs(wx - x) < r_max + wr) & (np.abs(wy - y) < r_max + wr)):
            if widx[k] != own:
                good &= np.hypot(xx - wx[k], yy - wy[k]) >= wr[k]
        v = data[y0:y1, x0:x1] - plane(xx, yy)
        chi2, dof, spread, level = 0.0, 0, 0.0, {}
        for j, (r1, r2) in enumerate(annuli):
            ring = good & (d >= r1) & (d < r2)
            if j in (0, len(annuli) - 1):  # the first annulus' level over the reference's
                level[j] = _sector_mean(v[ring])[0] if ring.sum() >= 10 else math.nan
            means, errs = [], []
            for k in range(n_sec):
                sel = v[ring & (sector == k)]
                if sel.size < 10:
                    break
                m, e = _sector_mean(sel)
                means.append(m)
                errs.append(e)
            if len(means) < n_sec or not min(errs) > 0:
                continue
            means = np.asarray(means)
            w = 1.0 / np.square(errs)
            chi2 += float(np.sum(w * (means - np.sum(w * means) / np.sum(w)) ** 2))
            dof += n_sec - 1
            spread = max(spread, float(np.std(means)))
        excess = level[0] - level[len(annuli) - 1]
        excess = excess if math.isfinite(excess) else 0.0
        if dof and not spread <= 0.5 * max(excess, 0.0):
            out[i] = chi2 / chi2_dist.ppf(1.0 - ROUND_FALSE_ALARM, dof)
    return out


def _outer_profile(im, sky, starmask, wings, stars, flux_big, annuli, reference, r_big, tail):
    """The profile of :func:`outer_light`: per annulus, the sky excess over the reference
    annulus regressed on the stars' fluxes (``stars``: x, y and table rows), and that excess
    less the tail law's. Returns ``(rows, profile)``: rows ``(r1, r2, area, excess over the
    law, error)`` (the first annulus' area reaches in to the largest aperture, whose sky it
    set), profile ``(r1, r2, excess, error, excess over the law)``; None when an annulus
    has no usable star."""
    xs, ys, idx = stars
    ref_in, ref_out = reference
    ref = sky(im, xs, ys, ref_in, ref_out, starmask, wings=wings, self_index=idx)
    ref_err2 = ref["std"] ** 2 / np.maximum(ref["n"], 1)
    t_ref = tail_annulus_mean(tail, ref_in, ref_out)
    profile, rows = [], []
    for k, (r1, r2) in enumerate(annuli):
        a = sky(im, xs, ys, r1, r2, starmask, wings=wings, self_index=idx)
        d = a["sky"] - ref["sky"]
        err = np.sqrt(a["std"] ** 2 / np.maximum(a["n"], 1) + ref_err2)
        ok = (a["n"] >= sky.min_pixels) & (ref["n"] >= sky.min_pixels)
        h, h_err = _slope_through_origin(np.where(ok, flux_big, np.nan), d, err)
        if not np.isfinite(h):
            return None
        x = h - (tail_annulus_mean(tail, r1, r2) - t_ref)  # light the tail law missed
        if k == 0:
            # the far annulus' excess was subtracted as sky inside the largest aperture, and
            # (a smooth halo) lies between the largest radius and the far annulus too
            area = math.pi * (r_big ** 2 + (r2 ** 2 - r_big ** 2))
        else:
            area = math.pi * (r2 ** 2 - r1 ** 2)
        rows.append((r1, r2, area, x, h_err))
        profile.append((float(r1), float(r2), float(h), float(h_err), float(x)))
    return rows, profile


def _halo_tail_variance(tail, areas, ref_in, ref_out):
    """The tail law's share of the halo's error: where the annuli measure the profile it
    cancels (the law enters the missing light and, with the opposite sign, the annuli's
    excess over it), so it is propagated through their difference."""
    if tail.get("q") is None or tail.get("cov") is None:
        return tail.get("missing_err_stat", 0.0) ** 2

    def total(q):
        m = law_missing(q, tail["r_big"], tail["sky_in"], tail["sky_out"])
        t_r = tail_annulus_mean(tail, ref_in, ref_out, q)
        return m - sum((tail_annulus_mean(tail, r1, r2, q) - t_r) * ar
                       for r1, r2, ar in areas)

    return propagated_variance(total, np.asarray(tail["q"], float), tail["cov"], tail["free"])


#: :meth:`CurveOfGrowth.choose_radius` takes a smaller radius (within its S/N tolerance)
#: when more than this fraction of the stars would have a neighbour in the aperture
MAX_CROWDED_FRACTION = 0.25


def uncrowded_radius(radii, crowding, fwhm):
    """The first of ``radii`` (largest first) at which at most :data:`MAX_CROWDED_FRACTION`
    of the measured stars have a neighbour in the aperture as the fit counts them (1% as
    bright, within the radius plus FWHM/2), else the last; the first without ``crowding``,
    ``(x, y, flux, n)`` of every star, the ``n`` measured ones first (then e.g. the
    undetected catalog stars)."""
    radii = [float(r) for r in radii]
    if crowding is None or crowding[3] < 2:
        return radii[0]
    x, y, f, n = crowding
    judged = np.isfinite(x[:n]) & np.isfinite(y[:n]) & (f[:n] > 0)
    if judged.sum() < 2:
        return radii[0]
    for rr in radii:
        in_ap, _ = neighbours_in(x, y, f, rr, None, fwhm)
        if in_ap[:n][judged].mean() <= MAX_CROWDED_FRACTION:
            return rr
    return radii[-1]


#: the curve of growth's largest radii (FWHM) tried, in turn, when no star gives a usable
#: curve out to ``CurveOfGrowth.max_radius`` (:meth:`CurveOfGrowth.measure`)
SHALLOWER_GROWTH = (3.0, 2.5)


class CurveOfGrowth:
    """Aperture radius and aperture correction from the frame's own stars.

    For up to ``n_stars`` of the brightest unflagged stars with no neighbour contributing more
    than ``isolation`` of their light inside the largest radius, the flux is measured in
    apertures out to ``max_radius`` FWHM (at least 6 px, and 3 px beyond twice the FWHM) with
    the sky from a far annulus. No PSF family is assumed: the light beyond the largest radius
    (and the wing light the far annulus itself holds) comes from a power law
    ``S(r) = A r**-p`` fitted to the stars' outer rings (:func:`~.psf.fit_power_tail`, ``p``
    free), whose uncertainty joins the correction's error; a frame with broad wings gets a
    larger tail, a Gaussian-cored one none.

    :meth:`choose_radius` picks the aperture: the largest radius whose background-limited
    signal-to-noise (``G(r) / r``, from the empirical curve ``G``) is within
    ``snr_tolerance`` of the best, never below :func:`phase_safe_radius`, and smaller in a
    crowded field.

    Each star's total flux is its large-aperture flux times ``1 + missing`` (the tail); the
    correction is the weighted mean over stars of total / (the star's flux in the standard
    aperture with the standard sky) -- so the bias of the standard sky by the star's own wings
    is corrected too. Stars whose concentration (flux within one FWHM over flux in the
    aperture) is a 3-sigma outlier (robust) are dropped as blends or galaxies; the ratios are
    clipped about their weighted median at 3 times their error (the noise of the ring between
    the two apertures and of both skies, with a 0.5% floor for PSF changes across the field)
    and averaged with those weights; the error is the sandwich error of that mean with an
    extra per-star scatter solved from the data where the stars disagree beyond their errors
    (:func:`_robust_weighted_mean`).

    Neighbour light only ever raises a ratio, so the isolation test matters: light from stars
    that were not detected is only known from the catalog;
    :func:`~glue_zeropoint.zeropoint.measure_image` passes the undetected catalog stars
    (``mask_positions`` with fluxes).

    When no star gives a usable curve out to ``max_radius`` FWHM (none isolated, or their far
    sky annuli crowded or off the frame: a crowded field), the curves reach
    :data:`SHALLOWER_GROWTH` FWHM in turn (3, then 2.5; a radius equal to one already tried is
    skipped), the tail beyond being a larger part of the correction; only with no usable
    curve even there is the correction the profile envelope.

    Parameters
    ----------
    max_radius : float
        Largest aperture radius in FWHM (smaller ones are tried in a crowded field, see
        above).
    n_stars : int
        At most this many stars are used.
    min_stars : int
        Fewer usable stars: a warning, and the correction rests on what there is; none: the
        profile envelope (:func:`envelope_correction`).
    min_snr : float
        Minimum flux / flux_err in the standard aperture.
    isolation : float
        Largest estimated fraction of neighbour light inside the largest aperture.
    snr_tolerance : float
        See :meth:`choose_radius`.
    outer_light : bool
        Measure the light beyond the rings from the sky annuli of every bright star
        (:func:`outer_light`), so that a broad halo the far annulus would hide is counted.

    Examples
    --------
    >>> CurveOfGrowth(max_radius=4.0, n_stars=20)
    CurveOfGrowth(max_radius=4.0, n_stars=20, min_stars=3, min_snr=50.0, isolation=0.002)
    """

    def __init__(self, max_radius=4.0, n_stars=25, min_stars=3, min_snr=50.0, isolation=0.002,
                 snr_tolerance=0.08, outer_light=True):
        if not max_radius > 1.5:
            raise InputError(f"CurveOfGrowth: max_radius must be > 1.5 FWHM, got {max_radius!r}")
        if not 0 <= snr_tolerance < 1:
            raise InputError(f"CurveOfGrowth: snr_tolerance must be in [0, 1), got "
                             f"{snr_tolerance!r}")
        self.max_radius = float(max_radius)
        self.n_stars = int(n_stars)
        self.min_stars = int(min_stars)
        self.min_snr = float(min_snr)
        self.isolation = float(isolation)
        self.snr_tolerance = float(snr_tolerance)
        self.outer_light = bool(outer_light)

    def __repr__(self):
        return (f"CurveOfGrowth(max_radius={self.max_radius}, n_stars={self.n_stars}, "
                f"min_stars={self.min_stars}, min_snr={self.min_snr}, "
                f"isolation={self.isolation})")

    def big_radius(self, fwhm):
        """The largest aperture radius (pixels) for a FWHM."""
        return max(self.max_radius * fwhm, 2.0 * fwhm + 3.0, 6.0)

    def _select(self, table, psf, neighbours):
        r_big = self.big_radius(psf.fwhm)
        x = np.asarray(table["x"], float)
        y = np.asarray(table["y"], float)
        f = np.asarray(table["flux_aper"], float)
        ferr = np.asarray(table["flux_aper_err"], float)
        flags = np.asarray(table["flags"], int)
        with np.errstate(invalid="ignore", divide="ignore"):
            snr = f / ferr
        if neighbours is not None and len(neighbours[0]):
            nx_, ny_, nf_ = (np.asarray(v, float) for v in neighbours)
            cont_big = _contamination(np.r_[x, nx_], np.r_[y, ny_], np.r_[f, nf_], psf,
                                      r_big)[: x.size]
        else:
            cont_big = _contamination(x, y, f, psf, r_big)
        ok = (flags == 0) & (snr >= self.min_snr) & (cont_big <= self.isolation)
        idx = np.nonzero(ok)[0]
        return idx[np.argsort(-f[idx])][: self.n_stars]

    def measure(self, im, table, psf, sky, starmask, neighbours=None, wings=None):
        """The curves of growth of the table's best stars (a :class:`Growth`), or None when
        no star qualifies.

        Without an empirical profile yet (a PSF known only by its width), the isolation test
        first uses the core alone; the profile measured on those stars then chooses the
        isolated stars again and they are measured again, so that neighbours' wings are
        judged by the frame's own wings."""
        psf = as_psf(psf)
        growth = self._two_passes(im, table, psf, sky, starmask, neighbours, wings)
        last = self
        for shallower in SHALLOWER_GROWTH:
            if growth is not None:
                break
            # a crowded field: no star is isolated out to max_radius FWHM, or its far sky
            # annulus is crowded (or off the frame); closer in, some may do, and the light
            # beyond comes from the same data-driven tail (a larger part of the correction,
            # with its error) -- still better than the profile envelope (80 stars of FWHM
            # 6 px on 384^2: 15 of 40 frames took the envelope, whose middle is 0.04 mag off
            # for Moffat beta = 3 stars)
            near = copy.copy(self)
            near.max_radius = shallower
            if not near.big_radius(psf.fwhm) < last.big_radius(psf.fwhm) - 1e-9:
                continue  # the same largest radius (2 FWHM + 3 px, or 6 px) as already tried
            growth = near._two_passes(im, table, psf, sky, starmask, neighbours, wings)
            if growth is not None:
                log.info("%s: no usable curve of growth out to %.3g px (no isolated star, "
                         "or its far sky annulus crowded or off the frame); curve of growth "
                         "out to %.3g FWHM (%.1f px)", im.name, last.big_radius(psf.fwhm),
                         shallower, near.big_radius(psf.fwhm))
            last = near
        return growth

    def _two_passes(self, im, table, psf, sky, starmask, neighbours, wings):
        final = psf.radii is not None  # the outer light only in the final pass (its cost)
        growth = self._measure(im, table, psf, sky, starmask, neighbours, wings, final)
        if growth is not None and not final:
            growth = self._measure(im, table, growth.psf, sky, starmask, neighbours,
                                   wings, True) or growth
        return growth

    def _measure(self, im, table, psf, sky, starmask, neighbours, wings, outer=True):
        fwhm = psf.fwhm
        idx = self._select(table, psf, neighbours)
        if idx.size == 0:
            return None
        r_big = self.big_radius(fwhm)
        xs = np.asarray(table["x"], float)[idx]
        ys = np.asarray(table["y"], float)[idx]
        far_in, far_out = r_big + max(fwhm, 1.5), r_big + max(3.0 * fwhm, 5.0)
        s = sky(im, xs, ys, far_in, far_out, starmask, wings=wings, self_index=idx)
        r0 = max(0.5, 0.5 * min(fwhm, 2.0))
        radii = np.unique(np.r_[np.linspace(r0, r_big, 28), phase_safe_radius(fwhm), fwhm,
                                float(table.meta.get("aperture_radius", fwhm))])
        radii = radii[radii <= r_big]
        curves, abad, aoff = growth_curves(im, xs, ys, radii, s["sky"])
        good = (np.isfinite(s["sky"]) & (s["n"] >= sky.min_pixels) & (abad == 0) & (aoff == 0)
                & (curves[:, -1] > 0))
        sig2 = (s["std"] / sky.std_ratio) ** 2
        area_big = math.pi * r_big ** 2
        sky_var = sky.k * sig2 / np.maximum(s["n"], 1)  # of each star's sky level
        var_big = np.clip(curves[:, -1], 0, None) + area_big * sig2 + area_big ** 2 * sky_var
        idx, curves, var_big, sig2, sky_var = (idx[good], curves[good], var_big[good],
                                               sig2[good], sky_var[good])
        if idx.size == 0:
            return None
        # shape test: the concentration flux(FWHM) / flux(phase-safe radius) of an undetected
        # blend or a galaxy is lower than a star's; drop the outliers (robust, unweighted)
        j_f = int(np.argmin(np.abs(radii - fwhm)))
        j_a = int(np.argmin(np.abs(radii - phase_safe_radius(fwhm))))
        if j_f != j_a and idx.size >= 3:
            conc = curves[:, j_f] / curves[:, j_a]
            med_c = float(np.median(conc))
            star_like = np.abs(conc - med_c) <= 3.0 * max(float(mad_std(conc)), 0.005)
            if star_like.sum() >= 1:
                idx, curves, var_big, sig2, sky_var = (
                    idx[star_like], curves[star_like], var_big[star_like], sig2[star_like],
                    sky_var[star_like])
        norm = curves / curves[:, -1:]
        # brightest first: the curve shape from the best stars
        median = np.median(norm[: max(self.n_stars // 2, 3)], axis=0)
        tail = fit_power_tail(radii, curves, sig2, far_in, far_out,
                              r_min=max(2.0 * fwhm, 3.0), sky_var=sky_var)
        if self.outer_light and outer:
            j_ap = int(np.argmin(np.abs(radii - float(table.meta.get("aperture_radius",
                                                                       fwhm)))))
            tail = outer_light(im, table, sky, starmask, wings, float(median[j_ap]), r_big,
                               far_in, far_out, tail)
        total = 1.0 + tail["missing"]
        new_psf = psf.with_growth(radii, median / total, tail["amplitude"] / total,
                                  tail["index"], idx.size, tail.get("softening", 0.0))
        return Growth(idx, radii, curves, var_big, sig2, tail, new_psf, median)

    def choose_radius(self, growth, crowding=None):
        """The aperture radius: best background-limited S/N (within ``snr_tolerance``, the
        largest such radius), never below :func:`phase_safe_radius` nor above 2 FWHM. With
        ``crowding`` (:func:`uncrowded_radius`), the largest such radius at which at most
        :data:`MAX_CROWDED_FRACTION` of the stars have a neighbour in the aperture (as the
        fit counts them: 1% as bright, within the radius plus FWHM/2), else the smallest: a
        crowded field does not lose every star to a wide aperture (80 stars of FWHM 6 px on
        384^2: all 27 crowded at 2 FWHM, no zero point)."""
        fwhm = growth.psf.fwhm
        r = growth.radii
        with np.errstate(invalid="ignore", divide="ignore"):
            sn = growth.median / r
        floor = phase_safe_radius(fwhm)
        cap = max(2.0 * fwhm, floor)
        ok = np.isfinite(sn) & (sn >= (1.0 - self.snr_tolerance) * np.nanmax(sn)) & (r <= cap)
        if not ok.any():
            return float(min(floor, cap))
        return uncrowded_radius(np.clip(np.sort(r[ok])[::-1], floor, cap), crowding, fwhm)

    def correction(self, growth, table):
        """The :class:`ApertureCorrection` of the table's aperture (its ``aperture_radius``)
        from the curves of growth."""
        idx = growth.idx
        r_ap = float(table.meta["aperture_radius"])
        fwhm = growth.psf.fwhm
        f_std = np.asarray(table["flux_aper"], float)[idx]
        ferr = np.asarray(table["flux_aper_err"], float)[idx]
        total = 1.0 + growth.tail["missing"]
        c_big = growth.curves[:, -1]
        ratio = c_big * total / f_std
        # error of each ratio R = C / f: the large aperture C contains the standard one f, so
        # their noise is correlated through the photons and pixels inside r_ap:
        # var(R)/R^2 = var(C)/C^2 + var(f)/f^2 - 2 cov(C, f)/(C f), cov = f + n_ap sigma^2,
        # never below the noise of the ring between r_ap and the large radius alone
        r_big = growth.radii[-1]
        n_ap = np.asarray(table["n_pix"], float)[idx]
        cov = np.clip(f_std, 0, None) + n_ap * growth.sig2
        with np.errstate(invalid="ignore", divide="ignore"):
            rel2 = (growth.var_big / c_big ** 2 + (ferr / f_std) ** 2
                    - 2.0 * cov / (c_big * f_std))
            ring = (np.clip(c_big - f_std, 0, None)
                    + np.clip(math.pi * r_big ** 2 - n_ap, 0, None) * growth.sig2) / f_std ** 2
            r_err = ratio * np.sqrt(np.maximum(rel2, ring))
        use = np.isfinite(ratio) & np.isfinite(r_err) & (r_err > 0) & (f_std > 0)
        value, err, n = _robust_weighted_mean(ratio[use], r_err[use])
        if n == 0:
            return envelope_correction(r_ap, fwhm, "no usable curve-of-growth star")
        # the tail is common to every star: its error adds to the mean's
        err = math.hypot(err, value * growth.tail["missing_err"] / total)
        lo, hi = 1.0 / _gaussian_inside(r_ap, fwhm), 1.0 / _r4_halo_inside(r_ap, fwhm)
        most = 1.0 / _r4_halo_inside(r_ap, FWHM_TOLERANCE * fwhm)
        if not (value + 3.0 * err >= 1.0 and value <= most + 3.0 * err) or \
                err > 0.5 * (hi - lo):
            # outside what a star can have, or less certain than the profile envelope itself
            return envelope_correction(
                r_ap, fwhm, f"the curve of growth of {n} star(s) gives {value:.3f} +/- "
                            f"{err:.3f}, outside or less certain than what the PSF families "
                            f"allow (1 to {most:.3f})")
        if n < self.min_stars:
            warnings.warn(f"aperture correction rests on only {n} star(s) (wanted "
                          f"{self.min_stars}); its error is uncertain", GrowthCurveWarning,
                          stacklevel=3)
        return ApertureCorrection(value, err, n, "curve of growth", growth.radii.tolist(),
                                  growth.median.tolist(), 1.0 / total,
                                  float(growth.tail["missing_err"] / total))

    def __call__(self, im, table, psf, sky, starmask, neighbours=None, wings=None):
        """Measure the curves of growth and return the correction of the table's aperture."""
        growth = self.measure(im, table, psf, sky, starmask, neighbours=neighbours,
                              wings=wings)
        if growth is None:
            return envelope_correction(float(table.meta["aperture_radius"]), as_psf(psf).fwhm,
                                       "no bright isolated unflagged star")
        return self.correction(growth, table)


def as_psf(psf):
    """A :class:`~.psf.PSF` from a PSF, a dict (:meth:`PSF.to_dict`) or a FWHM (pixels)."""
    if isinstance(psf, PSF):
        return psf
    if isinstance(psf, dict):
        return PSF.from_dict(psf)
    return PSF(fwhm=float(psf))


def _weighted_median(values, weights):
    order = np.argsort(values)
    v, w = values[order], weights[order]
    c = np.cumsum(w)
    return float(v[np.searchsorted(c, 0.5 * c[-1])])


def _robust_weighted_mean(values, errors, clip=3.0, floor=0.005, excess_level=0.95,
                          pair_sigma=2.0):
    """Weighted mean after clipping about a weighted median: values farther than
    ``clip * sqrt(err^2 + floor^2)`` from the reference are dropped (a blend has a tiny error
    and a deviant ratio, so it is dropped, not followed), the reference becomes the weighted
    mean of the survivors, until stable; ``floor`` allows for PSF changes across the field.

    The mean uses the weights ``1 / (err^2 + max(s^2, floor^2))``. The extra per-star
    scatter ``s >= 0`` is solved so that chi^2/dof = 1 (as the zero-point fit does) only
    when the stars disagree beyond their errors and the floor (chi^2 above its
    ``excess_level`` quantile); its error is the sandwich estimate
    ``sqrt(sum(w^2 (err^2 + s^2))) / sum(w)``. Solving ``s`` whenever chi^2 exceeded its
    degrees of freedom took a chance 1.5-2 sigma star of three to six for a scatter: the
    weights went flat, the mean left its bright stars for the faint ones and the error grew
    several-fold (a bright star's 1.1967 +- 0.0010 and two others gave 1.203 +- 0.024); with
    the test, injection pulls move towards unit width and the zero points' own scatter
    shrinks (tests/benchmarks/README.md). Two stars: the error is at least half their
    difference when that difference exceeds ``pair_sigma`` of its own error (one of them is
    off, and which one is not known). Returns (mean, error, n used)."""
    n = values.size
    if n == 0:
        return float("nan"), float("nan"), 0
    if n == 1:
        return float(values[0]), float(max(errors[0], 0.01 * abs(values[0]))), 1
    tol = np.sqrt(errors ** 2 + floor ** 2)
    w_all = 1.0 / tol ** 2
    ref = _weighted_median(values, w_all)
    keep = np.ones(n, bool)
    for _ in range(10):
        new = np.abs(values - ref) <= clip * tol
        if new.sum() < 2:
            break
        w = w_all[new]
        ref = float(np.sum(w * values[new]) / np.sum(w))
        if np.array_equal(new, keep):
            break
        keep = new
    v, e2 = values[keep], errors[keep] ** 2
    m = v.size

    def chi2(s2, base=e2):
        w = 1.0 / (base + s2)
        mu = np.sum(w * v) / np.sum(w)
        return float(np.sum(w * (v - mu) ** 2))

    s2 = 0.0
    if m > 2 and chi2(0.0, e2 + floor ** 2) > float(scipy_chi2.ppf(excess_level, m - 1)):
        hi = float(np.var(v)) * 4.0 + float(np.max(e2))
        s2 = solve_excess_variance(chi2, m - 1, hi, xtol=1e-14, rtol=1e-8, grow_until=0.0)
    # weights with the solved per-star variance (never below the floor); the sandwich
    # error with that variance
    w = 1.0 / (e2 + max(s2, floor ** 2))
    mean = float(np.sum(w * v) / np.sum(w))
    err = math.sqrt(float(np.sum(w * w * (e2 + s2))) / float(np.sum(w)) ** 2)
    if m == 2:
        diff = abs(float(v[0] - v[-1]))
        if diff > pair_sigma * math.sqrt(float(np.sum(e2)) + 2.0 * floor ** 2):
            err = max(err, diff / 2.0)
    return mean, err, m


def _contamination(x, y, flux, psf, radius):
    """Estimated fraction of each star's flux (inside ``radius``) due to listed neighbours,
    from the frame's PSF (its empirical curve of growth once measured)."""
    return _contaminations(x, y, flux, psf, (radius,))[0]


def _contaminations(x, y, flux, psf, radii):
    """:func:`_contamination` for several radii (one array per radius) from one neighbour
    search."""
    n = x.size
    if n < 2:
        return [np.zeros(n) for _ in radii]
    tables = [as_psf(psf).fraction_table(float(r)) for r in radii]
    ok = np.isfinite(x) & np.isfinite(y)
    pos = np.c_[np.where(ok, x, -1e9), np.where(ok, y, -1e9)]
    reach = max(float(d_tab[-1]) for d_tab, _ in tables)
    pairs = cKDTree(pos).query_pairs(reach, output_type="ndarray")
    if pairs.size == 0:
        return [np.zeros(n) for _ in radii]
    i, j = pairs[:, 0], pairs[:, 1]
    d = np.hypot(x[i] - x[j], y[i] - y[j])
    fl = np.where(np.isfinite(flux) & (flux > 0), flux, 0.0)
    outs = []
    for d_tab, f_tab in tables:
        out = np.zeros(n)
        frac = np.interp(d, d_tab, f_tab, right=0.0)  # beyond its table: not counted
        np.add.at(out, i, fl[j] * frac)
        np.add.at(out, j, fl[i] * frac)
        # fraction of the star's own light inside the radius (its own aperture)
        own = max(float(f_tab[0]), 1e-9)
        with np.errstate(divide="ignore", invalid="ignore"):
            outs.append(np.where(fl > 0, out / (fl * own), np.inf))
    return outs


def aperture_fluxes(ccd, positions, aperture_radius, annulus, *, sky=None, starmask=None,
                    wings=None, self_index=None):
    """Sky-subtracted exact-aperture fluxes at fixed positions (no recentring, no correction).

    The fast core of :func:`measure_stars`, for callers that already have final positions
    (e.g. the Glue star tool). Same numbers as photutils' ``aperture_photometry(...,
    method='exact')`` minus ``ApertureStats(annulus, sigma_clip=SigmaClip(3, maxiters=10))
    .median`` times the aperture area (with the default ``sky``).

    Parameters
    ----------
    ccd : CCDData, 2-D array or PreparedImage
    positions : Table (x, y) or (N, 2) array
    aperture_radius : float
    annulus : (float, float)
    sky : AnnulusSky, optional
        Default ``AnnulusSky(mask_radius=None, statistic='median')``: photutils' numbers.
        :func:`measure_stars` uses the clipped *mean* (unbiased for a Poisson sky, see
        :class:`AnnulusSky`); ``AnnulusSky(mask_radius=None)`` gives it here, equal to
        ``ApertureStats(...).mean``.
    starmask : ndarray of bool, optional
        Pixels left out of the annuli.
    wings, self_index : optional
        Bright stars' wing disks left out of the annuli too (:meth:`AnnulusSky.__call__`).

    Returns
    -------
    dict of ndarrays
        ``aperture_sum``, ``area``, ``area_bad``, ``area_off``, ``peak``, ``var_sum``,
        ``sky``, ``sky_std``, ``n_sky``, ``sky_mean_var``, ``flux``.

    Examples
    --------
    >>> import numpy as np
    >>> out = aperture_fluxes(np.full((50, 50), 10.0), [[25.0, 25.0]], 3.0, (6.0, 10.0))
    >>> abs(round(float(out['flux'][0]), 9)), float(out['sky'][0])
    (0.0, 10.0)
    """
    im = ccd if isinstance(ccd, PreparedImage) else prepare_image(ccd)
    sky = AnnulusSky(mask_radius=None, statistic="median") if sky is None else sky
    xs, ys = _positions_xy(positions)
    xs = np.ascontiguousarray(xs)
    ys = np.ascontiguousarray(ys)
    r_in, r_out = annulus
    s = sky(im, xs, ys, r_in, r_out, starmask, wings=wings, self_index=self_index)
    var = im.variance if im.variance is not None else im.data
    sm, sv, area, abad, aoff, peak = K.aperture_sums(
        im.data, var, im.bad, xs, ys, np.full(xs.size, float(aperture_radius)),
        im.variance is not None)
    return {"aperture_sum": sm, "area": area, "area_bad": abad, "area_off": aoff,
            "peak": peak, "var_sum": sv, "sky": s["sky"], "sky_std": s["std"],
            "n_sky": s["n"], "sky_mean_var": s["mean_var"], "sky_unmasked": s["unmasked"],
            "flux": sm - s["sky"] * area}


def _validate_radii(aperture_radius, annulus):
    if not (aperture_radius > 0 and math.isfinite(aperture_radius)):
        raise InputError(f"aperture_radius must be a positive number of pixels, got "
                         f"{aperture_radius!r}")
    try:
        r_in, r_out = (float(v) for v in annulus)
    except (TypeError, ValueError) as err:
        raise InputError(f"annulus must be (r_in, r_out) in pixels, got {annulus!r}") from err
    if not (aperture_radius <= r_in < r_out):
        raise InputError(f"annulus must satisfy aperture_radius <= r_in < r_out, got "
                         f"aperture_radius={aperture_radius}, annulus={annulus!r}")
    return r_in, r_out


def measure_stars(ccd, positions, *, psf=None, sky=None, aperture_correction=None,
                  mask_positions=None, settings=None, flux_sky=None, **keywords):
    """Measure stars: centroids, exact-aperture fluxes with a local sky, errors, flags.

    The aperture is chosen from the frame's own curve of growth unless given
    (:meth:`CurveOfGrowth.choose_radius`): a first pass measures every star in a provisional
    aperture (:func:`default_radii`), the curve of growth of the brightest isolated stars
    gives the PSF's empirical profile and the radius, and the stars are measured again in
    that radius with the crowding estimate from the empirical profile.

    The numbers and switches are an :class:`~.settings.ApertureSettings` (``settings``), or
    its fields given as keywords (``fwhm=3.0, recenter=False``); the strategies are
    arguments of their own.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData` or 2-D array
        A calibrated image in electrons (with its uncertainty and mask), or a plain image in ADU
        (then ``gain`` converts it and the CCD equation gives the errors).
    positions : Table, (N, 2) array or `~astropy.coordinates.SkyCoord`
        Pixel positions (0-based; a table with ``x``/``y`` or ``x_centroid``/``y_centroid``
        columns, and optionally ``star_id`` or ``id``), or sky positions (through the WCS).
    fwhm : float, optional
        Pixels; default from ``psf``, else ``positions.meta['psf']``/``['fwhm']`` (as
        :func:`find_stars` sets them), else measured from the stars (:func:`measure_psf`).
    psf : `~glue_zeropoint.photometry.PSF` or dict, optional
        A measured PSF (e.g. ``find_stars(...).meta['psf']``).
    aperture_radius : float, optional
        Pixels; default chosen from the curve of growth (see above).
    annulus : (float, float), optional
        Sky annulus radii in pixels; default ``(3, 5) * fwhm`` (:func:`default_radii`).
    recenter : bool
        Refine the positions with Gaussian-windowed centroids (failures keep the given
        position and get flag ``centroid``).
    gain, read_noise, saturation, exptime : float, optional
        Override the header (``GAIN``/``EGAIN``, ``RDNOISE``, ``SATURATE``, ``EXPTIME``/
        ``EXPOSURE``); ``saturation`` is in the input's units.
    sky : AnnulusSky, optional
        Local-sky strategy of the first look (centroids, peaks, the noise level) and of the
        curve of growth (default ``AnnulusSky()``: 3-sigma clipped mean, other stars masked
        within 2.5 FWHM and bright stars' wings further out).
    flux_sky : AnnulusSky, optional
        The sky subtracted from the stars' fluxes (and their errors). Default: with the
        default ``sky``, ``AnnulusSky(sigma=FLUX_SKY_SIGMA)`` (a 5-sigma clipped mean: the
        light of stars too faint to detect stays in the sky as it stays in the apertures;
        beside a globular cluster with undersampled stars a 3-sigma clip made zero points
        +7.9 mmag too bright, pull +2.0, and 5 sigma +4.7, tests/benchmarks/README.md), while
        the curve of growth keeps ``sky``; with a ``sky`` given, that ``sky``.
    aperture_correction : CurveOfGrowth, float, or None
        Default ``CurveOfGrowth()``; a float is used as a fixed correction; ``False`` or 1.0
        for none (then the radius is not chosen from the data: :func:`default_radii`).
    mask_positions : Table or (N, 2) array, optional
        More stars to mask out of the sky annuli and to count as neighbours (e.g. every
        detected star when measuring a few, or the catalog stars that were not detected). A
        table with a ``flux`` column (total flux, e-) gives their brightness for the crowding
        flag and the isolation of the aperture-correction stars; otherwise each is assumed as
        bright as the median measured star (for the crowding flag only).
    nonlinear : float
        Fraction of saturation above which the peak is flagged ``nonlinear``.
    crowding_limit : float
        Flag ``crowded`` when neighbours are estimated to add more than this fraction of the
        star's flux to its aperture (from the frame's PSF).
    settings : ApertureSettings, optional
        The numbers and switches above in one object (keywords override its fields).

    Returns
    -------
    `~astropy.table.Table`
        ``star_id``, ``x``, ``y`` (refined), ``x_in``, ``y_in`` (given), ``ra``, ``dec`` (deg,
        if the image has a celestial WCS), ``flux``, ``flux_err`` (total flux, e-),
        ``flux_aper``, ``flux_aper_err`` (inside the aperture), ``aperture_sum``, ``sky``,
        ``sky_err`` (e-/pixel), ``sky_std``, ``n_sky``, ``n_pix`` (aperture area), ``peak``,
        ``contamination``, ``concentration``, ``concentration_err`` (the share of the light
        inside twice the aperture radius that lies inside the aperture: lower than the
        stars' for a galaxy or a blend, flag ``extended``; :func:`concentration`),
        ``mag_inst``, ``mag_inst_err`` (``-2.5 log10(flux / exptime)``), ``flags``,
        ``flag_text``. ``meta``: ``fwhm``, ``psf`` (:meth:`PSF.to_dict`),
        ``aperture_radius``, ``aperture_radius_method``, ``annulus_in``, ``annulus_out``,
        ``aperture_correction``, ``aperture_correction_err``, ``aperture_correction_n``,
        ``aperture_correction_method``, ``growth_radii``, ``growth_curve``, ``exptime``,
        ``gain``, ``error_model``, ``assumptions``, ``image``.

    Raises
    ------
    InputError
        Bad radii, positions of the wrong form, sky positions without a WCS, no exposure time.
    PhotometryError
        No positions at all.

    Examples
    --------
    >>> from glue_zeropoint.simulate import simulate_image
    >>> ccd, truth = simulate_image(shape=(256, 256), n_stars=30, seed=2)
    >>> stars = measure_stars(ccd, truth['field'].stars, fwhm=3.5)
    >>> sorted(stars.meta)[:3]
    ['annulus_in', 'annulus_out', 'aperture_correction']
    """
    st = ApertureSettings.from_keywords(settings, **keywords)
    im = ccd if isinstance(ccd, PreparedImage) else prepare_image(
        ccd, gain=st.gain, read_noise=st.read_noise, saturation=st.saturation,
        exptime=st.exptime)
    t = im.require_exptime()
    xs, ys, ids = _star_positions(im, positions)
    n = xs.size
    psf = _resolve_psf(im, positions, xs, ys, st.fwhm, psf)
    fwhm = psf.fwhm
    d_ap, d_ann = default_radii(fwhm)
    r_ap = float(st.aperture_radius) if st.aperture_radius is not None else d_ap
    r_in, r_out = _annulus_for(r_ap, st.annulus, d_ann)
    if flux_sky is None:
        flux_sky = AnnulusSky(sigma=FLUX_SKY_SIGMA) if sky is None else sky
    sky = AnnulusSky() if sky is None else sky
    if aperture_correction is None:
        aperture_correction = CurveOfGrowth()
    allx, ally, extra_flux = _neighbours(xs, ys, mask_positions)
    starmask = sky.star_mask(im.shape, allx[np.isfinite(allx)], ally[np.isfinite(ally)], fwhm)
    s0 = sky(im, xs, ys, r_in, r_out, starmask)
    base_peaks = np.zeros(allx.size)
    base_peaks[:n] = _peak_above(im, xs, ys, s0["sky"])
    noise = float(np.nanmedian(s0["std"])) / sky.std_ratio
    x_out, y_out, centroid_failed = _recentre(im, xs, ys, s0["sky"], psf, st.recenter)

    def run(r_ap, r_in, r_out, psf, judge_snr=None):
        wings = _wings(sky, starmask, allx, ally, base_peaks, extra_flux, n, psf, noise)
        cols, flags, error_model = _photometry(
            im, x_out, y_out, r_ap, r_in, r_out, flux_sky, starmask, wings, psf, allx, ally,
            extra_flux, st.nonlinear, st.crowding_limit, judge_snr)
        flags[centroid_failed] |= FLAG_CENTROID
        cols = {"star_id": np.asarray(ids), "x": x_out, "y": y_out, "x_in": xs, "y_in": ys,
                **cols, "flags": flags}
        meta = {"fwhm": fwhm, "aperture_radius": r_ap, "annulus_in": r_in,
                "annulus_out": r_out, "exptime": t, "gain": im.gain,
                "error_model": error_model, "image": im.name, "saturation": im.saturation}
        return Table(cols, meta=meta, copy=False), wings

    # with a curve of growth this first table only chooses its stars (it is measured again)
    measured = isinstance(aperture_correction, CurveOfGrowth)
    table, wings = run(r_ap, r_in, r_out, psf, judge_snr=min(
        EXTENDED_MIN_SNR, aperture_correction.min_snr) if measured else None)
    radius_method = "given" if st.aperture_radius is not None else "default (1.5 FWHM)"
    if not measured:
        return _finish(table, _fixed_correction(aperture_correction), psf, t, radius_method,
                       im)
    neighbours = None if extra_flux is None else (allx[n:], ally[n:], extra_flux)
    growth = aperture_correction.measure(im, table, psf, sky, starmask,
                                         neighbours=neighbours, wings=wings)
    if growth is not None:
        psf = growth.psf
        if st.aperture_radius is None:
            r_ap = aperture_correction.choose_radius(growth, _crowding(table, allx, ally,
                                                                        extra_flux))
            r_in, r_out = _annulus_for(r_ap, st.annulus, d_ann)
            radius_method = "curve of growth (best S/N, phase-safe)"
            if r_ap < aperture_correction.choose_radius(growth) - 1e-9:
                radius_method += ", reduced: crowded"
        # measure again with the empirical profile (crowding, wings) and the radius
        table, wings = run(r_ap, r_in, r_out, psf)
        corr = aperture_correction.correction(growth, table)
    else:
        if st.aperture_radius is None:
            # no star to measure the wings on: a wider aperture keeps the envelope small,
            # unless it would crowd the stars out of the fit
            floor = phase_safe_radius(fwhm)
            wide = max(2.0 * fwhm, floor)
            r_ap = uncrowded_radius(np.linspace(wide, floor, 6),
                                    _crowding(table, allx, ally, extra_flux), fwhm)
            r_in, r_out = _annulus_for(r_ap, st.annulus, d_ann)
            radius_method = "2 FWHM (no curve of growth)" if r_ap >= wide - 1e-9 else \
                f"{r_ap / fwhm:.2g} FWHM (no curve of growth; 2 FWHM crowded)"
        # measured again: at the new radius, or to judge every source's concentration
        table, wings = run(r_ap, r_in, r_out, psf)
        corr = envelope_correction(r_ap, fwhm, "no bright isolated unflagged star")
    return _finish(table, corr, psf, t, radius_method, im)


def _crowding(table, allx, ally, extra_flux):
    """``(x, y, flux, n)`` of every star for :func:`uncrowded_radius`: the measured ones
    (their aperture flux) first, then the extra mask positions (their flux, else as bright
    as the median measured star, as for the crowding flag)."""
    n = len(table)
    f = np.asarray(table["flux_aper"], float)
    if allx.size > n:
        f = np.r_[f, extra_flux if extra_flux is not None
                  else np.full(allx.size - n, np.nanmedian(f))]
    return allx, ally, f, n


def _neighbours(xs, ys, mask_positions):
    """Every star's position (the measured ones first, then ``mask_positions``) and the
    extra stars' fluxes (None when not known)."""
    if mask_positions is None:
        return xs, ys, None
    mx, my = _positions_xy(mask_positions)
    extra_flux = None
    if isinstance(mask_positions, Table) and "flux" in mask_positions.colnames:
        extra_flux = np.asarray(mask_positions["flux"], float)
    return np.r_[xs, mx], np.r_[ys, my], extra_flux


def _recentre(im, xs, ys, sky_level, psf, recenter):
    """Gaussian-windowed centroids (``recenter``), or the given positions; and which
    centroids failed (those keep the given position)."""
    if not recenter:
        return xs.copy(), ys.copy(), np.zeros(xs.size, bool)
    cx, cy, ok = K.windowed_centroids(im.data, im.bad, np.ascontiguousarray(xs),
                                      np.ascontiguousarray(ys),
                                      np.where(np.isfinite(sky_level), sky_level, np.nan),
                                      max(psf.sigma_eff, 0.5), 30, max(psf.fwhm, 1.0))
    return cx, cy, ~ok & np.isfinite(xs) & np.isfinite(ys)


def _fixed_correction(aperture_correction):
    """The :class:`ApertureCorrection` of a correction that is not measured: ``False`` (none),
    an :class:`ApertureCorrection`, or a positive number."""
    if aperture_correction is False:
        return ApertureCorrection(1.0, 0.0, 0, "none")
    if isinstance(aperture_correction, ApertureCorrection):
        return aperture_correction
    try:
        value = float(aperture_correction)
    except (TypeError, ValueError) as err:
        raise InputError("aperture_correction must be a CurveOfGrowth, a number or False, "
                         f"got {aperture_correction!r}") from err
    if not value > 0:
        raise InputError(f"aperture_correction must be > 0, got {value!r}")
    return ApertureCorrection(value, 0.0, 0, "fixed" if value != 1.0 else "none")


def _star_positions(im, positions):
    ids = None
    if isinstance(positions, SkyCoord):
        if im.wcs is None or not getattr(im.wcs, "has_celestial", False):
            raise InputError(f"{im.name}: sky positions need a celestial WCS; the image has "
                             "none (give pixel positions or a WCS)")
        xs, ys = im.wcs.world_to_pixel(positions)
        xs, ys = np.atleast_1d(np.asarray(xs, float)), np.atleast_1d(np.asarray(ys, float))
    else:
        xs, ys = _positions_xy(positions)
        if isinstance(positions, Table):
            for name in ("star_id", "id"):
                if name in positions.colnames:
                    ids = np.asarray(positions[name])
                    break
    if xs.size == 0:
        raise PhotometryError(f"{im.name}: no star positions to measure")
    ids = np.arange(1, xs.size + 1) if ids is None else ids
    return xs, ys, ids


def _resolve_psf(im, positions, xs, ys, fwhm, psf):
    """The PSF to measure with: given, from the positions' meta, from a FWHM, or measured."""
    if psf is not None:
        psf = as_psf(psf)
        return psf if fwhm is None else psf.with_fwhm(float(fwhm))
    meta = positions.meta if isinstance(positions, Table) else {}
    if fwhm is None and meta.get("psf"):
        return as_psf(meta["psf"])
    if fwhm is None and meta.get("fwhm"):
        fwhm = float(meta["fwhm"])
    if fwhm is None:
        order = _rough_brightness_order(im, xs, ys)
        return measure_psf(im, xs[order], ys[order])
    fwhm = float(fwhm)
    if not (fwhm > 0 and math.isfinite(fwhm)):
        raise InputError(f"fwhm must be a positive number of pixels, got {fwhm!r}")
    return PSF(fwhm=fwhm)


def _annulus_for(r_ap, annulus, default):
    """The sky annulus for an aperture: given, else the default moved out when the aperture
    reaches into it."""
    if annulus is None:
        annulus = default
        if r_ap + 1.0 > default[0]:
            annulus = (r_ap + 2.0, max(default[1], r_ap + 7.0))
    return _validate_radii(r_ap, annulus)


def _wings(sky, starmask, allx, ally, base_peaks, extra_flux, n, psf, noise):
    """The bright stars' wing disks (:meth:`AnnulusSky.wing_disks`), or None."""
    if starmask is None or not getattr(sky, "wing_sigma", None):
        return None
    peaks = base_peaks.copy()
    if extra_flux is not None:
        peaks[n:] = np.clip(np.nan_to_num(extra_flux), 0, None) * float(
            psf.surface_brightness(0.0))
    return sky.wing_disks(allx, ally, peaks, psf, noise)


def _photometry(im, x, y, r_ap, r_in, r_out, sky, starmask, wings, psf, allx, ally,
                extra_flux, nonlinear, crowding_limit, judge_snr=None):
    """Aperture fluxes, errors and flags at fixed positions: ``(columns, flags,
    error_model)``.

    ``judge_snr`` (a first pass whose table only chooses the curve-of-growth stars): judge the
    concentration (:func:`concentration`, the ``extended`` flag) of the sources with at least
    this S/N only (at most :data:`EXTENDED_MIN_SNR`, so that they give the stars' reference,
    and at most the curve of growth's ``min_snr``, so that they include its candidates); the
    others get NaN (not judged). None: judge every source."""
    n = x.size
    res = aperture_fluxes(im, np.c_[x, y], r_ap, (r_in, r_out), sky=sky,
                          starmask=starmask, wings=wings, self_index=np.arange(n))
    area = res["area"]
    n_sky = res["n_sky"]
    f_ap = res["flux"]
    k = sky.k
    if im.variance is not None:
        sky_var = res["sky_mean_var"]
        var = res["var_sum"] + k * area ** 2 * sky_var / np.maximum(n_sky, 1)
        error_model = "uncertainty image"
    else:
        sky_var, error_model = _pixel_variance(im, res, sky.std_ratio)
        var = (np.clip(f_ap, 0, None) + area * sky_var
               + k * area ** 2 * sky_var / np.maximum(n_sky, 1))
    f_ap_err = np.sqrt(var)
    sky_err = np.sqrt(k * sky_var / np.maximum(n_sky, 1))

    flags = np.zeros(n, dtype=np.int64)
    nominal = math.pi * r_ap ** 2
    flags[res["area_off"] > 1e-9 * nominal] |= FLAG_EDGE
    flags[res["area_bad"] > 1e-9 * nominal] |= FLAG_MASKED
    flags[(n_sky < sky.min_pixels) | ~np.isfinite(res["sky"])] |= FLAG_BAD_SKY
    flags[res["sky_unmasked"]] |= FLAG_CROWDED
    peak = res["peak"]
    if im.saturation is not None:
        sat = im.saturation
        flags[peak >= sat] |= FLAG_SATURATED
        flags[(peak >= nonlinear * sat) & (peak < sat)] |= FLAG_NONLINEAR
    flags[~(f_ap > 0)] |= FLAG_NEGATIVE
    cont_fl = f_ap
    if allx.size > n:
        # extra mask positions: their given fluxes, else as bright as the median measured star
        cont_fl = np.r_[f_ap, extra_flux if extra_flux is not None
                        else np.full(allx.size - n, np.nanmedian(f_ap))]
    cont, cont2 = (c[:n] for c in _contaminations(
        np.r_[x, allx[n:]], np.r_[y, ally[n:]], cont_fl, psf, (r_ap, 2.0 * r_ap)))
    flags[cont > crowding_limit] |= FLAG_CROWDED
    cols = {"aperture_sum": res["aperture_sum"], "flux_aper": f_ap, "flux_aper_err": f_ap_err,
            "sky": res["sky"], "sky_err": sky_err, "sky_std": res["sky_std"], "n_sky": n_sky,
            "n_pix": area, "peak": peak, "contamination": cont}
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = f_ap / f_ap_err
    sel = np.arange(n) if judge_snr is None else np.nonzero(snr >= judge_snr)[0]
    conc, conc_err = np.full(n, np.nan), np.full(n, np.nan)
    conc[sel], conc_err[sel] = concentration(
        im, x[sel], y[sel], r_ap, {k: np.asarray(v)[sel] for k, v in cols.items()},
        np.broadcast_to(sky_var, (n,))[sel], cont[sel], cont2[sel],
        var_sum=res["var_sum"][sel])
    extended = _extended(conc, conc_err, snr, flags)
    flags[extended] |= FLAG_EXTENDED
    cols.update(concentration=conc, concentration_err=conc_err)
    return cols, flags, error_model


#: a source is ``extended`` when its concentration is below the frame's stars' by more than
#: this many (field-scaled) sigma and by more than EXTENDED_MIN_DROP of the stars' value
EXTENDED_SIGMA = 5.0
EXTENDED_MIN_DROP = 0.03
#: the stars' reference concentration is the median over unflagged sources of at least this S/N
EXTENDED_MIN_SNR = 20.0
#: neighbours estimated to add more than this fraction of light inside twice the aperture
#: radius make the concentration unjudgeable (NaN)
CONCENTRATION_MAX_CONTAMINATION = 0.1


def concentration(im, x, y, r_ap, cols, sky_var, cont, cont2, var_sum=None):
    """The fraction of a source's light inside twice the aperture radius that lies inside the
    aperture, and its error: ``(c, c_err)`` per source.

    A star's ``c`` is the same everywhere on a frame (its PSF's); a galaxy, a nebulous knot
    or an unresolved blend spreads more light into the ring ``r_ap``-``2 r_ap`` and has a
    lower ``c``. Both radii are at least the phase-safe radius, so an undersampled star's
    ``c`` does not depend on where it falls in its pixel. Neighbours' light (``cont``,
    ``cont2``: their estimated fractions inside ``r_ap`` and ``2 r_ap``, from the frame's
    PSF) is taken out; where it exceeds :data:`CONCENTRATION_MAX_CONTAMINATION`, or the
    larger aperture leaves the image or holds bad pixels, ``c`` is NaN (not judged).
    ``c_err`` carries the pixel noise of the aperture and of the ring (``cols``:
    :func:`_photometry`'s ``flux_aper``, ``flux_aper_err``, ``sky``, ``sky_err``, ``n_pix``;
    ``sky_var``: the per-pixel sky variance; with an uncertainty image, its sum over the
    ring, from the aperture's ``var_sum``) and the error of the local sky level, which both
    share. The larger disc may reach into the sky annulus (an aperture of 2 FWHM against an
    annulus from 3 FWHM): that part of the ring's light is partly taken as sky, which makes
    the test less sensitive, never more.
    """
    x = np.ascontiguousarray(x, float)
    y = np.ascontiguousarray(y, float)
    has_var = im.variance is not None
    var = im.variance if has_var else im.data
    sm2, sv2, area2, bad2, off2, _ = K.aperture_sums(
        im.data, var, im.bad, x, y, np.full(x.size, 2.0 * float(r_ap)), has_var)
    f_ap = np.asarray(cols["flux_aper"], float)
    area = np.asarray(cols["n_pix"], float)
    sky_err2 = np.asarray(cols["sky_err"], float) ** 2
    f2 = sm2 - np.asarray(cols["sky"], float) * area2
    ring = f2 - f_ap
    ring_area = area2 - area
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (f_ap / (1.0 + cont)) / (f2 / (1.0 + cont2))
        # pixel noise: the aperture's (less the shared sky-level part) and the ring's
        var_a = np.clip(np.asarray(cols["flux_aper_err"], float) ** 2 - area ** 2 * sky_err2,
                        0, None)
        if has_var and var_sum is not None:
            var_ring = np.clip(sv2 - np.asarray(var_sum, float), 0, None)
        else:
            var_ring = np.clip(ring, 0, None) + ring_area * sky_var
        var_c = ((1.0 - c) ** 2 * var_a + c ** 2 * var_ring
                 + (c * area2 - area) ** 2 * sky_err2) / f2 ** 2
        c_err = np.sqrt(var_c)
    judged = ((off2 <= 0) & (bad2 <= 0) & (f_ap > 0) & (f2 > 0)
              & (cont2 <= CONCENTRATION_MAX_CONTAMINATION) & np.isfinite(c_err))
    return np.where(judged, c, np.nan), np.where(judged, c_err, np.nan)


def _extended(c, c_err, snr, flags, min_snr=EXTENDED_MIN_SNR):
    """Sources whose concentration falls below the stars' (the median over unflagged sources
    with S/N >= ``min_snr``, at least 3 of them) by more than :data:`EXTENDED_SIGMA` times
    their error, scaled up by the robust spread of the bright sources' pulls when the PSF
    changes across the frame, and by more than :data:`EXTENDED_MIN_DROP` of the stars'
    value. No flag where too few bright sources give a reference."""
    ok = np.isfinite(c) & np.isfinite(c_err) & (c_err > 0)
    bright = ok & (flags == 0) & (snr >= min_snr)
    out = np.zeros(c.size, bool)
    if bright.sum() < 3:
        return out
    ref = float(np.median(c[bright]))
    z = np.full(c.size, np.nan)
    z[ok] = (ref - c[ok]) / c_err[ok]
    scale = max(1.0, float(mad_std(z[bright])))
    out[ok] = (z[ok] > EXTENDED_SIGMA * scale) & (ref - c[ok] > EXTENDED_MIN_DROP * ref)
    return out


def _pixel_variance(im, res, std_ratio):
    """Per-pixel variance of the sky for the CCD equation (no uncertainty image): sky + read
    noise^2 when the read noise is known and agrees with the measured annulus variance, else
    the measured (clipping-corrected) annulus variance."""
    # never below the quantisation noise of one converter step (gain electrons)
    measured = np.maximum((res["sky_std"] / std_ratio) ** 2, im.gain ** 2 / 12.0)
    if im.read_noise is None:
        return measured, "CCD equation (measured sky variance)"
    model = np.clip(res["sky"], 0, None) + im.read_noise ** 2
    ratio = np.nanmedian(model / measured)
    if 0.5 <= ratio <= 2.0:
        return model, "CCD equation (sky + read noise)"
    warnings.warn(f"{im.name}: sky + read noise^2 is {ratio:.2f}x the measured sky "
                  "variance (bias not removed, or wrong gain/read noise?); using the measured "
                  "sky variance for the errors", PhotometryWarning, stacklevel=4)
    return measured, "CCD equation (measured sky variance)"


def _finish(table, corr, psf, t, radius_method, im):
    """Apply the aperture correction, add magnitudes, order the columns, fill the meta."""
    cols = {c: table[c] for c in table.colnames}
    f_ap = np.asarray(table["flux_aper"], float)
    flux = f_ap * corr.value
    flux_err = np.asarray(table["flux_aper_err"], float) * corr.value
    phase, phase_note = _colour_phase(im, psf)
    if phase > 0:  # a colour channel's undersampled stars: their share of light varies
        flux_err = np.hypot(flux_err, phase * np.abs(flux))
    with np.errstate(invalid="ignore", divide="ignore"):
        good = flux > 0
        mag = np.where(good, -2.5 * np.log10(np.where(good, flux, 1.0) / t), np.nan)
        merr = np.where(good, 1.0857362047581294 * flux_err / np.where(good, flux, 1), np.nan)
    cols.update({"flux": flux, "flux_err": flux_err, "mag_inst": mag, "mag_inst_err": merr,
                 "flag_text": flag_texts(table["flags"])})
    order = ["star_id", "x", "y"] + [c for c in ("ra", "dec") if c in cols] + [
        "flux", "flux_err", "sky", "sky_err", "n_pix", "mag_inst", "mag_inst_err", "flags",
        "flag_text"]
    if im.wcs is not None and getattr(im.wcs, "has_celestial", False):
        sc = im.wcs.pixel_to_world(np.asarray(table["x"], float), np.asarray(table["y"], float))
        cols["ra"] = np.atleast_1d(sc.ra.deg)
        cols["dec"] = np.atleast_1d(sc.dec.deg)
        order = ["star_id", "x", "y", "ra", "dec"] + order[3:]
    order += [c for c in cols if c not in order]
    meta = dict(table.meta)
    meta.update({"fwhm": psf.fwhm, "psf": psf.to_dict(),
                 "aperture_radius_method": radius_method,
                 "aperture_correction": corr.value, "aperture_correction_err": corr.err,
                 "aperture_correction_n": corr.n_stars,
                 "aperture_correction_method": corr.method,
                 "growth_radii": corr.radii, "growth_curve": corr.growth,
                 "growth_tail": corr.tail, "growth_tail_err": corr.tail_err,
                 "assumptions": image_assumptions(im, meta) + (
                     [phase_note] if phase_note else [])})
    if phase > 0:
        meta["cfa_phase_err"] = 1.0857362047581294 * phase
    out = Table([cols[c] for c in order], names=order, meta=meta)
    for c in ("x", "y", "flux", "flux_err", "sky", "sky_err"):
        out[c].info.format = ".4f" if c in ("x", "y") else ".6g"
    return out


#: stars wider than this (channel pixels; 3 mosaic pixels) spread evenly over a cell
_PHASE_FREE_FWHM = 1.5


def _colour_phase(im, psf):
    """``(relative rms, note)`` of the share of a star's light that falls on a colour
    channel's pixels, over the star's position in its cell (``0, None`` for an image that is
    not a colour channel, or whose stars are wide enough):
    :func:`~glue_zeropoint.calibration.cfa.light_share_scatter` for the measured FWHM, its
    continuous profile taken as a Gaussian of that width for this error term only.
    Simulated Gaussian stars of FWHM 1 mosaic pixel scattered by 0.136 mag in G (0.156
    predicted), 1.5 px by ~0.011 beyond their counting errors (0.017)."""
    meta = getattr(im, "meta", None) or {}
    try:
        channel, pattern = meta.get("CFACHAN"), meta.get("CFAPAT")
    except AttributeError:
        return 0.0, None
    fwhm = float(getattr(psf, "fwhm", 0.0) or 0.0)
    if not channel or not pattern or not fwhm > 0 or fwhm > _PHASE_FREE_FWHM:
        return 0.0, None
    from ..calibration.cfa import light_share_scatter

    sigma = fwhm / GAUSS_FWHM

    def sb(r):
        return np.exp(-0.5 * (np.asarray(r) / sigma) ** 2) / (2.0 * math.pi * sigma ** 2)

    phase = light_share_scatter(sb, str(pattern), str(channel), fwhm)
    if not phase > 1e-3:
        return 0.0, None
    return phase, (f"{im.name}: colour channel {channel} of stars {fwhm:.2f} px wide (FWHM "
                   f"{2 * fwhm:.2f} mosaic pixels): the share of a star's light on its "
                   f"{channel} pixels depends on where it falls in its cell, by "
                   f"{1.0857 * phase:.3f} mag rms, added to every star's error")


def image_assumptions(im, meta=None):
    """What the measurement of ``im`` had to assume, as short sentences (empty for a
    calibrated product with its uncertainty plane)."""
    out = list(getattr(im, "notes", []) or [])
    if im.variance is None:
        model = (meta or {}).get("error_model", "CCD equation")
        out.append(f"no uncertainty plane: per-star errors from the {model.split('(')[-1].rstrip(')')}"
                   " and the star's own counts")
    return out


def _peak_above(im, xs, ys, sky):
    """Highest pixel of the 3x3 box at each position minus the sky (0 where unknown)."""
    ny, nx = im.shape
    out = np.zeros(xs.size)
    ok = np.isfinite(xs) & np.isfinite(ys) & np.isfinite(sky)
    ix = np.clip(np.round(np.where(ok, xs, 0)).astype(int), 0, nx - 1)
    iy = np.clip(np.round(np.where(ok, ys, 0)).astype(int), 0, ny - 1)
    best = np.full(xs.size, -np.inf)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            jx, jy = np.clip(ix + dx, 0, nx - 1), np.clip(iy + dy, 0, ny - 1)
            v = np.where(im.bad[jy, jx], -np.inf, im.data[jy, jx])
            best = np.maximum(best, np.nan_to_num(v, nan=-np.inf))
    out[ok] = np.clip(best[ok] - sky[ok], 0, None)
    return np.where(np.isfinite(out), out, 0.0)


def _rough_brightness_order(im, xs, ys):
    """Indices of the positions, brightest pixel value first (for picking FWHM stars)."""
    ny, nx = im.shape
    ix = np.clip(np.round(np.nan_to_num(xs, nan=-1)).astype(int), 0, nx - 1)
    iy = np.clip(np.round(np.nan_to_num(ys, nan=-1)).astype(int), 0, ny - 1)
    v = np.where(np.isfinite(xs) & np.isfinite(ys) & ~im.bad[iy, ix], im.data[iy, ix], -np.inf)
    sat = im.saturation
    if sat is not None:
        v = np.where(v >= 0.8 * sat, -np.inf, v)
    return np.argsort(-v)
