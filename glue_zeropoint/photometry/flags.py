"""Quality flags of measured stars: an integer bitmask and its human-readable words.

A star's ``flags`` column is the bitwise OR of the constants below; ``flag_text`` turns it
into words (``'saturated,edge'``). The zero-point fit leaves out any star with a flag in
:data:`EXCLUDE_FROM_FIT`, with the flag's name as its reason (``negative`` becomes
``no_flux``; :mod:`glue_zeropoint.zeropoint.reasons`). :func:`neighbours` finds stars with a
measured neighbour in the aperture or the sky annulus from positions alone.

Examples
--------
>>> from glue_zeropoint.photometry import flags as F
>>> F.flag_text(F.FLAG_SATURATED | F.FLAG_EDGE)
'saturated,edge'
>>> F.flag_text(0)
''
"""

import numpy as np

__all__ = ["FLAG_SATURATED", "FLAG_NONLINEAR", "FLAG_EDGE", "FLAG_CROWDED", "FLAG_MASKED",
           "FLAG_BAD_SKY", "FLAG_NEGATIVE", "FLAG_CENTROID", "FLAG_EXTENDED", "FLAG_NAMES", "EXCLUDE_FROM_FIT",
           "flag_text", "flag_texts", "neighbours"]

#: The peak pixel reached the saturation level (or a saturated pixel is masked in the aperture).
FLAG_SATURATED = 1
#: The peak pixel is above the non-linearity limit (a fraction of saturation) but not saturated.
FLAG_NONLINEAR = 2
#: The aperture extends beyond the image edge; the flux misses part of the star.
FLAG_EDGE = 4
#: A neighbour's light is estimated to bias the flux by more than the crowding limit, or the
#: sky annulus had to be used without masking the neighbours.
FLAG_CROWDED = 8
#: Masked (bad) or non-finite pixels inside the aperture were left out of the sum.
FLAG_MASKED = 16
#: Too few usable sky pixels in the annulus, or a non-finite sky.
FLAG_BAD_SKY = 32
#: The sky-subtracted flux is zero or negative: no magnitude.
FLAG_NEGATIVE = 64
#: Recentring failed or wandered more than one FWHM; the given position was kept.
FLAG_CENTROID = 128
#: More of the light lies outside the aperture than for the frame's stars, beyond the noise:
#: a galaxy, a nebulous knot or an unresolved blend (see
#: :func:`~glue_zeropoint.photometry.aperture.concentration`).
FLAG_EXTENDED = 256

FLAG_NAMES = {FLAG_SATURATED: "saturated", FLAG_NONLINEAR: "nonlinear", FLAG_EDGE: "edge",
              FLAG_CROWDED: "crowded", FLAG_MASKED: "masked", FLAG_BAD_SKY: "bad_sky",
              FLAG_NEGATIVE: "negative", FLAG_CENTROID: "centroid",
              FLAG_EXTENDED: "extended"}

#: Flags that keep a star out of the zero-point fit (all but FLAG_CENTROID: a star measured at
#: its given position is still a good star).
EXCLUDE_FROM_FIT = (FLAG_SATURATED | FLAG_NONLINEAR | FLAG_EDGE | FLAG_CROWDED | FLAG_MASKED
                    | FLAG_BAD_SKY | FLAG_NEGATIVE | FLAG_EXTENDED)


def flag_text(flags):
    """Comma-separated words for one flag value (``''`` for 0)."""
    flags = int(flags)
    return ",".join(name for bit, name in FLAG_NAMES.items() if flags & bit)


def flag_texts(flags):
    """:func:`flag_text` of every element of an integer array, as a list of str."""
    values, inverse = np.unique(np.asarray(flags, dtype=np.int64).ravel(), return_inverse=True)
    texts = [flag_text(v) for v in values]
    return [texts[i] for i in inverse.ravel()]


def neighbours(x, y, flux, aperture_radius, annulus=None, fwhm=0.0, *, aperture_ratio=0.01,
               annulus_ratio=10.0):
    """Stars with a measured neighbour in their aperture or in their sky annulus.

    A pure geometry check on the measured positions, independent of any PSF model: star *i*
    has a neighbour *j* in its aperture when *j*'s centre is within ``aperture_radius +
    fwhm / 2`` of *i* and ``flux_j >= aperture_ratio * flux_i``; in its annulus when *j*'s
    centre lies between ``r_in - fwhm / 2`` and ``r_out + fwhm / 2`` and ``flux_j >=
    annulus_ratio * flux_i``. Stars without a finite position or a positive flux are neither
    checked nor counted as neighbours.

    Parameters
    ----------
    x, y, flux : array
        Pixel positions and fluxes (any common unit).
    aperture_radius : float
    annulus : (float, float), optional
        Inner and outer sky radii; None: no annulus check.
    fwhm : float
        Pixels (0 if unknown).
    aperture_ratio, annulus_ratio : float
        Flux ratios (neighbour / star) that count.

    Returns
    -------
    in_aperture, in_annulus : ndarray of bool

    Examples
    --------
    >>> import numpy as np
    >>> a, b = neighbours([10, 14, 40, 52], [10, 10, 40, 40], [100, 50, 10, 1000], 3.0,
    ...                   (8.0, 15.0), fwhm=2.0)
    >>> a.tolist(), b.tolist()
    ([True, True, False, False], [False, False, True, False])
    """
    from scipy.spatial import cKDTree

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    flux = np.asarray(flux, float)
    n = x.size
    in_ap = np.zeros(n, bool)
    in_an = np.zeros(n, bool)
    half = 0.5 * float(fwhm or 0.0)
    if not (aperture_radius and np.isfinite(aperture_radius)):
        return in_ap, in_an
    r_ap = float(aperture_radius) + half
    reach = r_ap
    if annulus is not None and all(np.isfinite(annulus)):
        r_in, r_out = float(annulus[0]) - half, float(annulus[1]) + half
        reach = max(reach, r_out)
    else:
        r_in = r_out = None
    good = np.flatnonzero(np.isfinite(x) & np.isfinite(y) & (flux > 0))
    if good.size < 2:
        return in_ap, in_an
    pairs = cKDTree(np.c_[x[good], y[good]]).query_pairs(reach, output_type="ndarray")
    if not len(pairs):
        return in_ap, in_an
    i, j = good[pairs[:, 0]], good[pairs[:, 1]]
    d = np.hypot(x[i] - x[j], y[i] - y[j])
    for a, b in ((i, j), (j, i)):  # b is a's neighbour
        ratio = flux[b] / flux[a]
        in_ap[a[(d <= r_ap) & (ratio >= aperture_ratio)]] = True
        if r_in is not None:
            in_an[a[(d >= r_in) & (d <= r_out) & (ratio >= annulus_ratio)]] = True
    return in_ap, in_an
