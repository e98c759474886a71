"""Reference catalogs for simulated fields, in the column style VizieR returns."""

import numpy as np
from astropy import units as u
from astropy.table import Table

__all__ = ["reference_catalog", "catalog_errors"]


def catalog_errors(mags, floor=0.01, m0=15.5):
    """Typical survey errors: a floor plus photon noise that grows to faint magnitudes."""
    return np.minimum(np.hypot(floor, 0.02 * 10 ** (0.4 * (np.asarray(mags) - m0))), 0.3)


def reference_catalog(field, bands=("B", "V"), seed=0, *, floor=0.01, style="apass",
                      missing_fraction=0.0, extra_stars=50, faint_limit=None,
                      drop_fraction=0.0, spurious=0, flag_variables=1.0, merge_blends=False,
                      error_scale=1.0, truth_column=False):
    """A catalog of the field's stars with realistic errors and VizieR-style columns.

    Catalog magnitudes are the truth plus Gaussian noise of the stated ``e_<band>mag`` error.
    ``style='apass'`` writes ``RAJ2000``, ``DEJ2000``, ``<band>mag``, ``e_<band>mag`` and
    ``B-V``; ``style='gaia'`` writes ``RA_ICRS``, ``DE_ICRS``, ``pmRA``, ``pmDE``, ``Epoch``
    and ``<band>mag``/``e_<band>mag``; ``style='normalised'`` writes the normalised columns
    (``ra``, ``dec``, ``mag_<band>``, ``err_<band>``...). Positions are at the field's catalog
    epoch. ``extra_stars`` catalog stars are added around (outside) the image, and a fraction
    ``missing_fraction`` of magnitudes is left empty (masked). Known variables are flagged
    ``VarFlag='VARIABLE'`` (gaia style) or ``variable`` (normalised).

    Imperfect catalogs (each option off by default; they draw from their own random stream):

    ``drop_fraction``
        That fraction of the image's stars is missing from the catalog.
    ``spurious``
        That many entries inside the image where there is no star (V 12-17).
    ``flag_variables``
        Fraction of the variables the catalog knows about (the others are unflagged).
    ``merge_blends``
        A blended companion (``blend_of`` >= 0) is not listed; its light is in its primary's
        magnitudes (a catalog that did not resolve the pair).
    ``error_scale``
        Actual errors are this many times the stated ``e_`` errors (> 1: stated too small).
    ``truth_column``
        Add ``sim_star_id``: the field's ``star_id`` of each entry (-1 outside the image or
        spurious).
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
    sim_id = np.concatenate([np.array(s["star_id"])[keep], np.full(n - int(keep.sum()), -1)])
    if drop_fraction or spurious or flag_variables != 1.0 or merge_blends or error_scale != 1.0:
        rng2 = np.random.default_rng([seed, 13])
        if error_scale != 1.0:
            obs = {b: mags[b] + (obs[b] - mags[b]) * error_scale for b in bands}
        if flag_variables != 1.0:
            variable = variable & (rng2.random(n) < flag_variables)
        sel = np.ones(n, bool)
        if merge_blends and "blend_of" in s.colnames:
            parent_of = dict(zip(np.array(s["star_id"]), np.array(s["blend_of"]), strict=True))
            row_of = {int(i): k for k, i in enumerate(sim_id) if i >= 0}
            for k, sid in enumerate(sim_id):
                p = parent_of.get(int(sid), -1) if sid >= 0 else -1
                if p >= 0 and p in row_of:
                    j = row_of[p]
                    for b in bands:
                        both = -2.5 * np.log10(10 ** (-0.4 * mags[b][j])
                                               + 10 ** (-0.4 * mags[b][k]))
                        obs[b][j] += both - mags[b][j]
                    sel[k] = False
        if drop_fraction:
            sel &= ~((sim_id >= 0) & (rng2.random(n) < drop_fraction))
        ra, dec, sim_id = ra[sel], dec[sel], sim_id[sel]
        variable, pmra, pmdec = variable[sel], pmra[sel], pmdec[sel]
        obs = {b: obs[b][sel] for b in bands}
        errs = {b: errs[b][sel] for b in bands}
        if spurious:
            ny, nx = field.shape
            sp = field.wcs.pixel_to_world(rng2.uniform(5, nx - 5, spurious),
                                          rng2.uniform(5, ny - 5, spurious))
            v = rng2.uniform(12, 17, spurious)
            bv = rng2.uniform(0, 1.5, spurious)
            fake = {"V": v, "B": v + bv, "R": v - 0.55 * bv, "I": v - 1.1 * bv,
                    "g": v + 0.6 * bv - 0.12, "r": v - 0.46 * bv + 0.11,
                    "i": v - 0.9 * bv + 0.25, "z": v - 1.15 * bv + 0.35}
            ra = np.concatenate([ra, sp.ra.deg])
            dec = np.concatenate([dec, sp.dec.deg])
            sim_id = np.concatenate([sim_id, np.full(spurious, -1)])
            variable = np.concatenate([variable, np.zeros(spurious, bool)])
            pmra = np.concatenate([pmra, np.zeros(spurious)])
            pmdec = np.concatenate([pmdec, np.zeros(spurious)])
            ferr = {b: catalog_errors(fake[b], floor) for b in bands}
            obs = {b: np.concatenate([obs[b], fake[b]]) for b in bands}
            errs = {b: np.concatenate([errs[b], ferr[b]]) for b in bands}
        n = len(ra)
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
        if truth_column:
            t["sim_star_id"] = sim_id
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
    if truth_column:
        t["sim_star_id"] = sim_id
    return t
