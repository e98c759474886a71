"""Star detection for plate solving: fast, with accurate windowed centroids.

Solving needs the positions of a few hundred stars, to a few hundredths of a pixel, quickly on
large frames. Both methods use the photometry's detection stack
(:mod:`glue_zeropoint.photometry.detection`): the same background mesh, the same matched
filter with a threshold from the *measured* noise of the filtered image, the same rejection of
peaks sharper than the PSF (hot pixels, cosmic rays), the same PSF measurement.

``'fast'`` (default)
    Those candidates, then iterative Gaussian-windowed centroids (the SExtractor ``XWIN``
    estimator) and a box flux.
``'daofind'``
    :func:`~glue_zeropoint.photometry.find_stars` (photutils' ``DAOStarFinder`` on the
    candidates), with the same windowed centroids.
"""

import logging

import numpy as np
from astropy.table import Table

from ..exceptions import InputError, PhotometryError
from ..headers import RAW_SATURATION_KEYS, positive_header_value
from ..photometry.detection import estimate_background, find_stars
from ..photometry.image import PreparedImage
from ..stats import GAUSS_FWHM

__all__ = ["detect_sources", "windowed_centroids"]

log = logging.getLogger(__name__)

_FWHM_GUESS = 3.5


def windowed_centroids(image, x, y, fwhm, n_iter=8, half=None):
    """Gaussian-windowed centroids (SExtractor ``XWIN_IMAGE``) of stars near (x, y).

    ``image`` must be background subtracted. The window is a Gaussian of the PSF's sigma; the
    iteration ``x <- x + 2 sum(w I (x_i - x)) / sum(w I)`` converges to the centre of a
    symmetric profile without the bias of a plain first moment. Positions that run away (more
    than ``fwhm`` from the start) keep their starting value.

    Returns
    -------
    xc, yc : ndarray
        Refined 0-based positions.
    """
    ny, nx = image.shape
    x = np.asarray(x, float).copy()
    y = np.asarray(y, float).copy()
    if x.size == 0:
        return x, y
    sig = fwhm / GAUSS_FWHM
    half = int(np.ceil(2.5 * sig * 2)) if half is None else int(half)
    off = np.arange(-half, half + 1)
    x0, y0 = x.copy(), y.copy()
    cx = np.clip(np.round(x0).astype(int), half, nx - half - 1)
    cy = np.clip(np.round(y0).astype(int), half, ny - half - 1)
    ix = cx[:, None, None] + off[None, None, :]
    iy = cy[:, None, None] + off[None, :, None]
    stamps = image[iy, ix].astype(float)
    gx = ix.astype(float)
    gy = iy.astype(float)
    xc, yc = x0.copy(), y0.copy()
    for _ in range(n_iter):
        dx = gx - xc[:, None, None]
        dy = gy - yc[:, None, None]
        w = np.exp(-(dx ** 2 + dy ** 2) / (2 * sig ** 2)) * stamps
        s = w.sum(axis=(1, 2))
        ok = s > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            sx = 2.0 * (w * dx).sum(axis=(1, 2)) / s
            sy = 2.0 * (w * dy).sum(axis=(1, 2)) / s
        sx = np.where(ok, np.clip(sx, -1.0, 1.0), 0.0)
        sy = np.where(ok, np.clip(sy, -1.0, 1.0), 0.0)
        xc += sx
        yc += sy
        if np.max(np.abs(sx)) < 1e-4 and np.max(np.abs(sy)) < 1e-4:
            break
    bad = ~np.isfinite(xc) | ~np.isfinite(yc) | (np.hypot(xc - x0, yc - y0) > fwhm)
    xc[bad], yc[bad] = x0[bad], y0[bad]
    return xc, yc


def detect_sources(image, *, fwhm=None, threshold=5.0, max_sources=None, method="fast",
                   mask=None, saturation=None):
    """Detect stars and measure their centroids and approximate fluxes.

    Parameters
    ----------
    image : `~astropy.nddata.CCDData` or 2-D array
        The image (any units; background is subtracted here). CCDData masks are honoured.
    fwhm : float, optional
        PSF FWHM in pixels; measured from the brightest stars when not given.
    threshold : float
        Detection threshold in standard deviations of the filtered background noise.
    max_sources : int, optional
        Keep only the brightest ones.
    method : {'fast', 'daofind'}
        See the module docstring.
    mask : 2-D bool array, optional
        Pixels to ignore (True = bad); added to the CCDData mask.
    saturation : float, optional
        Saturation level (image units), for flagging and for the FWHM measurement.

    Returns
    -------
    `~astropy.table.Table`
        ``x``, ``y`` (0-based), ``flux`` (background-subtracted box sum), ``peak``,
        ``saturated`` (bool), sorted by decreasing flux; ``meta['fwhm']``,
        ``meta['background_rms']``, ``meta['shape']``.

    Raises
    ------
    InputError
        If the image is not 2-D or has no finite pixel.
    """
    data = np.asarray(getattr(image, "data", image), dtype=np.float32)
    if data.ndim != 2:
        raise InputError(f"star detection needs a 2-D image; got shape {data.shape}")
    m = getattr(image, "mask", None)
    bad = ~np.isfinite(data)
    if m is not None:
        bad |= np.asarray(m, bool)
    if mask is not None:
        bad |= np.asarray(mask, bool)
    if bad.all():
        raise InputError("the image has no finite, unmasked pixel; nothing to detect")
    if saturation is None:
        meta = getattr(image, "meta", None) or {}
        saturation, _key = positive_header_value(meta, RAW_SATURATION_KEYS)
    name = str((getattr(image, "meta", None) or {}).get("FILENAME", "image"))
    im = PreparedImage(data=data.astype(np.float64), variance=None, bad=bad,
                       saturation=saturation, name=name)
    bkg = estimate_background(im.data, bad)
    if fwhm is not None and not (0.3 <= float(fwhm) <= 50):
        raise InputError(f"fwhm={fwhm!r} pixels is not plausible; give a value between 0.3 "
                         "and 50 or leave it out to measure it")
    if method == "daofind":
        found = find_stars(im, fwhm=fwhm, threshold=threshold, background=bkg)
        table = Table({"x": np.asarray(found["x"], float), "y": np.asarray(found["y"], float),
                       "flux": np.asarray(found["flux"], float),
                       "peak": np.asarray(found["peak"], float)})
        table.sort("flux", reverse=True)
        fwhm_used, rms = float(found.meta["fwhm"]), float(found.meta["background_rms"])
        sub = im.data - bkg.level
    elif method == "fast":
        table, fwhm_used, rms, sub = _fast_find(im, bkg, fwhm, threshold)
    else:
        raise InputError(f"method must be 'fast' or 'daofind', not {method!r}")
    if max_sources is not None:
        table = table[: int(max_sources)]
    # windowed centroids on the brightest (the ones that matter for the WCS fit)
    # (a window narrower than ~1.5 px would only see the brightest pixel)
    xc, yc = windowed_centroids(sub, table["x"], table["y"], max(fwhm_used, 1.5))
    table["x"] = xc
    table["y"] = yc
    sat = np.zeros(len(table), bool)
    if saturation is not None:  # the peak over the background at the star's pixel
        iy = np.clip(np.round(yc).astype(int), 0, data.shape[0] - 1)
        ix = np.clip(np.round(xc).astype(int), 0, data.shape[1] - 1)
        sat = np.asarray(table["peak"]) + bkg.level[iy, ix] >= 0.95 * saturation
    table["saturated"] = sat
    table.meta.update({"fwhm": fwhm_used, "background_rms": rms, "shape": data.shape,
                       "method": method, "threshold": threshold})
    log.debug("detected %d sources (fwhm %.2f px, method %s)", len(table), fwhm_used, method)
    return table


def _fast_find(im, bkg, fwhm, threshold):
    """Matched-filter candidates of the photometry's stack (measured filtered noise, sharp
    peaks rejected), the PSF measured when ``fwhm`` is not given, and a box flux."""
    from ..photometry.detection import (
        _candidates,
        _mesh_at,
        _psf_from_peaks,
        _psf_ratio,
        _sharp_outliers,
    )
    from ..photometry.psf import PSF

    bad = im.bad
    sub, _ = bkg.subtracted(im.data, bad)  # bad pixels zeroed
    rms = bkg.median_rms
    floor = 0.0
    if not rms > 0:
        floor = im.quantisation_noise or 1.0 / np.sqrt(12.0)
        rms = floor
    box = int(bkg.box)
    if fwhm is None:
        # the photometry's own PSF search (two filter widths, flux-weighted: cosmic rays and
        # hot pixels do not set the width)
        try:
            psf = _psf_from_peaks(im, sub, bad, threshold, box, floor, rms)
        except PhotometryError:
            psf = PSF(fwhm=_FWHM_GUESS)
    else:
        psf = PSF(fwhm=float(fwhm))
    cand = _candidates(sub, bad, psf.sigma_eff, threshold, box, floor)
    if cand.x.size == 0:
        return _empty(), psf.fwhm, rms, sub
    psf_ratio = _psf_ratio(sub, cand)
    sharp = _sharp_outliers(sub, cand, _mesh_at(np.maximum(bkg.rms_mesh, floor), box, cand.y,
                                                 cand.x), psf_ratio)
    xs, ys = cand.x[~sharp].astype(int), cand.y[~sharp].astype(int)
    # box flux within ~1.5 FWHM and peak, from the unfiltered background-subtracted image
    half = max(2, int(np.ceil(1.5 * psf.fwhm)))
    ny, nx = sub.shape
    off = np.arange(-half, half + 1)
    flux = np.zeros(xs.size)
    for k0 in range(0, xs.size, 4096):
        xk, yk = xs[k0:k0 + 4096], ys[k0:k0 + 4096]
        iy = np.clip(yk[:, None, None] + off[None, :, None], 0, ny - 1)
        ix = np.clip(xk[:, None, None] + off[None, None, :], 0, nx - 1)
        flux[k0:k0 + 4096] = sub[iy, ix].sum(axis=(1, 2))
    peak = sub[ys, xs]
    order = np.argsort(-flux, kind="stable")
    t = Table()
    t["x"] = xs[order].astype(float)
    t["y"] = ys[order].astype(float)
    t["flux"] = flux[order].astype(float)
    t["peak"] = peak[order].astype(float)
    return t, psf.fwhm, rms, sub


def _empty():
    t = Table()
    for name in ("x", "y", "flux", "peak"):
        t[name] = np.array([], float)
    return t
