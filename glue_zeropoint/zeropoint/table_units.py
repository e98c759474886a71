"""Units of the per-star table written as ``stars.ecsv`` (docs/architecture.md section 3).

The measurement works on images in electrons (:func:`~glue_zeropoint.photometry.prepare_image`
converts ADU with the gain, and says so), so fluxes, sky levels and their errors are
electrons (per pixel for sky and peak values, summed over the aperture for fluxes); positions
are pixels, sky coordinates degrees, magnitudes mag,
separations arcsec. Columns that already carry a unit (the catalog's) keep it.

>>> from astropy.table import Table
>>> t = with_star_units(Table({"x": [1.5], "flux": [1200.0], "mag_inst": [-7.7], "flags": [0]}))
>>> [str(t[name].unit) for name in ("x", "flux", "mag_inst")], t["flags"].unit is None
(['pix', 'electron', 'mag'], True)
"""

import astropy.units as u

__all__ = ["STAR_COLUMN_UNITS", "with_star_units"]

#: unit of each measured column of ``stars.ecsv`` (columns not listed have none)
STAR_COLUMN_UNITS = {
    **dict.fromkeys(("x", "y", "x_in", "y_in"), u.pix),
    **dict.fromkeys(("ra", "dec"), u.deg),
    **dict.fromkeys(("flux", "flux_err", "flux_aper", "flux_aper_err", "aperture_sum", "sky",
                     "sky_err", "sky_std", "peak"), u.electron),
    **dict.fromkeys(("n_pix", "n_sky"), u.pix),
    **dict.fromkeys(("mag_inst", "mag_inst_err", "zp_y", "y_err", "residual", "colour"), u.mag),
    **dict.fromkeys(("sep_arcsec", "sep2_arcsec"), u.arcsec),
}


def with_star_units(table):
    """Give ``table``'s measured columns their units (in place; returns the table)."""
    for name, unit in STAR_COLUMN_UNITS.items():
        if name in table.colnames and getattr(table[name], "unit", None) is None:
            table[name].unit = unit
    return table
