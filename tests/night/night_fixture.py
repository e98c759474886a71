"""A night's frame and detection tables from the star-level simulator, fitted by the night's
own code (no pixels: fast), written as the ``night`` command writes them."""

import numpy as np
from astropy.table import Table

from glue_zeropoint.night.run import FRAME_COLUMNS, _fit_night
from glue_zeropoint.simulate.extinction import simulate_photometry_night


def night_tables(seed=2, n_frames=12):
    frames, det, s = night_inputs(seed, n_frames)
    return _fit_night(frames, det, [], None), s


def night_inputs(seed=2, n_frames=12):
    """The frame and detection tables, not yet fitted, and the simulation."""
    s = simulate_photometry_night(seed, n_frames=n_frames)
    fr, d = s.frames, s.detections
    n = len(fr["band"])
    rows = []
    for j in range(n):
        row = {c: np.nan for c in FRAME_COLUMNS}
        row.update({"frame": j, "file": f"frame{j:03d}.fit", "band": fr["band"][j],
                    "filter": fr["band"][j], "field": 0, "time": "",
                    "mjd": 60000.3 + fr["time"][j] / 24, "exptime": 30.0,
                    "airmass": fr["airmass"][j], "airmass_source": "sim", "status": "ok",
                    "reason": "", "flags": "", "color": "B-V", "color_ref": 0.6,
                    "n_matched": 50, "n_used": 45, "n_stars": 60, "used_in_fit": False,
                    "cloudy": False, "outlier": False, "sun_alt": -30.0, "moon_alt": -10 + j,
                    "moon_illum": 0.5, "fwhm": 3.0})
        m = d["frame"] == j
        y = d["mag_cat"][m] - d["mag_inst"][m]
        row["zp"] = float(np.median(y))
        row["zp_err"] = row["zp_err_total"] = 0.005
        rows.append(row)
    frames = Table(rows=[[r[c] for c in FRAME_COLUMNS] for r in rows], names=FRAME_COLUMNS)
    for c in ("file", "band", "filter", "time", "airmass_source", "status", "reason", "flags",
              "color"):
        frames[c] = np.asarray(frames[c]).astype(str)
    det = Table({"frame": d["frame"], "band": fr["band"][d["frame"]].astype(str),
                 "field": np.zeros(len(d["frame"]), int), "star_id_frame": d["star"],
                 "x": d["star"] * 10.0, "y": d["star"] * 5.0, "mag_inst": d["mag_inst"],
                 "mag_inst_err": d["mag_inst_err"], "ra": 10 + d["star"] * 1e-3,
                 "dec": 20 + d["star"] * 1e-3, "flags": np.zeros(len(d["frame"]), int),
                 "mag_cat": d["mag_cat"], "mag_cat_err": d["mag_cat_err"],
                 "colour_cat": d["colour"], "cat_id": d["star"].astype(str),
                 "mag_ap": np.full(len(d["frame"]), np.nan),
                 "mag_ap_err": np.full(len(d["frame"]), np.nan)})
    return frames, det, s
