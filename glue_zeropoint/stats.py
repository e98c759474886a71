"""Shared statistical primitives, one of each (no science layer writes its own).

- Robust scale: use :func:`astropy.stats.mad_std` for "the MAD of these values, as a Gaussian
  sigma". :data:`MAD_TO_SIGMA` is the same constant for the few places where the deviations
  are already taken (e.g. about zero, or normalised star by star) and the compiled kernels.
- :func:`solve_excess_variance`: the extra variance ``s2 >= 0`` that makes a chi-square equal
  to its degrees of freedom (the "intrinsic scatter" of a weighted fit or mean).
- :func:`pixel_area_arcsec2` / :func:`pixel_scale_arcsec`: the pixel size from a WCS
  (:func:`astropy.wcs.utils.proj_plane_pixel_area` at the reference pixel).

This module sits below every science layer and imports none of them. The simulator does not
use it (it must not share the answer with the measurement).
"""

import math

import numpy as np

__all__ = ["MAD_TO_SIGMA", "MEDIAN_ERROR", "GAUSS_FWHM", "mad_std", "robust_sigma_about", "solve_excess_variance",
           "pixel_area_arcsec2", "pixel_scale_arcsec"]

#: 1 / Phi^-1(3/4): a Gaussian's sigma over its median absolute deviation (the constant
#: :func:`astropy.stats.mad_std` uses).
MAD_TO_SIGMA = 1.482602218505602

#: The error of the median of n Gaussian values is ``MEDIAN_ERROR * sigma / sqrt(n)`` for
#: large n (sqrt(pi/2), to the 4 decimals used since the start: kept so numbers do not move).
MEDIAN_ERROR = 1.2533

#: A Gaussian's FWHM over its sigma, 2 sqrt(2 ln 2).
GAUSS_FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))


def mad_std(values, *, ignore_nan=False):
    """Median absolute deviation about the median, scaled to a Gaussian sigma.

    A thin alias of :func:`astropy.stats.mad_std` returning a Python float.

    >>> round(mad_std([1.0, 2.0, 3.0, 4.0, 100.0]), 4)
    1.4826
    """
    from astropy.stats import mad_std as _mad_std

    return float(_mad_std(np.asarray(values, dtype=float), ignore_nan=ignore_nan))


def robust_sigma_about(deviations):
    """``MAD_TO_SIGMA * median(|deviations|)``: a robust sigma of deviations from a known
    centre (e.g. fit residuals, whose centre is 0 by construction). 0.0 for no values."""
    a = np.abs(np.asarray(deviations, dtype=float))
    return MAD_TO_SIGMA * float(np.median(a)) if a.size else 0.0


def solve_excess_variance(chi2, dof, hi, *, xtol=1e-10, rtol=1e-6, grow_until=1e4):
    """The variance ``s2 >= 0`` with ``chi2(s2) == dof`` (Brent's method).

    Parameters
    ----------
    chi2 : callable
        ``chi2(s2)``: the (non-increasing) chi-square of the fit with ``s2`` added to every
        point's variance.
    dof : float
        Degrees of freedom; 0.0 is returned when ``dof <= 0``.
    hi : float
        A first upper bracket; multiplied by 4 while ``chi2(hi) > dof`` and ``hi < grow_until``.
    xtol, rtol : float
        Tolerances passed to :func:`scipy.optimize.brentq`.

    Returns
    -------
    float
        0.0 when ``chi2(0) <= dof`` already (the stated errors cover the scatter); the upper
        bracket when even that leaves ``chi2 > dof``.

    Examples
    --------
    >>> y, e2 = np.array([0.0, 2.0]), np.array([0.5, 0.5])
    >>> round(solve_excess_variance(lambda s2: float(np.sum((y - 1.0) ** 2 / (e2 + s2))), 1, 1.0), 6)
    1.5
    """
    if dof <= 0:
        return 0.0

    def excess(s2):
        return float(chi2(s2)) - dof

    if excess(0.0) <= 0:
        return 0.0
    while excess(hi) > 0 and hi < grow_until:
        hi *= 4.0
    if excess(hi) > 0:
        return float(hi)
    from scipy.optimize import brentq

    return float(brentq(excess, 0.0, hi, xtol=xtol, rtol=rtol, maxiter=100))


def pixel_area_arcsec2(wcs):
    """Pixel area (arcsec^2) of a celestial WCS at its reference pixel."""
    from astropy.wcs.utils import proj_plane_pixel_area

    return float(proj_plane_pixel_area(wcs.celestial)) * 3600.0 ** 2


def pixel_scale_arcsec(wcs):
    """Pixel scale (arcsec per pixel) of a celestial WCS: the square root of its pixel area."""
    return math.sqrt(pixel_area_arcsec2(wcs))
