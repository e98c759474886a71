"""``glue-zeropoint night RAW_DIR [--catalog SPEC] --out OUT``: the whole night.

Calibrates the raw folder, measures every light frame (one catalog query per field, one
plate solve per pointing reused for its dithers), prints one line per frame of what
happened (a frame that fails is reported and the night goes on), fits the night's
extinction and colour model per band, names cloudy frames and gives the verdict; writes
``night.ecsv``, ``stars_standard.ecsv``, ``night_detections.ecsv``, ``night.json``,
``extinction.png``, ``night_time.png`` and ``regions/<frame>.reg`` into OUT (calibrated
products under ``OUT/calibrated``). Without ``--catalog``: relative transparency and
extinction from the night's own stars. Exit code 0 with a verdict, 2 when nothing could be
measured, 1 when a file cannot be written.
"""

from pathlib import Path

import numpy as np

from ..progress import TerminalProgress

__all__ = ["add_parser", "run", "summary"]


def add_parser(sub):
    p = sub.add_parser("night", help="every light of a night: extinction, zero points, sky, "
                                     "verdict",
                       description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("raw_dir", type=Path, metavar="RAW_DIR", help="folder of a raw night")
    p.add_argument("--out", required=True, type=Path, metavar="OUT_DIR",
                   help="output folder (created; calibrated products in OUT_DIR/calibrated)")
    add_night_arguments(p)
    p.add_argument("--exclude", action="append", default=[], metavar="FILE",
                   help="leave this frame (its file name, as in night.ecsv's 'file' column) "
                        "out of the extinction fit; repeatable")
    p.add_argument("--no-plots", action="store_true", help="write no PNG plots")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="measure the frames on N worker processes of this machine (a Dask "
                        "LocalCluster, e.g. N = its number of cores; default: this process "
                        "only); results are those of one process")
    p.set_defaults(func=run)


def add_night_arguments(p):
    """The options of a night's measurement, shared by ``night`` and ``archive``: --catalog,
    --site, --band, --gain, --read-noise, --no-calibrate, --offline, --aperture (see
    :func:`night_settings`)."""
    p.add_argument("--catalog", default=None, metavar="SPEC",
                   help="vizier:<id>, simbad, default, or a local table (without: relative "
                        "transparency only)")
    p.add_argument("--site", default=None, metavar="LAT,LON[,HEIGHT]",
                   help="observatory (degrees, longitude east-positive, metres); default "
                        "from the headers (SITELAT/SITELONG, OBSGEO-*)")
    p.add_argument("--band", action="append", default=[], metavar="FILTER=BAND",
                   help="catalog band of a FILTER value (e.g. Clear=V); repeatable")
    p.add_argument("--gain", type=float, default=None, metavar="G",
                   help="gain in e-/ADU (default: header GAIN/EGAIN, else measured from 2+ "
                        "biases and 2+ flats)")
    p.add_argument("--read-noise", type=float, default=None, metavar="R",
                   help="read noise in e- (default: header RDNOISE, else measured from 2+ "
                        "biases and 2+ flats)")
    p.add_argument("--no-calibrate", action="store_true",
                   help="measure the lights as they are: raw lights without calibration frames, "
                        "or the calibrated products of an earlier run (give its OUT/calibrated "
                        "as RAW_DIR)")
    p.add_argument("--offline", action="store_true", help="catalogs from cache/local files only")
    p.add_argument("--aperture", type=float, default=None, metavar="PIXELS",
                   help="one aperture radius for every frame (default: each frame's own, "
                        "from its curve of growth); steadies a time series whose seeing "
                        "changes")
    p.add_argument("--cfa", choices=("G", "R", "B", "none"), default="G",
                   help="colour camera (a Bayer pattern in the header, e.g. BAYERPAT=RGGB): the colour channel measured, each 2x2 cell one pixel (G: the sum of its two greens, close to V; default %(default)s); none measures the mosaic as one grey image")


def night_settings(args):
    """The :class:`~glue_zeropoint.night.settings.NightSettings` of parsed
    :func:`add_night_arguments` options; a --band without '=' or an --aperture that is not
    positive is an InputError."""
    from ..exceptions import InputError
    from ..night.settings import NightSettings

    band_map = {}
    for item in args.band:
        if "=" not in item:
            raise InputError(f"--band {item!r}: give FILTER=BAND, e.g. --band Clear=V")
        k, v = item.split("=", 1)
        band_map[k.strip()] = v.strip()
    return NightSettings(site=args.site, band_map=band_map or None,
                         calibrate=not args.no_calibrate, gain=args.gain,
                         read_noise=args.read_noise,
                         offline=args.offline, aperture_radius=args.aperture,
                         cfa=getattr(args, "cfa", "G"))


def summary(result):
    lines = [f"verdict: {result.verdict.upper()}: {result.verdict_reason}"]
    for band, f in result.fits.items():
        sys = (f" (total +-{f.k_err_total:.3f} with the common tail's bound)"
               if f.k_sys > 0 else " (total: not bounded, see the note)"
               if not np.isfinite(f.k_sys) else "")
        lines.append(f"  {band}: k = {f.k:.3f} +- {f.k_err:.3f} mag/airmass (95%: +-"
                     f"{f.k_ci95:.3f}){sys}, ZP0 = {f.zp0:.3f} +- {f.zp0_err:.3f}, scatter "
                     f"{f.sigma_int:.3f}, {f.n_used}/{f.n_frames} frames, airmass "
                     f"{f.airmass_range[0]:.2f}-{f.airmass_range[1]:.2f}")
        ct = result.colour_terms.get(band) or {}
        if ct.get("c0") is not None:
            lines.append(f"      colour term {ct['c0']:.3f} +- {ct['c0_err']:.3f}; "
                         + ("k2 = {:.3f} +- {:.3f}".format(ct["k2"], ct["k2_err"])
                            if ct.get("fitted") else ct.get("reason", "")))
        for note in f.notes:
            lines.append(f"      note: {note}")
    fr = result.frames
    cloudy = [str(f) for f in fr["file"][np.asarray(fr["cloudy"], bool)]]
    if cloudy:
        lines.append(f"  cloudy frames ({len(cloudy)}): " + ", ".join(cloudy))
    by_reason = {}
    for r in fr:
        if r["status"] == "failed":
            by_reason.setdefault(str(r["reason"]), []).append(str(r["file"]))
    if by_reason:
        n_failed = sum(len(v) for v in by_reason.values())
        lines.append(f"  failed frames ({n_failed}):")
        for reason, files in by_reason.items():
            lines.append(f"    {', '.join(files)}: {reason}")
    if result.standards is not None:
        lines.append(f"  standard magnitudes of {len(result.standards)} stars")
    for note in result.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def run(args):
    from ..exceptions import InputError
    from ..night.outputs import write_night
    from ..night.run import measure_night

    settings = night_settings(args)
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers {args.workers}: give 1 or more processes")
    with TerminalProgress("night") as progress:
        result = measure_night(args.raw_dir, args.catalog, out=args.out, settings=settings,
                               progress=progress, echo=lambda line: print(line, flush=True),
                               exclude=args.exclude or None, workers=args.workers)
    if not np.any(result.frames["status"] != "failed"):
        raise InputError(f"{args.raw_dir}: no light frame could be measured (see above)")
    paths = write_night(result, args.out, plots=not args.no_plots)
    print(summary(result))
    print(f"  wrote {len(paths)} file(s) to {args.out} (night.json: the summary)")
    return 0
