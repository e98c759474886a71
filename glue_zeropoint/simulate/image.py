"""A calibrated-like image in electrons, straight from a star field (no raw frames).

Much faster than :func:`~glue_zeropoint.simulate.simulate_night` plus calibration, for the
many-seed injection-recovery tests of photometry and the zero-point fit.
"""

from dataclasses import dataclass, fields

import numpy as np
from astropy.nddata import CCDData, StdDevUncertainty

from ._settings import SimSettings
from .field import FilterTruth, make_field
from .night import _cosmic_rays

__all__ = ["simulate_image", "simulate_raw_image", "RawCameraSettings"]


def simulate_image(field=None, filt=None, exptime=30.0, *, read_noise=8.0, seed=0,
                   saturation=None, date="2024-07-01T22:00:00", filter_name="V", sky=None,
                   **field_kwargs):
    """Simulate a calibrated image in electrons with a propagated uncertainty.

    The data are ``Poisson(expected) + N(0, read_noise)``; the uncertainty is what a calibration
    would state, ``sqrt(max(data, 0) + read_noise**2)``; pixels at or above ``saturation``
    (electrons) are clipped there and masked. ``psf=`` (a PSF family or spec, see
    :mod:`glue_zeropoint.simulate.psf`) and the other :func:`make_field` options pass through
    ``field_kwargs``; ``sky`` is a :class:`~glue_zeropoint.simulate.field.SkyModel`
    (gradient, nebulous patches) instead of a flat sky.

    Returns
    -------
    ccd : `~astropy.nddata.CCDData`
        Unit electron, with WCS, uncertainty, mask and a header (EXPTIME, FILTER, DATE-OBS,
        GAIN = 1, RDNOISE, BUNIT).
    truth : dict
        ``field`` (StarField), ``filter`` (FilterTruth), ``expected`` (noiseless image),
        ``sky`` (e-/pixel; the mean level when ``sky`` is a SkyModel), ``exptime``, and with
        a PSF family or a SkyModel also ``fractions`` (per star: ``stamp``, ``image``,
        ``outside``, see :func:`~glue_zeropoint.simulate.psf.render_psf`), ``sky_image``.
    """
    if field is None:
        field = make_field(seed=seed, **field_kwargs)
    filt = FilterTruth() if filt is None else filt
    rng = np.random.default_rng([seed, 7])
    extra = {}
    if field.psf is None and sky is None:
        expected = field.expected_electrons(filt, exptime)
    else:
        expected, fractions = field.render(filt, exptime, include_sky=False)
        level = filt.sky_rate(field.pixel_area_arcsec2) * exptime
        sky_image = level if sky is None else sky.image(field.shape, level)
        expected = expected + sky_image
        extra = {"fractions": fractions, "sky_image": sky_image}
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
    sky_level = filt.sky_rate(field.pixel_area_arcsec2) * exptime
    return ccd, {"field": field, "filter": filt, "expected": expected, "sky": sky_level,
                 "exptime": float(exptime), **extra}


@dataclass
class RawCameraSettings(SimSettings):
    """The camera of :func:`simulate_raw_image` (serialisable).

    Attributes
    ----------
    gain : float
        e-/ADU.
    read_noise : float
        e-.
    pedestal : float
        Uniform bias level (ADU).
    adc_max : int
        ADC ceiling (ADU): brighter pixels saturate (flat tops).
    dark_rate : float
        Dark current (e-/s).
    hot_fraction : float
        Fraction of hot pixels (20-400 e-/s).
    cosmic_rays : int
        Cosmic-ray tracks of 1-4 pixels (500-20000 e- each).
    write_gain : bool
        Write GAIN and RDNOISE into the header.
    write_saturate : bool
        Write SATURATE = ``adc_max`` into the header.
    """

    gain: float = 1.7
    read_noise: float = 7.0
    pedestal: float = 1000.0
    adc_max: int = 65535
    dark_rate: float = 0.02
    hot_fraction: float = 3e-4
    cosmic_rays: int = 30
    write_gain: bool = False
    write_saturate: bool = True


def _raw_header(field, exptime, filter_name, date, cam):
    header = field.wcs.to_header(relax=True)
    header["EXPTIME"] = float(exptime)
    header["FILTER"] = filter_name
    header["DATE-OBS"] = date
    header["BUNIT"] = "adu"
    if cam.write_saturate:
        header["SATURATE"] = (int(cam.adc_max), "ADC ceiling (ADU)")
    if cam.write_gain:
        header["GAIN"] = (cam.gain, "electrons per ADU")
        header["RDNOISE"] = (cam.read_noise, "read noise (e-)")
    return header


def _saturated_stars(field, expected, cam):
    """Which stars saturate: their noiseless peak (plus sky and pedestal) beyond the ADC."""
    x = np.round(np.asarray(field.stars["x"])).astype(int)
    y = np.round(np.asarray(field.stars["y"])).astype(int)
    ny, nx = field.shape
    on = (x >= 0) & (x < nx) & (y >= 0) & (y < ny)
    saturated = np.zeros(len(x), bool)
    peak = expected[np.clip(y, 0, ny - 1), np.clip(x, 0, nx - 1)] / cam.gain + cam.pedestal
    saturated[on] = peak[on] >= cam.adc_max
    return saturated


def simulate_raw_image(field=None, filt=None, exptime=30.0, *, sky=None, seed=0,
                       date="2024-07-01T22:00:00", filter_name="V", camera=None, **keywords):
    """A single raw frame in ADU as a camera writes it: no calibration frames, unknown gain.

    ``raw = clip(round((Poisson(expected + dark) + N(0, read_noise) + cosmic rays) / gain
    + pedestal), 0, adc_max)`` as uint16: a flat detector response (no flat needed), a
    uniform pedestal (bias level) in ADU, dark current ``dark_rate`` e-/s with a fraction
    ``hot_fraction`` of hot pixels (20-400 e-/s), ``cosmic_rays`` tracks of 1-4 pixels
    (500-20000 e- each), stars brighter than the ADC saturate at ``adc_max`` (flat tops).

    ``camera`` is a :class:`RawCameraSettings`; ``keywords`` that name one of its fields
    override it (``gain=``, ``read_noise=``...: the keywords this function always took), the
    others make the field when none is given (:func:`make_field`).

    The header has EXPTIME, FILTER, DATE-OBS, the WCS, BUNIT = 'adu', SATURATE = ``adc_max``
    (unless ``write_saturate`` is False) and no GAIN/RDNOISE unless ``write_gain``.

    Returns
    -------
    ccd : `~astropy.nddata.CCDData`
        uint16 data, unit adu, no uncertainty, no mask.
    truth : dict
        As :func:`simulate_image` plus ``gain``, ``read_noise``, ``pedestal``, ``adc_max``,
        ``hot`` (bool image), ``cosmic_rays`` (bool image), ``saturated`` (bool per star:
        its peak pixel reached ``adc_max``), ``expected`` (noiseless electrons, stars + sky,
        without dark, pedestal or cosmic rays).
    """
    names = {f.name for f in fields(RawCameraSettings)}
    cam = RawCameraSettings.from_keywords(
        camera, **{k: v for k, v in keywords.items() if k in names})
    field_kwargs = {k: v for k, v in keywords.items() if k not in names}
    if field is None:
        field = make_field(seed=seed, **field_kwargs)
    filt = FilterTruth() if filt is None else filt
    rng = np.random.default_rng([seed, 17])
    stars, fractions = field.render(filt, exptime, include_sky=False)
    level = filt.sky_rate(field.pixel_area_arcsec2) * exptime
    sky_image = np.full(field.shape, level) if sky is None else sky.image(field.shape, level)
    expected = stars + sky_image
    dark = np.full(field.shape, cam.dark_rate * exptime)
    hot = rng.random(field.shape) < cam.hot_fraction
    dark[hot] = rng.uniform(20.0, 400.0, hot.sum()) * exptime
    electrons = rng.poisson(np.clip(expected + dark, 0, None)).astype(np.float64)
    electrons += rng.normal(0.0, cam.read_noise, field.shape)
    cr = (_cosmic_rays(field.shape, cam.cosmic_rays, rng) if cam.cosmic_rays
          else np.zeros(field.shape))
    electrons += cr
    adu = np.clip(np.round(electrons / cam.gain + cam.pedestal), 0,
                  cam.adc_max).astype(np.uint16)
    header = _raw_header(field, exptime, filter_name, date, cam)
    ccd = CCDData(adu, unit="adu", wcs=field.wcs, meta=header)
    return ccd, {"field": field, "filter": filt, "expected": expected, "sky": level,
                 "sky_image": sky_image, "exptime": float(exptime), "fractions": fractions,
                 "gain": cam.gain, "read_noise": cam.read_noise, "pedestal": cam.pedestal,
                 "adc_max": cam.adc_max, "hot": hot, "cosmic_rays": cr > 0,
                 "saturated": _saturated_stars(field, expected, cam)}
