"""The point-spread function of a frame, measured from its own stars.

Nothing here assumes a profile family for the light a star spreads into its wings: the
aperture radius, the aperture correction, the crowding estimate and the masking of bright
stars' wings all use the frame's own *empirical* curve of growth (:class:`PSF.growth`),
measured on its bright, isolated, unsaturated stars, with a power-law tail
``S(r) = A r**-p`` fitted to the outer rings for the light beyond the largest radius (the
asymptote of seeing halos, Moffat wings and scattered-light aureoles alike, with ``p`` free).

The *width* (FWHM, ellipticity, angle) comes from fits of a pixel-integrated elliptical core
of free kurtosis to each star (the pixels within ~2 FWHM): the width of the core only, which
is what detection kernels, centroid windows and radii scale with. Pixel integration (the model
is integrated over each pixel by sub-sampling) keeps the estimate valid for undersampled stars
down to FWHM ~0.4 px, where a star puts most of its light in one or four pixels and a plain
Gaussian or moment estimate would return the pixel, not the star.

:func:`measure_psf` is the entry point; :func:`measure_fwhm` (in :mod:`.detection`) is a
thin wrapper returning the FWHM only.
"""

import functools
import logging
import math
from dataclasses import dataclass, field, replace

import numpy as np
from astropy.stats import mad_std

from ..exceptions import PhotometryError
from ..stats import GAUSS_FWHM, MEDIAN_ERROR
from . import _kernels as K

__all__ = ["PSF", "measure_psf", "UNDERSAMPLED_FWHM", "growth_curves", "fit_power_tail",
           "tail_annulus_mean", "law_missing", "law_annulus_mean"]

log = logging.getLogger(__name__)

#: Below this FWHM (pixels) a star is undersampled (Nyquist: two pixels per FWHM): a hot pixel
#: and a star cannot be told apart by shape, and an aperture must be wide enough that the
#: light it captures does not depend on where the star falls inside its pixel.
UNDERSAMPLED_FWHM = 2.0
#: The flattest outer profile accepted, S ~ r**-3 (broader than the r**-4 halos of real seeing
#: and optics); rings flatter than that are taken to hold other light.
MIN_TAIL_INDEX = 3.0
#: A core narrower than this (pixels, minor axis) holds all its light in one pixel whatever its
#: phase: a hot pixel or a cosmic-ray hit, not a star the PSF can be measured on.
SINGLE_PIXEL_FWHM = 0.3

#: Radii of the midpoint rule over a smooth part of the profile (Gaussian core, power-law tail)
#: in :meth:`PSF.fraction_table`; the displaced-light fractions are within 2e-4 of a 1000 x
#: 1440 polar grid (tests/photometry/test_psf_fits.py).
FRACTION_RADII = 256


@dataclass
class PSF:
    """A frame's PSF: core width and shape, and (once measured) its curve of growth.

    Attributes
    ----------
    fwhm : float
        Geometric mean of the major and minor FWHM (pixels), median over the stars.
    fwhm_scatter : float
        Robust standard deviation of the per-star FWHM (pixels).
    fwhm_major, fwhm_minor : float
        Median major and minor FWHM (pixels).
    ellipticity : float
        ``1 - minor/major`` (median): 0 for round stars; tracking errors give 0.1-0.5.
    theta : float
        Angle of the major axis from +x, counter-clockwise, degrees in [0, 180).
    n_stars : int
        Stars the width rests on.
    radii, growth : tuple of float or None
        The empirical curve of growth: fraction of the *total* flux (tail included) inside
        each radius (pixels).
    tail_amplitude, tail_index, tail_softening : float or None
        The outer law ``S(r) = tail_amplitude * (r**2 + tail_softening**2)**(-tail_index/2)``
        (per unit total flux; :func:`fit_power_tail`).
    growth_stars : int
        Stars the curve of growth rests on (0: a pixel-integrated Gaussian core stands in).
    """

    fwhm: float
    fwhm_scatter: float = 0.0
    fwhm_major: float = None
    fwhm_minor: float = None
    ellipticity: float = 0.0
    theta: float = 0.0
    n_stars: int = 0
    radii: tuple = None
    growth: tuple = None
    tail_amplitude: float = None
    tail_index: float = None
    tail_softening: float = 0.0
    growth_stars: int = 0
    _tables: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        self.fwhm = float(self.fwhm)
        if self.fwhm_major is None:
            self.fwhm_major = self.fwhm
        if self.fwhm_minor is None:
            self.fwhm_minor = self.fwhm

    @property
    def undersampled(self):
        """True when the FWHM is below :data:`UNDERSAMPLED_FWHM` pixels."""
        return self.fwhm < UNDERSAMPLED_FWHM

    @property
    def sigma_eff(self):
        """Standard deviation (pixels) of the pixel-integrated core (Gaussian width with the
        pixel's own 1/12 variance added): the matched-filter width."""
        return math.sqrt((self.fwhm / GAUSS_FWHM) ** 2 + 1.0 / 12.0)

    def with_growth(self, radii, growth, amplitude, index, n, softening=0.0):
        """A copy with an empirical curve of growth."""
        return replace(self, _tables={}, radii=tuple(float(r) for r in radii),
                       growth=tuple(float(g) for g in growth), tail_amplitude=amplitude,
                       tail_index=index, tail_softening=float(softening or 0.0),
                       growth_stars=int(n))

    def with_fwhm(self, fwhm):
        """A copy with another (round) FWHM and no curve of growth."""
        return PSF(fwhm=float(fwhm))

    # ---------------------------------------------------------------- profile
    def encircled(self, r):
        """Fraction of a star's total flux inside radius ``r`` (pixels)."""
        r = np.asarray(r, float)
        if self.radii is None:
            s2 = self.sigma_eff ** 2
            return 1.0 - np.exp(-0.5 * r * r / s2)
        rad = np.r_[0.0, self.radii]
        g = np.r_[0.0, self.growth]
        inside = np.interp(r * r, rad * rad, g)  # linear in area: constant surface brightness
        beyond = r > rad[-1]
        if np.any(beyond):
            out = np.where(beyond, 1.0 - self._tail_beyond(np.maximum(r, rad[-1])), inside)
            return np.clip(out, 0.0, 1.0)
        return inside

    def _tail_beyond(self, r):
        a, p = self.tail_amplitude, self.tail_index
        if a is None or not a > 0:
            return np.zeros_like(np.asarray(r, float))
        return law_beyond(a, p, (self.tail_softening or 0.0) ** 2, np.asarray(r, float))

    def surface_brightness(self, r):
        """Surface brightness (per unit total flux, per pixel) at radius ``r``."""
        r = np.asarray(r, float)
        return K.profile_sb(np.ascontiguousarray(r.ravel()), *self._profile()).reshape(r.shape)

    def _profile(self):
        """The profile's arguments of the compiled kernels (:func:`._kernels._profile_sb`):
        ring edges (from 0), ring surface brightness, tail amplitude, index, softening^2,
        and the Gaussian core's variance (0 once there is a curve of growth)."""
        if self.radii is None:
            rad, ring, s2 = np.zeros(1), np.zeros(1), self.sigma_eff ** 2
        else:
            rad = np.r_[0.0, self.radii]
            ring = np.diff(np.r_[0.0, self.growth]) / np.diff(math.pi * rad ** 2)
            s2 = 0.0
        a = self.tail_amplitude if self.tail_amplitude is not None else 0.0
        p = self.tail_index if self.tail_index is not None else 0.0
        if not (a > 0):  # None or NaN: no tail
            a = 0.0
        return (rad, ring, float(a), float(p), float(self.tail_softening or 0.0) ** 2,
                float(s2))

    def wing_radius(self, peak, level, cap):
        """Radius (pixels) where stars of central surface brightness ``peak`` (array, e- per
        pixel above the sky) fall to ``level``, at most ``cap``."""
        grid = np.r_[np.linspace(0.0, cap, 400)]
        sb = self.surface_brightness(grid)
        sb0 = float(sb[0]) if sb[0] > 0 else float(np.max(sb))
        rel = sb / sb0  # decreasing (mostly); take the last radius above each ratio
        want = np.asarray(level, float) / np.maximum(np.asarray(peak, float), 1e-30)
        # index of the last grid point with rel >= want
        above = rel[None, :] >= np.atleast_1d(want)[:, None]
        last = np.where(above.any(axis=1), grid.size - 1 - np.argmax(above[:, ::-1], axis=1),
                        0)
        return grid[last]

    def fraction_table(self, radius, n=96):
        """Fraction of a star's light inside a circle of ``radius`` whose centre is ``d``
        from the star, tabulated in ``d`` (returns read-only ``d, frac``; cached per PSF)."""
        key = (float(radius), int(n))
        if key not in self._tables:
            self._tables[key] = self._fraction_table(*key)
        return self._tables[key]

    def _fraction_table(self, radius, n):
        dmax = radius + max(8.0 * self.fwhm, 6.0)
        d = np.linspace(0.0, dmax, n)
        # exact for the curve of growth's rings, 256 radii for a smooth core or tail (compiled)
        frac = K.fraction_arcs(d, float(radius), FRACTION_RADII, *self._profile())
        # the quadrature of a centred circle must give the encircled fraction exactly
        own = float(self.encircled(radius))
        if frac[0] > 0:
            frac *= own / frac[0]
        frac = np.clip(frac, 0.0, 1.0)
        d.flags.writeable = False
        frac.flags.writeable = False
        return d, frac

    def to_dict(self):
        """Plain-type form (for JSON and table meta); :meth:`from_dict` reads it back."""
        return {"fwhm": self.fwhm, "fwhm_scatter": self.fwhm_scatter,
                "fwhm_major": self.fwhm_major, "fwhm_minor": self.fwhm_minor,
                "ellipticity": self.ellipticity, "theta": self.theta,
                "n_stars": self.n_stars, "undersampled": bool(self.undersampled),
                "radii": None if self.radii is None else list(self.radii),
                "growth": None if self.growth is None else list(self.growth),
                "tail_amplitude": self.tail_amplitude, "tail_index": self.tail_index,
                "tail_softening": self.tail_softening, "growth_stars": self.growth_stars}

    @classmethod
    def from_dict(cls, d):
        """The PSF of a :meth:`to_dict` dictionary (unknown keys ignored)."""
        keys = ("fwhm", "fwhm_scatter", "fwhm_major", "fwhm_minor", "ellipticity", "theta",
                "n_stars", "radii", "growth", "tail_amplitude", "tail_index", "tail_softening",
                "growth_stars")
        kw = {k: d[k] for k in keys if k in d and d[k] is not None}
        for k in ("radii", "growth"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(**kw)


# --------------------------------------------------------------------------- core fits


def _subgrid(os):
    """Sub-pixel centre offsets (relative to pixel centres) for ``os`` x ``os`` sampling."""
    return (np.arange(os) + 0.5) / os - 0.5


def _core_model(p, px, py, os):
    """The pixel-integrated core (per pixel) at pixel centres ``px, py`` with ``os`` x ``os``
    sub-samples: :func:`._kernels.core_model_jac` with unit errors."""
    px = np.ascontiguousarray(px, float)
    n = px.size
    r = np.empty(n)
    K.core_model_jac(np.asarray(p, float), px, np.ascontiguousarray(py, float), _subgrid(os),
                     np.zeros(n), np.ones(n), r, np.empty((0, 7)), False)
    return r


def _core_jacobian(p, px, py, os):
    """d(pixel-integrated core)/d(p), analytic: shape (n_pixels, 7)."""
    px = np.ascontiguousarray(px, float)
    n = px.size
    jac = np.empty((n, 7))
    K.core_model_jac(np.asarray(p, float), px, np.ascontiguousarray(py, float), _subgrid(os),
                     np.zeros(n), np.ones(n), np.empty(n), jac, True)
    return jac


def _fit_core(stamp, good, x0, y0, fwhm0, noise2):
    """Fit a pixel-integrated elliptical core to a background-subtracted stamp.

    The core model ``(1 + u^2 + v^2)^-beta`` has its kurtosis free (``beta`` from 1.1 to
    ~1000, i.e. from broad-winged to Gaussian), so the *width* it returns does not depend on
    an assumed profile; its wings are not used for anything else. Each pixel is integrated
    over ``os`` x ``os`` sub-samples; only the pixels within ~2 FWHM are modelled, with an
    analytic Jacobian, by a compiled bounded Levenberg-Marquardt
    (:func:`._kernels.fit_core`). Returns (fwhm_major, fwhm_minor, theta_rad, x, y, flux) or
    None."""
    ny, nx = stamp.shape
    os = int(min(12, max(3, math.ceil(4.0 / max(fwhm0, 0.3)))))
    yy, xx = _stamp_grid(ny, nx)
    r_fit = max(2.5, 2.0 * fwhm0)
    use = good & ((xx - x0) ** 2 + (yy - y0) ** 2 <= r_fit ** 2)
    if use.sum() < 7:
        return None
    z = np.ascontiguousarray(stamp[use], float)
    if not np.all(np.isfinite(z)):
        return None
    sig = np.sqrt(noise2 + np.clip(z, 0.0, None))
    if not np.all(np.isfinite(sig) & (sig > 0)):
        return None
    beta0 = 3.0
    a0 = max(fwhm0, 0.3) / (2.0 * math.sqrt(2.0 ** (1.0 / beta0) - 1.0))
    flux0 = max(float(np.sum(np.clip(z, 0, None))), 1e-6) * 1.2
    p0 = np.array([flux0, x0, y0, math.log(a0), math.log(a0), 0.0, math.log(beta0 - 1.0)])
    lo = np.array([0.0, x0 - 1.5, y0 - 1.5, math.log(0.05), math.log(0.05), -2 * math.pi,
                   math.log(0.1)])
    hi = np.array([np.inf, x0 + 1.5, y0 + 1.5, math.log(200.0), math.log(200.0),
                   2 * math.pi, math.log(1000.0)])
    p, ok, _nfev = K.fit_core(p0, lo, hi, xx[use].astype(float), yy[use].astype(float),
                              _subgrid(os), z, sig, 150)
    if not ok or not np.all(np.isfinite(p)):
        return None
    flux, xc, yc, la, lb, th, lbeta = p
    beta = 1.0 + math.exp(lbeta)
    k = 2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0)
    fa, fb = k * math.exp(la), k * math.exp(lb)
    if fb > fa:
        fa, fb = fb, fa
        th += math.pi / 2
    return fa, fb, th % math.pi, xc, yc, flux


def _weighted_median(values, weights):
    """The value at half the cumulative weight."""
    order = np.argsort(values)
    cw = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cw, 0.5 * cw[-1])])


@functools.lru_cache(maxsize=32)
def _stamp_grid(ny, nx):
    """``np.mgrid[0:ny, 0:nx]`` of a stamp, read-only (a frame's stamps share a few shapes;
    making the grid was a fifth of a stamp's Python time)."""
    yy, xx = np.mgrid[0:ny, 0:nx]
    yy.flags.writeable = False
    xx.flags.writeable = False
    return yy, xx


def _mad_std(values, median):
    """astropy's ``mad_std(values)`` given ``median = np.median(values)`` (the same numbers:
    ``np.median(|values - median|)`` times 1 / Phi^-1(3/4), without its second median of
    the values and its wrapper, ~20 us a stamp)."""
    return float(np.median(np.abs(values - median))) * 1.482602218505602


def _moment_fwhm(stamp, good, x0, y0, half):
    """A rough FWHM from the second moment of the central pixels (pixel variance removed)."""
    yy, xx = _stamp_grid(*stamp.shape)
    r2 = (xx - x0) ** 2 + (yy - y0) ** 2
    w = np.where(good & (r2 <= half * half), np.clip(stamp, 0, None), 0.0)
    s = w.sum()
    if not s > 0:
        return None
    var = float((w * r2).sum() / s / 2.0) - 1.0 / 12.0
    return GAUSS_FWHM * math.sqrt(max(var, 0.01))


FAINT_PSF_SNR = 10.0
"""Peak signal-to-noise of the faintest stars the PSF may rest on when no brighter star is
usable."""


def measure_psf(im, xs, ys, *, max_stars=30, min_snr=20.0, isolation=None, box=None):
    """Measure the PSF width and shape from stars at ``(xs, ys)`` (brightest first is best).

    Parameters
    ----------
    im : PreparedImage
    xs, ys : array
        Candidate positions (0-based pixels), brightest first.
    max_stars : int
        At most this many stars are fitted.
    min_snr : float
        Candidates whose peak is below ``min_snr`` times the local noise are skipped.
    isolation : float, optional
        Minimum distance (pixels) to another candidate; default 3 FWHM of the first estimate
        (at least 4 px).
    box : int, optional
        Half-size of the stamp (default from a first moment estimate).

    Returns
    -------
    PSF
        The width; the curve of growth is added later (:class:`~.aperture.CurveOfGrowth`).

    Raises
    ------
    PhotometryError
        No star could be fitted.
    """
    xs = np.asarray(xs, float)
    ys = np.asarray(ys, float)
    fin = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[fin], ys[fin]
    fits = _fit_candidates(im, xs, ys, max_stars, min_snr, isolation, box)
    few = len(fits) < 3
    if few and min_snr > FAINT_PSF_SNR:
        psf = _fainter_stars(im, xs, ys, len(fits), max_stars, min_snr, isolation, box)
        if psf is not None:
            return psf
    if not fits:
        raise PhotometryError(f"{im.name}: could not measure the PSF on any of {xs.size} "
                              "stars (all near the edge, masked, saturated, crowded or too "
                              "faint); give the FWHM (fwhm=..., --fwhm) in pixels")
    if few and min_snr > FAINT_PSF_SNR:
        f = math.sqrt(fits[0][0] * fits[0][1])
        if f < UNDERSAMPLED_FWHM:
            # one or two sharp sources cannot be told from cosmic-ray hits
            raise PhotometryError(
                f"{im.name}: could not measure the PSF: only {len(fits)} usable source(s), "
                f"{f:.2f} px wide, which may be cosmic-ray hits (a shallow or cloudy "
                "frame?); give the FWHM (fwhm=..., --fwhm) in pixels")
    psf = _psf_from_fits(fits)
    log.info("%s: PSF FWHM %.2f px (scatter %.2f, %d stars), ellipticity %.2f at %.0f deg%s",
             im.name, psf.fwhm, psf.fwhm_scatter, psf.n_stars, psf.ellipticity, psf.theta,
             " (undersampled)" if psf.undersampled else "")
    return psf


def _fit_candidates(im, xs, ys, max_stars, min_snr, isolation, box):
    """Core fits ``(major, minor, angle, x, y, flux, flux_err, noise)`` of the isolated,
    unsaturated, bright-enough candidates, brightest first, up to ``max_stars`` (and at
    most ``10 * max_stars`` tried)."""
    fits = []
    first_guess = None
    tried = 0
    qnoise = float(getattr(im, "quantisation_noise", 0.0) or 0.0)
    for k in range(xs.size):
        if len(fits) >= max_stars or tried >= 10 * max_stars:
            break
        stamp = _candidate_stamp(im, xs, ys, k, first_guess or 3.0, isolation, box, qnoise,
                                 min_snr)
        if stamp is None:
            continue
        tried += 1
        st, good, cx, cy, h, noise = stamp
        moment = _moment_fwhm(st, good, cx, cy, min(h, 4))
        if moment is None or moment < SINGLE_PIXEL_FWHM:
            continue  # a one-pixel event: no starting width to take from it
        if fits:
            f0 = float(np.median([f[0] * f[1] for f in fits]) ** 0.5)
        else:
            f0 = moment
            if first_guess is None:
                first_guess = moment
        out = _fit_core(st, good, cx, cy, f0, noise * noise)
        if out is None:
            continue
        # refit with the region scaled to this star's own width
        f1 = math.sqrt(out[0] * out[1])
        if abs(f1 - f0) > 0.2 * f0:
            again = _fit_core(st, good, out[3], out[4], f1, noise * noise)
            out = again or out
        if not np.all(np.isfinite(out[:3])) or out[1] < SINGLE_PIXEL_FWHM or \
                not math.sqrt(out[0] * out[1]) < 3.0 * h:
            continue  # a one-pixel event (hot pixel, cosmic ray) or not a star
        fits.append(tuple(out) + (noise,))
    return fits


def _candidate_stamp(im, xs, ys, k, guess, isolation, box, qnoise, min_snr):
    """``(sky-subtracted stamp, good pixels, x, y in it, half-size, noise)`` around
    candidate ``k``, or None when it is near the edge, not isolated (a twin of a brighter
    candidate within 2 px is the same star), masked, saturated or below ``min_snr``."""
    data, bad = im.data, im.bad
    ny, nx = data.shape
    x, y = xs[k], ys[k]
    h = int(box) if box else int(max(5, math.ceil(3.0 * guess)))
    ix, iy = int(round(x)), int(round(y))
    if ix - h < 0 or iy - h < 0 or ix + h + 1 > nx or iy + h + 1 > ny:
        return None
    iso = isolation if isolation is not None else max(4.0, 3.0 * guess)
    d2 = (xs - x) ** 2 + (ys - y) ** 2
    d2[k] = np.inf
    # twins within 2 px are the same star (the flat top of a quantised profile gives
    # several equal maxima): the brightest listed one stands for it
    twin = d2 <= 4.0
    if np.any(twin[:k]):
        return None
    d2[twin] = np.inf
    if np.min(d2, initial=np.inf) < iso * iso:
        return None
    stamp = data[iy - h:iy + h + 1, ix - h:ix + h + 1]
    good = ~bad[iy - h:iy + h + 1, ix - h:ix + h + 1]
    if not good[h - 1:h + 2, h - 1:h + 2].all():
        return None
    sat = im.saturation
    if sat is not None and np.nanmax(stamp[h - 2:h + 3, h - 2:h + 3]) >= 0.8 * sat:
        return None
    edge = np.r_[stamp[0], stamp[-1], stamp[1:-1, 0], stamp[1:-1, -1]]
    edge = edge[np.isfinite(edge)]
    if edge.size < 8:
        return None
    b = float(np.median(edge))
    # a flat, quantised sky (8-bit frames) has a stamp-edge rms of 0: floor it at the
    # rounding noise
    noise = max(_mad_std(edge, b) or float(np.std(edge)), qnoise) or 1e-9
    st = stamp - b
    if st[h - 1:h + 2, h - 1:h + 2].max() < min_snr * noise:
        return None
    return st, good, x - (ix - h), y - (iy - h), h, noise


def _fainter_stars(im, xs, ys, n_fits, max_stars, min_snr, isolation, box):
    """A shallow frame (8-bit pixels, short exposures in blue bands): the PSF from stars
    down to :data:`FAINT_PSF_SNR`, with a note, when that gives more stars (a width from
    one or two sources only when it is not sharp: cosmic-ray hits and hot pixels are);
    else None."""
    try:
        psf = measure_psf(im, xs, ys, max_stars=max_stars, min_snr=FAINT_PSF_SNR,
                          isolation=isolation, box=box)
    except PhotometryError:
        return None
    if not (psf.n_stars >= n_fits and (psf.n_stars >= 3 or not psf.undersampled)):
        return None
    note = (f"{im.name}: fewer than 3 stars above {min_snr:g} sigma to measure the "
            f"PSF; measured on {psf.n_stars} stars down to {FAINT_PSF_SNR:g} sigma: "
            f"FWHM {psf.fwhm:.2f} px is less certain")
    log.warning(note)
    if hasattr(im, "notes"):
        im.notes.append(note)
    return psf


def _psf_from_fits(fits):
    """The frame's :class:`PSF` from the stars' core fits: the width is a median weighted by
    each source's flux signal-to-noise (so that cosmic-ray hits and hot pixels, sharp and
    bright with little flux, however many, do not outvote the stars), outliers beyond 3
    scatters (blends, galaxies) dropped, then the medians of the axes, the ellipticity and
    the axial mean of the angle."""
    arr = np.asarray([f[:3] for f in fits], float)
    fw = np.sqrt(arr[:, 0] * arr[:, 1])
    snr = np.asarray([max(f[5], 0.0) / max(f[6], 1e-30) for f in fits], float)
    med = _weighted_median(fw, snr) if snr.sum() > 0 else float(np.median(fw))
    near = np.abs(np.log(fw / med)) < math.log(1.5)
    scat = float(mad_std(fw[near])) if near.sum() >= 3 else 0.0
    keep = np.abs(fw - med) <= 3.0 * max(scat, 0.05 * med)
    if keep.any():
        arr, fw = arr[keep], fw[keep]
    maj, mnr = float(np.median(arr[:, 0])), float(np.median(arr[:, 1]))
    ell = float(np.median(1.0 - arr[:, 1] / arr[:, 0]))
    ang = 0.5 * math.degrees(math.atan2(np.mean(np.sin(2 * arr[:, 2])),
                                        np.mean(np.cos(2 * arr[:, 2])))) % 180.0
    return PSF(fwhm=float(np.median(fw)), fwhm_scatter=float(mad_std(fw)) if fw.size >= 3
               else float(np.std(fw)), fwhm_major=maj, fwhm_minor=mnr, ellipticity=ell,
               theta=ang, n_stars=int(fw.size))


# --------------------------------------------------------------------------- growth


def growth_curves(im, xs, ys, radii, sky_level):
    """Sky-subtracted fluxes of stars at ``(xs, ys)`` in apertures of ``radii`` (pixels).

    Returns ``(curves, area_bad, area_off)``: ``curves[i, j]`` the flux of star ``i`` inside
    ``radii[j]``; the masked and off-image areas of the largest aperture."""
    xs = np.asarray(xs, float)
    ys = np.asarray(ys, float)
    radii = np.asarray(radii, float)
    n, m = xs.size, radii.size
    # every (star, radius) pair in one call of the compiled kernel: a night's frames have a
    # few dozen curve-of-growth stars, and one call per radius cost more in its start-up
    # (~30 parallel launches per curve) than in the sums
    sm, _, area, abad, aoff, _ = K.aperture_sums(
        im.data, im.data, im.bad, np.repeat(xs, m), np.repeat(ys, m), np.tile(radii, n),
        False)
    sm, area = sm.reshape(n, m), area.reshape(n, m)
    curves = sm - np.asarray(sky_level, float).reshape(-1, 1) * area
    return curves, abad.reshape(n, m)[:, -1], aoff.reshape(n, m)[:, -1]


def _ring_brightness(radii, curves, pixel_var, r_min, sky_var=None):
    """The stars' mean normalised ring brightness beyond ``r_min`` and its error.

    Each ring's brightness (flux between two radii over its area, per unit flux inside the
    largest radius) is averaged over the stars with inverse-variance weights from each
    star's own noise (its photons and ``pixel_var`` per pixel), so the bright stars, whose
    wings are measured, carry the mean; 4-sigma outliers of a ring (a neighbour, a hit) are
    dropped and the error is scaled by the stars' scatter about the mean where it exceeds
    their noise (the PSF changes across the field). Without ``pixel_var`` the median and its
    robust spread are used.

    ``sky_var`` (per star: the variance of its sky level per pixel) is the error every ring
    of a star shares: a sky level off by ``d`` moves all its rings by ``d`` (per unit flux),
    which looks like a flat tail. It enters the clipping and the stars' scatter, and the
    covariance of the mean rings.

    Returns ``(r, s, s_err, ring_area, cov)`` of the selected rings: ``cov`` is the
    covariance matrix of ``s`` (``s_err**2`` on the diagonal plus the shared sky errors),
    None without ``pixel_var`` or ``sky_var``."""
    radii = np.asarray(radii, float)
    area = math.pi * radii ** 2
    d_area = np.diff(area)
    big = curves[:, -1:]
    rings = np.diff(curves, axis=1) / big / d_area[None, :]
    rmid = np.sqrt(0.5 * (radii[1:] ** 2 + radii[:-1] ** 2))
    sel = rmid >= r_min
    rings, d_area, rmid = rings[:, sel], d_area[sel], rmid[sel]
    n = rings.shape[0]
    if pixel_var is None:
        s = np.median(rings, axis=0)
        s_err = (mad_std(rings, axis=0) if n >= 3 else np.abs(s) + 1e-12) * MEDIAN_ERROR / \
            math.sqrt(max(n, 1))
        return rmid, s, np.maximum(s_err, 1e-9), d_area, None
    pv = np.asarray(pixel_var, float)[:, None]
    flux = np.diff(curves, axis=1)[:, sel]
    var = (np.clip(flux, 0, None) + d_area[None, :] * pv) / (big * d_area[None, :]) ** 2
    var = np.where(np.isfinite(var) & (var > 0), var, np.inf)
    # each star's sky error, shared by all its rings (per unit flux inside the largest radius)
    shared = (np.zeros((n, 1)) if sky_var is None
              else np.asarray(sky_var, float)[:, None] / big ** 2)
    shared = np.where(np.isfinite(shared) & (shared > 0), shared, 0.0)
    keep = np.isfinite(rings) & np.isfinite(var)
    for _ in range(3):
        w = np.where(keep, 1.0 / var, 0.0)
        sw = np.maximum(w.sum(axis=0), 1e-300)
        s = (w * np.where(keep, rings, 0.0)).sum(axis=0) / sw
        z = (rings - s[None, :]) / np.sqrt(var + shared)
        new = keep & (np.abs(z) <= 4.0)
        if n < 3 or np.array_equal(new, keep):
            break
        keep = new
    k = keep.sum(axis=0)
    chi2 = np.where(k > 1, np.where(keep, z ** 2, 0.0).sum(axis=0) / np.maximum(k - 1, 1), 1.0)
    scale = np.sqrt(np.maximum(chi2, 1.0))
    if sky_var is None:
        return rmid, s, np.maximum(scale / np.sqrt(sw), 1e-12), d_area, None
    # the mean's covariance: the rings' own noise, and each star's sky error through its
    # weight in every ring
    u = w / sw[None, :]  # the weights that made s (zero where a star was not kept)
    cov = (np.diag(1.0 / sw) + (u * shared).T @ u) * np.outer(scale, scale)
    return rmid, s, np.maximum(np.sqrt(np.diag(cov)), 1e-12), d_area, cov


def law_annulus_mean(q, r_in, r_out):
    """Mean over an annulus of the tail law ``exp(q0) (r**2 + exp(2 q2))**(-q1/2)``."""
    return K.law_mean(math.exp(q[0]), float(q[1]), math.exp(2.0 * q[2]), float(r_in),
                      float(r_out))


def law_beyond(a, p, c2, r):
    """Light of the wing law ``a (r**2 + c2)**(-p/2)`` (p > 2) beyond radius ``r``."""
    return 2.0 * math.pi * a * (r ** 2 + c2) ** (1.0 - 0.5 * p) / (p - 2.0)


def law_missing(q, r_big, sky_in, sky_out):
    """Light of the tail law beyond ``r_big`` plus what its sky annulus over-subtracts
    inside ``r_big`` (per unit flux inside ``r_big``)."""
    beyond = law_beyond(math.exp(q[0]), q[1], math.exp(2.0 * q[2]), r_big)
    return beyond + math.pi * r_big ** 2 * law_annulus_mean(q, sky_in, sky_out)


def tail_annulus_mean(tail, r_in, r_out, q=None):
    """Mean surface brightness of a :func:`fit_power_tail` result over an annulus (0 when
    there is no tail); ``q`` overrides its parameters."""
    q = tail.get("q") if q is None else q
    if q is None or tail.get("index") is None:
        return 0.0
    return law_annulus_mean(q, r_in, r_out)


def fit_power_tail(radii, curves, pixel_var, sky_in, sky_out, r_min, sky_var=None):
    """Fit the outer surface brightness of normalised growth curves with a power law.

    Each curve is normalised to its flux inside the largest radius; the rings beyond ``r_min``
    give a surface brightness ``S_meas(r) = A ((r**2 + c**2)**(-p/2) - <...>_sky)``: a power
    law of index ``p`` that may steepen outwards towards it (softening radius ``c``, free
    when there are at least 6 rings, else 0), minus its mean over the sky annulus (``sky_in``
    to ``sky_out``), which holds wing light too, so the measured rings and the largest
    aperture are short of the truth by that much. No PSF family is assumed: ``p`` and ``c``
    are free. ``A``, ``p`` and ``c`` are fitted by weighted least squares on the stars' mean
    ring brightness (:func:`_ring_brightness`; ``pixel_var`` is each star's sky variance per
    pixel, None for an unweighted median; ``sky_var`` the variance of each star's sky level,
    which all its rings share: with it the significance of the rings' light and the fit
    use the rings' full covariance, so that a flat excess that is a sky error is not taken
    for a wing).

    The error of the missing light has two parts: the fit's (its covariance, scaled up by the
    reduced chi2 when it exceeds 1) and the extrapolation's, measured from the data: a pure
    power law fitted to the outer half of the rings alone gives another extrapolation, and
    half the difference (a profile that steepens or flattens outwards; less that outer
    fit's own noise) is the model error, never below 15% of the missing light.

    Returns
    -------
    dict
        ``amplitude``, ``index``, ``softening`` (per unit flux inside the largest radius),
        ``missing`` (flux beyond the largest radius plus the over-subtracted sky inside it,
        relative to the flux inside it), ``missing_err``, ``missing_err_stat`` (the fit's
        part alone), ``n_rings``; ``missing`` is 0 with a small error when the outer rings
        hold no measurable light.
    """
    radii = np.asarray(radii, float)
    r_big = radii[-1]
    r, s_med, s_err, ring_area, cov = _ring_brightness(radii, curves, pixel_var, r_min,
                                                       sky_var)
    out = {"amplitude": 0.0, "index": None, "softening": 0.0, "missing": 0.0,
           "missing_err": 0.0, "missing_err_stat": 0.0, "n_rings": int(r.size)}
    if r.size < 3 or curves.shape[0] < 1:
        return out
    # no significant light in the outer rings: no tail (error: what the rings allow). The
    # mean ring light's significance counts the stars' sky errors, which every ring of a
    # star shares (a flat excess is as much a sky error as a wing)
    ones = np.ones(r.size)
    cinv1 = ones / s_err ** 2 if cov is None else np.linalg.solve(cov, ones)
    signif = float(np.dot(cinv1, s_med) / math.sqrt(np.dot(cinv1, ones)))
    if signif < 2.0:
        out["missing_err"] = float(np.sqrt(np.sum((s_err * ring_area) ** 2)))
        return out
    rings = (r, s_med, s_err, sky_in, sky_out) + ((cov,) if cov is not None else ())

    def missing(q):
        return law_missing(q, r_big, sky_in, sky_out)

    soften = r.size >= 6
    best = _fit_tail_law(rings, np.ones(r.size, bool), soften)
    if best is None:
        out["missing_err"] = float(np.sum(np.abs(s_med) * ring_area))
        return out
    q = np.asarray(best.x, float)
    a, p = math.exp(q[0]), float(q[1])
    m = missing(q)
    # statistical error: the fit covariance (bound parameters not free; an index at its
    # floor is handled below)
    cov, free = _scaled_covariance(best, [0, 1, 2] if soften else [0, 1])
    if cov is not None:
        out.update(q=q.tolist(), cov=cov.tolist(), free=free, r_big=float(r_big),
                   sky_in=float(sky_in), sky_out=float(sky_out))
        m_err = math.sqrt(propagated_variance(missing, q, cov, free))
    else:
        m_err = m
    model_err = max(0.15 * m, _outer_model_error(rings, missing, m))
    stat_err = m_err
    m_err = math.hypot(m_err, model_err)
    if p < MIN_TAIL_INDEX + 0.1:
        # at the flattest wings allowed: the rings hold light no stellar wing explains
        # (a neighbour, a streak, a sky gradient): the extrapolation is not measured
        m_err = max(m_err, m)
    out.update(amplitude=a, index=p, softening=math.exp(q[2]) if soften else 0.0,
               missing=float(m), missing_err=float(m_err), missing_err_stat=float(stat_err))
    return out


def propagated_variance(fn, q, cov, free, eps=1e-4):
    """Variance of the scalar ``fn(q)`` from the covariance ``cov`` of the parameters
    ``q[free]``, by a one-sided numerical gradient (step ``eps``)."""
    q = np.asarray(q, float)
    f0 = fn(q)
    g = []
    for k in free:
        dq = q.copy()
        dq[k] += eps
        g.append((fn(dq) - f0) / eps)
    g = np.asarray(g)
    return float(max(g @ np.asarray(cov, float) @ g, 0.0))


def _scaled_covariance(res, fitted, drop_bound=True):
    """``(cov, free)``: the covariance of the parameters ``free`` of a least-squares
    result ``res`` (those of ``fitted`` not held at a bound, the amplitude always), scaled by
    the reduced chi2 when it exceeds 1; ``cov`` None where it cannot be inverted. With
    ``drop_bound`` a parameter at its bound is not free: its linearised error would reach past the bound (an index at
    its floor with the softening free gave var(p) ~ 50 on a real frame)."""
    free = [k for k in fitted if k == 0 or not (drop_bound and res.active_mask[k])]
    J = res.jac[:, free]
    chi2 = 2.0 * res.cost / max(res.fun.size - len(fitted), 1)
    try:
        cov = np.linalg.inv(J.T @ J) * max(chi2, 1.0)
    except np.linalg.LinAlgError:
        return None, free
    return (cov if np.all(np.isfinite(cov)) else None), free


def _tail_model(q, rr, sky_in, sky_out):
    return math.exp(q[0]) * (rr ** 2 + math.exp(2.0 * q[2])) ** (-0.5 * q[1]) - \
        law_annulus_mean(q, sky_in, sky_out)


def _tail_jacobian(q, rr, sky_in, sky_out):
    """d(:func:`_tail_model`)/dq, shape (n, 3), analytic (:func:`._kernels.tail_model_jac`
    unwhitened)."""
    rr = np.ascontiguousarray(rr, float)
    n = rr.size
    jac = np.empty((n, 3))
    K.tail_model_jac(np.asarray(q, float), rr, np.zeros(n), np.eye(n), float(sky_in),
                     float(sky_out), np.empty(n), jac, True)
    return jac


@dataclass
class _TailFit:
    """A wing-law fit, with what :func:`_scaled_covariance` reads of a least-squares result."""

    x: np.ndarray
    cost: float
    fun: np.ndarray  # whitened residuals at x
    jac: np.ndarray  # their derivatives
    active_mask: np.ndarray


def _active_bounds(x, lo, hi, rtol=1e-8):
    """-1/+1 where ``x`` is at its lower/upper bound (scipy's rule for least_squares)."""
    x, lo, hi = (np.asarray(v, float) for v in (x, lo, hi))
    active = np.zeros(x.size, int)
    lower, upper = x - lo, hi - x
    active[np.isfinite(lo) & (lower <= np.minimum(upper, rtol * np.maximum(1, np.abs(lo))))] = -1
    active[np.isfinite(hi) & (upper <= np.minimum(lower, rtol * np.maximum(1, np.abs(hi))))] = 1
    return active


def _fit_tail_law(rings, keep, soften):
    """The bounded weighted least-squares fit of the tail law to the rings ``keep``
    (``soften``: the softening radius free, else held at ~0), started from the best point of
    a grid in index and softening radius (the amplitude, linear, solved on the grid), by the
    compiled Levenberg-Marquardt (:func:`._kernels.fit_tail`); None when it does not
    converge."""
    r, s_med, s_err, sky_in, sky_out = rings[:5]
    cov = rings[5] if len(rings) > 5 else None
    c_lo, c_hi = math.log(1e-2), math.log(max(float(r.min()), 1.0))
    rk, sk, ek = (np.ascontiguousarray(v, float) for v in (r[keep], s_med[keep], s_err[keep]))
    lo = np.array([-80.0, MIN_TAIL_INDEX, c_lo])
    hi = np.array([80.0, 20.0, c_hi if soften else c_lo + 1e-9])
    if cov is None:
        w = np.diag(1.0 / ek)
    else:  # generalised least squares: residuals whitened by the rings' covariance
        chol = np.linalg.cholesky(np.asarray(cov, float)[np.ix_(keep, keep)])
        # the inverse of the triangular factor by numpy's LAPACK: scipy's solve_triangular
        # woke its OpenBLAS threads, which then spun for a while after each of these tiny
        # solves, on the core numba's threads wanted (50 HAT-P-32 frames on one process:
        # 11-12 s of wall and 19-21 s of CPU with it, 7.6 s and 11.9 s without)
        w = np.linalg.inv(chol)
    best = None
    for q0 in _tail_starts(rk, sk, ek, sky_in, sky_out, (c_lo, c_hi) if soften else (c_lo,)):
        q0 = np.clip(np.asarray(q0, float), lo, hi)
        q, ok, _nfev, cost = K.fit_tail(q0, lo, hi, rk, sk, w, float(sky_in), float(sky_out),
                                        300)
        if ok and np.all(np.isfinite(q)) and (best is None or cost < best.cost):
            best = _TailFit(q, float(cost), np.empty(rk.size), np.empty((rk.size, 3)),
                            _active_bounds(q, lo, hi))
    if best is not None:
        K.tail_model_jac(best.x, rk, sk, w, float(sky_in), float(sky_out), best.fun, best.jac,
                         True)
    return best


def _tail_starts(r, s, err, sky_in, sky_out, lc_range, n_starts=2):
    """Starting points ``[log A, p, log c]`` for the tail fit: the ``n_starts`` best, by chi2,
    of a grid in ``p`` (MIN_TAIL_INDEX to 20) and ``log c`` (over ``lc_range``) with the
    amplitude that minimises the chi2 at each grid point (the law is linear in it)."""
    ps = np.concatenate([np.linspace(MIN_TAIL_INDEX, 8.0, 21), np.linspace(9.0, 20.0, 6)])
    lcs = np.linspace(lc_range[0], lc_range[-1], 5) if len(lc_range) > 1 else \
        np.array(lc_range[:1])
    w = 1.0 / err ** 2
    # every grid point at once (amplitude 1): rows in the order (lc, p) of a loop over both;
    # each row is :func:`_tail_model` at unit amplitude, written out for the whole grid
    grid_lc, grid_p = np.repeat(lcs, ps.size), np.tile(ps, lcs.size)
    g = (r[None, :] ** 2 + np.exp(2.0 * grid_lc)[:, None]) ** (-0.5 * grid_p[:, None]) - \
        np.array([law_annulus_mean((0.0, float(p), float(lc)), sky_in, sky_out)
                  for lc, p in zip(grid_lc, grid_p, strict=True)])[:, None]
    den = g * g @ w
    with np.errstate(divide="ignore", invalid="ignore"):
        amp = (g * s) @ w / den
        chi2 = ((amp[:, None] * g - s) ** 2) @ w
    cands = [(float(chi2[k]), [math.log(amp[k]), float(grid_p[k]), float(grid_lc[k])])
             for k in np.flatnonzero((den > 0) & (amp > 0))]
    cands.sort(key=lambda c: c[0])
    starts = [q for _, q in cands[:n_starts]]
    if not starts:  # no positive amplitude anywhere: one fixed start
        a0 = max(float(s[0]) * r[0] ** 3.5, 1e-12)
        starts = [[math.log(a0), 3.5, lc_range[0]]]
    return starts


def _outer_model_error(rings, missing, m):
    """The extrapolation error measured from the data: half the difference between the
    missing light of a pure power law fitted to the outer half of the rings alone and ``m``,
    less that outer fit's own noise (only a real change of slope is model error; its own
    extrapolation is not better: the outer rings are the faintest and the most exposed to
    neighbours' light); 0 with fewer than 3 outer rings."""
    r = rings[0]
    outer = r >= np.median(r)
    if outer.sum() < 3:
        return 0.0
    bo = _fit_tail_law(rings, outer, False)
    if bo is None:
        return 0.0
    qo = np.asarray(bo.x, float)
    diff = missing(qo) - m
    # the outer fit's noise keeps its bound parameters (dropping them shrank var_o and grew
    # the stated errors: injection pull std 0.96 -> 0.79 for the aureole family, at equal
    # coverage)
    cov_o, free_o = _scaled_covariance(bo, [0, 1], drop_bound=False)
    var_o = 0.0 if cov_o is None else propagated_variance(missing, qo, cov_o, free_o)
    return 0.5 * math.sqrt(max(diff * diff - var_o, 0.0))
