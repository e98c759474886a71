"""Helpers shared by the catalog tests (truth cuts, images with a WCS)."""

from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

CDS = Path(__file__).parent.parent / "data" / "cds"
RA0, DEC0 = 150.0, 20.0
RADIUS = 10 * u.arcmin


def in_cone(ra, dec, center, radius):
    """Boolean mask of positions within ``radius`` of ``center`` (truth for the stub's cut)."""
    return SkyCoord(ra, dec, unit="deg").separation(center) <= radius


def write_image(path, *, with_wcs=True, shape=(400, 600), scale_arcsec=1.5):
    """A small FITS image whose TAN WCS is centred on (150, 20)."""
    data = np.zeros(shape, dtype=np.float32)
    header = fits.Header()
    if with_wcs:
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        wcs.wcs.crval = [RA0, DEC0]
        wcs.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
        wcs.wcs.cdelt = [-scale_arcsec / 3600, scale_arcsec / 3600]
        header.update(wcs.to_header())
    header["EXPTIME"] = 30.0
    fits.PrimaryHDU(data, header=header).writeto(path, overwrite=True)
    return path
