"""Reference catalogs for simulated fields, in the column style VizieR returns."""

import numpy as np
from astropy import units as u
from astropy.table import Table

__all__ = ["reference_catalog", "catalog_errors"]


def catalog_errors(mags, floor=0.01, m0=15.5):
    """Typical survey errors: a floor plus photon noise that grows to faint magnitudes."""
    return np.minimum(np.hypot(floor, 0.02 * 10 ** (0.4 * (np.asarray(mags) - m0))), 0.3)


def reference_catalog(field, bands=("B", "V"), seed=0, *, floor=0.01, style="apass",
                      missing_fraction=0.0, extra_stars=50, faint_limit=None):
    """A catalog of the field's stars with realistic errors and VizieR-style columns.

    Catalog magnitudes are the truth plus Gaussian noise of the stated ``e_<band>mag`` error.
    ``style='apass'`` writes ``RAJ2000``, ``DEJ2000``, ``<band>mag``, ``e_<band>mag`` and
    ``B-V``; ``style='gaia'`` writes ``RA_ICRS``, ``DE_ICRS``, ``pmRA``, ``pmDE``, ``Epoch``
    and ``<band>mag``/``e_<band>mag``; ``style='normalised'`` writes the normalised columns
    (``ra``, ``dec``, ``mag_<band>``, ``err_<band>``...). Positions are at the field's catalog
    epoch. ``extra_stars`` catalog stars are added around (outside) the image, and a fraction
    ``missing_fraction`` of magnitudes is left empty (masked). Known variables are flagged
    ``VarFlag='VARIABLE'`` (gaia style) or ``variable`` (normalised).
    """
    rng = np.random.default_rng([seed, 11])
    s = field.stars
    ra = np.array(s["ra_cat"])
    dec = np.array(s["dec_cat"])
    if faint_limit is not None:
        keep = np.array(s["mag_V"]) <= faint_limit
    else:
        keep = np.ones(len(s), bool)
    ra, dec = ra[keep], dec[keep]
    mags = {b: np.array(s[f"mag_{b}"])[keep] for b in bands}
    variable = np.array(s["variable"])[keep]
    pmra = np.array(s["pmra"])[keep]
    pmdec = np.array(s["pmdec"])[keep]
    if extra_stars:
        # stars just outside the image, for footprint and margin tests
        c = field.wcs.wcs.crval
        half = 0.6 * max(field.shape) * field.pixel_area_arcsec2 ** 0.5 / 3600.0
        ang = rng.uniform(0, 2 * np.pi, extra_stars)
        rad = rng.uniform(half * 1.05, half * 1.4, extra_stars)
        ra = np.concatenate([ra, c[0] + rad * np.cos(ang) / np.cos(np.deg2rad(c[1]))])
        dec = np.concatenate([dec, c[1] + rad * np.sin(ang)])
        v = rng.uniform(11, 17, extra_stars)
        bv = rng.uniform(0, 1.5, extra_stars)
        extra = {"V": v, "B": v + bv, "R": v - 0.55 * bv, "I": v - 1.1 * bv,
                 "g": v + 0.6 * bv - 0.12, "r": v - 0.46 * bv + 0.11, "i": v - 0.9 * bv + 0.25,
                 "z": v - 1.15 * bv + 0.35}
        mags = {b: np.concatenate([mags[b], extra[b]]) for b in bands}
        variable = np.concatenate([variable, np.zeros(extra_stars, bool)])
        pmra = np.concatenate([pmra, np.zeros(extra_stars)])
        pmdec = np.concatenate([pmdec, np.zeros(extra_stars)])
    n = len(ra)
    errs = {b: catalog_errors(mags[b], floor) for b in bands}
    obs = {b: mags[b] + rng.normal(0.0, errs[b]) for b in bands}
    t = Table(meta={"description": "simulated reference catalog", "epoch": field.catalog_epoch})
    if style == "normalised":
        t["id"] = [f"SIM{i:06d}" for i in range(n)]
        t["ra"] = ra
        t["dec"] = dec
        t["pmra"] = pmra
        t["pmdec"] = pmdec
        t["ref_epoch"] = np.full(n, field.catalog_epoch)
        for b in bands:
            t[f"mag_{b}"] = obs[b]
            t[f"err_{b}"] = errs[b]
        t["variable"] = variable
        t["nonstellar"] = np.zeros(n, bool)
        t["otype"] = ["*"] * n
        return t
    if style == "apass":
        t["recno"] = np.arange(1, n + 1)
        t["RAJ2000"] = ra * u.deg
        t["DEJ2000"] = dec * u.deg
    elif style == "gaia":
        t["Source"] = rng.integers(10 ** 17, 10 ** 18, n)
        t["RA_ICRS"] = ra * u.deg
        t["DE_ICRS"] = dec * u.deg
        t["pmRA"] = pmra * u.mas / u.yr
        t["pmDE"] = pmdec * u.mas / u.yr
        t["Epoch"] = np.full(n, field.catalog_epoch)
        t["VarFlag"] = np.where(variable, "VARIABLE", "NOT_AVAILABLE")
    else:
        raise ValueError(f"style must be 'apass', 'gaia' or 'normalised', not {style!r}")
    for b in bands:
        m = np.ma.masked_array(obs[b], rng.random(n) < missing_fraction)
        t[f"{b}mag"] = m * u.mag
        t[f"e_{b}mag"] = np.ma.masked_array(errs[b], m.mask) * u.mag
    if style == "apass" and "B" in bands and "V" in bands:
        t["B-V"] = (t["Bmag"] - t["Vmag"])
        t["e_B-V"] = np.hypot(t["e_Bmag"], t["e_Vmag"])
    return t
