"""Simulated frames with a known WCS for the astrometry tests."""

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord

from glue_zeropoint.simulate import make_field, reference_catalog, simulate_image

WCS_PREFIXES = ("CTYPE", "CRVAL", "CRPIX", "CD1_", "CD2_", "PC1_", "PC2_", "CDELT", "CUNIT",
                "A_", "B_", "AP_", "BP_", "LONPOLE", "LATPOLE", "RADESYS", "EQUINOX", "WCSAXES",
                "MJDREF", "DATEREF", "WCSNAME")


def strip_wcs(header):
    """A copy of ``header`` without any WCS keyword."""
    h = header.copy()
    for key in list(h.keys()):
        if key.startswith(WCS_PREFIXES):
            del h[key]
    return h


def make_frame(shape=(1024, 1024), n_stars=300, seed=1, **field_kwargs):
    """(ccd, field, catalog) for a simulated frame; the CCDData still carries the true WCS."""
    field_kwargs.setdefault("mag_range", (10.0, 17.0))
    field = make_field(shape, n_stars=n_stars, seed=seed, **field_kwargs)
    ccd, _ = simulate_image(field=field, seed=seed)
    cat = reference_catalog(field, style="normalised", seed=seed)
    return ccd, field, cat


def without_wcs(ccd):
    ccd = ccd.copy()
    ccd.wcs = None
    ccd.meta = strip_wcs(ccd.meta)
    return ccd


def offset_center(field, arcmin, pa_deg=35.0):
    c0 = SkyCoord(*field.wcs.wcs.crval, unit="deg")
    return c0.directional_offset_by(pa_deg * u.deg, arcmin * u.arcmin)


def rms_vs_truth(wcs, field):
    """rms (pixels) of the WCS's pixel positions of the true star positions on the image."""
    s = field.stars
    ny, nx = field.shape
    on = (s["x"] > 0) & (s["x"] < nx - 1) & (s["y"] > 0) & (s["y"] < ny - 1)
    px, py = wcs.world_to_pixel(SkyCoord(s["ra"][on], s["dec"][on], unit="deg"))
    return float(np.sqrt(np.mean((px - s["x"][on]) ** 2 + (py - s["y"][on]) ** 2)))
