"""``glue-zeropoint archive --report``: trends of an archive store as text."""

import numpy as np

from ..exceptions import InputError
from .store import Store, read_archive, read_summaries

__all__ = ["trend_report"]


def _fmt(v, spec=".3f"):
    return "    -" if v is None or not np.isfinite(v) else format(v, spec)


def trend_report(store):
    """The report's text: per band the zero point vs date, the sky brightness vs date, the
    Moon-free nights, and the nights that failed or are incomplete.

    Raises
    ------
    InputError
        ``store`` is not an archive store, or it holds no night yet.
    """
    st = Store(store)
    if not st.is_store():
        raise InputError(f"{store}: not an archive store (no archive.json); run "
                         "'glue-zeropoint archive DIR... --out STORE' first")
    nights = read_summaries(store)
    frames = read_archive(store)
    if nights.empty:
        raise InputError(f"{store}: no night in the archive yet")
    lines = [f"archive {store}: {nights['night'].nunique()} night(s), {len(frames)} frame(s)"]
    ok = nights[nights["status"] == "ok"]
    for band in sorted(b for b in ok["band"].unique() if b):
        nb = ok[ok["band"] == band].sort_values(["night_date", "night"])
        lines.append(f"band {band}: zero point and sky brightness vs date")
        lines.append("  date        night                 ZP(median)  ZP0(X=0)    k      "
                     "sky mag/arcsec2  FWHM px  frames  cloudy  Moon")
        for _, r in nb.iterrows():
            lines.append(
                f"  {r['night_date'] or '?':<11} {r['night'][:20]:<20}  {_fmt(r['zp_median']):>9}"
                f"  {_fmt(r['zp0']):>8}  {_fmt(r['k']):>6}  {_fmt(r['sky_sb_median'], '.2f'):>15}"
                f"  {_fmt(r['fwhm_median'], '.2f'):>7}  {int(r['n_frames']):>6}  "
                f"{int(r['n_cloudy']):>6}  {'down' if r['moon_free'] else 'up'}")
        zp = nb["zp_median"].to_numpy(float)
        if np.isfinite(zp).sum() >= 2:
            lines.append(f"  ZP over the nights: median {np.nanmedian(zp):.3f}, range "
                         f"{np.nanmin(zp):.3f} to {np.nanmax(zp):.3f}")
    free = sorted(ok[ok["moon_free"]]["night"].unique())
    lines.append(f"Moon-free nights ({len(free)}): " + (", ".join(free) if free else "none"))
    bad = nights[nights["status"] != "ok"].drop_duplicates("night")
    for _, r in bad.iterrows():
        lines.append(f"night {r['night']}: {r['status'].upper()}: {r['reason']}")
    if len(frames):
        failed = frames[frames["status"] == "failed"]
        if len(failed):
            lines.append(f"failed frames ({len(failed)}):")
            for _, r in failed.iterrows():
                lines.append(f"  {r['night']}/{r['file']}: {r['reason']}")
    return "\n".join(lines)
