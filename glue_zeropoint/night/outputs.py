"""The files a user keeps from a night, each written atomically.

* ``night.ecsv``: one row per light frame (time, airmass and its source, band, ZP and
  errors, the night's ZP, the residual from the extinction line, transparency, sky
  brightness, Sun/Moon, FWHM, stars used, flags), with units and the provenance in its meta;
* ``stars_standard.ecsv``: every star measured in the clear frames with its standard
  magnitude and error per band (with a catalog);
* ``night_detections.ecsv``: every detection (frame, night-wide star id, position, magnitudes),
  what links the frames to their stars in Glue;
* ``night.json``: the summary (verdict and reason, k, ZP0, colour terms, failed and cloudy
  frames, notes, provenance);
* ``extinction.png`` (ZP against airmass with each band's line), ``night_time.png`` (ZP and
  sky brightness against time, Moon and Sun altitude);
* ``regions/<frame>.reg``: ds9 circles of the stars of each frame (green: used in the
  standard magnitudes, red: not).
"""

from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.table import Table

from ..io import atomic_path, ensure_output_dir, to_jsonable, write_ecsv, write_json

__all__ = ["write_night", "FRAME_UNITS"]

FRAME_UNITS = {"exptime": u.s, "airmass": u.dimensionless_unscaled, "zp": u.mag,
               "zp_err": u.mag, "zp_err_total": u.mag, "zp_night": u.mag,
               "zp_night_err": u.mag, "k_residual": u.mag, "k_residual_err": u.mag,
               "ens_offset": u.mag, "ens_offset_err": u.mag, "sky_sb": u.mag / u.arcsec ** 2,
               "sky_sb_err": u.mag, "sun_alt": u.deg, "moon_alt": u.deg, "moon_sep": u.deg,
               "altitude": u.deg, "fwhm": u.pix, "aperture_radius": u.pix,
               "sky_rate": u.electron / u.s / u.arcsec ** 2, "mjd": u.d}

FRAME_DESCRIPTIONS = {
    "ellipticity": "1 - minor/major FWHM of the frame's measured PSF ('trailed' in flags when "
                   "it stands out from the night)",
    "time": "mid-exposure time (UTC, ISO)", "airmass": "airmass at mid-exposure",
    "zp": "frame's own catalog zero point (mag giving 1 e-/s at color_ref)",
    "zp_night": "frame's zero point from the night's ensemble tied to the catalog (or -ens_offset without one)",
    "k_residual": "zp_night minus the band's extinction line ZP0 - k X",
    "transparency": "10**(0.4 k_residual): fraction of the light the extinction line predicts",
    "rel_transparency": "flux relative to the band's best frame (ensemble of the night's stars)",
    "sky_sb": "sky surface brightness", "sky_inst": "-2.5 log10(sky rate) (no zero point; with the 'raw' flag the sky level "
                "still holds the bias pedestal)",
    "moon_illum": "illuminated fraction of the Moon", "flags": "cloudy, above_line, excluded, failed, raw (sky holds the bias), "
             "sky_per_pixel (no WCS: sky_rate is per pixel), flat_sky (the sky annuli are one value: "
             "light under the converter's floor is cut off), trailed (elongated stars), colour_G (a colour "
             "camera's frame measured in its G channel, each 2x2 cell one pixel), "
             "pattern_from_sky (its colour pattern taken from its sky), mosaic_<ox>_<oy> (the "
             "channel taken from the mosaic file: its pixel is 2 x + ox, 2 y + oy)",
}


def _clean_meta(meta):
    return to_jsonable(dict(meta))


def write_night(result, out, *, plots=True, regions=True):
    """Write the night's files into ``out``; returns the paths written (module docstring)."""
    out = ensure_output_dir(Path(out))
    paths = []
    summary = result.to_dict()
    frames = result.frames.copy(copy_data=True)
    for c, unit in FRAME_UNITS.items():
        if c in frames.colnames:
            frames[c].unit = unit
    for c, text in FRAME_DESCRIPTIONS.items():
        if c in frames.colnames:
            frames[c].description = text
    frames.meta = _clean_meta({"provenance": result.provenance, "verdict": result.verdict,
                               "verdict_reason": result.verdict_reason,
                               "bands": {b: f.to_dict() for b, f in result.fits.items()},
                               "notes": result.notes})
    paths.append(write_ecsv(frames, out / "night.ecsv"))
    if result.standards is not None:
        st = result.standards.copy(copy_data=True)
        st.meta = _clean_meta(dict(st.meta, provenance=result.provenance,
                                   model="m_std = m_ap - 2.5 log10(apcorr_band) + ZP0 - k X "
                                         "+ (c0 - k2 X) (colour - colour_ref)",
                                   bands={b: f.to_dict() for b, f in result.fits.items()},
                                   colour_terms=result.colour_terms))
        paths.append(write_ecsv(st, out / "stars_standard.ecsv"))
    if len(result.detections):
        det = Table(result.detections, copy=False)  # the night's largest table: no copy
        det.meta = _clean_meta({"provenance": result.provenance})
        for c in det.colnames:
            if det[c].dtype.kind == "O":
                det[c] = np.asarray(det[c]).astype(str)
        paths.append(write_ecsv(det, out / "night_detections.ecsv"))
    paths.append(write_json(out / "night.json", summary))
    if plots:
        paths.extend(_plots(result, out))
    if regions and len(result.detections):
        paths.extend(_regions(result, out / "regions"))
    return paths


def _plots(result, out):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fr = result.frames
    paths = []
    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot()
    colours = dict(zip(sorted(set(fr["band"])), ["tab:blue", "tab:green", "tab:red",
                                                 "tab:purple", "tab:orange", "tab:brown"],
                       strict=False))
    for band, f in result.fits.items():
        m = np.asarray(fr["band"]) == band
        x = np.asarray(fr["airmass"], float)[m]
        y = np.asarray(fr["zp_night"], float)[m]
        e = np.asarray(fr["zp_night_err"], float)[m]
        c = colours.get(band, "k")
        ax.errorbar(x[f.used], y[f.used], e[f.used], fmt="o", color=c,
                    label=f"{band}: k={f.k:.3f}±{f.k_err:.3f}"
                    + (f" (±{f.k_err_total:.3f} total)" if f.k_sys > 0 else ""))
        if (~f.used).any():
            ax.plot(x[~f.used], y[~f.used], "x", color=c, ms=9)
        xx = np.linspace(min(1.0, np.nanmin(x)), np.nanmax(x) * 1.05, 50)
        ax.plot(xx, f.model(xx), "-", color=c, lw=1)
    ax.set_xlabel("airmass")
    ax.set_ylabel("zero point (mag for 1 e-/s)")
    ax.set_title(f"extinction: {result.verdict} (x: cloudy/left out)")
    _legend(ax)
    paths.append(_save(fig, out / "extinction.png"))
    fig = Figure(figsize=(8, 7))
    ax1, ax2, ax3 = fig.subplots(3, 1, sharex=True)
    t = np.asarray(fr["mjd"], float)
    t0 = np.nanmin(t) if np.isfinite(t).any() else 0.0
    hours = (t - t0) * 24.0
    for band in sorted(set(fr["band"])):
        m = np.asarray(fr["band"]) == band
        c = colours.get(band, "k")
        name = band or "(no filter)"
        ax1.plot(hours[m], np.asarray(fr["zp_night"], float)[m], "o-", color=c, label=name)
        ax2.plot(hours[m], np.asarray(fr["sky_sb"], float)[m], "o-", color=c, label=name)
        if not np.isfinite(np.asarray(fr["sky_sb"], float)[m]).any():
            ax2.plot(hours[m], np.asarray(fr["sky_inst"], float)[m], "s--", color=c,
                     label=f"{name} (instrumental)")
    ax1.set_ylabel("ZP (night)")
    _legend(ax1)
    ax2.set_ylabel("sky (mag/arcsec²)")
    ax2.invert_yaxis()
    ax3.plot(hours, np.asarray(fr["moon_alt"], float), "k.", label="Moon altitude")
    ax3.plot(hours, np.asarray(fr["sun_alt"], float), "r.", label="Sun altitude")
    ax3.axhline(0, color="0.5", lw=0.5)
    ax3.set_ylabel("deg")
    ax3.set_xlabel(f"hours from MJD {t0:.4f}")
    _legend(ax3)
    paths.append(_save(fig, out / "night_time.png"))
    return paths


def _legend(ax):
    """A legend where something is labelled (a night without a fit has no line to name)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    return path


def _mosaic_offsets(flags):
    """``(ox, oy)`` of a frame flagged ``mosaic_<ox>_<oy>`` (a colour channel measured from
    its mosaic file), else None."""
    for f in str(flags).split(","):
        if f.startswith("mosaic_"):
            try:
                _m, ox, oy = f.split("_")
                return float(ox), float(oy)
            except ValueError:
                return None
    return None


def _regions(result, folder):
    from ..photometry.regions_io import write_apertures

    folder.mkdir(parents=True, exist_ok=True)
    det = result.detections
    fr = result.frames
    # each frame's rows, found once (a night has ~200,000 detections)
    frame = np.asarray(det["frame"])
    order = np.argsort(frame, kind="stable")
    keys, starts = np.unique(frame[order], return_index=True)
    rows_of = dict(zip(keys.tolist(), np.split(order, starts[1:]), strict=True))
    x, y, star = np.asarray(det["x"]), np.asarray(det["y"]), np.asarray(det["star"])
    usable = np.asarray(det["usable"], bool)
    paths = []
    for row in fr:
        k = rows_of.get(row["frame"])  # (a numpy scalar finds its Python key)
        if k is None or not k.size:
            continue
        stars = Table({"x": x[k], "y": y[k], "star_id": star[k]})
        stars.meta["aperture_radius"] = (float(row["aperture_radius"])
                                         if np.isfinite(row["aperture_radius"]) else 5.0)
        mosaic = _mosaic_offsets(row["flags"])
        if mosaic is not None:  # a colour channel measured from a mosaic file: its pixels
            stars["x"] = 2.0 * stars["x"] + mosaic[0]
            stars["y"] = 2.0 * stars["y"] + mosaic[1]
            stars.meta["aperture_radius"] *= 2.0
        used = usable[k] & bool(row["used_in_fit"])
        name = Path(str(row["file"])).stem + ".reg"
        paths.append(write_apertures(
            stars, folder / name, used=used, labels=[str(s) for s in star[k].tolist()],
            comments=[f"{row['file']}: {row['band']} X={row['airmass']:.3f} "
                      f"flags={row['flags'] or 'none'}; green: star of a clear frame"]))
    return paths
