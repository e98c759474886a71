"""Standard magnitudes of every star measured in the night's clear frames.

For a detection of star s in frame j (band b, airmass X_j), with the band's line
``ZP0 - k X`` and colour term ``c(X) = c0 - k2 X`` (k2 = 0 unless fitted) about the band's
reference colour: ``m_std = m_inst + ZP0 - k X_j + c(X_j) (colour_s - colour_ref)``. The colour
is the catalog's for a catalog star, else the star's own standard colour from this night
(iterated: the colour changes the magnitudes it is made of), else the reference colour (no
colour correction; ``colour_source`` says which). Per star and band the detections are
averaged with weights ``1/(sigma_inst^2 + sigma_int^2)``; the error adds the line's error at
the mean airmass and the colour term's error times the colour offset.
"""

import numpy as np
from astropy import units as u
from astropy.table import Table

from .run_constants import DEFAULT_COLOURS

__all__ = ["standard_magnitudes"]


def standard_magnitudes(det, frames, fits, cterms, *, n_iter=3):
    """Table of stars (one row per night-wide star) with ``mag_<band>``, ``err_<band>``,
    ``n_<band>``, ``cat_<band>``; see the module docstring."""
    fr_index = {int(f): k for k, f in enumerate(np.asarray(frames["frame"]))}
    rowk = np.array([fr_index[int(f)] for f in det["frame"]])
    clear = np.asarray(frames["used_in_fit"], bool)[rowk]
    sel = clear & np.asarray(det["usable"], bool) & np.isfinite(np.asarray(det["mag_night"]))
    bands = [b for b in fits]
    stars = np.unique(np.asarray(det["star"])[sel])
    if len(stars) == 0:
        return None
    spos = {s: k for k, s in enumerate(stars.tolist())}
    ns = len(stars)
    sidx = np.array([spos.get(s, -1) for s in np.asarray(det["star"]).tolist()])
    ref, colour_name = _colour_refs(frames, bands)
    cat_col = _catalog_colours(det, sel, sidx, ns, bands)
    out = _star_positions(det, sel, sidx, stars)
    mags, errs, colours, sources = _iterate_magnitudes(
        det, frames, fits, cterms, rowk, sel, sidx, ns, bands, ref, colour_name, cat_col,
        n_iter)
    band_of = np.asarray(det["band"]).astype(str)
    for b in bands:
        m = sel & (band_of == b)
        out[f"mag_{b}"] = mags[b]
        out[f"err_{b}"] = errs[b]
        out[f"n_{b}"] = np.bincount(sidx[m], minlength=ns)
        out[f"cat_{b}"] = _catalog_magnitudes(det, m, sidx, ns)
        out[f"colour_{b}"] = colours[b]
        out[f"colour_source_{b}"] = sources[b]
        out[f"mag_{b}"].unit = u.mag
        out[f"err_{b}"].unit = u.mag
        out.meta[f"colour_{b}"] = colour_name[b]
        out.meta[f"colour_ref_{b}"] = ref[b]
    return out


def _colour_refs(frames, bands):
    """Per band: the reference colour (median of the frames') and the colour's name."""
    ref, colour_name = {}, {}
    for b in bands:
        fb = np.asarray(frames["band"]) == b
        refs = np.asarray(frames["color_ref"], float)[fb]
        ref[b] = float(np.nanmedian(refs)) if np.isfinite(refs).any() else np.nan
        names = [c for c in np.asarray(frames["color"])[fb] if c]
        colour_name[b] = names[0] if names else DEFAULT_COLOURS.get(b)
    return ref, colour_name


def _catalog_colours(det, sel, sidx, ns, bands):
    """Per band: each star's catalog colour (median over its selected detections; NaN)."""
    band_of = np.asarray(det["band"]).astype(str)
    cat_col = {}
    for b in bands:
        m = sel & (band_of == b) & np.isfinite(np.asarray(det["colour_cat"], float))
        col = np.full(ns, np.nan)
        if m.any():
            s = sidx[m]
            v = np.asarray(det["colour_cat"], float)[m]
            for k in np.unique(s):
                col[k] = np.median(v[s == k])
        cat_col[b] = col
    return cat_col


def _star_positions(det, sel, sidx, stars):
    """The output table's ``star``, ``field``, ``ra``, ``dec``, ``x``, ``y`` (medians over
    each star's selected detections)."""
    ns = len(stars)
    out = Table()
    out["star"] = stars
    out["field"] = np.zeros(ns, int)
    ra = np.full(ns, np.nan)
    dec = np.full(ns, np.nan)
    x = np.full(ns, np.nan)
    y = np.full(ns, np.nan)
    for k in range(ns):
        m = sel & (sidx == k)
        ra[k] = np.nanmedian(np.asarray(det["ra"], float)[m])
        dec[k] = np.nanmedian(np.asarray(det["dec"], float)[m])
        x[k] = np.nanmedian(np.asarray(det["x"], float)[m])
        y[k] = np.nanmedian(np.asarray(det["y"], float)[m])
        out["field"][k] = int(np.asarray(det["field"])[m][0])
    out["ra"] = ra * u.deg
    out["dec"] = dec * u.deg
    out["x"], out["y"] = x, y
    return out


def _iterate_magnitudes(det, frames, fits, cterms, rowk, sel, sidx, ns, bands, ref,
                        colour_name, cat_col, n_iter):
    """The standard magnitudes, iterated ``n_iter`` times (a star's own night colour
    changes the magnitudes it is made of). Returns per-band dicts of magnitudes, errors,
    colours and colour sources."""
    X = np.asarray(frames["airmass"], float)[rowk]
    band_of = np.asarray(det["band"]).astype(str)
    mags = {b: np.full(ns, np.nan) for b in bands}
    errs = {b: np.full(ns, np.nan) for b in bands}
    colours = {b: np.full(ns, np.nan) for b in bands}
    sources = {b: np.full(ns, "none", dtype="U8") for b in bands}
    for _ in range(n_iter):
        for b in bands:
            col, src = _colour_of_stars(cat_col[b], colour_name[b], mags)
            dc = np.where(np.isfinite(col), col - ref[b], 0.0) if np.isfinite(ref[b]) \
                else np.zeros(ns)
            m = sel & (band_of == b)
            mags[b], errs[b] = _band_magnitudes(det, m, sidx[m], X[m], ns, fits[b],
                                                cterms.get(b) or {}, dc)
            colours[b], sources[b] = col, src
    return mags, errs, colours, sources


def _colour_of_stars(cat_col, name, mags):
    """Each star's colour: the catalog's, else its own from this night's magnitudes."""
    col = cat_col.copy()
    src = np.where(np.isfinite(col), "catalog", "none").astype("U8")
    if name:
        a1, a2 = name.split("-")
        if a1 in mags and a2 in mags:
            own = mags[a1] - mags[a2]
            use = ~np.isfinite(col) & np.isfinite(own)
            col[use], src[use] = own[use], "night"
    return col, src


def _band_magnitudes(det, m, s, xm, ns, f, ct, dc):
    """One band's weighted mean standard magnitude per star and its error (the mean's, the
    line's at the mean airmass, the colour term's times the colour offset, and k's
    systematic bound times the distance from the line's pivot airmass)."""
    c0 = ct.get("c0") or 0.0
    c0e = ct.get("c0_err") or 0.0
    k2 = ct.get("k2") if ct.get("fitted") else 0.0
    c_x = c0 - k2 * xm
    mstd = (np.asarray(det["mag_night"], float)[m] + f.zp0 - f.k * xm + c_x * dc[s])
    w = 1.0 / (np.asarray(det["mag_night_err"], float)[m] ** 2 + f.sigma_int ** 2)
    sw = np.bincount(s, w, ns)
    mean = np.bincount(s, w * mstd, ns) / np.where(sw > 0, sw, 1)
    xbar = np.bincount(s, w * xm, ns) / np.where(sw > 0, sw, 1)
    # k's systematic bound (the common tail) moves the line about its pivot airmass
    k_sys = float(np.nan_to_num(getattr(f, "k_sys", 0.0)))
    err = np.sqrt(1.0 / np.where(sw > 0, sw, np.nan) + f.model_err(xbar) ** 2
                  + (c0e * dc) ** 2 + (k_sys * (xbar - f.pivot_airmass)) ** 2)
    return np.where(sw > 0, mean, np.nan), err


def _catalog_magnitudes(det, m, sidx, ns):
    """Each star's catalog magnitude (median over its detections ``m`` that have one)."""
    cat = np.full(ns, np.nan)
    mc = m & np.isfinite(np.asarray(det["mag_cat"], float))
    for k in np.unique(sidx[mc]):
        cat[k] = np.median(np.asarray(det["mag_cat"], float)[mc][sidx[mc] == k])
    return cat
