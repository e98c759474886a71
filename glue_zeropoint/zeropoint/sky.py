"""Sky surface brightness in mag/arcsec^2 from the image background and the zero point.

``mu = ZP - 2.5 log10(s / (t * A))`` with ``s`` the sigma-clipped median background (e-/pixel,
sources masked), ``t`` the exposure time and ``A`` the pixel area in arcsec^2 (from the WCS,
``proj_plane_pixel_area`` at the reference pixel, or a given pixel scale). The ZP is a
total-flux zero point at the colour reference, so ``mu`` is the sky at that colour.

Error: ``sigma_mu^2 = zp_err^2 + (1.0857 sigma_s / s)^2`` where ``sigma_s`` is the error of the
mean sky level: the scatter of the clipped medians of an 8x8 grid of boxes divided by
``sqrt(n_boxes)`` (it carries gradients and flat-field residuals, which dominate the pixel
noise), but not less than the pixel-noise error ``1.2533 std / sqrt(n_pixels)``.
"""

import logging
import math

import numpy as np

from ..exceptions import InputError, PhotometryError
from ..photometry.image import PreparedImage, prepare_image
from ..stats import MEDIAN_ERROR
from ..stats import pixel_area_arcsec2 as _wcs_pixel_area

__all__ = ["sky_surface_brightness", "sky_level", "source_mask", "pixel_area_arcsec2"]

log = logging.getLogger(__name__)


def pixel_area_arcsec2(wcs=None, pixel_scale=None):
    """Pixel area in arcsec^2 from ``pixel_scale`` (arcsec/pixel) or a celestial WCS.

    Examples
    --------
    >>> pixel_area_arcsec2(pixel_scale=1.5)
    2.25
    """
    if pixel_scale is not None:
        scale = float(pixel_scale)
        if not scale > 0:
            raise InputError(f"pixel_scale must be > 0 arcsec/pixel, got {pixel_scale!r}")
        return scale * scale
    if wcs is None or not getattr(wcs, "has_celestial", False):
        raise InputError("no celestial WCS to get the pixel area from; pass pixel_scale= "
                         "(arcsec/pixel) or a WCS (--wcs FILE)")
    return _wcs_pixel_area(wcs)


def _clipped_stats(values, sigma, maxiters):
    """``sigma``-clipped ``(median, std)`` of the finite values, as astropy's
    ``sigma_clipped_stats`` gives them (median centre, population std), compiled."""
    from ..photometry import _kernels as K

    med, std, _ = K.clipped_stats(np.ascontiguousarray(values, dtype=np.float64).ravel(),
                                  float(sigma), int(maxiters))
    return float(med), float(std)


def _block_mean(data, bad, f):
    """Means of the good pixels in ``f`` x ``f`` blocks: ``(mean, empty, n)`` (compiled)."""
    from ..photometry import _kernels as K

    mean, n = K.block_mean(np.ascontiguousarray(data, dtype=np.float64),
                           np.ascontiguousarray(bad, dtype=bool), int(f))
    return mean, n == 0, n


def _segments(above, bad, npixels):
    """The pixels of ``above`` (not ``bad``) in 8-connected groups of at least ``npixels``:
    the mask of photutils' ``detect_sources``, without its per-segment Python loop (tens of
    thousands of noise groups at 2 sigma: 80 ms of a 4096^2 frame's sky)."""
    from scipy import ndimage

    above = above & ~bad
    labels, n = ndimage.label(above, structure=np.ones((3, 3), bool))
    if n == 0:
        return above
    big = np.bincount(labels.ravel(), minlength=n + 1) >= npixels
    big[0] = False
    return big[labels]


def source_mask(data, bad, *, nsigma=2.0, npixels=5, dilate=5, max_side=1024):
    """Boolean mask of sources: groups of at least ``npixels`` 8-connected pixels of the
    image smoothed by a 3x3 box, above ``nsigma`` of its noise (the mask photutils'
    ``detect_sources`` would give, :func:`_segments`), dilated by ``dilate`` pixels.

    Images larger than ``max_side`` are block-averaged first (factor ``f``) and the mask
    expanded back, so a 4k x 4k frame takes ~0.2 s; ``npixels`` and ``dilate`` are then in
    binned pixels (sources smaller than ``f`` pixels are still found: binning raises their
    signal-to-noise).
    """
    from scipy import ndimage

    ny, nx = data.shape
    f = max(1, int(math.ceil(min(ny, nx) / max_side)))
    if f > 1:
        img, nbad, _ = _block_mean(data, bad, f)
    else:
        img, nbad = data, bad
    step = max(1, int(math.sqrt(img.size / 1e6)))
    med, std = _clipped_stats(img[::step, ::step][~nbad[::step, ::step]], 3.0, 5)
    smooth = ndimage.uniform_filter(np.where(nbad, med, img), 3)
    # the 3x3 mean has 1/3 of the noise (std already includes the binning)
    mask = _segments(smooth - med > nsigma * std / 3.0, nbad, npixels)
    if dilate and mask.any():
        mask = ndimage.binary_dilation(mask, iterations=int(max(1, dilate // f if f > 1 else dilate)))
    if f > 1:
        full = np.zeros((ny, nx), bool)
        full[: mask.shape[0] * f, : mask.shape[1] * f] = np.repeat(np.repeat(mask, f, 0), f, 1)
        mask = full
    return mask


def sky_level(ccd, *, mask_sources=True, nboxes=8, max_samples=500_000):
    """The sky level (e-/pixel) with sources masked, and its error.

    ``s`` is the 3-sigma-clipped median (as astropy ``sigma_clipped_stats``) of the unmasked
    pixels (a regular sub-grid of at most ``max_samples`` pixels on large images). Its error is
    the larger of the pixel-noise error and the scatter of clipped medians in an
    ``nboxes`` x ``nboxes`` grid divided by ``nboxes``.

    Parameters
    ----------
    ccd : CCDData, array or PreparedImage
    mask_sources : bool or ndarray of bool
        True: a segmentation (:func:`source_mask`); False: none; an array: that mask.
    nboxes : int
    max_samples : int

    Returns
    -------
    (s, s_err) : (float, float)
    """
    from ..photometry.detection import box_statistics

    im = ccd if isinstance(ccd, PreparedImage) else prepare_image(ccd)
    bad = im.bad
    if isinstance(mask_sources, np.ndarray):
        if mask_sources.shape != im.shape:
            raise InputError(f"mask_sources: shape {mask_sources.shape} differs from the image "
                             f"shape {im.shape}")
        bad = bad | mask_sources.astype(bool)
    elif mask_sources:
        bad = bad | source_mask(im.data, im.bad)
    good = ~bad
    ngood = int(good.sum())
    if ngood < 100:
        raise PhotometryError(f"{im.name}: fewer than 100 sky pixels left after masking "
                              "sources; cannot measure the sky")
    step = max(1, int(math.sqrt(im.data.size / max_samples)))
    sub = im.data[::step, ::step]
    gsub = good[::step, ::step]
    s, std = _clipped_stats(sub[gsub], 3.0, 10)
    s = float(s)
    err_pix = MEDIAN_ERROR * float(std) / math.sqrt(ngood)
    ny, nx = im.shape
    box = int(math.ceil(max(ny, nx) / nboxes))
    stride = max(1, int(math.ceil(box / 64)))
    meds, _, cnt = box_statistics(im.data, bad, box, stride=stride, sigma=3.0, maxiters=5)
    meds = meds[np.isfinite(meds) & (cnt >= 50)]
    err_box = float(np.std(meds, ddof=1)) / math.sqrt(meds.size) if meds.size >= 4 else 0.0
    return s, max(err_pix, err_box)


def sky_surface_brightness(ccd, zp, *, zp_err=0.0, pixel_scale=None, mask_sources=True,
                           exptime=None):
    """Sky surface brightness (mag/arcsec^2) and its error.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData` or PreparedImage
        Calibrated image in electrons (not sky-subtracted), with a WCS unless ``pixel_scale``.
    zp : float or ZeroPoint
        Total-flux zero point (a :class:`~glue_zeropoint.zeropoint.ZeroPoint` gives
        ``zp_err`` too, unless given).
    zp_err : float
    pixel_scale : float, optional
        Arcsec/pixel (overrides the WCS).
    mask_sources : bool or ndarray of bool
        See :func:`sky_level`.
    exptime : float, optional
        Default from the header.

    Returns
    -------
    (mu, mu_err) : (float, float)

    Raises
    ------
    PhotometryError
        The sky is not positive (a sky-subtracted image?).
    InputError
        No exposure time, no pixel scale.

    Examples
    --------
    >>> from glue_zeropoint.simulate import simulate_image, FilterTruth
    >>> ccd, truth = simulate_image(shape=(256, 256), n_stars=20, seed=3)
    >>> mu, err = sky_surface_brightness(ccd, truth['filter'].zp)
    >>> abs(mu - truth['filter'].sky_sb) < 0.03
    True
    """
    if hasattr(zp, "zp"):
        if not zp_err:
            zp_err = zp.zp_err_total
        zp = zp.zp
    im = ccd if isinstance(ccd, PreparedImage) else prepare_image(ccd, exptime=exptime)
    t = float(exptime) if exptime is not None else im.require_exptime()
    area = pixel_area_arcsec2(im.wcs, pixel_scale)
    s, s_err = sky_level(im, mask_sources=mask_sources)
    if not s > 0:
        raise PhotometryError(f"{im.name}: the sky level is {s:.3g} e-/pixel (not positive); "
                              "is the image sky-subtracted? The sky brightness needs the sky")
    mu = float(zp) - 2.5 * math.log10(s / (t * area))
    mu_err = math.hypot(float(zp_err or 0.0), 1.0857362047581294 * s_err / s)
    return mu, mu_err
