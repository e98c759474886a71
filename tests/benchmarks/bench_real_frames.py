"""Real frames side by side: our photometry against a plain photutils reduction (issue 10).

    python tests/benchmarks/bench_real_frames.py [--sa112 DIR | --download] [--sa112-max N]
                                                 [--markdown FILE]

Every real frame we have is reduced twice, on the same pixels:

- **ours**: :func:`glue_zeropoint.photometry.find_stars` then
  :func:`glue_zeropoint.photometry.measure_stars` (public API, defaults: FWHM, apertures,
  sky and aperture correction chosen by the package), ``mag_inst``;
- **photutils**: ``Background2D`` (sigma-clipped median mesh) for the detection threshold
  (its median rms, with the quantisation noise 1/sqrt(12) ADU added in quadrature so that the
  8-bit SA112 frames, whose clipped sky rms is ~0, do not detect every noise pixel),
  the FWHM from ``photutils.psf.fit_fwhm`` on the brightest isolated sources of a first
  ``DAOStarFinder`` pass, ``DAOStarFinder`` at 5 sigma with that FWHM, a
  ``CircularAperture`` of radius max(1.75 FWHM, 1.5 px), a ``CircularAnnulus`` from
  max(3 FWHM, r + 2) to that + max(2 FWHM, 5) px whose 3-sigma-clipped median
  (``ApertureStats``) is the local sky; ``m = -2.5 log10(gain * flux / exptime)`` with the gain
  ours used, so both are on the same scale (ours is a total-flux magnitude after its
  aperture correction, photutils' an aperture magnitude: the median offset shows the
  correction, the scatter the disagreement).

Frames (``/work/shared/data/raw``, see its MANIFEST): the SAAO 1.0 m raw frame (overscan
subtracted and trimmed with ccdproc, GAIN 1.9 from its header; for the photutils chain also
cleaned of cosmic rays with ``ccdproc.cosmicray_lacosmic`` (GAIN 1.9, RDNOISE 5.0 from the
header), as the field does with a raw frame: without it DAOStarFinder's 5-sigma pass finds
the frame's cosmic rays, FWHM ~0.8 px, while its stars are ~8 px wide), the YSTAR R frame (calibrated,
elongated stars, a satellite streak), the DECam z cutout (its inverse-variance weight map as
the uncertainty, its DQ mask as the mask, EXPTIME from the primary header), the real
PANOPTES DSLR cutout of tests/data (a raw colour mosaic: both chains on its G channel) and,
when available, every light frame of the real SA112 night shipped in ``reducer==0.9.4``
(``reducer/data/mini_versions.tbz2``; 8-bit pixels, overscan subtracted and trimmed with
ccdproc). ``--sa112 DIR`` points at the extracted folder, the wheel, the .tbz2, or a folder
holding any of them; ``--download`` fetches the wheel with ``pip download --no-deps`` into
the cache folder; otherwise the cache folder is tried and the night skipped with a message.

Printed per frame (a markdown table): detections (ours, photutils), FWHM (ours,
photutils; "(guess)" when too few sources could be fitted and DAOFIND's customary 3 px was
used), stars in common (matched within 1 px), the median of ``m_ours - m_photutils``
and the robust scatter (MAD-std) of that difference over all common stars and in bins of
magnitude below the brightest common star (0-1, 1-2, 2-3, 3-4, > 4 mag; n in brackets).
"""

import argparse
import math
import re
import subprocess
import sys
import tarfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.stats import SigmaClip, mad_std
from scipy.spatial import cKDTree

DATA = Path("/work/shared/data/raw")
CACHE = Path.home() / ".cache" / "glue-zeropoint-bench" / "sa112"
BINS = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 99)]


# ----------------------------------------------------------------------------- frames
def saao_frame():
    import ccdproc

    path = DATA / "saao1m_raw_a8280271.fits"
    ccd = CCDData.read(path, unit="adu")
    biassec = ccd.header["BIASSEC"].replace(" ", "")
    trimsec = ccd.header["TRIMSEC"].replace(" ", "")
    ccd = ccdproc.subtract_overscan(ccd, fits_section=biassec, overscan_axis=1, median=True)
    ccd = ccdproc.trim_image(ccd, fits_section=trimsec)
    ccd.meta["FILENAME"] = path.name
    return "saao1m raw (overscan, trim)", ccd


def ystar_frame():
    path = DATA / "ystar-saao" / "ystar_saao_R_long.fits"
    with fits.open(path) as hl:
        data = hl[0].data.astype(np.float64)
        header = hl[0].header.copy()
    header["FILENAME"] = path.name
    return "ystar_saao_R_long", CCDData(data, unit="adu", meta=header)


def decam_frame():
    d = DATA / "decam-legacypipe"
    stem = "c4d_170316_062107_{}_z_ls9.N2.fits"
    with fits.open(d / stem.format("ooi")) as hl:
        primary = hl[0].header
        data = hl[1].data.astype(np.float64)
        header = hl[1].header.copy()
    weight = fits.getdata(d / stem.format("oow")).astype(np.float64)
    dq = fits.getdata(d / stem.format("ood"))
    for key in ("EXPTIME", "FILTER", "DATE-OBS", "AIRMASS"):
        if key in primary and key not in header:
            header[key] = primary[key]
    header["FILENAME"] = stem.format("ooi")
    bad = (dq != 0) | ~(weight > 0)
    w = np.where(weight > 0, weight, np.nan)
    ccd = CCDData(data, unit="adu", meta=header, mask=bad,
                  uncertainty=StdDevUncertainty(1.0 / np.sqrt(w)))
    return "decam z cutout (weight, DQ)", ccd


def panoptes_frame():
    """The real PANOPTES DSLR cutout (tests/data, MIT): a raw colour mosaic, both chains on
    its G channel (:func:`glue_zeropoint.calibration.cfa.extract_channel`: each 2x2 cell one
    pixel, the two greens summed; the pattern checked against the sky)."""
    import gzip

    from astropy.wcs import WCS

    from glue_zeropoint.calibration.cfa import extract_channel

    path = Path(__file__).parents[1] / "data" / "raw" / "panoptes" / \
        "panoptes_solved_cutout.fits.gz"
    with gzip.open(path) as fh, fits.open(fh) as hl:
        data = hl[0].data.astype(np.float64)
        header = hl[0].header.copy()
    header["FILENAME"] = path.name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ccd = CCDData(data, unit="adu", meta=header, wcs=WCS(header))
    return "panoptes DSLR raw, G channel (cutout)", extract_channel(ccd, "G")


def find_sa112(arg=None, download=False):
    """The folder of the SA112 night's FITS files, or (None, reason)."""
    candidates = [Path(arg)] if arg else []
    candidates.append(CACHE)
    for c in candidates:
        if not c.exists():
            continue
        for sub in [c, c / "mini_versions"]:
            if sub.is_dir() and list(sub.glob("SA112*.fit*")):
                return sub, ""
        tbz = None
        whl = None
        if c.is_file():
            tbz = c if c.name.endswith(".tbz2") else None
            whl = c if c.suffix == ".whl" else None
        else:
            tbz = next(iter(c.rglob("mini_versions.tbz2")), None)
            whl = next(iter(c.rglob("reducer-0.9.4*.whl")), None)
        if tbz is None and whl is not None:
            CACHE.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(whl) as z:
                z.extract("reducer/data/mini_versions.tbz2", CACHE)
            tbz = CACHE / "reducer" / "data" / "mini_versions.tbz2"
        if tbz is not None:
            CACHE.mkdir(parents=True, exist_ok=True)
            with tarfile.open(tbz, "r:bz2") as tf:
                tf.extractall(CACHE, filter="data")
            return find_sa112(str(CACHE))
    if download:
        CACHE.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                            "reducer==0.9.4", "-d", str(CACHE)], capture_output=True, text=True)
        if r.returncode == 0:
            return find_sa112(str(CACHE))
        return None, f"pip download failed: {r.stderr.strip().splitlines()[-1:]}"
    return None, ("SA112 night not found (pass --sa112 DIR with the extracted mini_versions, "
                  "the reducer-0.9.4 wheel or its .tbz2, or --download)")


def sa112_frames(folder, max_frames=None):
    import ccdproc

    paths = sorted(folder.glob("SA112*.fit*"))
    if max_frames:
        paths = paths[:max_frames]
    for path in paths:
        ccd = CCDData.read(path, unit="adu")
        ccd = CCDData(ccd.data.astype(np.float64), unit="adu", meta=ccd.header, wcs=None)
        if "BIASSEC" in ccd.header:
            ccd = ccdproc.subtract_overscan(ccd, fits_section=ccd.header["BIASSEC"].replace(
                " ", ""), overscan_axis=1, median=True)
        if "TRIMSEC" in ccd.header:
            ccd = ccdproc.trim_image(ccd, fits_section=ccd.header["TRIMSEC"].replace(" ", ""))
        ccd.meta["FILENAME"] = path.name
        yield f"SA112 {path.stem} ({ccd.header.get('FILTER', '?')})", ccd


# ----------------------------------------------------------------------------- reductions
def ours(ccd):
    from glue_zeropoint.photometry import find_stars, measure_stars

    stars = find_stars(ccd)
    m = measure_stars(ccd, stars)
    return {"x": np.asarray(m["x"], float), "y": np.asarray(m["y"], float),
            "mag": np.asarray(m["mag_inst"], float), "n_det": len(stars),
            "fwhm": float(m.meta.get("fwhm", stars.meta.get("fwhm", math.nan))),
            "gain": float(m.meta.get("gain") or 1.0),
            "exptime": float(m.meta.get("exptime") or 1.0),
            "ap_corr": m.meta.get("aperture_correction")}


def _finder_xy(tab):
    xn = "x_centroid" if "x_centroid" in tab.colnames else "xcentroid"
    yn = "y_centroid" if "y_centroid" in tab.colnames else "ycentroid"
    return np.asarray(tab[xn], float), np.asarray(tab[yn], float)


def lacosmic(ccd):
    """ccdproc's L.A.Cosmic (astroscrappy) on a raw frame: the cleaned CCDData, CRs masked.

    The header's GAIN (e-/ADU) and RDNOISE (e-) drive its noise model; the defaults of
    ``ccdproc.cosmicray_lacosmic`` otherwise (sigclip 4.5, objlim 5).
    """
    import ccdproc

    gain = float(ccd.header.get("GAIN", 1.0) or 1.0)
    rdnoise = float(ccd.header.get("RDNOISE", 5.0) or 5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ccdproc.cosmicray_lacosmic(ccd, gain=gain, readnoise=rdnoise, gain_apply=False)


def photutils_reduction(ccd, gain, exptime, clean_cosmics=False):
    """A plain photutils reduction (see the module docstring)."""
    from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture
    from photutils.background import Background2D, MedianBackground
    from photutils.detection import DAOStarFinder
    from photutils.psf import fit_fwhm

    n_cr = 0
    if clean_cosmics:
        cleaned = lacosmic(ccd)
        n_cr = int(np.count_nonzero(cleaned.mask)) - (
            0 if ccd.mask is None else int(np.count_nonzero(ccd.mask)))
        ccd = cleaned
    data = np.asarray(ccd.data, float)
    mask = np.zeros(data.shape, bool) if ccd.mask is None else np.asarray(ccd.mask, bool)
    mask |= ~np.isfinite(data)
    box = int(max(16, min(64, min(data.shape) // 4)))
    bkg = Background2D(data, box, filter_size=3, mask=mask, sigma_clip=SigmaClip(3.0),
                       bkg_estimator=MedianBackground())
    sub = data - bkg.background
    # quantisation floor: 8-bit frames (SA112) have a sky so flat that the clipped rms is ~0
    rms = float(np.hypot(np.median(bkg.background_rms), 1 / np.sqrt(12)))
    # FWHM: brightest isolated sources of a first pass
    first = DAOStarFinder(threshold=10 * rms, fwhm=3.0)(sub, mask=mask)
    fwhm = math.nan
    if first is not None and len(first) >= 3:
        x, y = _finder_xy(first)
        peak = np.asarray(first["peak"], float)
        d, _ = cKDTree(np.c_[x, y]).query(np.c_[x, y], k=2)
        ny, nx = data.shape
        ok = (d[:, 1] > 12) & (x > 8) & (x < nx - 9) & (y > 8) & (y < ny - 9)
        ok &= peak < 0.7 * np.nanmax(sub)  # skip the flat-topped brightest
        idx = np.argsort(-peak[ok])[:30]
        xy = np.c_[x[ok][idx], y[ok][idx]]
        if len(xy) >= 3:
            guess = 3.0
            for _ in range(2):
                shape = int(2 * math.ceil(1.5 * guess) + 1)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    f = fit_fwhm(sub, xypos=xy, fwhm=guess, fit_shape=max(shape, 5), mask=mask)
                f = np.asarray(f, float)
                f = f[np.isfinite(f) & (f > 0.2) & (f < 30)]
                if not f.size:
                    break
                guess = float(np.median(f))
            fwhm = guess
    fallback = not np.isfinite(fwhm)
    if fallback:
        fwhm = 3.0  # too few sources to fit: DAOFIND's customary guess
    found = DAOStarFinder(threshold=5 * rms, fwhm=fwhm)(sub, mask=mask)
    if found is None or len(found) == 0:
        return {"x": np.array([]), "y": np.array([]), "mag": np.array([]), "n_det": 0,
                "fwhm": fwhm, "fwhm_guess": fallback, "n_cr": n_cr}
    x, y = _finder_xy(found)
    r = max(1.75 * fwhm, 1.5)
    r_in = max(3 * fwhm, r + 2)
    r_out = r_in + max(2 * fwhm, 5)
    pos = np.c_[x, y]
    ap = CircularAperture(pos, r)
    ann = CircularAnnulus(pos, r_in, r_out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sky = ApertureStats(data, ann, mask=mask, sigma_clip=SigmaClip(3.0)).median
        tot = ApertureStats(data, ap, mask=mask).sum
    flux = np.asarray(tot, float) - np.asarray(sky, float) * ap.area
    with np.errstate(invalid="ignore", divide="ignore"):
        mag = -2.5 * np.log10(gain * flux / exptime)
    return {"x": x, "y": y, "mag": mag, "n_det": len(found), "fwhm": fwhm, "radius": r,
            "fwhm_guess": fallback, "n_cr": n_cr}


def compare(a, b, tol=1.0):
    """Stars of ``a`` and ``b`` within ``tol`` px (nearest, both finite magnitudes)."""
    if not len(a["x"]) or not len(b["x"]):
        return np.array([]), np.array([])
    d, j = cKDTree(np.c_[b["x"], b["y"]]).query(np.c_[a["x"], a["y"]])
    ok = (d < tol) & np.isfinite(a["mag"]) & np.isfinite(b["mag"][np.minimum(j, len(b["x"]) - 1)])
    return a["mag"][ok], b["mag"][j[ok]]


def frame_row(name, ccd, clean_cosmics=False):
    t0 = time.perf_counter()
    row = {"frame": name}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            o = ours(ccd)
    except Exception as err:  # noqa: BLE001 - a benchmark reports, it does not stop
        o = None
        row["error"] = f"ours: {type(err).__name__}: {str(err)[:100]}"
    gain = o["gain"] if o else 1.0
    exptime = o["exptime"] if o else float(ccd.header.get("EXPTIME", 1.0) or 1.0)
    p = photutils_reduction(ccd, gain, exptime, clean_cosmics=clean_cosmics)
    if clean_cosmics:
        print(f"{name}: L.A.Cosmic masked {p['n_cr']} pixels for the photutils chain",
              file=sys.stderr)
    row.update(n_ours=o["n_det"] if o else 0, n_phot=p["n_det"],
               fwhm_ours=o["fwhm"] if o else math.nan, fwhm_phot=p["fwhm"],
               fwhm_guess=p["fwhm_guess"])
    mo, mp = compare(o, p) if o else (np.array([]), np.array([]))
    row["common"] = len(mo)
    diff = mo - mp
    row["offset"] = float(np.median(diff)) if diff.size else math.nan
    row["scatter"] = float(mad_std(diff)) if diff.size > 2 else math.nan
    rel = mp - (mp.min() if mp.size else 0)
    row["bins"] = []
    for lo, hi in BINS:
        k = (rel >= lo) & (rel < hi)
        row["bins"].append((float(mad_std(diff[k])) if k.sum() > 2 else math.nan, int(k.sum())))
    row["seconds"] = time.perf_counter() - t0
    return row


def fmt(v, f="{:.3f}"):
    return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f.format(v)


def table(rows):
    head = ("| frame | det ours | det phot | FWHM ours | FWHM phot | common | median "
            "ours−phot (mag) | MAD-std all | " + " | ".join(
                f"MAD-std Δm {lo}-{hi}" if hi < 99 else f"MAD-std Δm >{lo}" for lo, hi in BINS)
            + " |")
    lines = [head, "|" + "---|" * (8 + len(BINS))]
    for r in rows:
        fphot = fmt(r["fwhm_phot"], "{:.2f}") + (" (guess)" if r.get("fwhm_guess") else "")
        cells = [r["frame"], str(r["n_ours"]), str(r["n_phot"]), fmt(r["fwhm_ours"], "{:.2f}"),
                 fphot, str(r["common"]), fmt(r["offset"]),
                 fmt(r["scatter"])]
        cells += [f"{fmt(s)} ({n})" for s, n in r["bins"]]
        lines.append("| " + " | ".join(cells) + " |")
    # one note per distinct error (the file name taken out), naming the frames it hit
    groups = {}
    for r in rows:
        if r.get("error"):
            text = re.sub(r"\S+\.fits?: ", "", r["error"])
            groups.setdefault(text, []).append(r["frame"])
    notes = [f"- {', '.join(f) if len(f) <= 3 else f'{len(f)} frames ({f[0]} ...)'}: {t}"
             for t, f in groups.items()]
    return "\n".join(lines + ([""] + notes if notes else []))


def summary_row(name, rows):
    """Median over a set of frames (e.g. the SA112 night)."""
    keys = ["n_ours", "n_phot", "fwhm_ours", "fwhm_phot", "common", "offset", "scatter"]
    out = {"frame": name}
    for k in keys:
        v = np.array([r[k] for r in rows], float)
        out[k] = float(np.nanmedian(v)) if np.isfinite(v).any() else math.nan
    for k in ("n_ours", "n_phot", "common"):
        out[k] = int(round(out[k])) if np.isfinite(out[k]) else 0
    out["fwhm_guess"] = sum(bool(r.get("fwhm_guess")) for r in rows) > len(rows) / 2
    out["bins"] = []
    for i in range(len(BINS)):
        s = np.array([r["bins"][i][0] for r in rows], float)
        n = sum(r["bins"][i][1] for r in rows)
        out["bins"].append((float(np.nanmedian(s)) if np.isfinite(s).any() else math.nan, n))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sa112", help="folder, wheel or .tbz2 of the SA112 night (reducer 0.9.4)")
    p.add_argument("--download", action="store_true",
                   help="fetch reducer==0.9.4 with pip download when not found")
    p.add_argument("--sa112-max", type=int, default=None, help="only the first N lights")
    p.add_argument("--no-sa112", action="store_true")
    p.add_argument("--markdown", help="also write the table to this file")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    rows = []
    # the one raw frame with cosmic rays and no mask: the plain chain cleans it first
    for make, raw in ((saao_frame, True), (ystar_frame, False), (decam_frame, False),
                      (panoptes_frame, False)):
        name, ccd = make()
        rows.append(frame_row(name, ccd, clean_cosmics=raw))
        print(f"{name}: {rows[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
    sa_rows = []
    if not args.no_sa112:
        folder, why = find_sa112(args.sa112, args.download)
        if folder is None:
            print(f"skipping the SA112 night: {why}", file=sys.stderr)
        else:
            for name, ccd in sa112_frames(folder, args.sa112_max):
                sa_rows.append(frame_row(name, ccd))
                print(f"{name}: {sa_rows[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
    out = table(rows + sa_rows + ([summary_row(f"SA112 night: median of {len(sa_rows)} "
                                               "frames", sa_rows)] if sa_rows else []))
    print(out)
    print(f"\n{time.perf_counter() - t0:.0f} s in all")
    if args.markdown:
        Path(args.markdown).write_text(out + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
