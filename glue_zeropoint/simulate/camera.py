"""A CCD camera with known truth: gain, read noise, bias pattern, dark current, flat response."""

from dataclasses import dataclass

import numpy as np

__all__ = ["Camera", "DetectorMaps", "make_detector_maps"]


@dataclass
class Camera:
    """Detector properties of a simulated camera.

    Parameters
    ----------
    gain : float
        e-/ADU.
    read_noise : float
        e- rms per read.
    bias_level : float
        Mean bias in ADU.
    bias_column_rms : float
        rms of the fixed column pattern of the bias (ADU).
    bias_drift : float
        rms of a per-frame offset of the whole bias (ADU); only an overscan correction removes it.
    dark_rate : float
        Median dark current (e-/s/pixel).
    hot_fraction : float
        Fraction of hot pixels (dark current 2-40 e-/s).
    dead_fraction : float
        Fraction of dead pixels (response 0.02-0.2).
    vignetting : float
        Fractional illumination loss at the image corner.
    prnu : float
        Pixel-to-pixel response non-uniformity (rms).
    saturation_adu : int
        ADC limit (raw values are clipped there).
    overscan : int
        Number of overscan columns appended on the right (0 = none); BIASSEC/TRIMSEC are written.
    """

    gain: float = 1.4
    read_noise: float = 8.0
    bias_level: float = 1000.0
    bias_column_rms: float = 3.0
    bias_drift: float = 0.0
    dark_rate: float = 0.03
    hot_fraction: float = 5e-4
    dead_fraction: float = 2e-4
    vignetting: float = 0.2
    prnu: float = 0.01
    saturation_adu: int = 65535
    overscan: int = 0


@dataclass
class DetectorMaps:
    """The per-pixel truth of a detector: bias (ADU), dark rate (e-/s), flat response per filter."""

    bias: np.ndarray
    dark_rate: np.ndarray
    flats: dict
    hot: np.ndarray
    dead: np.ndarray


def make_detector_maps(camera, shape, filters, rng):
    """Draw the bias pattern, dark-current map and per-filter flat responses (median 1)."""
    ny, nx = shape
    cols = rng.normal(0.0, camera.bias_column_rms, nx)
    ramp = np.linspace(-1.0, 1.0, ny)[:, None] * 2.0
    bias = camera.bias_level + cols[None, :] + ramp
    dark = rng.gamma(4.0, camera.dark_rate / 4.0, shape)
    hot = rng.random(shape) < camera.hot_fraction
    dark[hot] = rng.uniform(2.0, 40.0, hot.sum())
    dead = rng.random(shape) < camera.dead_fraction
    yy, xx = np.mgrid[0:ny, 0:nx]
    r2 = ((xx - nx / 2.0) / (nx / 2.0)) ** 2 + ((yy - ny / 2.0) / (ny / 2.0)) ** 2
    pixel = 1.0 + rng.normal(0.0, camera.prnu, shape)
    flats = {}
    for i, name in enumerate(filters):
        vig = 1.0 - camera.vignetting * (1.0 + 0.1 * i) * r2 / 2.0
        resp = vig * pixel
        for _ in range(3):  # dust donuts, different per filter
            cx, cy = rng.uniform(0.1, 0.9) * nx, rng.uniform(0.1, 0.9) * ny
            rad = rng.uniform(0.02, 0.05) * min(nx, ny)
            d = np.hypot(xx - cx, yy - cy)
            resp *= 1.0 - 0.03 * np.exp(-0.5 * ((d - rad) / (0.2 * rad)) ** 2)
        resp[dead] = rng.uniform(0.02, 0.2, dead.sum())
        flats[name] = resp / np.median(resp)
    return DetectorMaps(bias=bias, dark_rate=dark, flats=flats, hot=hot, dead=dead)
