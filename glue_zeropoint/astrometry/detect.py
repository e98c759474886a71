"""Star detection for plate solving: fast, with accurate windowed centroids.

Solving needs the positions of a few hundred stars, to a few hundredths of a pixel, quickly on
large frames. Two methods:

``'fast'`` (default)
    Background and its noise from photutils' ``Background2D`` on a sub-sampled copy of the
    image (the background is smooth, so this loses nothing and is ~15x quicker on 4k frames),
    a Gaussian matched filter and local maxima above ``threshold`` sigma (scipy.ndimage), then
    iterative Gaussian-windowed centroids (the SExtractor ``XWIN`` estimator) and a box flux.
    About 1.5 s on a 4096x4096 frame.
``'daofind'``
    photutils' ``DAOStarFinder`` on the background-subtracted image (about 3 s more on a 4k
    frame), with the same windowed centroids.
"""

import logging

import numpy as np
from astropy.table import Table
from scipy import ndimage

from ..exceptions import InputError
from ..headers import RAW_SATURATION_KEYS, positive_header_value

__all__ = ["detect_sources", "windowed_centroids"]

log = logging.getLogger(__name__)

_FWHM_GUESS = 3.5


def _interp_matrix(n_full, centres):
    """(n_full, len(centres)) matrix of linear-interpolation weights (clamped at the ends)."""
    x = np.arange(n_full, dtype=float)
    m = len(centres)
    W = np.zeros((n_full, m), dtype=np.float32)
    if m == 1:
        W[:, 0] = 1.0
        return W
    j = np.clip(np.searchsorted(centres, x) - 1, 0, m - 2)
    t = np.clip((x - centres[j]) / (centres[j + 1] - centres[j]), 0.0, 1.0)
    W[np.arange(n_full), j] = 1.0 - t
    W[np.arange(n_full), j + 1] += t
    return W


def _background(data, mask, box=128):
    """Smooth background and its noise (rms) from a sub-sampled copy of the image.

    The background mesh (sigma-clipped medians in boxes, median-filtered) comes from photutils'
    ``Background2D``; it is interpolated bilinearly to full resolution as two small matrix
    products, which is much quicker on large frames than resampling the image.
    """
    from astropy.stats import SigmaClip
    from photutils.background import Background2D, MedianBackground

    ny, nx = data.shape
    step = max(1, int(min(ny, nx) // 1024))
    sub = data[::step, ::step]
    sub_mask = None if mask is None else mask[::step, ::step]
    sbox = max(8, int(box // step))
    sbox = min(sbox, max(4, min(sub.shape) // 2))
    try:
        bkg = Background2D(sub, sbox, mask=sub_mask, filter_size=3,
                           sigma_clip=SigmaClip(sigma=3.0, maxiters=5),
                           bkg_estimator=MedianBackground())
        mesh = np.asarray(bkg.background_mesh, dtype=np.float32)
        rms = float(bkg.background_rms_median)
    except ValueError:  # too few good pixels per box: fall back to one global level
        from astropy.stats import sigma_clipped_stats

        good = sub if sub_mask is None else sub[~sub_mask]
        _, med, std = sigma_clipped_stats(good, sigma=3.0, maxiters=5)
        return np.full(data.shape, med, dtype=np.float32), float(std)
    cy = (np.arange(mesh.shape[0]) + 0.5) * sbox * step - 0.5
    cx = (np.arange(mesh.shape[1]) + 0.5) * sbox * step - 0.5
    back = _interp_matrix(ny, cy) @ mesh @ _interp_matrix(nx, cx).T
    return back.astype(np.float32, copy=False), rms


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
    sig = fwhm / 2.3548
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


def _measure_fwhm(image, x, y, peak, saturation):
    """Median FWHM (pixels) of bright, unsaturated stars from their second moments."""
    half = 7
    ny, nx = image.shape
    ok = (x > half) & (x < nx - half - 1) & (y > half) & (y < ny - half - 1)
    if saturation is not None:
        ok &= peak < 0.7 * saturation
    idx = np.flatnonzero(ok)[:50]
    if idx.size < 3:
        return None
    off = np.arange(-half, half + 1)
    cx = np.round(x[idx]).astype(int)
    cy = np.round(y[idx]).astype(int)
    st = image[cy[:, None, None] + off[None, :, None], cx[:, None, None] + off[None, None, :]]
    st = np.clip(st, 0, None)
    r2 = off[None, :, None] ** 2 + off[None, None, :] ** 2
    w = st * (r2 <= half ** 2)
    s = w.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        sig2 = (w * r2).sum(axis=(1, 2)) / s / 2.0
    sig = np.sqrt(sig2[np.isfinite(sig2) & (sig2 > 0)])
    if sig.size < 3:
        return None
    # the truncated second moment underestimates the wings; a Moffat/Gaussian of this width
    # is close enough for a detection filter and a centroid window
    return float(np.clip(2.3548 * np.median(sig), 1.2, 20.0))


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
    any_bad = bool(bad.any())
    back, rms = _background(data, bad if any_bad else None)
    sub = data - back
    if any_bad:
        sub[bad] = 0.0
    fwhm_used = _FWHM_GUESS if fwhm is None else float(fwhm)
    if fwhm is not None and not (0.5 <= fwhm_used <= 50):
        raise InputError(f"fwhm={fwhm!r} pixels is not plausible; give a value between 0.5 "
                         "and 50 or leave it out to measure it")
    if method == "daofind":
        table = _daofind(sub, rms, fwhm_used, threshold, bad if any_bad else None)
    elif method == "fast":
        table = _fast_find(sub, rms, fwhm_used, threshold)
    else:
        raise InputError(f"method must be 'fast' or 'daofind', not {method!r}")
    if fwhm is None and len(table) >= 3:
        measured = _measure_fwhm(sub, table["x"], table["y"], table["peak"], saturation)
        if measured is not None:
            fwhm_used = measured
    if max_sources is not None:
        table = table[: int(max_sources)]
    # windowed centroids on the brightest (the ones that matter for the WCS fit)
    xc, yc = windowed_centroids(sub, table["x"], table["y"], fwhm_used)
    table["x"] = xc
    table["y"] = yc
    sat = np.zeros(len(table), bool) if saturation is None else \
        np.asarray(table["peak"]) + back[np.clip(np.round(yc).astype(int), 0, data.shape[0] - 1),
                                         np.clip(np.round(xc).astype(int), 0,
                                                 data.shape[1] - 1)] >= 0.95 * saturation
    table["saturated"] = sat
    table.meta.update({"fwhm": fwhm_used, "background_rms": rms, "shape": data.shape,
                       "method": method, "threshold": threshold})
    log.debug("detected %d sources (fwhm %.2f px, method %s)", len(table), fwhm_used, method)
    return table


def _fast_find(sub, rms, fwhm, threshold):
    sig = fwhm / 2.3548
    smooth = ndimage.gaussian_filter(sub, sig, mode="nearest", truncate=3.0)
    # noise of the filtered image, measured (pixel noise is not exactly white)
    step = max(1, int(min(sub.shape) // 512))
    s = smooth[::step, ::step]
    med = np.median(s)
    noise = 1.4826 * np.median(np.abs(s - med))
    if not np.isfinite(noise) or noise <= 0:
        noise = rms / (2 * np.sqrt(np.pi) * sig)
    level = med + threshold * noise
    size = max(3, int(2 * np.ceil(0.8 * fwhm) + 1))
    above = smooth > level
    # local maxima only where the image is above threshold (cheap on sparse fields)
    labels, n = ndimage.label(above)
    if n == 0:
        return _empty()
    slices = ndimage.find_objects(labels)
    xs, ys = [], []
    for k, sl in enumerate(slices, start=1):
        if sl is None:
            continue
        pad = size // 2
        y0 = max(sl[0].start - pad, 0)
        y1 = min(sl[0].stop + pad, sub.shape[0])
        x0 = max(sl[1].start - pad, 0)
        x1 = min(sl[1].stop + pad, sub.shape[1])
        box = smooth[y0:y1, x0:x1]
        lab = labels[y0:y1, x0:x1] == k
        if lab.sum() == 1 or box.size <= 9:
            iy, ix = np.unravel_index(np.argmax(np.where(lab, box, -np.inf)), box.shape)
            ys.append(iy + y0)
            xs.append(ix + x0)
            continue
        mx = ndimage.maximum_filter(box, size=size, mode="nearest")
        iy, ix = np.nonzero((box == mx) & lab)
        ys.extend(iy + y0)
        xs.extend(ix + x0)
    xs = np.asarray(xs, int)
    ys = np.asarray(ys, int)
    if xs.size == 0:
        return _empty()
    # box flux within ~1.5 FWHM and peak, from the unfiltered background-subtracted image
    half = max(2, int(np.ceil(1.5 * fwhm)))
    ny, nx = sub.shape
    off = np.arange(-half, half + 1)
    flux = np.zeros(xs.size)
    for k0 in range(0, xs.size, 4096):
        xk, yk = xs[k0:k0 + 4096], ys[k0:k0 + 4096]
        iy = np.clip(yk[:, None, None] + off[None, :, None], 0, ny - 1)
        ix = np.clip(xk[:, None, None] + off[None, None, :], 0, nx - 1)
        flux[k0:k0 + 4096] = sub[iy, ix].sum(axis=(1, 2))
    peak = sub[ys, xs]
    # cosmic rays and hot pixels are much sharper than stars: their raw peak stands far above
    # the matched-filter peak. Compare with the typical star (median of the detections).
    with np.errstate(invalid="ignore", divide="ignore"):
        sharp = peak / (smooth[ys, xs] - med)
    typical = np.nanmedian(sharp) if sharp.size else np.nan
    if np.isfinite(typical) and typical > 0:
        keep = sharp < 2.5 * typical
        if keep.sum() >= 4:
            xs, ys, flux, peak = xs[keep], ys[keep], flux[keep], peak[keep]
    order = np.argsort(-flux, kind="stable")
    t = Table()
    t["x"] = xs[order].astype(float)
    t["y"] = ys[order].astype(float)
    t["flux"] = flux[order].astype(float)
    t["peak"] = peak[order].astype(float)
    return t


def _daofind(sub, rms, fwhm, threshold, mask):
    from photutils.detection import DAOStarFinder

    finder = DAOStarFinder(threshold * rms, fwhm, exclude_border=True)
    found = finder(sub, mask=mask)
    if found is None or len(found) == 0:
        return _empty()
    t = Table()
    xname = "x_centroid" if "x_centroid" in found.colnames else "xcentroid"
    yname = "y_centroid" if "y_centroid" in found.colnames else "ycentroid"
    t["x"] = np.asarray(found[xname], float)
    t["y"] = np.asarray(found[yname], float)
    t["flux"] = np.asarray(found["flux"], float)
    t["peak"] = np.asarray(found["peak"], float)
    t.sort("flux", reverse=True)
    return t


def _empty():
    t = Table()
    for name in ("x", "y", "flux", "peak"):
        t[name] = np.array([], float)
    return t
