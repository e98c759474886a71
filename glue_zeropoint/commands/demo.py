"""``glue-zeropoint demo``: the whole chain on a built-in simulated night.

Writes a raw night (MaxIm-style headers, V and B lights) into ``OUT/raw``, calibrates it into
``OUT/calibrated``, writes the field's offline reference catalog ``OUT/demo_catalog.ecsv``
(APASS-style columns), measures the zero point of the first V light into ``OUT/measure`` and
``OUT/truth.json`` (what the simulator put in, to compare with). Without ``--no-gui`` it then
opens Glue with everything loaded and linked and the zero-point viewer open; with ``--no-gui``
it writes the Glue session ``OUT/demo.glu`` and screenshots instead (offscreen).
"""

import os
import sys
from pathlib import Path

from ..exceptions import InputError
from ..io import ensure_output_dir, write_json
from ..progress import TerminalProgress

DEMO_BAND = "V"
DEMO_COLOR = "B-V"


def add_parser(sub):
    p = sub.add_parser("demo", help="run the whole chain on a built-in simulated night",
                       description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("--out", default="glue-zeropoint-demo", type=Path,
                   help="folder for the demo night and its products (default: %(default)s)")
    p.add_argument("--no-gui", action="store_true",
                   help="do not open Glue; write the .glu session and screenshots instead")
    p.add_argument("--size", type=int, default=1024, help="image size in pixels (default 1024)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the simulated night")
    p.set_defaults(func=run)


def build_demo_night(out, *, size=1024, seed=1, progress=None):
    """Simulate, calibrate and measure the demo night; return a dict of paths and results."""
    from ..calibration import calibrate_night
    from ..catalogs import read_catalog
    from ..simulate import reference_catalog, simulate_night
    from ..zeropoint import FitSettings, MeasureSettings, measure_image

    out = ensure_output_dir(out)
    raw = out / "raw"
    if raw.exists() and any(raw.iterdir()):
        raise InputError(f"{raw}: already holds files; choose an empty --out for the demo")
    truth = simulate_night(raw, style="maxim", shape=(size, size), seed=seed,
                           lights=(("V", 30.0, 2), ("B", 60.0, 1)),
                           field_kwargs={"n_stars": max(150, size * size // 4000),
                                         "seed": seed})
    catalog_path = out / "demo_catalog.ecsv"
    reference_catalog(truth.field, bands=("B", "V", "R", "I"), seed=seed).write(
        catalog_path, format="ascii.ecsv", overwrite=True)
    night = calibrate_night(raw, out / "calibrated", progress=progress)
    catalog = read_catalog(catalog_path)
    light = next(ccd for ccd in night.lights if ccd.meta.get("FILTER") == DEMO_BAND)
    filt = truth.filters[DEMO_BAND]
    # quote the zero point at the simulator's reference colour, so it compares with the truth
    settings = MeasureSettings(fit=FitSettings(color_ref=filt.color_ref))
    measurement = measure_image(light, catalog, DEMO_BAND, color=DEMO_COLOR, settings=settings)
    measure_dir = ensure_output_dir(out / "measure")
    measurement.write(measure_dir)
    write_json(out / "truth.json", {
        "band": DEMO_BAND, "zp": filt.zp, "color_term": filt.color_term,
        "color_ref": filt.color_ref, "sky_sb": filt.sky_sb, "gain": truth.camera.gain,
        "read_noise": truth.camera.read_noise})
    return {"out": out, "raw": raw, "night": night, "catalog": catalog,
            "catalog_path": catalog_path, "measurement": measurement, "truth": truth}


def _summary(result):
    zp = result["measurement"].zeropoint
    truth = result["truth"].filters[DEMO_BAND]
    lines = [
        f"demo night in {result['out']}",
        f"  calibrated lights: {len(result['night'].lights)}",
        f"  zero point ({zp.band}): {zp.zp:.3f} +/- {zp.zp_err:.3f} mag "
        f"(total {zp.zp_err_total:.3f}; truth {truth.zp:.3f})"
        + (f" at {zp.color} = {zp.color_ref:.2f}, the truth's reference colour (Glue's "
           "viewer refers its zero point to the used stars' mean colour)"
           if zp.color_term is not None and zp.color_ref is not None else ""),
        f"  scatter {zp.scatter:.3f} mag, {zp.n_used} of {zp.n_matched} matched stars used",
    ]
    if zp.color_term is not None:
        lines.append(f"  colour term ({zp.color}): {zp.color_term:.3f} +/- "
                     f"{zp.color_term_err:.3f} (truth {truth.color_term:.3f})")
    if zp.sky_sb is not None:
        lines.append(f"  sky: {zp.sky_sb:.2f} +/- {zp.sky_sb_err:.3f} mag/arcsec^2 "
                     f"(truth {truth.sky_sb:.2f})")
    return "\n".join(lines)


def has_display():
    """Whether a Qt window can be shown here (a Linux machine without X or Wayland cannot)."""
    if os.environ.get("QT_QPA_PLATFORM"):
        return os.environ["QT_QPA_PLATFORM"] not in ("offscreen", "minimal")
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run(args):
    if not args.no_gui and not has_display():
        print("no display here: running with --no-gui (the Glue session and screenshots are "
              f"written to {args.out}; open the session with: glue {args.out / 'demo.glu'})",
              file=sys.stderr)
        args.no_gui = True
    if args.no_gui and not has_display():
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with TerminalProgress("calibrating") as progress:
        result = build_demo_night(args.out, size=args.size, seed=args.seed, progress=progress)
    print(_summary(result))
    from ..qt.app import build_app, save_outputs

    measurement = result["measurement"]
    # the viewer matches as the measurement did (its own default is a fixed 2 arcsec)
    radius = measurement.matches.meta.get("crossmatch", {}).get("radius_arcsec")
    if args.no_gui:
        from ..qt.compat import offscreen_messages_filtered

        with offscreen_messages_filtered():  # the offscreen platform's size-hint notices
            app = build_app(result["night"].lights, result["catalog"], DEMO_BAND,
                            color=DEMO_COLOR, stars=measurement.stars,
                            match_radius=radius)
            written = save_outputs(app, result["out"])
            for path in written:
                print(f"  wrote {path}")
            app.close()
        return 0
    app = build_app(result["night"].lights, result["catalog"], DEMO_BAND, color=DEMO_COLOR,
                    stars=measurement.stars, match_radius=radius)
    print("opening Glue (close the window to finish)", file=sys.stderr)
    app.start(maximized=False)
    return 0
