"""``glue-zeropoint calibrate RAW_DIR --out OUT_DIR``: calibrate a raw night on disk.

Writes one ``<light stem>_cal.fits`` per light frame, the masters (``master_bias.fits``,
``master_dark.fits``, ``master_flat_<filter>.fits``) and, last, ``calibration.json``, the
folder's manifest (every product with its raw inputs, their SHA-256 and the settings); prints
a short summary. The output folder is locked while the run writes (a second run into it
stops, saying which process holds it). Products found under RAW_DIR are left out; frames with
an unusable header (EXPTIME <= 0, a type that contradicts the file name) are refused one by
one and the rest calibrated; a rerun reuses the lights whose inputs and settings are
unchanged and removes products of earlier runs. Exit code 0 on success, 2 on bad input with a
one-line reason, 1 when a product cannot be written (e.g. a full disk; the file is named).
"""

from pathlib import Path

from ..progress import TerminalProgress

__all__ = ["add_parser", "run", "summary"]


def add_parser(sub):
    p = sub.add_parser("calibrate", help="calibrate a folder of raw frames",
                       description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("raw_dir", type=Path, metavar="RAW_DIR",
                   help="folder of raw bias/dark/flat/light frames (sub-folders searched)")
    p.add_argument("--out", required=True, type=Path, metavar="OUT_DIR",
                   help="folder for the calibrated products and calibration.json")
    p.add_argument("--combine", choices=("median", "mean"), default="median",
                   help="combination of the sigma-clipped masters (default: %(default)s)")
    p.add_argument("--gain", type=float, default=None, metavar="G",
                   help="gain in e-/ADU (default: header GAIN/EGAIN, else measured)")
    p.add_argument("--read-noise", type=float, default=None, metavar="R",
                   help="read noise in e- (default: header RDNOISE, else measured)")
    p.add_argument("--cfa", choices=("G", "R", "B", "none"), default="G",
                   help="colour camera (a Bayer pattern in the header, e.g. BAYERPAT=RGGB): "
                        "each light is calibrated as its mosaic, then kept as this colour "
                        "channel, each 2x2 cell one pixel (G: the sum of its two greens, close "
                        "to V; default %(default)s); none keeps the calibrated mosaic")
    p.set_defaults(func=run)


def summary(night):
    """A few lines saying what was done (for the terminal)."""
    rep = night.report
    lines = [f"calibrated {len(night.lights)} light frame(s) from {rep['raw_dir']}"]
    for group in rep["groups"]:
        counts = ", ".join(f"{n} {k}" for k, n in group["counts"].items() if n)
        lines.append(f"  group {group['name']}: {counts}")
        if group.get("gain"):
            lines.append(f"    gain {group['gain']['value']:.4g} e-/ADU "
                         f"({group['gain']['source']}), read noise "
                         f"{group['read_noise']['value']:.3g} e- "
                         f"({group['read_noise']['source']})")
        for note in group.get("notes", []):
            lines.append(f"    note: {note}")
        for step in group["skipped_steps"]:
            lines.append(f"    skipped: {step}")
    for light in rep["lights"]:
        colour = light.get("colour")
        colour = (f", {colour['channel']} channel of its {colour['pattern']} mosaic"
                  if colour else "")
        lines.append(f"  {light['file']}: dark {light['dark'] or '-'} ({light['dark_match']}), "
                     f"flat {light['flat'] or '-'}, {light['masked']['masked']} pixels "
                     f"masked{colour}")
    if rep["guesses"]:
        lines.append(f"  {len(rep['guesses'])} guess(es) from file names, see calibration.json")
    refused = {r["file"] for r in rep.get("refused", [])}
    skipped = [s for s in rep["skipped"] if s["file"] not in refused]
    if skipped:
        lines.append("  skipped: " + "; ".join(f"{s['file']} ({s['reason']})"
                                               for s in skipped))
    for r in rep.get("refused", []):
        lines.append(f"  REFUSED: {r['reason']}")
    if rep.get("products_skipped"):
        lines.append(f"  left out {len(rep['products_skipped'])} file(s) of earlier "
                     "calibrations found in the raw folder (products are never calibrated "
                     "again)")
    for note in rep.get("notes", []):
        lines.append(f"  note: {note}")
    manifest = rep.get("manifest") or {}
    if manifest.get("reused"):
        lines.append(f"  reused {len(manifest['reused'])} calibrated light(s) whose raw "
                     "frames and settings are unchanged")
    if rep["out_dir"]:
        lines.append(f"  wrote {len(night.products)} file(s) to {rep['out_dir']} "
                     "(calibration.json last: the folder's manifest)")
    return "\n".join(lines)


def run(args):
    from ..calibration import calibrate_night

    with TerminalProgress("calibrating") as progress:
        night = calibrate_night(args.raw_dir, args.out, combine=args.combine, gain=args.gain,
                                read_noise=args.read_noise, progress=progress,
                                cfa=args.cfa)
    print(summary(night))
    return 0
