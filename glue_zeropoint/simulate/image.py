"""A calibrated-like image in electrons, straight from a star field (no raw frames).

Much faster than :func:`~glue_zeropoint.simulate.simulate_night` plus calibration, for the
many-seed injection-recovery tests of photometry and the zero-point fit.
"""

import numpy as np
from astropy.nddata import CCDData, StdDevUncertainty

from .field import FilterTruth, make_field

__all__ = ["simulate_image"]


def simulate_image(field=None, filt=None, exptime=30.0, *, read_noise=8.0, seed=0,
                   saturation=None, date="2024-07-01T22:00:00", filter_name="V",
                   **field_kwargs):
    """Simulate a calibrated image in electrons with a propagated uncertainty.

    The data are ``Poisson(expected) + N(0, read_noise)``; the uncertainty is what a calibration
    would state, ``sqrt(max(data, 0) + read_noise**2)``; pixels at or above ``saturation``
    (electrons) are clipped there and masked.

    Returns
    -------
    ccd : `~astropy.nddata.CCDData`
        Unit electron, with WCS, uncertainty, mask and a header (EXPTIME, FILTER, DATE-OBS,
        GAIN = 1, RDNOISE, BUNIT).
    truth : dict
        ``field`` (StarField), ``filter`` (FilterTruth), ``expected`` (noiseless image),
        ``sky`` (e-/pixel), ``exptime``.
    """
    if field is None:
        field = make_field(seed=seed, **field_kwargs)
    filt = FilterTruth() if filt is None else filt
    rng = np.random.default_rng([seed, 7])
    expected = field.expected_electrons(filt, exptime)
    data = rng.poisson(expected).astype(np.float64) + rng.normal(0.0, read_noise, field.shape)
    mask = np.zeros(field.shape, dtype=bool)
    if saturation is not None:
        mask = data >= saturation
        data = np.minimum(data, saturation)
    sigma = np.sqrt(np.clip(data, 0, None) + read_noise ** 2)
    header = field.wcs.to_header(relax=True)
    header["EXPTIME"] = float(exptime)
    header["FILTER"] = filter_name
    header["DATE-OBS"] = date
    header["GAIN"] = 1.0
    header["RDNOISE"] = read_noise
    header["BUNIT"] = "electron"
    if saturation is not None:
        header["SATURATE"] = float(saturation)
    ccd = CCDData(data.astype(np.float32), unit="electron", wcs=field.wcs, meta=header,
                  uncertainty=StdDevUncertainty(sigma.astype(np.float32)), mask=mask)
    sky = filt.sky_rate(field.pixel_area_arcsec2) * exptime
    return ccd, {"field": field, "filter": filt, "expected": expected, "sky": sky,
                 "exptime": float(exptime)}
