"""Quality flags of measured stars: an integer bitmask and its human-readable words.

A star's ``flags`` column is the bitwise OR of the constants below; ``flag_text`` turns it
into words (``'saturated,edge'``). The zero-point fit leaves out any star with a flag in
:data:`EXCLUDE_FROM_FIT`.

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
           "FLAG_BAD_SKY", "FLAG_NEGATIVE", "FLAG_CENTROID", "FLAG_NAMES", "EXCLUDE_FROM_FIT",
           "flag_text", "flag_texts"]

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

FLAG_NAMES = {FLAG_SATURATED: "saturated", FLAG_NONLINEAR: "nonlinear", FLAG_EDGE: "edge",
              FLAG_CROWDED: "crowded", FLAG_MASKED: "masked", FLAG_BAD_SKY: "bad_sky",
              FLAG_NEGATIVE: "negative", FLAG_CENTROID: "centroid"}

#: Flags that keep a star out of the zero-point fit (all but FLAG_CENTROID: a star measured at
#: its given position is still a good star).
EXCLUDE_FROM_FIT = (FLAG_SATURATED | FLAG_NONLINEAR | FLAG_EDGE | FLAG_CROWDED | FLAG_MASKED
                    | FLAG_BAD_SKY | FLAG_NEGATIVE)


def flag_text(flags):
    """Comma-separated words for one flag value (``''`` for 0)."""
    flags = int(flags)
    return ",".join(name for bit, name in FLAG_NAMES.items() if flags & bit)


def flag_texts(flags):
    """:func:`flag_text` of every element of an integer array, as a list of str."""
    return [flag_text(f) for f in np.asarray(flags, dtype=np.int64).ravel()]
