"""Star detection (photutils) and the FWHM of the stars.

:func:`find_stars` subtracts a smooth background (photutils ``Background2D`` with
sigma-clipped medians), estimates the FWHM when it is not given (brightest peaks, Moffat fits:
:func:`measure_fwhm`), then runs photutils' ``DAOStarFinder`` (or any finder passed in).
"""

import logging
import math
import warnings

import numpy as np
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from scipy.optimize import least_squares

from ..exceptions import InputError, PhotometryError
from .image import PreparedImage, prepare_image

__all__ = ["find_stars", "measure_fwhm", "estimate_background", "Background", "disk_mask",
           "box_statistics"]

log = logging.getLogger(__name__)


class Background:
    """A smooth background (and rms) of an image, from a mesh of sigma-clipped box statistics.

    Attributes
    ----------
    level : ndarray or float
        Background in electrons per pixel (full resolution).
    mesh, rms_mesh : ndarray
        The box medians and standard deviations (after the 3x3 median filter).
    median, median_rms : float
        Medians over the mesh.
    """

    def __init__(self, level, mesh, rms_mesh, box):
        self.level = level
        self.mesh = mesh
        self.rms_mesh = rms_mesh
        self.box = box
        self.median = float(np.median(mesh))
        self.median_rms = float(np.median(rms_mesh))

    @property
    def rms(self):
        """The rms map at full resolution (computed on demand)."""
        from . import _kernels as K

        ny, nx = np.shape(self.level)
        return K.bilinear_mesh(self.rms_mesh, ny, nx, self.box)


def estimate_background(data, bad, *, box_size=None, sigma=3.0, maxiters=10, max_samples=1024):
    """Background and rms of an image: sigma-clipped medians in a mesh of boxes.

    The scheme of photutils' ``Background2D`` with ``MedianBackground`` and
    ``StdBackgroundRMS`` (sigma-clipped median and standard deviation per box, a 3x3 median
    filter of the mesh, bilinear interpolation to every pixel), compiled: each box is sampled
    on a regular sub-grid of at most ``max_samples`` pixels, which keeps a 4096x4096 image
    at ~0.2 s.

    Parameters
    ----------
    data : ndarray
    bad : ndarray of bool
        True = ignore.
    box_size : int, optional
        Default ~1/16 of the smaller side, 32 to 128 pixels.
    sigma, maxiters : float, int
        Clipping (astropy ``SigmaClip`` semantics).
    max_samples : int
        Most pixels sampled per box.

    Returns
    -------
    Background

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> bkg = estimate_background(rng.normal(100, 5, (256, 256)), np.zeros((256, 256), bool))
    >>> round(bkg.median), round(bkg.median_rms)
    (100, 5)
    """
    from scipy import ndimage

    from . import _kernels as K

    ny, nx = data.shape
    if box_size is None:
        box_size = int(min(128, max(32, min(ny, nx) // 16)))
    box = int(min(box_size, ny, nx))
    stride = max(1, int(math.ceil(box / math.sqrt(max_samples))))
    med, std, _ = K.mesh_stats(np.ascontiguousarray(data, dtype=np.float64),
                               np.ascontiguousarray(bad), box, stride, float(sigma),
                               int(maxiters))
    good = np.isfinite(med)
    if not good.any():
        raise PhotometryError("no box of the image has enough unmasked pixels to measure the "
                              "background")
    if not good.all():  # fill empty boxes with the median of the others
        med[~good] = np.nanmedian(med)
        std[~good] = np.nanmedian(std)
    if min(med.shape) >= 3:
        med = ndimage.median_filter(med, size=3, mode="nearest")
        std = ndimage.median_filter(std, size=3, mode="nearest")
    level = K.bilinear_mesh(med, ny, nx, box)
    return Background(level, med, std, box)


def _positions_xy(positions):
    if isinstance(positions, Table):
        for xn, yn in (("x", "y"), ("x_centroid", "y_centroid"), ("xcentroid", "ycentroid"),
                       ("x_peak", "y_peak"), ("xcenter", "ycenter")):
            if xn in positions.colnames and yn in positions.colnames:
                return (np.asarray(positions[xn], dtype=float),
                        np.asarray(positions[yn], dtype=float))
        raise InputError(f"positions: a table needs x and y columns, got {positions.colnames}")
    arr = np.asarray(positions, dtype=float)
    if arr.ndim == 1 and arr.size == 2:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputError(f"positions: expected an (N, 2) array of x, y, got shape {arr.shape}")
    return arr[:, 0].copy(), arr[:, 1].copy()


def _moffat_model(p, xx, yy):
    amp, x0, y0, alpha, beta, b = p
    r2 = (xx - x0) ** 2 + (yy - y0) ** 2
    return amp * (1.0 + r2 / (alpha * alpha)) ** (-beta) + b


def _fit_moffat(stamp, good, x0, y0, fwhm0):
    yy, xx = np.nonzero(good)
    z = stamp[good]
    b0 = float(np.percentile(z, 10))
    amp0 = float(stamp[int(round(y0)), int(round(x0))] - b0) if good[int(round(y0)),
                                                                     int(round(x0))] else z.max() - b0
    if not amp0 > 0:
        return None
    beta0 = 3.0
    alpha0 = fwhm0 / (2.0 * math.sqrt(2.0 ** (1.0 / beta0) - 1.0))
    p0 = [amp0, x0, y0, alpha0, beta0, b0]
    lo = [0.0, x0 - 3, y0 - 3, 0.2, 1.1, -np.inf]
    hi = [np.inf, x0 + 3, y0 + 3, 100.0, 30.0, np.inf]
    p0 = np.clip(p0, np.array(lo) + 1e-9, np.array(hi) - 1e-9)
    sig = np.sqrt(np.clip(z, 1.0, None))
    try:
        res = least_squares(lambda p: (_moffat_model(p, xx, yy) - z) / sig, p0,
                            bounds=(lo, hi), method="trf", x_scale="jac", max_nfev=60)
    except (ValueError, RuntimeError):
        return None
    if not res.success:
        return None
    amp, _, _, alpha, beta, _ = res.x
    fwhm = 2.0 * alpha * math.sqrt(2.0 ** (1.0 / beta) - 1.0)
    return fwhm if math.isfinite(fwhm) and fwhm > 0.5 else None


def measure_fwhm(ccd, positions, *, max_stars=15, saturation=None, box=None, min_snr=20.0):
    """The stars' FWHM in pixels: median of circular Moffat fits to the brightest stars.

    Each star is fitted with amplitude, centre, core width ``alpha``, ``beta`` and a constant
    background in a square stamp; ``FWHM = 2 alpha sqrt(2**(1/beta) - 1)``. Stars with masked
    pixels, a saturated peak or a failed fit are skipped; the stamp grows once if the first
    estimate is more than a third of its half-size.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData` or 2-D array
    positions : Table (x, y columns) or (N, 2) array
        0-based pixel positions, brightest first is best (the first ``max_stars`` usable ones
        are fitted).
    max_stars : int
    saturation : float, optional
        In the image's units; default from the header.
    box : int, optional
        Half-size of the stamp (default 10 pixels, grown as needed).
    min_snr : float
        Stars whose peak is below ``min_snr`` times the stamp-edge rms are skipped.

    Returns
    -------
    float

    Raises
    ------
    PhotometryError
        If no star could be fitted.

    Examples
    --------
    >>> from glue_zeropoint.simulate import simulate_image
    >>> ccd, truth = simulate_image(shape=(256, 256), n_stars=40, seed=1, fwhm=3.0)
    >>> stars = truth['field'].stars
    >>> bright = stars[(stars['x'] > 10) & (stars['x'] < 245) & (stars['y'] > 10) & (stars['y'] < 245)]
    >>> round(measure_fwhm(ccd, bright[:10]), 1)  # doctest: +SKIP
    3.0
    """
    im = ccd if isinstance(ccd, PreparedImage) else prepare_image(ccd, saturation=saturation)
    xs, ys = _positions_xy(positions)
    data, bad = im.data, im.bad
    ny, nx = data.shape
    sat = im.saturation
    half = 10 if box is None else int(box)
    fwhms = []
    attempts = 0
    for x, y in zip(xs, ys, strict=True):
        if len(fwhms) >= max_stars or attempts >= 3 * max_stars:
            break
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        guess = 3.0 if not fwhms else float(np.median(fwhms))
        h = max(half, int(math.ceil(2.5 * guess)))
        for _ in range(2):
            ix, iy = int(round(x)), int(round(y))
            x0, x1, y0, y1 = ix - h, ix + h + 1, iy - h, iy + h + 1
            if x0 < 0 or y0 < 0 or x1 > nx or y1 > ny:
                break
            stamp = data[y0:y1, x0:x1]
            good = ~bad[y0:y1, x0:x1]
            if good[h - 2:h + 3, h - 2:h + 3].sum() < 25:
                break
            if sat is not None and np.nanmax(stamp[h - 2:h + 3, h - 2:h + 3]) >= 0.9 * sat:
                break
            edge = np.r_[stamp[0], stamp[-1], stamp[:, 0], stamp[:, -1]]
            b_med = np.median(edge)
            b_rms = 1.4826 * np.median(np.abs(edge - b_med)) + 1e-12
            if stamp[h - 1:h + 2, h - 1:h + 2].max() - b_med < min_snr * b_rms:
                break
            attempts += 1
            fw = _fit_moffat(stamp, good, x - x0, y - y0, guess)
            if fw is None:
                break
            if fw > h / 3.0 and h < 60:
                h = int(math.ceil(3.5 * fw))
                guess = fw
                continue
            fwhms.append(fw)
            break
    if not fwhms:
        raise PhotometryError(f"{im.name}: could not measure the FWHM of any of {len(xs)} "
                              "stars (all near the edge, masked, saturated or not star-like);"
                              " pass fwhm=... (pixels)")
    return float(np.median(fwhms))


def _candidates(sub, bad, rms, fwhm, threshold):
    """Matched-filter candidates: local maxima of the image smoothed by a Gaussian of the FWHM
    whose signal-to-noise (white noise of ``rms``) is above ``threshold``."""
    from . import _kernels as K

    sigma = max(fwhm / 2.3548, 0.5)
    h = int(math.ceil(3.0 * sigma))
    k = np.exp(-0.5 * (np.arange(-h, h + 1) / sigma) ** 2)
    k /= k.sum()
    smooth = K.smooth_separable(np.ascontiguousarray(sub, dtype=np.float64), k)
    noise = rms * float(np.sum(k ** 2))  # sqrt(sum of the 2-D kernel squared) = sum(k^2)
    half = max(1, int(round(0.75 * fwhm)))
    return K.local_maxima(smooth, np.ascontiguousarray(bad), threshold * noise, half)


def find_stars(ccd, *, fwhm=None, threshold=5.0, mask=None, finder=None, background=None,
               max_stars=None):
    """Detect stars on the background-subtracted image; photutils measures and filters them.

    Candidates are the local maxima of the image smoothed by a Gaussian of the FWHM (a matched
    filter, compiled) whose signal-to-noise exceeds ``threshold``; photutils' ``DAOStarFinder``
    (given the candidates as ``xycoords``) then computes centroids, sharpness and roundness and
    rejects what is not star-like (cosmic rays, hot pixels, extended objects). This gives
    DAOFIND's catalog without its full-image peak search, which takes seconds on a 4k x 4k
    frame. ``threshold`` is therefore a matched-filter signal-to-noise, not DAOFIND's
    kernel-scaled threshold.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData` or 2-D array
        In electrons (or ADU: the gain from the header is applied; detection does not care).
    fwhm : float, optional
        Stellar FWHM in pixels; measured from the brightest peaks when not given.
    threshold : float
        Detection threshold: signal-to-noise in the Gaussian matched filter.
    mask : ndarray of bool, optional
        Extra pixels to ignore (True = bad), added to the image's own mask.
    finder : callable, optional
        A photutils star finder *class* accepting ``xycoords`` (``DAOStarFinder`` default, or
        ``IRAFStarFinder``); called as ``finder(threshold=..., fwhm=..., xycoords=...)``.
    background : Background, optional
        A precomputed :class:`Background` (saves time when called twice).
    max_stars : int, optional
        Keep only the brightest ``max_stars`` detections.

    Returns
    -------
    `~astropy.table.Table`
        ``id`` (1-based), ``x``, ``y`` (0-based pixels), ``peak`` (background-subtracted peak,
        e-), ``flux`` (finder's rough flux), ``sharpness``, ``roundness1``, ``roundness2``,
        sorted brightest first; ``meta``: ``fwhm``, ``threshold`` (e-), ``background``,
        ``background_rms`` (medians).

    Raises
    ------
    PhotometryError
        If nothing is found (the message gives the threshold and background rms).

    Examples
    --------
    >>> from glue_zeropoint.simulate import simulate_image
    >>> ccd, truth = simulate_image(shape=(256, 256), n_stars=40, seed=1)
    >>> stars = find_stars(ccd, fwhm=3.5)
    >>> len(stars) > 20
    True
    """
    from photutils.detection import DAOStarFinder

    im = ccd if isinstance(ccd, PreparedImage) else prepare_image(ccd, mask=mask)
    if isinstance(ccd, PreparedImage) and mask is not None:
        im = PreparedImage(**{**im.__dict__, "bad": im.bad | np.asarray(mask, bool)})
    if not threshold > 0:
        raise InputError(f"threshold must be > 0 (sigma), got {threshold!r}")
    bkg = background or estimate_background(im.data, im.bad)
    sub = im.data - bkg.level
    # saturated (masked) star cores keep their clipped value so that the stars are found
    # (and flagged later); other bad pixels are zeroed
    bad = im.bad
    if im.saturation is not None:
        bad = im.bad & ~(np.isfinite(im.data) & (im.data >= 0.99 * im.saturation))
    sub[bad] = 0.0
    rms = bkg.median_rms
    if not rms > 0:
        raise PhotometryError(f"{im.name}: the background rms is {rms!r}; is the image "
                              "constant or empty?")
    if fwhm is None:
        guess = 3.0
        # the FWHM from the central 1024 x 1024 pixels (enough stars, a fraction of the time)
        ny, nx = sub.shape
        y0, x0 = max(0, ny // 2 - 512), max(0, nx // 2 - 512)
        cy, cx = _candidates(sub[y0:y0 + 1024, x0:x0 + 1024], bad[y0:y0 + 1024, x0:x0 + 1024],
                             rms, guess, max(threshold, 20.0))
        if cy.size < 10 and (y0 or x0):
            cy, cx = _candidates(sub, bad, rms, guess, max(threshold, 20.0))
            y0 = x0 = 0
        ys, xs = cy + y0, cx + x0
        if xs.size == 0:
            raise PhotometryError(f"{im.name}: no stars found above {max(threshold, 20):g} "
                                  f"sigma (background rms {rms:.3g} e-); lower threshold= or "
                                  "check the image")
        order = np.argsort(-sub[ys, xs])
        start = min(5, order.size // 10)  # skip the very brightest (likely saturated)
        try:
            fwhm = measure_fwhm(im, np.c_[xs[order], ys[order]][start:])
        except PhotometryError:
            if im.saturation is not None:
                n_sat = int(np.sum(im.data[ys, xs] >= 0.9 * im.saturation))
                if n_sat >= 0.5 * xs.size:
                    raise PhotometryError(
                        f"{im.name}: {n_sat} of the {xs.size} brightest stars are saturated "
                        f"(level {im.saturation:g} e-) and the others too faint to measure the "
                        "FWHM; use a shorter exposure, or give fwhm=... to measure them "
                        "anyway (they will be flagged)") from None
            raise
        log.info("%s: FWHM %.2f pixels measured from the brightest stars", im.name, fwhm)
    if not fwhm > 0:
        raise InputError(f"fwhm must be > 0 pixels, got {fwhm!r}")
    ys, xs = _candidates(sub, bad, rms, fwhm, threshold)
    found = None
    if xs.size:
        finder_cls = DAOStarFinder if finder is None else finder
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyUserWarning)
            found = finder_cls(threshold=threshold * rms, fwhm=fwhm,
                               xycoords=np.c_[xs, ys])(sub, mask=bad)
    if found is None or len(found) == 0:
        raise PhotometryError(f"{im.name}: no stars found above {threshold:g} sigma "
                              f"(background rms {rms:.3g} e-, FWHM {fwhm:.2f} px); lower "
                              "threshold= or check the image")
    out = Table(meta={"fwhm": float(fwhm), "threshold": float(threshold * rms),
                      "background": bkg.median, "background_rms": rms})
    xname = "x_centroid" if "x_centroid" in found.colnames else "xcentroid"
    yname = "y_centroid" if "y_centroid" in found.colnames else "ycentroid"
    out["x"] = np.asarray(found[xname], float)
    out["y"] = np.asarray(found[yname], float)
    for name in ("peak", "flux", "sharpness", "roundness1", "roundness2"):
        if name in found.colnames:
            out[name] = np.asarray(found[name], float)
    if "peak" in out.colnames:
        out.sort("peak", reverse=True)
    if max_stars is not None:
        out = out[:int(max_stars)]
    out.add_column(np.arange(1, len(out) + 1), name="id", index=0)
    return out


def disk_mask(shape, x, y, radius):
    """Boolean image of ``shape``, True within ``radius`` (scalar or per position) of any
    ``(x, y)`` (pixel centres; non-finite positions are passed over)."""
    from . import _kernels as K

    x = np.ascontiguousarray(x, dtype=float)
    y = np.ascontiguousarray(y, dtype=float)
    r = np.ascontiguousarray(np.broadcast_to(np.asarray(radius, float), x.shape))
    return K.paint_disks(int(shape[0]), int(shape[1]), x, y, r)


def box_statistics(data, bad, box, *, stride=1, sigma=3.0, maxiters=5):
    """Sigma-clipped median, std and count of the good pixels in boxes of ``box`` pixels.

    Every ``stride``-th pixel of a box is sampled. Returns ``(median, std, n)`` arrays of
    shape ``(ceil(ny/box), ceil(nx/box))``, NaN where a box has fewer than 10 good samples.
    """
    from . import _kernels as K

    return K.mesh_stats(np.ascontiguousarray(data),
                        np.ascontiguousarray(bad, dtype=bool), int(box), int(stride),
                        float(sigma), int(maxiters))
